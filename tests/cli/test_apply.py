"""`etcdadmin apply -f FILE --dir DIR` against a real etcd, read back with etcdctl."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from etcdadmin.cli import apply as apply_command
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.cli.conftest import save_profile
from tests.conftest import REPO_ROOT
from tests.stack.procs import wait_until

CONFIG = """\
version: 0.1
http:
  addr: :5000
  secret: MARKER-http-secret
storage:
  swift:
    username: test:tester
    password: MARKER-swift-password
"""


def _write(tmp_path: Path, text: str, name: str = "config.yml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _keys(etcd_server, top: str) -> dict[str, str]:
    out = etcd_server.etcdctl("get", "--prefix", f"{top}/", "-w", "json").stdout
    kvs = json.loads(out).get("kvs", [])
    return {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode() for kv in kvs
    }


def _revision(etcd_server) -> int:
    out = etcd_server.etcdctl("get", "no-such-key", "-w", "json").stdout
    return int(json.loads(out)["header"]["revision"])


def test_apply_prints_the_plan_then_writes_the_file_as_keys(at, etcd_server, top, tmp_path):
    done = at("apply", "-f", _write(tmp_path, CONFIG), "--dir", top, "--yes")
    assert done.exit_code == 0, done.stderr
    assert "+ http/addr = :5000" in done.stdout
    assert "5 to add, 0 to change, 0 to remove, 0 unchanged" in done.stdout
    assert "5 of 5 keys written" in done.stderr
    assert _keys(etcd_server, top) == {
        f"{top}/version": "0.1",
        f"{top}/http/addr": ":5000",
        f"{top}/http/secret": "MARKER-http-secret",
        f"{top}/storage/swift/username": "test:tester",
        f"{top}/storage/swift/password": "MARKER-swift-password",
    }


def test_the_plan_never_shows_a_secret_value_in_text_or_json(at, top, tmp_path):
    config = _write(tmp_path, CONFIG)
    text = at("apply", "-f", config, "--dir", top, "--dry-run")
    as_json = at("apply", "-f", config, "--dir", top, "--dry-run", "--json")
    assert text.exit_code == 1 and as_json.exit_code == 1
    for output in (text.stdout + text.stderr, as_json.stdout + as_json.stderr):
        assert "MARKER" not in output
    assert "+ storage/swift/password = (secret)" in text.stdout
    assert "+ storage/swift/username = test:tester" in text.stdout
    plan = json.loads(as_json.stdout)["plan"]
    secret = [c for c in plan["changes"] if c["path"] == "storage/swift/password"]
    assert secret == [
        {
            "action": "add",
            "key": f"{top}/storage/swift/password",
            "path": "storage/swift/password",
            "secret": True,
            "mod_revision": None,
            "before": None,
            "after": "(secret)",
        }
    ]


def test_a_dry_run_and_an_unconfirmed_apply_write_nothing(at, etcd_server, top, tmp_path):
    config = _write(tmp_path, CONFIG)
    before = _revision(etcd_server)
    dry = at("apply", "-f", config, "--dir", top, "--dry-run")
    assert dry.exit_code == 1  # there is something to change
    unconfirmed = at("apply", "-f", config, "--dir", top)  # no terminal, no --yes
    assert unconfirmed.exit_code == 2
    assert "pass --yes" in unconfirmed.stderr
    assert _revision(etcd_server) == before
    assert _keys(etcd_server, top) == {}


def test_an_apply_with_nothing_to_change_writes_nothing(at, etcd_server, top, tmp_path):
    config = _write(tmp_path, CONFIG)
    assert at("apply", "-f", config, "--dir", top, "--yes").exit_code == 0
    before = _revision(etcd_server)
    again = at("apply", "-f", config, "--dir", top, "--yes")
    assert again.exit_code == 0, again.stderr
    assert "0 to add, 0 to change, 0 to remove, 5 unchanged" in again.stdout
    assert _revision(etcd_server) == before
    assert at("apply", "-f", config, "--dir", top, "--dry-run").exit_code == 0


def test_prune_removes_only_keys_the_file_does_not_name(at, etcd_server, top, tmp_path):
    etcd_server.etcdctl("put", f"{top}/log/level", "debug")
    config = _write(tmp_path, "http:\n  addr: :5000\n")
    kept = at("apply", "-f", config, "--dir", top, "--yes")
    assert kept.exit_code == 0, kept.stderr
    assert "1 key not in the file is kept" in kept.stdout
    assert f"{top}/log/level" in _keys(etcd_server, top)
    pruned = at("apply", "-f", config, "--dir", top, "--yes", "--prune")
    assert pruned.exit_code == 0, pruned.stderr
    assert "- log/level" in pruned.stdout
    assert _keys(etcd_server, top) == {f"{top}/http/addr": ":5000"}


def test_a_key_changed_after_the_plan_writes_nothing_and_names_the_key(
    at, etcd_server, top, tmp_path, monkeypatch
):
    etcd_server.etcdctl("put", f"{top}/http/addr", ":4000")

    def someone_else_writes_while_the_operator_reads_the_plan(*args: object) -> None:
        etcd_server.etcdctl("put", f"{top}/http/addr", ":6000")

    monkeypatch.setattr(
        apply_command, "_confirm", someone_else_writes_while_the_operator_reads_the_plan
    )
    done = at("apply", "-f", _write(tmp_path, CONFIG), "--dir", top)
    assert done.exit_code == 1
    assert f"{top}/http/addr" in done.stderr and "nothing written (0 of 5 keys)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert _keys(etcd_server, top) == {f"{top}/http/addr": ":6000"}


def test_a_key_the_plan_leaves_alone_or_one_created_after_the_plan_stops_the_apply(
    at, etcd_server, top, tmp_path, monkeypatch
):
    """The plan showed DIR becoming what the file says: a write to any key of DIR since, one
    the plan leaves unchanged or a new one (which --prune would have removed), makes it stale."""
    etcd_server.etcdctl("put", f"{top}/version", "0.1")  # the file's value: unchanged
    for foreign, value in ((f"{top}/version", "0.2"), (f"{top}/sneaky", "x")):

        def someone_else_writes(*args: object, key: str = foreign, value: str = value) -> None:
            etcd_server.etcdctl("put", key, value)

        monkeypatch.setattr(apply_command, "_confirm", someone_else_writes)
        done = at("apply", "-f", _write(tmp_path, CONFIG), "--dir", top, "--prune")
        assert done.exit_code == 1, done.stderr
        assert foreign in done.stderr and "nothing written (0 of" in done.stderr
        assert f"{top}/http/addr" not in _keys(etcd_server, top)


def test_a_thousand_keys_go_in_guarded_batches_that_fit_one_transaction_each(
    at, etcd_server, top, tmp_path
):
    services = "\n".join(
        f"svc{s:02d}:\n" + "".join(f"  key{k:03d}: v{s}-{k}\n" for k in range(127))
        for s in range(8)
    )
    before = _revision(etcd_server)
    done = at("apply", "-f", _write(tmp_path, services), "--dir", top, "--yes", "--json")
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)["result"]
    assert result["written_keys"] == result["total_keys"] == 1016
    # 126 keys a transaction: room in etcd's 128 operations for the release record and the
    # range guard; ceil(1016 / 126) = 9 transactions (8 at 127 keys each)
    assert len(result["revisions"]) == 9
    assert _revision(etcd_server) == before + 9
    keys = _keys(etcd_server, top)
    assert len(keys) == 1016 and keys[f"{top}/svc07/key126"] == "v7-126"


def test_bad_yaml_exits_2_with_one_line(at, etcd_server, top, tmp_path):
    done = at("apply", "-f", _write(tmp_path, "http: [unclosed\n"), "--dir", top, "--yes")
    assert done.exit_code == 2
    assert "not valid YAML" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert _keys(etcd_server, top) == {}


def test_a_read_only_profile_refuses_to_apply(run, profiles, etcd_server, top, tmp_path):
    save_profile(profiles, "audit", etcd_server.endpoint, read_only=True)
    done = run("--profile", "audit", "apply", "-f", _write(tmp_path, CONFIG), "--dir", top, "-y")
    assert done.exit_code == 2 and "read-only" in done.stderr
    assert _keys(etcd_server, top) == {}


def test_apply_in_a_real_process_reads_stdin_and_exits_by_the_documented_codes(
    config_dir, etcd_server, top
):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ETCDADMIN_ENDPOINTS": etcd_server.endpoint}

    def apply(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "etcdadmin", "apply", "-f", "-", "--dir", top, *args],
            input=CONFIG,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    refused = apply()
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    written = apply("--yes")
    assert written.returncode == 0, written.stderr
    assert _keys(etcd_server, top)[f"{top}/http/addr"] == ":5000"


def test_ctrl_c_stops_between_two_batches_and_says_how_far_the_apply_got(
    config_dir, etcd_server, top, tmp_path
):
    """SIGINT in a real process, as a terminal's Ctrl-C (twice): the batch in flight completes,
    none after it starts, exit 130, and the line says exactly what etcd holds."""
    services = "".join(
        f"svc{s:03d}:\n" + "".join(f"  key{k:02d}: v{s}-{k}\n" for k in range(100))
        for s in range(300)
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ETCDADMIN_ENDPOINTS": etcd_server.endpoint}
    path = _write(tmp_path, services)
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        before = conn.header()[0]
        apply = subprocess.Popen(
            [sys.executable, "-m", "etcdadmin", "apply", "--dir", top, "--yes", "-f", path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            # a shell that runs tests in the background ignores SIGINT, and children inherit it
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            wait_until(lambda: conn.header()[0] > before, 30, "the first batch", interval=0.005)
            apply.send_signal(signal.SIGINT)
            apply.send_signal(signal.SIGINT)  # an impatient second Ctrl-C changes nothing
            _, stderr = apply.communicate(timeout=60)
        finally:
            apply.kill()
        written = conn.read_prefix(f"{top}/").items
    assert apply.returncode == 130, stderr
    assert "stopping after the batch in flight" in stderr and "Traceback" not in stderr
    said = re.search(r"cancelled: (\d+) of 30000 keys written in (\d+) batches", stderr)
    assert said is not None, stderr
    assert 0 < int(said[1]) == len(written) < 30000
    for kv in written:
        service, key = kv.key.decode().split("/")[-2:]
        assert kv.value.decode() == f"v{int(service[3:])}-{int(key[3:])}"


def test_a_directory_holding_etcdadmins_own_records_is_refused(at, etcd_server, tmp_path):
    before = _revision(etcd_server)
    for directory in ("/", "/etcdadmin", "/etcdadmin/releases"):
        done = at("apply", "-f", _write(tmp_path, CONFIG), "--dir", directory, "--yes")
        assert done.exit_code == 2, (directory, done.stderr)
        assert "holds etcdadmin's own records" in done.stderr
    assert _revision(etcd_server) == before
