"""`etcdadmin backup ...` against the real etcd and Swift, and a directory: what a script sees
(ids on stdout, JSON on request, one-line errors and exit codes)."""

from __future__ import annotations

import json
import uuid

import pytest
from swiftclient.exceptions import ClientException

from etcdadmin.cli import exits
from etcdadmin.cli.backup import STOP_AFTER_SEGMENTS_VARIABLE


@pytest.fixture(params=["swift", "local"])
def where(request, tmp_path) -> tuple[list[str], dict[str, str]]:
    """(options before the subcommand, environment) for a fresh location of each kind."""
    if request.param == "swift":
        swift = request.getfixturevalue("swift")
        env = {"ST_AUTH": swift.auth_url, "ST_USER": swift.user, "ST_KEY": swift.key}
        return ["--container", f"cli-{uuid.uuid4().hex[:8]}"], env
    return ["--dir", str(tmp_path / "backups")], {}


def test_create_ls_show_verify_rm_through_the_command_line(at, where, top):
    options, env = where
    at("put", f"{top}/a", "--value", "1")
    created = at("backup", *options, "create", "--prefix", f"{top}/", **env)
    assert created.exit_code == 0, created.stderr
    backup_id = created.stdout.strip()
    assert "1 keys exported" in created.stderr

    listed = at("backup", *options, "ls", "--json", **env)
    assert [entry["id"] for entry in json.loads(listed.stdout)] == [backup_id]

    shown = json.loads(at("backup", *options, "show", backup_id, "--json", **env).stdout)
    assert shown["id"] == backup_id and shown["key_count"] == 1
    assert {o["kind"] for o in shown["objects"]} == {"snapshot", "export"}

    verified = at("backup", *options, "verify", backup_id, "--json", **env)
    assert verified.exit_code == 0, verified.stderr
    listed = json.loads(at("backup", *options, "ls", "--json", **env).stdout)
    assert listed[0]["verified_at"] == json.loads(verified.stdout)["verified_at"]

    assert at("backup", *options, "rm", backup_id, **env).exit_code == 0
    assert json.loads(at("backup", *options, "ls", "--json", **env).stdout) == []
    missing = at("backup", *options, "show", backup_id, **env)
    assert missing.exit_code == exits.NOT_FOUND and "backup ls" in missing.stderr


def test_a_stopped_upload_exits_130_and_leaves_no_listed_backup(at, where, top, private_etcd):
    options, env = where
    private_etcd.etcdctl("put", f"{top}/k", "x")
    stopped = at(
        "--endpoints",
        private_etcd.endpoint,
        "backup",
        *options,
        "create",
        "--segment-size",
        "1",
        **env,
        **{STOP_AFTER_SEGMENTS_VARIABLE: "0"},
    )
    assert stopped.exit_code == exits.INTERRUPTED
    assert "no backup was written" in stopped.stderr
    assert json.loads(at("backup", *options, "ls", "--json", **env).stdout) == []


def test_prune_dry_run_lists_what_would_go_and_deletes_nothing(at, where, top):
    options, env = where
    ids = []
    for i in range(3):
        at("put", f"{top}/k", "--value", str(i))
        ids.append(at("backup", *options, "create", "--prefix", f"{top}/", **env).stdout.strip())
    dry = at("backup", *options, "prune", "--keep-last", "1", "--dry-run", "--json", **env)
    assert set(json.loads(dry.stdout)["removed"]) == set(ids[:2])
    assert len(json.loads(at("backup", *options, "ls", "--json", **env).stdout)) == 3
    done = at("backup", *options, "prune", "--keep-last", "1", **env)
    assert done.exit_code == 0
    assert [e["id"] for e in json.loads(at("backup", *options, "ls", "--json", **env).stdout)] == [
        ids[2]
    ]


def test_wrong_swift_credentials_exit_3_with_one_line_saying_what_to_check(
    process, swift, etcd_server
):
    env = {"ST_AUTH": swift.auth_url, "ST_USER": swift.user, "ST_KEY": "not-the-key"}
    done = process("--endpoints", etcd_server.endpoint, "backup", "create", env=env)
    assert done.returncode == exits.ETCD
    assert done.stderr.count("\n") == 1 and "ST_USER / ST_KEY" in done.stderr
    assert "not-the-key" not in done.stderr


def test_ls_of_an_empty_location_lists_nothing_and_creates_nothing(at, where, tmp_path, request):
    options, env = where
    listed = at("backup", *options, "ls", "--json", **env)
    assert listed.exit_code == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    if "ST_AUTH" in env:
        connection = request.getfixturevalue("swift").connection()
        try:
            with pytest.raises(ClientException):
                connection.head_container(options[1])
        finally:
            connection.close()
    else:
        assert not (tmp_path / "backups" / "catalog.json").exists()
