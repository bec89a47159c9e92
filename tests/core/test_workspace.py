"""The operator's workspace: staging, the production and read-only policy, apply and undo,
read back with etcdctl."""

from __future__ import annotations

import uuid

import pytest

from etcdadmin.core.changes import ChangeConflict, Plan, SetValue, Workspace, read_current
from etcdadmin.core.errors import ReadOnlyConnection
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.core.test_changes import etcdctl_get, etcdctl_value


@pytest.fixture
def conn(etcd_server):
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as connection:
        yield connection


@pytest.fixture
def prefix() -> str:
    return f"workspace-{uuid.uuid4().hex[:10]}/"


class Operator:
    """Answers the production question and remembers what it was asked."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked: list[tuple[str, list[bytes]]] = []

    def __call__(self, plan: Plan, what: str) -> bool:
        self.asked.append((what, [step.key for step in plan.steps]))
        return self.answer


def test_a_read_only_workspace_refuses_to_stage_apply_or_undo(etcd_server, conn, prefix):
    workspace = Workspace(read_only=True)
    with pytest.raises(ReadOnlyConnection, match="read-only"):
        workspace.stage(SetValue(f"{prefix}a".encode(), b"1", 0))
    assert len(workspace.staged) == 0
    with pytest.raises(ReadOnlyConnection):
        workspace.apply(conn)
    with pytest.raises(ReadOnlyConnection):
        workspace.undo(conn)
    assert etcdctl_value(etcd_server, f"{prefix}a") is None


def test_production_asks_before_apply_and_a_no_writes_nothing(etcd_server, conn, prefix):
    operator = Operator(answer=False)
    workspace = Workspace(production=True, confirm=operator)
    workspace.stage(SetValue(f"{prefix}a".encode(), b"new", 0))
    assert workspace.apply(conn) is None
    assert operator.asked == [("apply", [f"{prefix}a".encode()])]
    assert etcdctl_value(etcd_server, f"{prefix}a") is None
    assert len(workspace.staged) == 1, "a refused apply keeps the changes staged"
    assert workspace.undo_stack == []


def test_production_asks_before_undo_and_a_no_leaves_the_apply_in_place(etcd_server, conn, prefix):
    operator = Operator(answer=True)
    workspace = Workspace(production=True, confirm=operator)
    conn.put(f"{prefix}a", "old")
    workspace.stage(SetValue(f"{prefix}a".encode(), b"new", conn.get(f"{prefix}a").mod_revision))
    assert workspace.apply(conn) is not None
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"new"

    operator.answer = False
    assert workspace.undo(conn) is None
    assert [what for what, _ in operator.asked] == ["apply", "undo"]
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"new"
    assert len(workspace.undo_stack) == 1, "the apply can still be undone"

    operator.answer = True
    assert workspace.undo(conn) is not None
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"old"


def test_undo_reverts_the_last_apply_and_pops_it(etcd_server, conn, prefix):
    workspace = Workspace()
    workspace.stage(SetValue(f"{prefix}a".encode(), b"1", 0))
    first = workspace.apply(conn)
    assert first is not None
    workspace.stage(SetValue(f"{prefix}b".encode(), b"2", 0))
    second = workspace.apply(conn)
    assert workspace.undo_stack == [first, second]
    assert len(workspace.staged) == 0

    workspace.undo(conn)
    assert workspace.undo_stack == [first]
    assert etcdctl_value(etcd_server, f"{prefix}b") is None
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"1"


def test_a_normal_connection_never_asks(etcd_server, conn, prefix):
    operator = Operator(answer=False)
    workspace = Workspace(confirm=operator)
    workspace.stage(SetValue(f"{prefix}a".encode(), b"1", 0))
    assert workspace.apply(conn) is not None
    assert operator.asked == []
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"1"


def test_a_conflict_writes_nothing_and_keeps_the_staged_changes(etcd_server, conn, prefix):
    revision = conn.put(f"{prefix}a", "seen")
    workspace = Workspace()
    workspace.stage(SetValue(f"{prefix}a".encode(), b"mine", revision))
    workspace.stage(SetValue(f"{prefix}b".encode(), b"mine too", 0))
    etcd_server.etcdctl("put", f"{prefix}a", "theirs")
    with pytest.raises(ChangeConflict):
        workspace.apply(conn)
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"theirs"
    assert etcdctl_value(etcd_server, f"{prefix}b") is None
    assert len(workspace.staged) == 2
    assert workspace.undo_stack == []


def test_changes_staged_while_an_apply_runs_stay_staged(etcd_server, conn, prefix):
    workspace = Workspace()
    workspace.stage(SetValue(f"{prefix}a".encode(), b"1", 0))
    batch = workspace.begin_apply()
    plan = batch.plan(conn)
    later = SetValue(f"{prefix}b".encode(), b"2", 0)
    workspace.stage(later)
    workspace.finish(batch, batch.write(conn, plan))
    assert list(workspace.staged) == [later]
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"1"
    assert etcdctl_value(etcd_server, f"{prefix}b") is None


def test_staging_a_staged_key_again_replaces_its_row_and_keeps_the_first_guard(
    etcd_server, conn, prefix
):
    key = f"{prefix}a".encode()
    seen = conn.put(key, "seen")
    workspace = Workspace()
    workspace.stage(SetValue(key, b"first try", seen))
    etcd_server.etcdctl("put", f"{prefix}a", "theirs")
    now = conn.get(key).mod_revision
    workspace.stage(SetValue(key, b"second try", now))
    assert len(workspace.staged) == 1
    assert workspace.staged[0] == SetValue(key, b"second try", seen), "the first guard is kept"
    with pytest.raises(ChangeConflict):
        workspace.apply(conn)

    workspace.stage(SetValue(key, b"after reading it", now), reread=True)
    assert len(workspace.staged) == 1
    assert workspace.apply(conn) is not None
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"after reading it"


def test_restoring_the_same_key_twice_leaves_one_row(etcd_server, conn, prefix):
    from etcdadmin.core.changes.history import key_history, restore_change

    key = f"{prefix}password".encode()
    for value in ("v1", "v2", "v3"):
        conn.put(key, value)
    history, current = key_history(conn, key), conn.get(key)
    workspace = Workspace()
    oldest = history.versions[-1]
    workspace.stage(restore_change(history.versions[1], current))
    workspace.stage(restore_change(oldest, current))
    assert len(workspace.staged) == 1
    workspace.apply(conn)
    assert etcdctl_value(etcd_server, f"{prefix}password") == b"v1"


def test_rebase_after_a_conflict_keeps_my_values_and_a_later_apply_writes_once(
    etcd_server, conn, prefix
):
    a, b = f"{prefix}a".encode(), f"{prefix}b".encode()
    workspace = Workspace()
    workspace.stage(SetValue(a, b"mine", conn.put(a, "seen")))
    workspace.stage(SetValue(b, b"mine too", 0))
    etcd_server.etcdctl("put", f"{prefix}a", "theirs")
    with pytest.raises(ChangeConflict) as conflict:
        workspace.apply(conn)

    rows = workspace.rebase(read_current(conn, [c.key for c in conflict.value.conflicts]))
    assert rows == [0]
    plan = workspace.plan(conn)
    assert plan.stale == ()
    assert [(s.before.value if s.before else None, s.after) for s in plan.steps] == [
        (b"theirs", b"mine"),
        (None, b"mine too"),
    ], "the diff is against what etcd holds now"
    assert workspace.apply(conn) is not None
    found = etcdctl_get(etcd_server, f"{prefix}a")
    assert found is not None and found["value"] == b"mine"
    assert found["version"] == 3, "seen, theirs, mine: written exactly once"
    assert len(workspace.staged) == 0


def test_undo_asks_with_its_plan_when_asked_to_on_any_connection(etcd_server, conn, prefix):
    operator = Operator(answer=False)
    workspace = Workspace(confirm=operator, ask_before_undo=True)
    workspace.stage(SetValue(f"{prefix}a".encode(), b"1", 0))
    assert workspace.apply(conn) is not None
    assert workspace.undo(conn) is None
    assert operator.asked == [("undo", [f"{prefix}a".encode()])], "apply did not ask, undo did"
    assert etcdctl_value(etcd_server, f"{prefix}a") == b"1"
