"""`etcdadmin backup follow`, `backup restore-at` and `history --backups` as an operator runs
them: a real follow process stopped with SIGTERM, a restore read back with etcdctl."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etcdadmin.cli import exits
from etcdadmin.core.backup.continuous import FollowOptions, follow_backup
from etcdadmin.core.backup.deltas import DeltaIndex, FollowStatus, read_delta
from etcdadmin.core.backup.local_dir import LocalDirectory
from tests.cli.conftest import save_profile
from tests.cli.test_profiles_and_policy import _on_a_terminal
from tests.conftest import REPO_ROOT
from tests.core.backup_support import connect
from tests.stack.procs import wait_until


def etcdctl_values(server, prefix: str) -> dict[str, bytes]:
    out = json.loads(server.etcdctl("get", prefix, "--prefix", "-w", "json").stdout)
    return {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
        for kv in out.get("kvs") or []
    }


class Lines:
    """A process's stdout lines as they come, read on a thread (never a sleep to wait)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: self.lines.extend(stream), daemon=True).start()

    def statuses(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]


def test_restore_at_a_time_between_t2_and_t3_puts_back_exactly_the_t2_state(
    at, etcd_server, top, tmp_path
):
    directory = tmp_path / "backups"
    location = LocalDirectory(directory)
    stop, reports = threading.Event(), list[FollowStatus]()
    prefix = f"{top}/"

    def run() -> None:
        with connect(etcd_server) as conn:
            follow_backup(
                conn,
                location,
                FollowOptions(prefix, flush_seconds=0.2),
                report=reports.append,
                stop=stop,
            )

    def stored(revision: int) -> None:
        wait_until(lambda: bool(reports) and reports[-1].revision >= revision, 20, "a delta")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: bool(reports), 60, "follow to start")
        with connect(etcd_server) as conn:
            conn.put(prefix + "db/host", "t1-host")
            stored(conn.put(prefix + "db/port", "5432"))
            conn.put(prefix + "db/host", "t2-host")
            stored(conn.put(prefix + "cache/size", "t2"))
            between = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            conn.put(prefix + "db/host", "t3-host")
            conn.delete(prefix + "db/port")
            stored(conn.put(prefix + "new/key", "t3"))
    finally:
        stop.set()
        thread.join(60)
    restored = at(
        "backup",
        "--dir",
        str(directory),
        "restore-at",
        "--prefix",
        prefix,
        "--at",
        between,
        "--yes",
    )
    assert restored.exit_code == 0, restored.stderr
    assert "1 to add back" in restored.stdout and "to delete" in restored.stdout
    assert etcdctl_values(etcd_server, prefix) == {
        prefix + "db/host": b"t2-host",
        prefix + "db/port": b"5432",
        prefix + "cache/size": b"t2",
    }
    assert "safety backup" in restored.stderr


def test_restore_at_a_time_before_any_backup_exits_not_found(at, top, tmp_path):
    directory = tmp_path / "backups"
    at("backup", "--dir", str(directory), "create", "--prefix", f"{top}/")
    refused = at(
        "backup",
        "--dir",
        str(directory),
        "restore-at",
        "--prefix",
        f"{top}/",
        "--at",
        "2001-01-01T00:00:00Z",
        "--yes",
    )
    assert refused.exit_code == exits.NOT_FOUND
    assert "backup ls" in refused.stderr


def test_restore_at_a_directory_named_without_its_slash_leaves_its_namesakes_alone(
    at, etcd_server, top, tmp_path
):
    directory = tmp_path / "backups"
    etcd_server.etcdctl("put", f"{top}/app/a", "backed-up")
    etcd_server.etcdctl("put", f"{top}/apple/x", "backed-up")
    created = at("backup", "--dir", str(directory), "create", "--prefix", f"{top}/")
    assert created.exit_code == 0, created.stderr
    shown = at("backup", "--dir", str(directory), "show", created.stdout.strip(), "--json")
    revision = str(json.loads(shown.stdout)["revision"])
    etcd_server.etcdctl("put", f"{top}/app/a", "changed")
    etcd_server.etcdctl("put", f"{top}/apple/x", "changed")
    restored = at(
        "backup",
        "--dir",
        str(directory),
        "restore-at",
        "--prefix",
        f"{top}/app",
        "--at-revision",
        revision,
        "--yes",
    )
    assert restored.exit_code == 0, restored.stderr
    assert etcdctl_values(etcd_server, f"{top}/") == {
        f"{top}/app/a": b"backed-up",
        f"{top}/apple/x": b"changed",
    }


def _backed_up_then_changed(at, etcd_server, top: str, directory: Path) -> dict[str, list[str]]:
    """A backup of top/app/ taken, then top/app/ changed; for each command, how it names
    that backup (restore-at: by its revision, which no delta follows)."""
    etcd_server.etcdctl("put", f"{top}/app/a", "backed-up")
    etcd_server.etcdctl("put", f"{top}/app/b", "backed-up")
    created = at("backup", "--dir", str(directory), "create", "--prefix", f"{top}/app/")
    assert created.exit_code == 0, created.stderr
    backup_id = created.stdout.strip()
    shown = at("backup", "--dir", str(directory), "show", backup_id, "--json")
    revision = str(json.loads(shown.stdout)["revision"])
    etcd_server.etcdctl("put", f"{top}/app/a", "changed")
    etcd_server.etcdctl("put", f"{top}/app/c", "added")
    return {
        "restore": ["restore", backup_id, "--prefix", f"{top}/app"],
        "restore-at": ["restore-at", "--prefix", f"{top}/app/", "--at-revision", revision],
    }


CHANGED = {"app/a": b"changed", "app/b": b"backed-up", "app/c": b"added"}
BACKED_UP = {"app/a": b"backed-up", "app/b": b"backed-up"}


def _under(top: str, values: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{top}/{k}": v for k, v in values.items()}


@pytest.mark.parametrize("command", ["restore", "restore-at"])
def test_a_production_profile_asks_on_a_terminal_before_a_restore_even_with_yes(
    command, at, profiles, etcd_server, top, tmp_path
):
    directory = tmp_path / "backups"
    argv = _backed_up_then_changed(at, etcd_server, top, directory)[command]
    save_profile(profiles, "prod", etcd_server.endpoint, production=True)
    asked = ["--profile", "prod", "backup", "--dir", str(directory), *argv, "--yes"]

    declined = _on_a_terminal(asked, answer="n")

    assert declined.returncode == exits.USAGE, declined.stderr
    assert f"Restore {top}/app/ on profile prod (PRODUCTION) from " in declined.stderr
    assert "(2 keys to write)?" in declined.stderr
    assert "nothing was written" in declined.stderr
    assert etcdctl_values(etcd_server, f"{top}/") == _under(top, CHANGED)

    accepted = _on_a_terminal(asked, answer="y")

    assert accepted.returncode == 0, accepted.stderr
    assert f"safety backup of {top}/app/: " in accepted.stderr
    assert etcdctl_values(etcd_server, f"{top}/") == _under(top, BACKED_UP)


@pytest.mark.parametrize("command", ["restore", "restore-at"])
def test_a_production_profile_without_a_terminal_restores_only_with_yes(
    command, at, run, profiles, etcd_server, top, tmp_path
):
    directory = tmp_path / "backups"
    argv = _backed_up_then_changed(at, etcd_server, top, directory)[command]
    save_profile(profiles, "prod", etcd_server.endpoint, production=True)
    options = ["--profile", "prod", "backup", "--dir", str(directory)]

    refused = run(*options, *argv)

    assert refused.exit_code == exits.USAGE
    assert "no terminal to confirm the restore on" in refused.stderr
    assert "pass --yes" in refused.stderr
    assert etcdctl_values(etcd_server, f"{top}/") == _under(top, CHANGED)

    done = run(*options, *argv, "--yes", "--json")

    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["target"] == f"{top}/app/" and report["safety_backup"]
    assert report["result"]["written_keys"] == 2 and not report["result"]["cancelled"]
    assert etcdctl_values(etcd_server, f"{top}/") == _under(top, BACKED_UP)


def test_restore_at_json_keeps_its_own_fields_next_to_restores(at, etcd_server, top, tmp_path):
    directory = tmp_path / "backups"
    argv = _backed_up_then_changed(at, etcd_server, top, directory)["restore-at"]

    done = at("backup", "--dir", str(directory), *argv, "--yes", "--json")

    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["prefix"] == f"{top}/app/" and report["deltas"] == 0
    assert report["base_backup"] == report["backup"]
    assert report["revision"] == report["plan"]["backup_revision"] == int(argv[-1])
    assert report["written"] == report["result"]["written_keys"] == 2
    again = at("backup", "--dir", str(directory), *argv, "--yes", "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["written"] == 0 and json.loads(again.stdout)["result"] is None


def test_sigterm_stores_the_buffered_changes_and_exits_0(etcd_server, top, tmp_path):
    directory = tmp_path / "backups"
    prefix = f"{top}/"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = [
        sys.executable, "-m", "etcdadmin.cli.main", "--endpoints", etcd_server.endpoint,
        "backup", "--dir", str(directory), "follow", "--prefix", prefix,
        "--flush-seconds", "600", "--status-seconds", "0.1", "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        out = Lines(proc)
        wait_until(lambda: bool(out.statuses()), 60, "follow to report its start")
        with connect(etcd_server) as conn:
            for i in range(5):
                conn.put(f"{prefix}k{i}", str(i))
        wait_until(lambda: out.statuses()[-1]["pending_changes"] == 5, 20, "five changes buffered")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    last = out.statuses()[-1]
    assert last["event"] == "stopped" and last["pending_changes"] == 0
    location = LocalDirectory(directory)
    changes = [
        c for e in DeltaIndex(location, str(last["cluster_id"])).entries()
        for c in read_delta(location, e)
    ]  # fmt: skip
    assert sorted(c.key.decode() for c in changes) == [f"{prefix}k{i}" for i in range(5)]


def test_history_with_backups_lists_a_version_etcd_compacted(run, private_etcd, tmp_path: Path):
    directory = tmp_path / "backups"
    location = LocalDirectory(directory)
    stop, reports = threading.Event(), list[FollowStatus]()
    with connect(private_etcd) as conn:
        old = conn.put("app/key", "oldest")

        def follow() -> None:
            with connect(private_etcd) as c:
                options = FollowOptions(flush_seconds=0.2)
                follow_backup(c, location, options, report=reports.append, stop=stop)

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        wait_until(lambda: bool(reports), 60, "follow to start")
        middle = conn.put("app/key", "middle")
        wait_until(lambda: reports[-1].revision >= middle, 20, "a delta")
        stop.set()
        thread.join(60)
        private_etcd.etcdctl("compaction", str(conn.put("app/key", "newest")))
    plain = run("--endpoints", private_etcd.endpoint, "history", "app/key", "--json")
    assert old not in [v["revision"] for v in json.loads(plain.stdout)["versions"]]
    found = run(
        "--endpoints", private_etcd.endpoint, "history", "app/key", "--backups",
        "--backup-dir", str(directory), "--json",
    )  # fmt: skip
    assert found.exit_code == 0, found.stderr
    versions = {v["revision"]: v for v in json.loads(found.stdout)["versions"]}
    assert versions[old]["value"] == "oldest" and versions[middle]["value"] == "middle"
    assert "/deltas/" not in versions[old]["source"]  # found in the first full backup
    assert versions[middle]["source"].startswith(reports[-1].cluster_id + "/deltas/")
