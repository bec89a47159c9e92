"""Staged changes planned at one revision, applied as one guarded transaction, and undone.

Every user action that writes to etcd (an edit, a delete, a rename, a directory copy or delete)
is a `PendingChange`. Changes are collected in a `ChangeSet`; `ChangeSet.plan` reads the
current state of every key they touch, pinned at one revision, and folds the changes into one
`PlannedStep` per key; `apply_plan` (and `ChangeSet.apply`) writes a plan as ONE etcd
transaction guarded by the mod revision of every key the plan read, so either everything the
operator reviewed is written or nothing is. A successful apply returns the inverse as a new
`ChangeSet`, guarded by the revisions that apply produced: an undo after somebody else touched
the keys conflicts instead of clobbering their work.

Staleness is checked against what the operator saw: `SetValue.expected_mod_revision` is the
revision the editor showed. A change whose expectation no longer holds when the plan is made
is listed in `Plan.stale` (the diff can show it before apply) and `apply` refuses the plan.

Messages and `describe()` name keys, never values (values may be secrets and messages end up in
logs); only `diff_text` shows values, for the operator's own screen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from etcdadmin.core.changes.commands import (
    Conflict,
    DeleteKey,
    PendingChange,
    SetValue,
    Staging,
)
from etcdadmin.core.errors import ConflictError, EtcdAdminError, EtcdPermissionDenied
from etcdadmin.core.etcd import Compare, EtcdConnection, TxnOp, prefix_end
from etcdadmin.core.etcd.keyvalue import KeyValue, shared_prefix
from etcdadmin.core.releases.history import PublishNote, record_ops
from etcdadmin.core.tree.names import display_segment

log = logging.getLogger(__name__)

# etcd's default --max-txn-ops: a transaction with more compares, more operations or more
# failure reads than this is refused as a whole ("too many operations in txn request").
MAX_TXN_OPS = 128

# A conflict message lists this many keys by name and counts the rest.
_KEYS_IN_MESSAGE = 5


class TooManyOperations(EtcdAdminError):
    """A plan needs more operations than one etcd transaction may hold.

    Not split into several transactions on purpose: the point of a plan is that it is written
    whole or not at all.
    """

    def __init__(self, message: str, count: int, limit: int) -> None:
        super().__init__(message)
        self.count = count
        self.limit = limit


class ChangeConflict(ConflictError):
    """Keys changed under the staged changes: nothing was written. `conflicts` names them."""

    def __init__(self, message: str, conflicts: Iterable[Conflict]) -> None:
        super().__init__(message)
        self.conflicts = tuple(conflicts)


def name_conflicts(conflicts: tuple[Conflict, ...]) -> str:
    """The first keys of a conflict with what changed, and how many more (names, no values)."""
    shown = "; ".join(c.describe() for c in conflicts[:_KEYS_IN_MESSAGE])
    more = len(conflicts) - _KEYS_IN_MESSAGE
    return f"{shown}; and {more} more" if more > 0 else shown


def _conflict_message(lead: str, conflicts: tuple[Conflict, ...]) -> str:
    return (
        f"{lead}: {name_conflicts(conflicts)}. Nothing was written; review the changes against "
        "the current values and stage them again"
    )


# -- plans --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedStep:
    """What apply does to one key: `after` None deletes it; `before` is what the plan read."""

    key: bytes
    before: KeyValue | None
    after: bytes | None
    lease: int = 0


@dataclass(frozen=True)
class Plan:
    """Staged changes folded into one step per key, as of `revision`.

    `basis` is every key the plan depends on as it read them (None: absent); the guards are
    derived from it. `directories` are prefixes that must not gain keys the plan did not see.
    `ranges` are key ranges [start, end) in which no key may have been written at all since
    the plan, whether the plan reads it or not: a batch that must leave its slice of a prefix
    exactly as planned (a restore) also refuses keys created or changed beside its own.
    """

    revision: int
    steps: tuple[PlannedStep, ...]
    basis: tuple[tuple[bytes, KeyValue | None], ...]
    stale: tuple[Conflict, ...] = ()
    directories: tuple[bytes, ...] = ()
    ranges: tuple[tuple[bytes, bytes], ...] = ()

    @property
    def guards(self) -> tuple[Compare, ...]:
        keys = tuple(
            Compare(key, "version", "==", 0)
            if kv is None
            else Compare(key, "mod", "==", kv.mod_revision)
            for key, kv in self.basis
        )
        # A directory being deleted must not have gained keys since the plan was read: every
        # key in its range must have been created at or before the plan's revision.
        directories = tuple(
            Compare(prefix, "create", "<", self.revision + 1, range_end=prefix_end(prefix))
            for prefix in self.directories
        )
        untouched = tuple(
            Compare(start, "mod", "<", self.revision + 1, range_end=end)
            for start, end in self.ranges
        )
        return keys + directories + untouched

    @property
    def operation_count(self) -> int:
        """What etcd's --max-txn-ops limits: the largest of compares, puts/deletes, reads."""
        compares = len(self.basis) + len(self.directories) + len(self.ranges)
        return max(compares, len(self.steps))

    def seen(self, key: bytes) -> KeyValue | None:
        return dict(self.basis).get(key)


@dataclass(frozen=True)
class Applied:
    """A successful apply: the revision written and the changes that revert it."""

    revision: int
    plan: Plan
    undo: ChangeSet


class ChangeSet:
    """Ordered pending changes; later changes to the same key win."""

    def __init__(self, changes: Iterable[PendingChange] = ()) -> None:
        self._changes: list[PendingChange] = list(changes)

    def add(self, change: PendingChange) -> None:
        self._changes.append(change)

    def position(self, change: PendingChange) -> int | None:
        """The row of a staged change naming the same keys as `change` (None: none)."""
        keys = change.keys()
        return next((i for i, c in enumerate(self._changes) if c.keys() == keys), None)

    def replace(self, index: int, change: PendingChange) -> None:
        self._changes[index] = change

    def rows_touching(self, keys: Iterable[bytes]) -> list[int]:
        """Rows whose change reads or writes one of `keys` (a directory change: any key in it)."""
        wanted = set(keys)
        rows = []
        for i, change in enumerate(self._changes):
            singles, prefixes = change._reads()
            if wanted.intersection(singles) or any(
                key.startswith(prefix) for key in wanted for prefix in prefixes
            ):
                rows.append(i)
        return rows

    def remove(self, index: int) -> PendingChange:
        return self._changes.pop(index)

    def clear(self) -> None:
        self._changes.clear()

    def __iter__(self) -> Iterator[PendingChange]:
        return iter(list(self._changes))

    def __len__(self) -> int:
        return len(self._changes)

    def __getitem__(self, index: int) -> PendingChange:
        return self._changes[index]

    def __repr__(self) -> str:
        return f"ChangeSet({[c.describe() for c in self._changes]!r})"

    def plan(self, conn: EtcdConnection) -> Plan:
        """Read every touched key at one revision and fold the changes into steps.

        Does not raise on stale changes: they are listed in `Plan.stale` for the diff view.
        """
        singles: dict[bytes, None] = {}
        prefixes: dict[bytes, None] = {}
        for change in self._changes:
            keys, dirs = change._reads()
            singles.update(dict.fromkeys(keys))
            prefixes.update(dict.fromkeys(dirs))
        names = [*prefixes, *singles]
        # Pinned reads: every key is compared against the same moment of the cluster.
        # header() probes inside the first name so a role limited to that range suffices.
        revision = conn.header(names[0] if names else b"")[0]
        known: dict[bytes, KeyValue | None] = {}
        for prefix in prefixes:
            known.update((kv.key, kv) for kv in conn.read_prefix(prefix, revision=revision).items)
        for key in singles:
            if key not in known and not any(key.startswith(p) for p in prefixes):
                known[key] = conn.get(key, revision=revision)
        staging = Staging(conn, revision, known)
        for change in self._changes:
            change._stage(staging)
        steps = []
        for key in sorted(staging.staged):
            before, after = known.get(key), staging.staged[key]
            if after is None and before is None:
                continue
            if after is not None and before is not None and (before.value, before.lease) == after:
                continue
            value, lease = after if after is not None else (None, 0)
            steps.append(PlannedStep(key, before, value, lease))
        plan = Plan(
            revision=revision,
            steps=tuple(steps),
            basis=tuple((key, known.get(key)) for key in sorted(staging.touched)),
            stale=tuple(staging.stale),
            directories=tuple(dict.fromkeys(staging.directories)),
        )
        log.info(
            "planned %d changes: %d steps on %d keys at revision %d, %d stale",
            len(self._changes),
            len(plan.steps),
            len(plan.basis),
            revision,
            len(plan.stale),
        )
        return plan

    def apply(
        self,
        conn: EtcdConnection,
        plan: Plan,
        *,
        max_txn_ops: int = MAX_TXN_OPS,
        record: PublishNote | None = None,
    ) -> Applied:
        """Write `plan` as one transaction guarded by every key it read; return the undo.

        The same as `apply_plan`: the plan, not the change set, says what is written.
        """
        return apply_plan(conn, plan, max_txn_ops=max_txn_ops, record=record)


def apply_plan(
    conn: EtcdConnection,
    plan: Plan,
    *,
    max_txn_ops: int = MAX_TXN_OPS,
    record: PublishNote | None = None,
) -> Applied:
    """Write `plan` as one transaction guarded by every key it read; return the undo.

    Whoever made the plan (`ChangeSet.plan`, or a desired state's batches) applies it here:
    one way to write guarded changes. With `record`, the publish is recorded in the release
    history (`etcdadmin.core.releases.history`) by a put in the same transaction, so the
    history holds it exactly when the keys were written.

    Raises `ChangeConflict` (nothing written) when a change was already stale at planning
    or a key changed since, and `TooManyOperations` when one transaction cannot hold it.
    """
    if plan.stale:
        log.info("apply refused: %d staged changes no longer match etcd", len(plan.stale))
        raise ChangeConflict(
            _conflict_message("staged changes no longer match etcd", plan.stale), plan.stale
        )
    history = record_ops(record, [step.key for step in plan.steps]) if record else []
    count = max(plan.operation_count, len(plan.steps) + len(history))
    if count > max_txn_ops:
        raise TooManyOperations(
            f"these changes touch {count} keys, but one etcd transaction may hold at most "
            f"{max_txn_ops} operations (etcd's --max-txn-ops); nothing was written. Apply "
            "them in smaller groups, or raise --max-txn-ops on every etcd member",
            count,
            max_txn_ops,
        )
    success = [
        TxnOp("delete", step.key)
        if step.after is None
        else TxnOp("put", step.key, step.after, step.lease)
        for step in plan.steps
    ]
    keys = [key for key, _ in plan.basis]
    try:
        result = conn.txn(plan.guards, success + history, failure_reads=keys)
    except EtcdPermissionDenied:
        if not history:
            raise
        # etcd checks permissions before it runs a transaction, so nothing was written. A role
        # made before the history existed may write the keys but not the record: the publish
        # is worth more than its record, so it is written without it.
        log.warning(
            "the release history is not writable with this etcd user: publishing without a "
            "record (grant readwrite on /etcdadmin/releases/<directory>/ to record it)"
        )
        result = conn.txn(plan.guards, success, failure_reads=keys)
    if not result.succeeded:
        conflicts = tuple(
            _changed(key, seen, result.current.get(key))
            for key, seen in plan.basis
            if not _holds(seen, result.current.get(key))
        )
        if not conflicts:
            # a directory or range guard failed: say which keys
            _check_directories(conn, plan)
            _check_ranges(conn, plan)
        log.info("apply refused: %d keys changed since revision %d", len(conflicts), plan.revision)
        raise ChangeConflict(
            _conflict_message(f"keys changed since revision {plan.revision}", conflicts),
            conflicts,
        )
    log.info("applied %d steps at revision %d", len(plan.steps), result.revision)
    return Applied(result.revision, plan, _inverse(plan, result.revision))


def _holds(seen: KeyValue | None, now: KeyValue | None) -> bool:
    if seen is None:
        return now is None
    return now is not None and now.mod_revision == seen.mod_revision


def _changed(key: bytes, seen: KeyValue | None, now: KeyValue | None) -> Conflict:
    if seen is None:
        assert now is not None
        reason = f"was created since (revision {now.mod_revision})"
    elif now is None:
        reason = f"was deleted since revision {seen.mod_revision}"
    else:
        reason = f"changed since revision {seen.mod_revision} (now revision {now.mod_revision})"
    return Conflict(key, seen, now, reason)


def _check_directories(conn: EtcdConnection, plan: Plan) -> None:
    """Name the keys a directory being deleted gained since the plan.

    The transaction itself refuses such an apply (a range guard on each directory, see
    `Plan.guards`); this read only finds the keys to show in the conflict.
    """
    seen = {key for key, _ in plan.basis}
    added: list[Conflict] = []
    for prefix in plan.directories:
        for item in conn.read_prefix(prefix, keys_only=True).items:
            if item.key not in seen:
                now = conn.get(item.key)
                reason = f"was added under {display_segment(prefix)} since revision {plan.revision}"
                added.append(Conflict(item.key, None, now, reason))
    if added:
        conflicts = tuple(added)
        raise ChangeConflict(
            _conflict_message("a directory to delete gained keys", conflicts), conflicts
        )


def _check_ranges(conn: EtcdConnection, plan: Plan) -> None:
    """Name the keys written in a guarded range since the plan (see `Plan.ranges`).

    Reads the prefix the ranges share, keys only; it runs only once a guard has failed.
    """
    if not plan.ranges:
        return
    start, end = plan.ranges[0][0], plan.ranges[-1][1]
    shared = shared_prefix(start, end) if end != b"\0" else b""
    written: list[Conflict] = []
    for item in conn.read_prefix(shared, keys_only=True).items:
        inside = any(lo <= item.key and (hi == b"\0" or item.key < hi) for lo, hi in plan.ranges)
        if inside and item.mod_revision > plan.revision:
            seen = plan.seen(item.key)
            reason = (
                f"was created since revision {plan.revision} (now revision {item.mod_revision})"
                if item.create_revision > plan.revision
                else f"changed since revision {plan.revision} (now revision {item.mod_revision})"
            )
            written.append(Conflict(item.key, seen, conn.get(item.key), reason))
    if written:
        conflicts = tuple(written)
        raise ChangeConflict(
            _conflict_message(f"keys changed since revision {plan.revision}", conflicts),
            conflicts,
        )


def _inverse(plan: Plan, revision: int) -> ChangeSet:
    """Changes that put every key back, guarded by what this apply left at `revision`."""
    undo = ChangeSet()
    for step in plan.steps:
        before = step.before
        if before is None:
            undo.add(DeleteKey(step.key, revision))
        elif step.after is None:
            undo.add(SetValue(step.key, before.value, 0, before.lease))
        else:
            undo.add(SetValue(step.key, before.value, revision, before.lease))
    return undo
