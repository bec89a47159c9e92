"""Staged changes applied as one guarded etcd transaction, checked with etcdctl."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from etcdadmin.core.changes import (
    MAX_TXN_OPS,
    ChangeConflict,
    ChangeSet,
    CopyDirectory,
    DeleteDirectory,
    DeleteKey,
    InvalidChange,
    RenameKey,
    SetValue,
    TooManyOperations,
)
from etcdadmin.core.changes.diff import diff_text
from etcdadmin.core.errors import ConflictError, EtcdAdminError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection


@pytest.fixture
def conn(etcd_server):
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as connection:
        yield connection


@pytest.fixture
def prefix() -> str:
    """Every test writes under a prefix of its own on the shared etcd."""
    return f"changes-{uuid.uuid4().hex[:10]}/"


def etcdctl_get(server, key: str) -> dict | None:
    """The key as etcdctl reads it (value decoded from base64), or None when absent."""
    out = json.loads(server.etcdctl("get", key, "-w", "json").stdout)
    kvs = out.get("kvs") or []
    if not kvs:
        return None
    kv = kvs[0]
    return {
        "value": base64.b64decode(kv.get("value", "")),
        "mod_revision": kv["mod_revision"],
        "lease": kv.get("lease", 0),
        "version": kv["version"],
    }


def etcdctl_value(server, key: str) -> bytes | None:
    found = etcdctl_get(server, key)
    return None if found is None else found["value"]


def etcdctl_keys(server, prefix: str) -> list[str]:
    out = server.etcdctl("get", prefix, "--prefix", "--keys-only").stdout
    return [line for line in out.splitlines() if line]


def test_several_staged_changes_are_written_in_one_transaction(etcd_server, conn, prefix):
    rev_a = conn.put(f"{prefix}a", "old a")
    rev_c = conn.put(f"{prefix}c", "c")
    changes = ChangeSet()
    changes.add(SetValue(f"{prefix}a".encode(), b"new a", rev_a))
    changes.add(SetValue(f"{prefix}b".encode(), b"new b", 0))
    changes.add(DeleteKey(f"{prefix}c".encode(), rev_c))
    plan = changes.plan(conn)
    assert [(s.key, s.after) for s in plan.steps] == [
        (f"{prefix}a".encode(), b"new a"),
        (f"{prefix}b".encode(), b"new b"),
        (f"{prefix}c".encode(), None),
    ]
    assert plan.stale == ()
    applied = changes.apply(conn, plan)
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"new a"
    assert etcdctl_value(etcd_server, f"{prefix}b") == b"new b"
    assert etcdctl_get(etcd_server, f"{prefix}c") is None
    revisions = {etcdctl_get(etcd_server, f"{prefix}{k}")["mod_revision"] for k in "ab"}
    assert revisions == {applied.revision}, "one transaction, one revision"


def test_a_conflicting_edit_before_apply_raises_with_both_values_and_writes_nothing(
    etcd_server, conn, prefix
):
    rev_a = conn.put(f"{prefix}a", "seen by the editor")
    rev_c = conn.put(f"{prefix}c", "c")
    changes = ChangeSet(
        [
            SetValue(f"{prefix}a".encode(), b"mine", rev_a),
            SetValue(f"{prefix}b".encode(), b"new b", 0),
            DeleteKey(f"{prefix}c".encode(), rev_c),
        ]
    )
    plan = changes.plan(conn)
    etcd_server.etcdctl("put", f"{prefix}a", "theirs")
    with pytest.raises(ChangeConflict) as info:
        changes.apply(conn, plan)
    assert isinstance(info.value, ConflictError)
    [conflict] = info.value.conflicts
    assert conflict.key == f"{prefix}a".encode()
    assert conflict.expected.value == b"seen by the editor"
    assert conflict.actual.value == b"theirs"
    assert f"{prefix}a" in str(info.value)
    for secret in ("theirs", "mine", "seen by the editor"):
        assert secret not in str(info.value), "messages name keys, never values"
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"theirs"
    assert etcdctl_get(etcd_server, f"{prefix}b") is None
    assert etcdctl_value(etcd_server, f"{prefix}c") == b"c"


def test_an_edit_based_on_an_outdated_revision_is_stale_in_the_plan_and_refused(
    etcd_server, conn, prefix
):
    shown = conn.put(f"{prefix}a", "shown in the editor")
    etcd_server.etcdctl("put", f"{prefix}a", "changed by someone else")
    etcd_server.etcdctl("put", f"{prefix}exists", "x")
    changes = ChangeSet(
        [
            SetValue(f"{prefix}a".encode(), b"mine", shown),
            SetValue(f"{prefix}exists".encode(), b"mine", 0),
            SetValue(f"{prefix}fresh".encode(), b"mine", 0),
        ]
    )
    plan = changes.plan(conn)
    stale = {c.key: c for c in plan.stale}
    assert set(stale) == {f"{prefix}a".encode(), f"{prefix}exists".encode()}
    assert stale[f"{prefix}a".encode()].expected.value == b"shown in the editor"
    assert stale[f"{prefix}a".encode()].actual.value == b"changed by someone else"
    assert stale[f"{prefix}exists".encode()].expected is None
    with pytest.raises(ChangeConflict):
        changes.apply(conn, plan)
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"changed by someone else"
    assert etcdctl_get(etcd_server, f"{prefix}fresh") is None


def test_undo_restores_every_key(etcd_server, conn, prefix):
    lease = conn.grant_lease(600)
    rev_a = conn.put(f"{prefix}a", "old a", lease=lease)
    rev_c = conn.put(f"{prefix}c", "old c")
    changes = ChangeSet(
        [
            SetValue(f"{prefix}a".encode(), b"new a", rev_a),
            SetValue(f"{prefix}b".encode(), b"new b", 0),
            DeleteKey(f"{prefix}c".encode(), rev_c),
        ]
    )
    applied = changes.apply(conn, changes.plan(conn))
    undone = applied.undo.apply(conn, applied.undo.plan(conn))
    assert undone.revision > applied.revision
    a = etcdctl_get(etcd_server, f"{prefix}a")
    assert (a["value"], a["lease"]) == (b"old a", lease)
    assert etcdctl_get(etcd_server, f"{prefix}b") is None
    assert etcdctl_value(etcd_server, f"{prefix}c") == b"old c"


def test_undo_after_someone_else_changed_a_key_conflicts_and_writes_nothing(
    etcd_server, conn, prefix
):
    rev_a = conn.put(f"{prefix}a", "old a")
    changes = ChangeSet(
        [SetValue(f"{prefix}a".encode(), b"new a", rev_a), SetValue(f"{prefix}b".encode(), b"b", 0)]
    )
    applied = changes.apply(conn, changes.plan(conn))
    etcd_server.etcdctl("put", f"{prefix}a", "theirs")
    undo_plan = applied.undo.plan(conn)
    assert [c.key for c in undo_plan.stale] == [f"{prefix}a".encode()]
    with pytest.raises(ChangeConflict) as info:
        applied.undo.apply(conn, undo_plan)
    assert info.value.conflicts[0].actual.value == b"theirs"
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"theirs"
    assert etcdctl_value(etcd_server, f"{prefix}b") == b"b", "the undo wrote nothing"


def test_undo_conflicts_when_a_key_changes_between_its_plan_and_its_apply(
    etcd_server, conn, prefix
):
    changes = ChangeSet([SetValue(f"{prefix}a".encode(), b"new", 0)])
    applied = changes.apply(conn, changes.plan(conn))
    undo_plan = applied.undo.plan(conn)
    etcd_server.etcdctl("put", f"{prefix}a", "theirs")
    with pytest.raises(ChangeConflict):
        applied.undo.apply(conn, undo_plan)
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"theirs"


def test_rename_keeps_value_and_lease(etcd_server, conn, prefix):
    lease = conn.grant_lease(600)
    rev = conn.put(f"{prefix}old", "carried", lease=lease)
    changes = ChangeSet([RenameKey(f"{prefix}old".encode(), f"{prefix}new".encode(), rev)])
    applied = changes.apply(conn, changes.plan(conn))
    assert etcdctl_get(etcd_server, f"{prefix}old") is None
    new = etcdctl_get(etcd_server, f"{prefix}new")
    assert (new["value"], new["lease"], new["mod_revision"]) == (
        b"carried",
        lease,
        applied.revision,
    )
    applied.undo.apply(conn, applied.undo.plan(conn))
    assert etcdctl_get(etcd_server, f"{prefix}new") is None
    assert etcdctl_get(etcd_server, f"{prefix}old")["lease"] == lease


def test_rename_onto_an_existing_key_is_a_conflict(etcd_server, conn, prefix):
    rev = conn.put(f"{prefix}old", "o")
    conn.put(f"{prefix}new", "taken")
    changes = ChangeSet([RenameKey(f"{prefix}old".encode(), f"{prefix}new".encode(), rev)])
    plan = changes.plan(conn)
    assert [c.key for c in plan.stale] == [f"{prefix}new".encode()]
    with pytest.raises(ChangeConflict):
        changes.apply(conn, plan)
    assert etcdctl_value(etcd_server, f"{prefix}old") == b"o"
    assert etcdctl_value(etcd_server, f"{prefix}new") == b"taken"
    with pytest.raises(InvalidChange):
        RenameKey(b"k", b"k", None)


def test_copy_directory_copies_every_key_under_the_source(etcd_server, conn, prefix):
    src, dst = f"{prefix}registry-test/", f"{prefix}registry-production-1.0/"
    conn.put(f"{src}http/addr", ":5000")
    conn.put(f"{src}storage/swift/password", "p@ss: w*rd&!")
    conn.put(f"{prefix}registry-testing/other", "not under the source")
    changes = ChangeSet([CopyDirectory(src.encode(), dst.encode())])
    assert changes[0].describe() == f"copy directory {src} to {dst}"
    applied = changes.apply(conn, changes.plan(conn))
    assert etcdctl_keys(etcd_server, dst) == [f"{dst}http/addr", f"{dst}storage/swift/password"]
    assert etcdctl_value(etcd_server, f"{dst}storage/swift/password") == b"p@ss: w*rd&!"
    assert etcdctl_value(etcd_server, f"{src}http/addr") == b":5000", "the source stays"
    applied.undo.apply(conn, applied.undo.plan(conn))
    assert etcdctl_keys(etcd_server, dst) == []


def test_copy_onto_existing_keys_conflicts_and_names_them(etcd_server, conn, prefix):
    src, dst = f"{prefix}registry-test/", f"{prefix}registry-production-1.0/"
    for name in ("a", "b", "c"):
        conn.put(f"{src}{name}", name)
    conn.put(f"{dst}b", "already there")
    changes = ChangeSet([CopyDirectory(src.encode(), dst.encode())])
    plan = changes.plan(conn)
    assert [c.key for c in plan.stale] == [f"{dst}b".encode()]
    with pytest.raises(ChangeConflict, match=r"registry-production-1\.0/b"):
        changes.apply(conn, plan)
    assert etcdctl_keys(etcd_server, dst) == [f"{dst}b"]

    # A target key created by someone else between plan and apply is caught by the txn.
    etcd_server.etcdctl("del", f"{dst}b")
    plan = changes.plan(conn)
    assert plan.stale == ()
    etcd_server.etcdctl("put", f"{dst}c", "raced")
    with pytest.raises(ChangeConflict) as info:
        changes.apply(conn, plan)
    assert [(c.key, c.expected, c.actual.value) for c in info.value.conflicts] == [
        (f"{dst}c".encode(), None, b"raced")
    ]
    assert etcdctl_keys(etcd_server, dst) == [f"{dst}c"]
    with pytest.raises(InvalidChange):
        CopyDirectory(src.encode(), f"{src}sub/".encode())


def test_delete_directory_deletes_the_keys_it_saw(etcd_server, conn, prefix):
    for name in ("x/1", "x/2", "x/deep/3"):
        conn.put(f"{prefix}{name}", name)
    conn.put(f"{prefix}xy", "not under x/")
    changes = ChangeSet([DeleteDirectory(f"{prefix}x/".encode())])
    plan = changes.plan(conn)
    assert len(plan.steps) == 3
    applied = changes.apply(conn, plan)
    assert etcdctl_keys(etcd_server, prefix) == [f"{prefix}xy"]
    applied.undo.apply(conn, applied.undo.plan(conn))
    assert etcdctl_value(etcd_server, f"{prefix}x/deep/3") == b"x/deep/3"


def test_delete_directory_with_a_key_added_meanwhile_conflicts(etcd_server, conn, prefix):
    conn.put(f"{prefix}x/1", "1")
    conn.put(f"{prefix}x/2", "2")
    changes = ChangeSet([DeleteDirectory(f"{prefix}x/".encode())])
    plan = changes.plan(conn)
    etcd_server.etcdctl("put", f"{prefix}x/added", "by someone else")
    with pytest.raises(ChangeConflict) as info:
        changes.apply(conn, plan)
    assert [c.key for c in info.value.conflicts] == [f"{prefix}x/added".encode()]
    assert info.value.conflicts[0].actual.value == b"by someone else"
    assert etcdctl_keys(etcd_server, prefix) == [f"{prefix}x/1", f"{prefix}x/2", f"{prefix}x/added"]


def test_delete_directory_with_a_key_changed_meanwhile_conflicts(etcd_server, conn, prefix):
    conn.put(f"{prefix}x/1", "1")
    conn.put(f"{prefix}x/2", "2")
    changes = ChangeSet([DeleteDirectory(f"{prefix}x/".encode())])
    plan = changes.plan(conn)
    etcd_server.etcdctl("put", f"{prefix}x/2", "changed")
    with pytest.raises(ChangeConflict) as info:
        changes.apply(conn, plan)
    assert [c.key for c in info.value.conflicts] == [f"{prefix}x/2".encode()]
    assert etcdctl_keys(etcd_server, prefix) == [f"{prefix}x/1", f"{prefix}x/2"]


def test_later_changes_to_the_same_key_win(etcd_server, conn, prefix):
    rev = conn.put(f"{prefix}a", "a")
    conn.put(f"{prefix}dir/kept", "old")
    conn.put(f"{prefix}dir/gone", "g")
    conn.put(f"{prefix}same", "unchanged")
    changes = ChangeSet(
        [
            SetValue(f"{prefix}a".encode(), b"edited", rev),
            DeleteKey(f"{prefix}a".encode(), rev),
            DeleteDirectory(f"{prefix}dir/".encode()),
            SetValue(f"{prefix}dir/kept".encode(), b"new", None),
            SetValue(f"{prefix}same".encode(), b"unchanged", None),
        ]
    )
    plan = changes.plan(conn)
    assert [(s.key, s.after) for s in plan.steps] == [
        (f"{prefix}a".encode(), None),
        (f"{prefix}dir/gone".encode(), None),
        (f"{prefix}dir/kept".encode(), b"new"),
    ], "a step that changes nothing is dropped"
    changes.apply(conn, plan)
    assert etcdctl_keys(etcd_server, prefix) == [f"{prefix}dir/kept", f"{prefix}same"]
    assert etcdctl_value(etcd_server, f"{prefix}dir/kept") == b"new"


def test_more_operations_than_one_transaction_holds_is_refused_with_the_count(
    etcd_server, conn, prefix
):
    changes = ChangeSet(
        SetValue(f"{prefix}k{i:03d}".encode(), b"v", 0) for i in range(MAX_TXN_OPS + 2)
    )
    plan = changes.plan(conn)
    with pytest.raises(TooManyOperations) as info:
        changes.apply(conn, plan)
    assert isinstance(info.value, EtcdAdminError)
    assert "130" in str(info.value)
    assert "128" in str(info.value)
    assert "--max-txn-ops" in str(info.value)
    assert etcdctl_keys(etcd_server, prefix) == []
    changes.remove(0)
    changes.remove(0)
    assert len(changes) == MAX_TXN_OPS
    changes.apply(conn, changes.plan(conn))
    assert len(etcdctl_keys(etcd_server, prefix)) == MAX_TXN_OPS


def test_binary_values_round_trip_and_show_as_hex_in_the_diff(etcd_server, conn, prefix):
    value = bytes(range(256))
    changes = ChangeSet([SetValue(f"{prefix}bin".encode(), value, 0)])
    plan = changes.plan(conn)
    text = diff_text(plan)
    assert f"+++ {prefix}bin (staged)" in text
    assert "+hex 0000: 00 01 02" in text
    changes.apply(conn, plan)
    assert etcdctl_value(etcd_server, f"{prefix}bin") == value
    assert conn.get(f"{prefix}bin").value == value


def test_diff_text_shows_each_key_with_its_revision_and_staged_value(conn, prefix):
    rev = conn.put(f"{prefix}conf", "line 1\nline 2\n")
    conn.put(f"{prefix}old", "bye")
    changes = ChangeSet(
        [
            SetValue(f"{prefix}conf".encode(), b"line 1\nline zwei\n", rev),
            SetValue(f"{prefix}new".encode(), "é".encode(), 0),
            DeleteKey(f"{prefix}old".encode(), None),
        ]
    )
    text = diff_text(changes.plan(conn))
    assert f"--- {prefix}conf (revision {rev})\n+++ {prefix}conf (staged)\n@@" in text
    assert "-line 2\n+line zwei" in text
    assert f"--- {prefix}new (absent)\n+++ {prefix}new (staged)\n@@ -0,0 +1 @@\n+é" in text
    assert f"+++ {prefix}old (staged: deleted)" in text
    assert "-bye" in text


def test_descriptions_name_keys_never_values():
    changes = ChangeSet(
        [
            SetValue(b"app/password", b"s3cret", 0),
            SetValue(b"app/user", b"admin", 4),
            DeleteKey(b"app/old", 5),
            RenameKey(b"app/a", b"app/b", None),
            DeleteDirectory(b"app/tmp/"),
        ]
    )
    assert [c.describe() for c in changes] == [
        "create app/password",
        "set app/user",
        "delete app/old",
        "rename app/a to app/b",
        "delete directory app/tmp/",
    ]
    assert "s3cret" not in repr(changes)
    assert changes.remove(1).keys() == (b"app/user",)
    assert len(changes) == 4
    changes.clear()
    assert list(changes) == []
