"""`etcdadmin backup restore` against the real etcd and Swift, and a directory: what an operator
checks afterwards with etcdctl (the directory as in the backup, other directories untouched,
the safety backup holding what was overwritten, a recovered cluster serving the keys)."""

from __future__ import annotations

import base64
import json
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

from etcdadmin.cli import exits
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, TxnOp
from tests.stack.etcd import EtcdCommand, EtcdServer, run_etcdctl
from tests.stack.procs import free_port

ENVELOPE = (
    "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBzZWNyZXQ\n"
    "-----END AGE ENCRYPTED FILE-----\n"
)


@pytest.fixture(params=["swift", "local"])
def where(request, tmp_path) -> tuple[list[str], dict[str, str]]:
    """(options before the subcommand, environment) for a fresh location of each kind."""
    if request.param == "swift":
        swift = request.getfixturevalue("swift")
        env = {"ST_AUTH": swift.auth_url, "ST_USER": swift.user, "ST_KEY": swift.key}
        return ["--container", f"restore-{uuid.uuid4().hex[:8]}"], env
    return ["--dir", str(tmp_path / "backups")], {}


def values(server: EtcdServer, prefix: str, endpoints: list[str] | None = None) -> dict[str, str]:
    """Every key under `prefix` as etcdctl reads it."""
    out = run_etcdctl(
        server.etcdctl_bin,
        endpoints or [server.client_url],
        ["get", prefix, "--prefix", "-w", "json"],
    ).stdout
    return {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
        for kv in json.loads(out).get("kvs") or []
    }


def put_many(endpoint: str, items: dict[str, str]) -> None:
    with EtcdConnection(ConnectionSettings((endpoint,))) as conn:
        ops = [TxnOp("put", k.encode(), v.encode()) for k, v in items.items()]
        for start in range(0, len(ops), 128):
            assert conn.txn([], ops[start : start + 128]).succeeded


def test_restore_brings_a_directory_back_and_keeps_a_safety_backup_of_what_it_overwrote(
    at, where, top, etcd_server
):
    options, env = where
    put_many(
        etcd_server.endpoint,
        {
            f"{top}/app/http/addr": ":5000",
            f"{top}/app/log/level": "info",
            f"{top}/app/token": ENVELOPE,
            f"{top}/other/keep": "before",
        },
    )
    created = at("backup", *options, "create", "--prefix", f"{top}/app/", **env)
    assert created.exit_code == 0, created.stderr
    backup_id = created.stdout.strip()
    etcd_server.etcdctl("del", f"{top}/app/log/level")
    etcd_server.etcdctl("put", f"{top}/app/http/addr", ":6000")
    etcd_server.etcdctl("put", f"{top}/app/added/since", "new")
    etcd_server.etcdctl("put", f"{top}/other/keep", "after")
    before_restore = values(etcd_server, f"{top}/app/")

    asked = at("backup", *options, "restore", backup_id, "--prefix", f"{top}/app", **env)
    assert asked.exit_code == exits.USAGE and "--yes" in asked.stderr, "no terminal: refused"
    assert values(etcd_server, f"{top}/app/") == before_restore, "nothing written unasked"

    done = at("backup", *options, "restore", backup_id, "--prefix", f"{top}/app", "--yes", **env)
    assert done.exit_code == 0, done.stderr
    assert "+ log/level = info" in done.stdout and "- added/since" in done.stdout
    assert "YWdl" not in done.stdout, "a secret's value is never printed"
    assert values(etcd_server, f"{top}/app/") == {
        f"{top}/app/http/addr": ":5000",
        f"{top}/app/log/level": "info",
        f"{top}/app/token": ENVELOPE,
    }
    assert values(etcd_server, f"{top}/other/") == {f"{top}/other/keep": "after"}
    history = at("release", "history", f"{top}/app", "--json", **env)
    assert history.exit_code == 0, history.stderr
    restores = [r for r in json.loads(history.stdout) if r["kind"] == "restore"]
    assert len(restores) == 1 and backup_id in restores[0]["detail"], history.stdout
    safety_id = done.stderr.split("safety backup of ")[1].split(": ")[1].split()[0]
    shown = json.loads(at("backup", *options, "show", safety_id, "--json", **env).stdout)
    assert shown["prefix"] == f"{top}/app/" and shown["key_count"] == len(before_restore)
    assert [o["kind"] for o in shown["objects"]] == ["export"], "the export only, no snapshot"

    undone = at(
        "backup", *options, "restore", safety_id, "--prefix", f"{top}/app", "--yes", "--json", **env
    )
    assert undone.exit_code == 0, undone.stderr
    assert values(etcd_server, f"{top}/app/") == before_restore, "the safety backup undoes it"
    report = json.loads(undone.stdout)
    assert report["result"]["written_keys"] == 3 and report["safety_backup"]


def test_one_key_comes_back_and_its_neighbours_stay(at, top, etcd_server, tmp_path):
    options = ["--dir", str(tmp_path / "backups")]
    etcd_server.etcdctl("put", f"{top}/a", "1")
    etcd_server.etcdctl("put", f"{top}/b", "1")
    backup_id = at("backup", *options, "create", "--prefix", f"{top}/").stdout.strip()
    etcd_server.etcdctl("put", f"{top}/a", "2")
    etcd_server.etcdctl("put", f"{top}/ab", "new")
    etcd_server.etcdctl("put", f"{top}/b", "2")

    done = at("backup", *options, "restore", backup_id, "--key", f"{top}/a", "--yes")

    assert done.exit_code == 0, done.stderr
    assert values(etcd_server, f"{top}/") == {f"{top}/a": "1", f"{top}/ab": "new", f"{top}/b": "2"}
    absent = at("backup", *options, "restore", backup_id, "--key", f"{top}/ab", "--yes")
    assert absent.exit_code == exits.USAGE and "did not exist" in absent.stderr


def test_ten_thousand_keys_restore_through_the_command_line_in_many_transactions(
    at, top, etcd_server, tmp_path
):
    options = ["--dir", str(tmp_path / "backups")]
    put_many(etcd_server.endpoint, {f"{top}/k{n:05d}": f"backup-{n}" for n in range(10_000)})
    backup_id = at("backup", *options, "create", "--prefix", f"{top}/").stdout.strip()
    put_many(etcd_server.endpoint, {f"{top}/k{n:05d}": f"changed-{n}" for n in range(10_000)})

    done = at("backup", *options, "restore", backup_id, "--prefix", top, "--yes", "--json")

    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)["result"]
    assert result["written_keys"] == 10_000 and result["batches"] > 1
    assert len(set(result["revisions"])) == result["batches"], "one transaction per batch"
    restored = values(etcd_server, f"{top}/")
    assert restored == {f"{top}/k{n:05d}": f"backup-{n}" for n in range(10_000)}


def test_a_recovered_data_dir_started_as_printed_serves_the_backups_keys(
    at, where, top, private_etcd, tmp_path
):
    options, env = where
    private_etcd.etcdctl("put", f"{top}/a", "1")
    private_etcd.etcdctl("put", f"{top}/b", "2")
    created = at("--endpoints", private_etcd.endpoint, "backup", *options, "create", **env)
    assert created.exit_code == 0, created.stderr
    private_etcd.etcdctl("del", f"{top}/a")
    client_url = f"http://127.0.0.1:{free_port()}"

    recovered = at(
        "backup",
        *options,
        "restore",
        created.stdout.strip(),
        "--data-dir",
        str(tmp_path / "restored"),
        "--client-url",
        client_url,
        "--peer-url",
        f"http://127.0.0.1:{free_port()}",
        "--json",
        **env,
    )

    assert recovered.exit_code == 0, recovered.stderr
    printed = json.loads(recovered.stdout)
    assert printed["members"][0]["data_dir"] == str(tmp_path / "restored")
    assert " ".join(printed["commands"][0]) in printed["steps"]
    assert not list(tmp_path.glob(".etcdadmin-snapshot-*")), "the download is removed"
    with ExitStack() as started:
        member = EtcdCommand(printed["commands"][0], client_url, tmp_path / "restored.log")
        started.callback(member.stop)
        member.start()
        assert values(private_etcd, f"{top}/", [client_url]) == {f"{top}/a": "1", f"{top}/b": "2"}


def test_restore_names_what_to_restore_and_refuses_a_backup_without_that_prefix(
    at, top, etcd_server, tmp_path: Path
):
    options = ["--dir", str(tmp_path / "backups")]
    etcd_server.etcdctl("put", f"{top}/app/a", "1")
    backup_id = at("backup", *options, "create", "--prefix", f"{top}/app/").stdout.strip()
    neither = at("backup", *options, "restore", backup_id)
    assert neither.exit_code == exits.USAGE and "--prefix DIR" in neither.stderr
    wider = at("backup", *options, "restore", backup_id, "--prefix", top, "--yes")
    assert wider.exit_code == exits.USAGE and f"only the keys under {top}/app/" in wider.stderr
    missing = at("backup", *options, "restore", "0000000000000000/x-r1", "--prefix", top)
    assert missing.exit_code == exits.NOT_FOUND


def test_an_altered_export_fails_the_restore_with_nothing_written(at, top, etcd_server, tmp_path):
    options = ["--dir", str(tmp_path / "backups")]
    etcd_server.etcdctl("put", f"{top}/a", "1")
    backup_id = at("backup", *options, "create", "--prefix", f"{top}/").stdout.strip()
    etcd_server.etcdctl("put", f"{top}/a", "2")
    export = tmp_path / "backups" / backup_id / "keys.jsonl.gz"
    damaged = bytearray(export.read_bytes())
    damaged[-9] ^= 0xFF  # inside the gzip trailer's CRC: still a file, no longer the one stored
    export.write_bytes(bytes(damaged))

    done = at("backup", *options, "restore", backup_id, "--prefix", top, "--yes")

    assert done.exit_code == exits.DIFFERENT
    assert "keys.jsonl.gz" in done.stderr and "use another backup" in done.stderr
    assert values(etcd_server, f"{top}/") == {f"{top}/a": "2"}
