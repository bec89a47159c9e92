"""`etcdadmin release ...` against a real etcd, checked with etcdctl."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import save_profile


def _changes(tmp_path: Path, text: str) -> str:
    path = tmp_path / "changes.yml"
    path.write_text(text)
    return str(path)


def _values(etcd_server, prefix: str) -> dict[str, str]:
    out = etcd_server.etcdctl("get", prefix, "--prefix").stdout.splitlines()
    return dict(zip(out[::2], out[1::2], strict=True))


def test_release_create_ls_show_and_promote_write_the_directory_once(
    at, etcd_server, top, tmp_path
):
    etcd_server.etcdctl("put", f"{top}/log/level", "info")
    etcd_server.etcdctl("put", f"{top}/http/addr", "127.0.0.1:5000")
    changes = _changes(tmp_path, "log:\n  level: debug\n")
    created = at(
        "release",
        "create",
        top,
        "--labels",
        "region=eu",
        "-f",
        changes,
        "--delete",
        f"{top}/http/addr",
    )
    assert created.exit_code == 0, created.stderr
    release_id = created.stdout.strip()
    assert "log/level" in created.stderr and "http/addr: delete" in created.stderr
    assert _values(etcd_server, f"{top}/") == {
        f"{top}/http/addr": "127.0.0.1:5000",
        f"{top}/log/level": "info",
    }
    listed = json.loads(at("release", "ls", top, "--json").stdout)
    assert [(r["id"], r["labels"], r["puts"], r["deletes"]) for r in listed] == [
        (release_id, {"region": "eu"}, ["log/level"], ["http/addr"])
    ]
    shown = at("release", "show", release_id)
    assert "labels region=eu" in shown.stdout and "delete http/addr" in shown.stdout

    promoted = at("release", "promote", release_id)
    assert promoted.exit_code == 0, promoted.stderr
    assert _values(etcd_server, f"{top}/") == {f"{top}/log/level": "debug"}
    assert _values(etcd_server, f"/etcdadmin/gray/{top}/") == {}
    gone = at("release", "show", release_id)
    assert gone.exit_code == 2 and "no active gray release" in gone.stderr


def test_release_abandon_leaves_the_directory_as_it_was(at, etcd_server, top, tmp_path):
    etcd_server.etcdctl("put", f"{top}/log/level", "info")
    release_id = at(
        "release",
        "create",
        top,
        "--agents",
        "a1,a2",
        "-f",
        _changes(tmp_path, "log:\n  level: debug\n"),
    ).stdout.strip()
    done = at("release", "abandon", release_id)
    assert done.exit_code == 0, done.stderr
    assert _values(etcd_server, f"/etcdadmin/gray/{top}/") == {}
    assert _values(etcd_server, f"{top}/") == {f"{top}/log/level": "info"}


def test_history_lists_every_publish_and_rollback_steps_back_to_the_release_before_last(
    at, etcd_server, top, tmp_path
):
    first = at("apply", "--dir", top, "-f", _changes(tmp_path, "a: 1\nb: 2\n"), "--yes")
    assert first.exit_code == 0, first.stderr
    assert at("put", f"{top}/a", "--value", "10").exit_code == 0
    release_id = at(
        "release", "create", top, "--labels", "region=eu", "-f", _changes(tmp_path, "b: 20\n")
    ).stdout.strip()
    assert at("release", "promote", release_id).exit_code == 0

    records = json.loads(at("release", "history", top, "--json").stdout)
    assert [r["kind"] for r in records] == ["gray-promote", "gray-create", "edit", "apply"]
    assert records[0]["release"] == release_id and records[0]["keys"] == ["b"]
    # each record's revision is that of its publish, as etcdctl sees the keys
    revision_of_b = json.loads(etcd_server.etcdctl("get", f"{top}/b", "-w", "json").stdout)
    assert records[0]["revision"] == revision_of_b["kvs"][0]["mod_revision"]

    # the release before last: the edit of a (gray releases do not change the directory)
    back = at("release", "rollback", top, "--steps", "2", "--yes")
    assert back.exit_code == 0, back.stderr
    assert f"back to revision {records[2]['revision']}" in back.stderr
    assert _values(etcd_server, f"{top}/") == {f"{top}/a": "10", f"{top}/b": "2"}
    to_first = at("release", "rollback", top, "--to", str(records[3]["revision"]), "--yes")
    assert to_first.exit_code == 0, to_first.stderr
    assert _values(etcd_server, f"{top}/") == {f"{top}/a": "1", f"{top}/b": "2"}
    latest = json.loads(at("release", "history", top, "--json").stdout)[0]
    assert (latest["kind"], latest["detail"]) == (
        "rollback",
        f"to revision {records[3]['revision']}",
    )


def test_a_production_profile_asks_before_promote_and_rollback(
    run, profiles, etcd_server, top, tmp_path
):
    save_profile(profiles, "prod", etcd_server.endpoint, production=True)
    etcd_server.etcdctl("put", f"{top}/level", "info")
    before = json.loads(etcd_server.etcdctl("get", f"{top}/level", "-w", "json").stdout)
    created = run(
        "--profile",
        "prod",
        "release",
        "create",
        top,
        "--labels",
        "region=eu",
        "-f",
        _changes(tmp_path, "level: debug\n"),
    )
    assert created.exit_code == 2 and "pass --yes" in created.stderr
    created = run(
        "--profile",
        "prod",
        "release",
        "create",
        top,
        "--labels",
        "region=eu",
        "-f",
        _changes(tmp_path, "level: debug\n"),
        "--yes",
    )
    release_id = created.stdout.strip()
    refused = run("--profile", "prod", "release", "promote", release_id)
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    assert _values(etcd_server, f"{top}/") == {f"{top}/level": "info"}
    assert run("--profile", "prod", "release", "promote", release_id, "--yes").exit_code == 0
    assert _values(etcd_server, f"{top}/") == {f"{top}/level": "debug"}
    revision = str(before["header"]["revision"])
    no_terminal = run("--profile", "prod", "release", "rollback", top, "--to", revision)
    assert no_terminal.exit_code == 2 and "pass --yes" in no_terminal.stderr
    assert "level" in no_terminal.stdout, "the plan is shown before the question"
    assert _values(etcd_server, f"{top}/") == {f"{top}/level": "debug"}
