"""Changes to etcd as commands: staged, shown as a diff, applied as one guarded transaction, undone.

Every user action that writes to etcd (an edit, a delete, a rename, a directory copy or delete)
is a `PendingChange`. Changes are collected in a `ChangeSet`; `ChangeSet.plan` reads the
current state of every key they touch, pinned at one revision, and folds the changes into one
`PlannedStep` per key; `ChangeSet.apply` writes the plan as ONE etcd transaction guarded by
the mod revision of every key the plan read, so either everything the operator reviewed is
written or nothing is. A successful apply returns the inverse as a new `ChangeSet`, guarded by
the revisions that apply produced: an undo after somebody else touched the keys conflicts
instead of clobbering their work.

Staleness is checked against what the operator saw: `SetValue.expected_mod_revision` is the
revision the editor showed. A change whose expectation no longer holds when the plan is made
is listed in `Plan.stale` (the diff can show it before apply) and `apply` refuses the plan.

Messages and `describe()` name keys, never values (values may be secrets and messages end up in
logs); only `diff_text` shows values, for the operator's own screen.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from etcdadmin.core.connection import Compare, EtcdConnection, TxnOp, prefix_end
from etcdadmin.core.errors import ConflictError, EtcdAdminError, RevisionCompacted
from etcdadmin.core.keynames import display_segment
from etcdadmin.core.keyvalue import KeyValue

log = logging.getLogger(__name__)

# etcd's default --max-txn-ops: a transaction with more compares, more operations or more
# failure reads than this is refused as a whole ("too many operations in txn request").
MAX_TXN_OPS = 128

# A conflict message lists this many keys by name and counts the rest.
_KEYS_IN_MESSAGE = 5


class InvalidChange(EtcdAdminError):
    """A change that cannot mean anything (a rename onto itself, a copy into its own source)."""


class TooManyOperations(EtcdAdminError):
    """A plan needs more operations than one etcd transaction may hold.

    Not split into several transactions on purpose: the point of a plan is that it is written
    whole or not at all.
    """

    def __init__(self, message: str, count: int, limit: int) -> None:
        super().__init__(message)
        self.count = count
        self.limit = limit


@dataclass(frozen=True)
class Conflict:
    """A key that is not as a change expects.

    `expected` is what the plan (or the operator's editor) saw, `actual` what etcd holds now;
    None means absent. `reason` says what differs in words and revisions, never values.
    """

    key: bytes
    expected: KeyValue | None
    actual: KeyValue | None
    reason: str = ""

    def describe(self) -> str:
        return f"{display_segment(self.key)} {self.reason}".rstrip()


class ChangeConflict(ConflictError):
    """Keys changed under the staged changes: nothing was written. `conflicts` names them."""

    def __init__(self, message: str, conflicts: Iterable[Conflict]) -> None:
        super().__init__(message)
        self.conflicts = tuple(conflicts)


def _conflict_message(lead: str, conflicts: tuple[Conflict, ...]) -> str:
    shown = "; ".join(c.describe() for c in conflicts[:_KEYS_IN_MESSAGE])
    more = len(conflicts) - _KEYS_IN_MESSAGE
    if more > 0:
        shown += f"; and {more} more"
    return (
        f"{lead}: {shown}. Nothing was written; review the changes against the current values "
        "and stage them again"
    )


# -- the changes --------------------------------------------------------------------------


class _Staging:
    """The state a plan is folded in: etcd as read at one revision, overlaid by staged writes.

    Expectations are checked against etcd at the plan's revision (what the operator saw), not
    against earlier staged changes: two edits of one key both based on revision 7 are both
    valid, and the later one wins.
    """

    def __init__(
        self, conn: EtcdConnection, revision: int, known: dict[bytes, KeyValue | None]
    ) -> None:
        self.conn = conn
        self.revision = revision
        self.known = known
        self.staged: dict[bytes, tuple[bytes, int] | None] = {}
        self.touched: set[bytes] = set()
        self.stale: list[Conflict] = []
        self.directories: list[bytes] = []

    def current(self, key: bytes) -> tuple[bytes, int] | None:
        """(value, lease) of `key` after the changes staged so far; None when absent."""
        if key in self.staged:
            return self.staged[key]
        kv = self.known.get(key)
        return (kv.value, kv.lease) if kv is not None else None

    def keys_under(self, prefix: bytes) -> list[bytes]:
        candidates = {k for k in self.known if k.startswith(prefix)}
        candidates.update(k for k in self.staged if k.startswith(prefix))
        return sorted(k for k in candidates if self.current(k) is not None)

    def read(self, key: bytes) -> None:
        """The change depends on `key` as the plan saw it: guard it."""
        self.touched.add(key)

    def write(self, key: bytes, after: tuple[bytes, int] | None) -> None:
        self.touched.add(key)
        self.staged[key] = after

    def _report(self, conflict: Conflict) -> None:
        if all(c.key != conflict.key for c in self.stale):
            self.stale.append(conflict)

    def expect(self, key: bytes, expected_mod_revision: int | None) -> None:
        """Report `key` as stale when etcd no longer holds the revision the edit was based on."""
        kv = self.known.get(key)
        actual = kv.mod_revision if kv is not None else 0
        if expected_mod_revision is None or expected_mod_revision == actual:
            return
        if expected_mod_revision == 0:
            reason = f"exists already (revision {actual})"
        elif kv is None:
            reason = f"was deleted after revision {expected_mod_revision}"
        else:
            reason = f"changed since revision {expected_mod_revision} (now revision {actual})"
        self._report(Conflict(key, self._version_at(key, expected_mod_revision), kv, reason))

    def expect_absent(self, key: bytes) -> None:
        kv = self.known.get(key)
        if kv is not None:
            self._report(Conflict(key, None, kv, f"exists already (revision {kv.mod_revision})"))

    def report_missing(self, key: bytes, reason: str) -> None:
        self._report(Conflict(key, None, None, reason))

    def _version_at(self, key: bytes, revision: int) -> KeyValue | None:
        """The key as the operator's editor showed it, so a conflict can show both values."""
        if revision <= 0 or revision > self.revision:
            return None
        try:
            return self.conn.get(key, revision=revision)
        except RevisionCompacted:
            return None


class PendingChange(ABC):
    """A staged change to etcd. Subclasses are frozen dataclasses."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the pending-changes list: key names only, never values."""

    @abstractmethod
    def keys(self) -> tuple[bytes, ...]:
        """The keys (or, for directory changes, the directory prefixes) the change names."""

    def _reads(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """(single keys, whole prefixes) the plan must read before folding this change."""
        return self.keys(), ()

    @abstractmethod
    def _stage(self, staging: _Staging) -> None:
        """Fold this change into `staging`."""


@dataclass(frozen=True)
class SetValue(PendingChange):
    """Create or modify one key.

    `expected_mod_revision` is the revision the edit is based on: 0 means the key must not
    exist, None means no expectation (whatever the plan finds is overwritten). `lease` is
    attached as given (0: none), so pass the key's current lease to keep it.
    """

    key: bytes
    value: bytes
    expected_mod_revision: int | None
    lease: int = 0

    def describe(self) -> str:
        verb = "create" if self.expected_mod_revision == 0 else "set"
        return f"{verb} {display_segment(self.key)}"

    def keys(self) -> tuple[bytes, ...]:
        return (self.key,)

    def _stage(self, staging: _Staging) -> None:
        staging.expect(self.key, self.expected_mod_revision)
        staging.write(self.key, (self.value, self.lease))


@dataclass(frozen=True)
class DeleteKey(PendingChange):
    key: bytes
    expected_mod_revision: int | None

    def describe(self) -> str:
        return f"delete {display_segment(self.key)}"

    def keys(self) -> tuple[bytes, ...]:
        return (self.key,)

    def _stage(self, staging: _Staging) -> None:
        staging.expect(self.key, self.expected_mod_revision)
        staging.write(self.key, None)


@dataclass(frozen=True)
class RenameKey(PendingChange):
    """Move a key's value and lease to a new name that must not exist yet."""

    old: bytes
    new: bytes
    expected_mod_revision: int | None

    def __post_init__(self) -> None:
        if self.old == self.new:
            raise InvalidChange(f"renaming {display_segment(self.old)} onto itself changes nothing")

    def describe(self) -> str:
        return f"rename {display_segment(self.old)} to {display_segment(self.new)}"

    def keys(self) -> tuple[bytes, ...]:
        return (self.old, self.new)

    def _stage(self, staging: _Staging) -> None:
        staging.expect(self.old, self.expected_mod_revision)
        staging.expect_absent(self.new)
        carried = staging.current(self.old)
        if carried is None:
            staging.report_missing(self.old, "does not exist, so it cannot be renamed")
            staging.read(self.old)
            staging.read(self.new)
            return
        staging.write(self.new, carried)
        staging.write(self.old, None)


def _check_directory(prefix: bytes, what: str) -> None:
    if not prefix.endswith(b"/"):
        raise InvalidChange(f"{what} {display_segment(prefix)!r} must end with '/'")


@dataclass(frozen=True)
class CopyDirectory(PendingChange):
    """Copy every key under `source` to `target` + the rest of its name (values and leases).

    Both are prefixes with their trailing slash (`registry-test/`). None of the target names
    may exist: an existing one is a conflict, never silently overwritten.
    """

    source: bytes
    target: bytes

    def __post_init__(self) -> None:
        _check_directory(self.source, "the directory to copy")
        _check_directory(self.target, "the directory to copy to")
        if self.source.startswith(self.target) or self.target.startswith(self.source):
            raise InvalidChange(
                f"cannot copy {display_segment(self.source)} to {display_segment(self.target)}: "
                "one contains the other"
            )

    def describe(self) -> str:
        return f"copy directory {display_segment(self.source)} to {display_segment(self.target)}"

    def keys(self) -> tuple[bytes, ...]:
        return (self.source, self.target)

    def _reads(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        return (), (self.source, self.target)

    def _stage(self, staging: _Staging) -> None:
        sources = staging.keys_under(self.source)
        if not sources:
            staging.report_missing(self.source, "has no keys to copy")
        for key in sources:
            target = self.target + key[len(self.source) :]
            staging.expect_absent(target)
            staging.read(key)
            staging.write(target, staging.current(key))


@dataclass(frozen=True)
class DeleteDirectory(PendingChange):
    """Delete the keys under `prefix` that the plan saw, each guarded by its mod revision.

    Not a blind delete of the prefix: a key someone adds after the plan was shown would be
    deleted without anyone having reviewed it. Such a key makes the apply conflict instead.
    """

    prefix: bytes

    def __post_init__(self) -> None:
        if not self.prefix:
            raise InvalidChange("deleting the whole key space is not a directory delete")

    def describe(self) -> str:
        return f"delete directory {display_segment(self.prefix)}"

    def keys(self) -> tuple[bytes, ...]:
        return (self.prefix,)

    def _reads(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        return (), (self.prefix,)

    def _stage(self, staging: _Staging) -> None:
        staging.directories.append(self.prefix)
        for key in staging.keys_under(self.prefix):
            staging.write(key, None)


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
    """

    revision: int
    steps: tuple[PlannedStep, ...]
    basis: tuple[tuple[bytes, KeyValue | None], ...]
    stale: tuple[Conflict, ...] = ()
    directories: tuple[bytes, ...] = ()

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
        return keys + directories

    @property
    def operation_count(self) -> int:
        """What etcd's --max-txn-ops limits: the largest of compares, puts/deletes, reads."""
        return max(len(self.basis) + len(self.directories), len(self.steps))

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
        staging = _Staging(conn, revision, known)
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

    def apply(self, conn: EtcdConnection, plan: Plan, *, max_txn_ops: int = MAX_TXN_OPS) -> Applied:
        """Write `plan` as one transaction guarded by every key it read; return the undo.

        Raises `ChangeConflict` (nothing written) when a change was already stale at planning
        or a key changed since, and `TooManyOperations` when one transaction cannot hold it.
        """
        if plan.stale:
            raise ChangeConflict(
                _conflict_message("staged changes no longer match etcd", plan.stale), plan.stale
            )
        count = plan.operation_count
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
        result = conn.txn(plan.guards, success, failure_reads=keys)
        if not result.succeeded:
            conflicts = tuple(
                _changed(key, seen, result.current.get(key))
                for key, seen in plan.basis
                if not _holds(seen, result.current.get(key))
            )
            if not conflicts:
                _check_directories(conn, plan)  # the directory guard failed: say which keys
            log.info(
                "apply refused: %d keys changed since revision %d", len(conflicts), plan.revision
            )
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
