"""history and restore, from etcd's MVCC history."""

from __future__ import annotations

import json


def test_history_lists_versions_newest_first_and_restore_puts_one_back(at, etcd_server, top):
    key = f"{top}/level"
    for value in ("info", "debug", "warn"):
        etcd_server.etcdctl("put", key, value)
    report = json.loads(at("history", key, "--json").stdout)
    assert [v["value"] for v in report["versions"]] == ["warn", "debug", "info"]
    assert [v["version"] for v in report["versions"]] == [3, 2, 1]
    lines = at("history", key).stdout.splitlines()
    assert [line.split("\t")[2] for line in lines] == ["warn", "debug", "info"]

    first = report["versions"][-1]["revision"]
    done = at("restore", key, "--revision", str(first))
    assert done.exit_code == 0, done.stderr
    assert etcd_server.etcdctl("get", key, "--print-value-only").stdout == "info\n"
    assert json.loads(at("history", key, "--json").stdout)["versions"][0]["version"] == 4


def test_restoring_a_revision_where_the_key_was_absent_is_refused(at, etcd_server, top):
    etcd_server.etcdctl("put", f"{top}/other", "x")
    before = json.loads(at("get", f"{top}/other", "--json").stdout)["mod_revision"]
    etcd_server.etcdctl("put", f"{top}/late", "y")
    done = at("restore", f"{top}/late", "--revision", str(before))
    assert done.exit_code == 2
    assert "did not exist at revision" in done.stderr


def test_restoring_a_revision_after_the_current_one_says_so_and_writes_nothing(
    at, etcd_server, top
):
    etcd_server.etcdctl("put", f"{top}/level", "info")
    now = json.loads(at("get", f"{top}/level", "--json").stdout)["mod_revision"]
    done = at("restore", f"{top}/level", "--revision", str(now + 1000))
    assert done.exit_code == 2, done.stderr
    assert f"revision {now + 1000} is after etcd's current revision" in done.stderr
    assert json.loads(at("get", f"{top}/level", "--json").stdout)["mod_revision"] == now
