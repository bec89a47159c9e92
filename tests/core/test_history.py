"""A key's history from etcd's MVCC store, and restoring an old version as a guarded change."""

from __future__ import annotations

import time
import uuid

import pytest

from etcdadmin.core.changes import ChangeConflict, ChangeSet, SetValue
from etcdadmin.core.changes.history import KeyVersion, key_history, restore_change
from etcdadmin.core.errors import EtcdAdminError, EtcdUnavailable
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection


def connect(server) -> EtcdConnection:
    return EtcdConnection(ConnectionSettings((server.endpoint,)))


@pytest.fixture
def key() -> str:
    return f"history-{uuid.uuid4().hex[:10]}/k"


def values(history) -> list[bytes | None]:
    return [v.value for v in history.versions]


def test_history_lists_values_newest_first_including_a_delete(etcd_server, key):
    with connect(etcd_server) as conn:
        r1 = conn.put(key, "v1")
        r2 = conn.put(key, "v2")
        conn.put(f"{key}-sibling", "not this key")
        conn.delete(key)
        r4 = conn.put(key, "v3")
        history = key_history(conn, key)
    assert history.key == key.encode()
    assert history.compacted_before == 0
    assert values(history) == [b"v3", None, b"v2", b"v1"]
    revisions = [v.revision for v in history.versions]
    assert revisions[0] == r4 and revisions[2:] == [r2, r1]
    assert r2 < revisions[1] < r4, "the delete has its own revision"
    assert [v.version for v in history.versions] == [1, 0, 2, 1]
    assert history.versions[0].create_revision == r4


def test_history_of_a_key_deleted_now_ends_with_its_delete(etcd_server, key):
    with connect(etcd_server) as conn:
        conn.put(key, "v1")
        conn.put(key, "v2")
        conn.delete(key)
        conn.put(f"{key}-later", "the cluster moves on")
        started = time.monotonic()
        history = key_history(conn, key)
        elapsed = time.monotonic() - started
    assert values(history) == [None, b"v2", b"v1"]
    # The settle wait is 2 s: a history with events ends on etcd's batch, well before it.
    assert elapsed < 2.0


def test_history_of_a_key_that_never_existed_is_empty(etcd_server, key):
    with connect(etcd_server) as conn:
        history = key_history(conn, key)
    assert history.versions == ()


def test_a_watch_that_delivers_nothing_in_time_raises_instead_of_hanging(etcd_server, key):
    with connect(etcd_server) as conn, pytest.raises(EtcdUnavailable, match=r"within 0\.3 s"):
        key_history(conn, key, timeout=0.3)


def test_history_keeps_only_the_newest_versions_up_to_the_limit(etcd_server, key):
    with connect(etcd_server) as conn:
        for i in range(10):
            conn.put(key, f"v{i}")
        history = key_history(conn, key, limit=3)
    assert values(history) == [b"v9", b"v8", b"v7"]


def test_after_a_compaction_only_the_history_after_the_compaction_point_is_listed(
    private_etcd, key
):
    with connect(private_etcd) as conn:
        conn.put(key, "v1")
        r2 = conn.put(key, "v2")
        point = conn.put(f"{key}-other", "x")
        conn.compact(point)
        r4 = conn.put(key, "v3")
        history = key_history(conn, key)
    assert history.compacted_before == point
    # v2 was still in effect at the compaction point, so etcd keeps it; v1 is gone.
    assert [(v.revision, v.value) for v in history.versions] == [(r4, b"v3"), (r2, b"v2")]


def test_a_key_unchanged_since_the_compaction_point_has_its_current_version(private_etcd, key):
    with connect(private_etcd) as conn:
        conn.put(key, "v1")
        r2 = conn.put(key, "v2")
        point = conn.put(f"{key}-other", "x")
        conn.compact(point)
        conn.put(f"{key}-other", "y")
        history = key_history(conn, key)
    assert [(v.revision, v.value) for v in history.versions] == [(r2, b"v2")]


def test_restoring_an_old_version_applies_as_a_guarded_change(etcd_server, key):
    with connect(etcd_server) as conn:
        lease = conn.grant_lease(600)
        conn.put(key, "good", lease=lease)
        conn.put(key, "broken", lease=lease)
        history = key_history(conn, key)
        good = history.versions[1]
        current = conn.get(key)
        change = restore_change(good, current)
        assert change == SetValue(key.encode(), b"good", current.mod_revision, lease)
        changes = ChangeSet([change])
        changes.apply(conn, changes.plan(conn))
        restored = conn.get(key)
        assert (restored.value, restored.lease) == (b"good", lease)
        assert etcd_server.etcdctl("get", key, "--print-value-only").stdout == "good\n"

        # Restoring against a value someone changed since it was read conflicts.
        stale = restore_change(history.versions[0], current)
        etcd_server.etcdctl("put", key, "theirs")
        changes = ChangeSet([stale])
        with pytest.raises(ChangeConflict):
            changes.apply(conn, changes.plan(conn))
        assert conn.get(key).value == b"theirs"


def test_restoring_a_deleted_key_recreates_it_and_a_delete_cannot_be_restored(etcd_server, key):
    with connect(etcd_server) as conn:
        conn.put(key, "v1")
        conn.delete(key)
        history = key_history(conn, key)
        deleted, old = history.versions
        with pytest.raises(EtcdAdminError, match="is a delete"):
            restore_change(deleted, None)
        change = restore_change(old, None)
        assert change.expected_mod_revision == 0
        changes = ChangeSet([change])
        changes.apply(conn, changes.plan(conn))
    assert etcd_server.etcdctl("get", key, "--print-value-only").stdout == "v1\n"
    with pytest.raises(EtcdAdminError, match="needs the key"):
        restore_change(KeyVersion(5, b"x", 1, 5), None)
