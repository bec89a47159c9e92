"""The agent as a process under hostile or careless input: bad settings, bad values, stuck
renders, shared directories, FIFOs and large directories, against a real etcd."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, TxnOp
from tests.agent.conftest import BASE_CONFIG
from tests.agent.harness import AgentProcess, status
from tests.stack.procs import wait_until

MARKER = "SECRET-MARKER-7f3a"


def healthz(agent: AgentProcess) -> int:
    try:
        return agent.healthz()
    except urllib.error.HTTPError as exc:
        return exc.code


def record(etcd_server, directory: str) -> dict:
    records = status(etcd_server.endpoint, directory)
    return records[0] if records else {}


def lines(agent: AgentProcess) -> list[str]:
    return [line for line in agent.log().splitlines() if line.strip()]


# -- settings --------------------------------------------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# Each case: the variable the one line must name, and how to make the bad setting.
BAD_SETTINGS = {
    "config is a directory": ("CONFIG", lambda d: {"CONFIG": str(d)}),
    "config is a fifo": ("CONFIG", lambda d: {"CONFIG": str(_fifo(d / "fifo.yml"))}),
    "config is /dev/null": ("CONFIG", lambda d: {"CONFIG": "/dev/null"}),
    "config is empty": ("CONFIG", lambda d: {"CONFIG": str(_file(d / "e.yml", b""))}),
    "config is a list": ("CONFIG", lambda d: {"CONFIG": str(_file(d / "l.yml", b"- a\n- b\n"))}),
    "config is a scalar": ("CONFIG", lambda d: {"CONFIG": str(_file(d / "s.yml", b"hello\n"))}),
    "config is not yaml": ("CONFIG", lambda d: {"CONFIG": str(_file(d / "n.yml", b"a: [b\n"))}),
    "log level empty": ("LOG_LEVEL", lambda d: {"LOG_LEVEL": ""}),
    "log level unknown": ("LOG_LEVEL", lambda d: {"LOG_LEVEL": "chatty"}),
    "password file not utf-8": (
        "ETCD_PASSWORD_FILE",
        lambda d: {"ETCD_USER": "u", "ETCD_PASSWORD_FILE": str(_file(d / "pw", b"\xff\xfe"))},
    ),
    "absurd etcd timeout": ("ETCD_TIMEOUT", lambda d: {"ETCD_TIMEOUT": "9" * 400}),
    "absurd status ttl": ("STATUS_TTL", lambda d: {"STATUS_TTL": "9" * 5000}),
    "zero etcd timeout": ("ETCD_TIMEOUT", lambda d: {"ETCD_TIMEOUT": "0"}),
    "zero resync interval": ("RESYNC_INTERVAL", lambda d: {"RESYNC_INTERVAL": "0s"}),
    "zero health timeout": ("HEALTH_TIMEOUT", lambda d: {"HEALTH_TIMEOUT": "0"}),
    "negative debounce": ("DEBOUNCE", lambda d: {"DEBOUNCE": "-1s"}),
    "impossible port": ("ETCD_HOST", lambda d: {"ETCD_HOST": "127.0.0.1:99999"}),
    "unknown scheme": ("ETCD_HOST", lambda d: {"ETCD_HOST": "unix://127.0.0.1:2379"}),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS), ids=list(BAD_SETTINGS))
def test_each_bad_setting_stops_the_agent_with_exit_2_and_one_line(tmp_path, make_agent, case):
    variable, make_env = BAD_SETTINGS[case]
    env = {"ETCD_HOST": "127.0.0.1:2379", "WATCH_ETCD_DIR": "bad", **make_env(tmp_path)}
    agent = make_agent(env)
    assert agent.proc is not None
    assert agent.proc.wait(timeout=30) == 2
    assert len(lines(agent)) == 1, agent.log()
    assert variable in agent.log()
    assert not Path(agent.env["STATE_DIR"]).exists(), "nothing is written before the checks"


def test_a_metrics_port_in_use_stops_the_agent_before_its_state_is_written(make_agent):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        agent = make_agent(
            {
                "ETCD_HOST": "127.0.0.1:2379",
                "WATCH_ETCD_DIR": "bad",
                "METRICS_ADDR": f"127.0.0.1:{port}",
            }
        )
        assert agent.proc is not None
        assert agent.proc.wait(timeout=30) == 2
    assert len(lines(agent)) == 1 and "METRICS_ADDR" in agent.log(), agent.log()
    assert not Path(agent.env["STATE_DIR"]).exists()


# -- state per config ------------------------------------------------------------------------


def test_two_agents_with_configs_in_one_directory_keep_their_own_state_across_restarts(
    tmp_path, etcd_server, make_agent
):
    conf = tmp_path / "shared-conf"
    conf.mkdir()
    configs = {}
    for who in ("alpha", "beta"):
        configs[who] = conf / f"{who}.yml"
        configs[who].write_text(f"version: 0.1\nwho: {who}\n")
    # No STATE_DIR: both use the default beside their configs, `.watcher-agent/`.
    agents = {
        who: make_agent(
            {"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": f"two-{who}", "STATE_DIR": ""},
            config=configs[who],
        )
        for who in configs
    }

    def converged(step: int) -> bool:
        return all(
            yaml.safe_load(configs[who].read_text()) == {"version": 0.1, "who": who, "step": step}
            for who in configs
        )

    for step in (1, 2, 3):
        for who in configs:
            etcd_server.etcdctl("put", f"two-{who}/step", str(step))
        wait_until(lambda step=step: converged(step), 30, f"both configs at step {step}")
        for agent in agents.values():
            agent.stop()
            agent.start()
    assert sorted(p.name for p in (conf / ".watcher-agent").iterdir()) == ["alpha.yml", "beta.yml"]
    for who, agent in agents.items():
        base = (agent.state_dir / "base.yml").read_text()
        assert f"who: {who}" in base


def test_a_second_agent_on_the_same_config_is_refused(etcd_server, make_agent):
    first = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": "same"})
    first.wait_metric("applied_revision", lambda v: v > 0, what="first agent running")
    second = make_agent(
        {
            "ETCD_HOST": etcd_server.endpoint,
            "WATCH_ETCD_DIR": "same",
            "STATE_DIR": first.env["STATE_DIR"],
        },
        config=first.config,
    )
    assert second.proc is not None
    assert second.proc.wait(timeout=30) == 2
    assert len(lines(second)) == 1 and "another agent" in second.log(), second.log()
    assert first.proc is not None and first.proc.poll() is None


# -- stopping --------------------------------------------------------------------------------


def test_sigterm_ends_the_agent_while_its_config_path_is_a_fifo(etcd_server, make_agent):
    agent = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": "fifo"})
    agent.wait_metric("applied_revision", lambda v: v > 0, what="first apply")
    agent.config.unlink()
    os.mkfifo(agent.config)
    etcd_server.etcdctl("put", "fifo/log/level", "debug")
    wait_until(
        lambda: record(etcd_server, "fifo").get("last_result") == "write_failed",
        30,
        f"write_failed reported\n{agent.log()[-2000:]}",
    )
    assert agent.proc is not None
    started = time.monotonic()
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 10


def test_sigterm_ends_the_agent_while_a_render_blocks(etcd_server, make_agent):
    agent = make_agent(
        {
            "ETCD_HOST": etcd_server.endpoint,
            "WATCH_ETCD_DIR": "blocked",
            "WATCHER_AGENT_TEST_RENDER_DELAY": "600",
            "RENDER_TIMEOUT": "10m",
        }
    )
    agent.wait_metric("applied_revision", lambda v: v > 0, what="first apply")
    etcd_server.etcdctl("put", "blocked/log/level", "debug")
    wait_until(lambda: healthz(agent) == 503, 30, "the render counted as stuck")
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=10) == 0


# -- render ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "value"),
    [
        # A YAML tag on a bad scalar: PyYAML raised a KeyError quoting the value.
        ({}, "{enabled: !!bool " + MARKER + "}"),
        # Whatever the parser may still let through: an exception quoting the value.
        ({"WATCHER_AGENT_TEST_RENDER_BUG": MARKER}, "plain text " + MARKER),
    ],
    ids=["bad-yaml-tag", "unexpected-exception"],
)
def test_a_value_that_breaks_the_renderer_is_reported_by_key_once_and_never_logged(
    etcd_server, make_agent, env, value
):
    directory = f"bug-{len(env)}"
    agent = make_agent(
        {
            "ETCD_HOST": etcd_server.endpoint,
            "WATCH_ETCD_DIR": directory,
            "RESYNC_INTERVAL": "1s",
            **env,
        }
    )
    agent.wait_metric("applied_revision", lambda v: v > 0, what="first apply")
    before = agent.config.read_bytes()
    etcd_server.etcdctl("put", f"{directory}/feature", value)
    wait_until(
        lambda: record(etcd_server, directory).get("last_result") == "render_failed",
        30,
        f"render_failed reported\n{agent.log()[-2000:]}",
    )
    got = record(etcd_server, directory)
    assert got["failed_key"] == f"{directory}/feature"
    assert f"{directory}/feature" in got["last_error"]
    assert MARKER not in got["last_error"]
    assert agent.config.read_bytes() == before
    # Not retried in a loop: re-reads that find the same keys do not render again.
    resyncs = agent.metrics()["resyncs_total"]
    agent.wait_metric("resyncs_total", lambda v: v >= resyncs + 2, what="two more re-reads")
    assert agent.metrics()["apply_errors_total"] == 1
    log = agent.log()
    assert MARKER not in log
    assert "Traceback" not in log
    if env:
        assert "render failed on an unexpected error" in log and "ValueError" in log

    etcd_server.etcdctl("put", f"{directory}/feature", "{enabled: true}")
    wait_until(lambda: record(etcd_server, directory).get("last_result") == "ok", 30, "fixed")


def test_healthz_answers_503_while_a_render_is_stuck_and_the_render_is_stopped_in_time(
    etcd_server, make_agent
):
    agent = make_agent(
        {
            "ETCD_HOST": etcd_server.endpoint,
            "WATCH_ETCD_DIR": "stuck",
            "WATCHER_AGENT_TEST_RENDER_DELAY": "600",
            "RENDER_TIMEOUT": "6s",
        }
    )
    agent.wait_metric("applied_revision", lambda v: v > 0, what="first apply")
    assert healthz(agent) == 200
    before = agent.config.read_bytes()
    etcd_server.etcdctl("put", "stuck/log/level", "debug")
    wait_until(lambda: healthz(agent) == 503, 20, "/healthz 503 while the render is stuck")
    wait_until(
        lambda: record(etcd_server, "stuck").get("last_result") == "rendering",
        10,
        "the status saying `rendering` rather than `ok`",
    )
    assert record(etcd_server, "stuck")["rendering_since"]
    wait_until(
        lambda: record(etcd_server, "stuck").get("last_result") == "render_timeout",
        20,
        f"render_timeout reported\n{agent.log()[-2000:]}",
    )
    assert "RENDER_TIMEOUT" in record(etcd_server, "stuck")["last_error"]
    assert healthz(agent) == 200
    assert agent.metrics()["apply_errors_total"] == 1
    assert agent.config.read_bytes() == before


def test_one_put_after_20000_keys_in_one_mapping_reaches_the_file_quickly(etcd_server, make_agent):
    directory = "big20k"
    agent = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": directory})
    agent.wait_metric("applied_revision", lambda v: v > 0, what="first apply")
    ops = [TxnOp("put", f"{directory}/many/k{i:05d}".encode(), b"v") for i in range(20000)]
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        for start in range(0, len(ops), 128):  # etcd's default --max-txn-ops
            conn.txn([], ops[start : start + 128])
    wait_until(
        lambda: len((yaml.safe_load(agent.config.read_text()) or {}).get("many", {})) == 20000,
        60,
        f"20,000 keys rendered\n{agent.log()[-2000:]}",
    )
    started = time.monotonic()
    etcd_server.etcdctl("put", f"{directory}/log/level", "debug")
    wait_until(lambda: b"level: debug" in agent.config.read_bytes(), 30, "the one put")
    elapsed = time.monotonic() - started
    # The default debounce (100 ms) plus the render of 20,000 keys (about 1 s measured).
    assert elapsed < 3.0, f"one put took {elapsed:.2f} s to reach the file"
    assert BASE_CONFIG.splitlines()[1] in agent.config.read_text()


BOMB = (
    "["
    + ", ".join(
        ["&a0 [x, x, x, x, x, x, x, x, x]"]
        + [
            f"&a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
            f"*a{i - 1}, *a{i - 1}]"
            for i in range(1, 9)
        ]
    )
    + "]"
)


def _rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the render child counts too)."""
    total = 0
    for task in [pid, *_children(pid)]:
        for line in Path(f"/proc/{task}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_an_alias_bomb_is_refused_in_seconds_by_key_with_memory_bounded(etcd_server, make_agent):
    assert len(BOMB) < 600  # a few hundred bytes that expand to 9**9 (~387 million) nodes
    directory = "bomb"
    agent = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": directory})
    agent.wait_metric("applied_revision", lambda v: v > 0, what="first apply")
    assert agent.proc is not None
    before_config, before_rss = agent.config.read_bytes(), _rss_kib(agent.proc.pid)
    started = time.monotonic()
    etcd_server.etcdctl("put", f"{directory}/notifications", BOMB)
    wait_until(
        lambda: record(etcd_server, directory).get("last_result") == "render_failed",
        10,
        f"render_failed reported\n{agent.log()[-2000:]}",
    )
    assert time.monotonic() - started < 5
    got = record(etcd_server, directory)
    assert got["failed_key"] == f"{directory}/notifications"
    assert "limit" in got["last_error"] and "*a" not in got["last_error"]
    assert agent.config.read_bytes() == before_config
    assert _rss_kib(agent.proc.pid) < before_rss + 50 * 1024, "memory stays bounded"
    assert healthz(agent) == 200
