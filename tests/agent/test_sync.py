"""The agent against a real etcd, rendering only (no container): the watch/resync guarantees."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from tests.agent.harness import REPO, status
from tests.stack.procs import wait_until


def rendered(agent) -> dict:
    return yaml.safe_load(Path(agent.env["CONFIG"]).read_text())


def wait_config(agent, predicate, what: str, timeout: float = 30) -> None:
    wait_until(
        lambda: predicate(rendered(agent)),
        timeout,
        f"{what}\n--- agent log:\n{agent.log()[-3000:]}",
    )


def test_keys_present_at_start_are_rendered_and_deleting_one_restores_the_base(
    etcd_server, make_agent
):
    etcd_server.etcdctl("put", "t1/http/addr", "127.0.0.1:5999")
    etcd_server.etcdctl("put", "t1/log/level", "debug")
    agent = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": "t1"})
    wait_config(agent, lambda c: c["http"]["addr"] == "127.0.0.1:5999", "addr from etcd")
    config = rendered(agent)
    assert config["log"]["level"] == "debug"
    assert config["http"]["headers"] == {"X-Content-Type-Options": ["nosniff"]}

    etcd_server.etcdctl("del", "t1/http/addr")
    wait_config(agent, lambda c: c["http"]["addr"] == "127.0.0.1:5000", "base addr restored")
    assert rendered(agent)["log"]["level"] == "debug"


def test_config_file_keeps_its_mode_and_is_replaced_atomically(etcd_server, make_agent):
    agent = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": "t2"}, start=False)
    config = Path(agent.env["CONFIG"])
    os.chmod(config, 0o640)
    inode = config.stat().st_ino
    agent.start()
    etcd_server.etcdctl("put", "t2/log/level", "warn")
    wait_config(agent, lambda c: c["log"]["level"] == "warn", "level from etcd")
    st = config.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_ino != inode, "a directory-mounted config is replaced by rename, not rewritten"
    leftovers = [p.name for p in config.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_restarted_agent_renders_from_the_pristine_base_not_its_own_output(etcd_server, make_agent):
    env = {"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": "t3"}
    etcd_server.etcdctl("put", "t3/log/level", "debug")
    agent = make_agent(env)
    wait_config(agent, lambda c: c["log"]["level"] == "debug", "level from etcd")
    agent.stop()
    etcd_server.etcdctl("del", "t3/log/level")
    agent.start()
    wait_config(agent, lambda c: c["log"]["level"] == "info", "base level after restart")
    history = sorted((agent.state_dir / "history").glob("*.yml"))
    assert history, "rendered configs are kept in the state directory"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in history)


def test_no_change_is_lost_across_an_etcd_restart_and_a_compaction(private_etcd, make_agent):
    agent = make_agent(
        {"ETCD_HOST": private_etcd.endpoint, "WATCH_ETCD_DIR": "t4", "DEBOUNCE": "100ms"}
    )
    private_etcd.etcdctl("put", "t4/step", "1")
    wait_config(agent, lambda c: c.get("step") == 1, "step 1")

    # etcd goes away and comes back while changes keep coming.
    private_etcd.stop()
    private_etcd.start()
    private_etcd.etcdctl("put", "t4/step", "2")
    private_etcd.etcdctl("put", "t4/after/restart", "yes")
    wait_config(
        agent, lambda c: c.get("step") == 2 and c.get("after") == {"restart": "yes"}, "step 2"
    )

    # The agent falls behind, history is compacted past it, and etcd restarts under it.
    agent.pause()
    try:
        private_etcd.etcdctl("put", "t4/step", "3")
        private_etcd.etcdctl("del", "t4/after/restart")
        out = private_etcd.etcdctl("put", "t4/last", "true", "-w", "json").stdout
        revision = yaml.safe_load(out)["header"]["revision"]
        private_etcd.etcdctl("compaction", str(revision))
        private_etcd.stop()
        private_etcd.start()
    finally:
        agent.resume()
    wait_config(
        agent,
        lambda c: c.get("step") == 3 and "after" not in c and c.get("last") is True,
        "state after compaction",
    )
    assert "re-reading" in agent.log()


def test_a_burst_of_changes_is_applied_once_at_its_last_revision(etcd_server, make_agent):
    agent = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": "t5"})
    agent.wait_metric("applied_revision", lambda v: v > 0, what="first apply")
    history_before = len(list((agent.state_dir / "history").glob("*.yml")))
    script = "; ".join(
        [
            "from etcdadmin.core.etcd import EtcdConnection, ConnectionSettings",
            f"c = EtcdConnection(ConnectionSettings(('{etcd_server.endpoint}',)))",
            "[c.put(f't5/burst/k{i:02d}', str(i)) for i in range(50)]",
        ]
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True)
    last = json.loads(etcd_server.etcdctl("get", "t5/burst/k49", "-w", "json").stdout)
    wait_config(agent, lambda c: len(c.get("burst", {})) == 50, "all 50 keys")
    # The config file is written before its history entry: wait for the apply to be done.
    revision = int(last["kvs"][0]["mod_revision"])
    agent.wait_metric("applied_revision", lambda v: v >= revision, what="the burst applied")
    writes = len(list((agent.state_dir / "history").glob("*.yml"))) - history_before
    assert writes == 1, f"50 puts in a burst gave {writes} config writes"


def test_unreachable_etcd_at_start_is_reported_and_the_config_stays(tmp_path, make_agent):
    agent = make_agent({"ETCD_HOST": "127.0.0.1:1", "WATCH_ETCD_DIR": "t6"})
    before = Path(agent.env["CONFIG"]).read_bytes()
    wait_until(lambda: "etcd is unreachable at 127.0.0.1:1" in agent.log(), 20, "error line")
    assert agent.proc is not None and agent.proc.poll() is None, "the agent keeps retrying"
    assert Path(agent.env["CONFIG"]).read_bytes() == before


def test_missing_settings_stop_the_agent_with_a_message_naming_the_variable(make_agent):
    agent = make_agent({"ETCD_HOST": "", "WATCH_ETCD_DIR": "t7"})
    assert agent.proc is not None
    assert agent.proc.wait(timeout=20) == 2
    assert "ETCD_HOST is not set" in agent.log()


def test_unparsable_value_is_reported_by_key_without_its_value(etcd_server, make_agent):
    agent = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": "t8"})
    agent.wait_metric("applied_revision", lambda v: v > 0, what="first apply")
    before = Path(agent.env["CONFIG"]).read_bytes()
    etcd_server.etcdctl("put", "t8/http/headers", "{secret-ish: [unclosed")

    def reported() -> bool:
        records = status(etcd_server.endpoint, "t8")
        return bool(records) and records[0]["last_result"] == "render_failed"

    wait_until(reported, 20, "render_failed status")
    record = status(etcd_server.endpoint, "t8")[0]
    assert "t8/http/headers" in record["last_error"]
    assert "secret-ish" not in record["last_error"] and "secret-ish" not in agent.log()
    assert Path(agent.env["CONFIG"]).read_bytes() == before

    # Fixing the key clears the error and applies.
    etcd_server.etcdctl("put", "t8/http/headers", "{X-Frame-Options: [DENY]}")
    wait_config(agent, lambda c: c["http"]["headers"] == {"X-Frame-Options": ["DENY"]}, "fixed")
    wait_until(lambda: status(etcd_server.endpoint, "t8")[0]["last_result"] == "ok", 10, "ok")


def test_a_key_below_a_scalar_is_a_conflict_and_keeps_the_running_config(etcd_server, make_agent):
    agent = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": "t9"})
    agent.wait_metric("applied_revision", lambda v: v > 0, what="first apply")
    before = Path(agent.env["CONFIG"]).read_bytes()
    etcd_server.etcdctl("put", "t9/http/addr/port", "5001")
    wait_until(
        lambda: status(etcd_server.endpoint, "t9")[0]["last_result"] == "render_failed",
        20,
        "render_failed status",
    )
    assert "t9/http/addr/port" in status(etcd_server.endpoint, "t9")[0]["last_error"]
    assert Path(agent.env["CONFIG"]).read_bytes() == before


def test_status_key_disappears_when_the_agent_dies(etcd_server, make_agent):
    agent = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": "t10"})
    # The first record may say "starting": wait for the one published after the first apply.
    wait_until(
        lambda: [r["last_result"] for r in status(etcd_server.endpoint, "t10")] == ["ok"],
        20,
        "status published with the first apply",
    )
    record = status(etcd_server.endpoint, "t10")[0]
    assert record["applied_revision"] > 0
    assert agent.healthz() == 200
    agent.stop(signal.SIGKILL)
    # STATUS_TTL is 5 s in the harness: the lease runs out and the key goes with it.
    wait_until(lambda: status(etcd_server.endpoint, "t10") == [], 20, "status key expiry")


def test_the_agent_rides_out_the_loss_of_each_member_of_a_cluster(etcd_cluster, make_agent):
    agent = make_agent(
        {
            "ETCD_HOST": ",".join(etcd_cluster.endpoints),
            "WATCH_ETCD_DIR": "t11",
            "DEBOUNCE": "100ms",
        }
    )
    for i in range(len(etcd_cluster.members)):
        etcd_cluster.stop_member(i)
        etcd_cluster.etcdctl("put", "t11/round", str(i))
        wait_config(agent, lambda c, i=i: c.get("round") == i, f"round {i} with member {i} down")
        etcd_cluster.start_member(i)


def test_a_cluster_that_went_back_in_time_is_read_again_from_scratch(private_etcd, make_agent):
    agent = make_agent(
        {"ETCD_HOST": private_etcd.endpoint, "WATCH_ETCD_DIR": "t12", "DEBOUNCE": "100ms"}
    )
    for i in range(20):
        private_etcd.etcdctl("put", f"t12/old/k{i}", "x")
    wait_config(agent, lambda c: len(c.get("old", {})) == 20, "20 old keys")

    # A restored (here: rebuilt) cluster on the same endpoint, at a lower revision.
    private_etcd.stop()
    shutil.rmtree(private_etcd.data_dir)
    private_etcd.start()
    private_etcd.etcdctl("put", "t12/new", "1")
    wait_config(agent, lambda c: "old" not in c and c.get("new") == 1, "only the new key")
    assert "went backwards" in agent.log()
