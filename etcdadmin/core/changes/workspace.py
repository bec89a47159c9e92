"""The operator's side of changing etcd: what is staged, what can be undone, and the policy.

A `Workspace` belongs to one connection. It holds the staged `ChangeSet`, the undo stack of
what was applied through it, and two flags from the connection's profile: a read-only
connection stages and writes nothing (`ReadOnlyConnection`), and a production one asks the
caller's `confirm(plan, what)` before every apply AND every undo, with the plan in hand so the
operator decides on what will really be written. `ask_before_undo` asks before every undo on
any connection (the desktop client: an undo writes what nobody staged or reviewed).

One staged change per key: staging a change that names the keys of a staged one replaces it
in its row. The replacement keeps the revision guard of the FIRST stage (what the operator saw
when they decided to change the key) unless the caller says the operator re-read the key; a
conflict is resolved by `rebase`, which takes the re-read revisions as the new guards and keeps
the operator's new values.

Apply and undo are split in steps so that a GUI can run the etcd calls on a worker and ask on
its own thread: `begin_apply`/`begin_undo` take a `Batch` (a snapshot: changes staged while it
runs stay staged), `Batch.plan` and `Batch.write` talk to etcd, `approve` asks, `finish`
records the result. `apply` and `undo` run the same steps in one call (the CLI, tests).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from etcdadmin.core.changes.changeset import Applied, ChangeSet, Plan
from etcdadmin.core.changes.commands import PendingChange
from etcdadmin.core.errors import EtcdAdminError, ReadOnlyConnection
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.releases.history import PublishNote

log = logging.getLogger(__name__)

Confirm = Callable[[Plan, str], bool]


class NothingToDo(EtcdAdminError):
    """Apply with nothing staged, or undo with nothing applied."""


def _refuse(plan: Plan, what: str) -> bool:
    """The default for a production connection nobody can be asked about: never write."""
    return False


# Commands guarded by the revision of the one key they change (SetValue, DeleteKey, RenameKey
# by its old name); directory commands have no such guard and are replaced whole.
_GUARD = "expected_mod_revision"


def _guarded_key(change: PendingChange) -> bytes | None:
    return change.keys()[0] if hasattr(change, _GUARD) else None


def _with_guard(change: PendingChange, revision: int | None) -> PendingChange:
    return dataclasses.replace(change, **{_GUARD: revision})  # type: ignore[type-var]


def read_current(conn: EtcdConnection, keys: Iterable[bytes]) -> dict[bytes, KeyValue | None]:
    """The keys as etcd holds them now, for `Workspace.rebase` (run it off the UI thread)."""
    return {key: conn.get(key) for key in dict.fromkeys(keys)}


@dataclass(frozen=True)
class Batch:
    """Changes on their way to etcd: `what` is "apply" or "undo".

    `changes` is a snapshot taken when the batch began; `source` is the apply an undo reverts;
    `record` what the release history says about it (None: not recorded).
    """

    what: str
    changes: ChangeSet
    source: Applied | None = None
    record: PublishNote | None = None

    def plan(self, conn: EtcdConnection) -> Plan:
        return self.changes.plan(conn)

    def write(self, conn: EtcdConnection, plan: Plan) -> Applied:
        """One guarded transaction; raises `ChangeConflict` and writes nothing on a conflict."""
        return self.changes.apply(conn, plan, record=self.record)


class Workspace:
    """Staged changes, the undo stack and the read-only/production policy of one connection."""

    def __init__(
        self,
        *,
        read_only: bool = False,
        production: bool = False,
        confirm: Confirm = _refuse,
        ask_before_undo: bool = False,
        publisher: str | None = None,
    ) -> None:
        # Who the release history names for the applies and undos of this workspace (None:
        # they are not recorded).
        self.publisher = publisher
        self.read_only = read_only
        self.production = production
        self.ask_before_undo = ask_before_undo
        self.confirm = confirm
        self.staged = ChangeSet()
        self.undo_stack: list[Applied] = []

    # -- staging ----------------------------------------------------------------------------

    def stage(self, change: PendingChange, *, reread: bool = False) -> int:
        """Stage `change`; returns its row.

        A change naming the same keys as a staged one replaces it in its row. Unless `reread`
        (the operator read the key again since the first stage), the replacement keeps the first
        stage's guard: re-staging must not quietly move the basis past a write nobody reviewed.
        """
        self._writable("staged")
        row = self.staged.position(change)
        if row is None:
            self.staged.add(change)
            return len(self.staged) - 1
        first = self.staged[row]
        if not reread and hasattr(first, _GUARD) and hasattr(change, _GUARD):
            change = _with_guard(change, getattr(first, _GUARD))
        self.staged.replace(row, change)
        log.info("a staged change was replaced by a new one for the same keys")
        return row

    def rebase(self, current: Mapping[bytes, KeyValue | None]) -> list[int]:
        """Base the staged changes of the re-read keys in `current` on what etcd holds now.

        Each keeps the operator's new value; its guard becomes the re-read revision (0: the key
        is absent now, so the change creates it). Returns the rows re-based.
        """
        rows = []
        for row, change in enumerate(self.staged):
            key = _guarded_key(change)
            if key is None or key not in current:
                continue
            kv = current[key]
            self.staged.replace(row, _with_guard(change, kv.mod_revision if kv else 0))
            rows.append(row)
        log.info("re-based %d staged changes on the current values", len(rows))
        return rows

    def remove(self, index: int) -> PendingChange:
        return self.staged.remove(index)

    def discard(self) -> None:
        self.staged.clear()

    def snapshot(self) -> ChangeSet:
        """A copy of what is staged now, to plan away from the caller's thread."""
        return ChangeSet(self.staged)

    def plan(self, conn: EtcdConnection) -> Plan:
        """What applying the staged changes would write now (stale changes listed, not raised)."""
        return self.snapshot().plan(conn)

    # -- apply and undo in steps ------------------------------------------------------------

    def begin_apply(self) -> Batch:
        self._writable("applied")
        if not len(self.staged):
            raise NothingToDo("nothing is staged: stage a change before applying")
        return Batch("apply", self.snapshot(), record=self._note("edit"))

    def begin_undo(self) -> Batch:
        self._writable("undone")
        if not self.undo_stack:
            raise NothingToDo("nothing was applied on this connection that could be undone")
        last = self.undo_stack[-1]
        return Batch("undo", last.undo, source=last, record=self._note("undo"))

    def _note(self, kind: str) -> PublishNote | None:
        return PublishNote(kind, self.publisher) if self.publisher else None

    def approve(self, batch: Batch, plan: Plan) -> bool:
        """Whether to write `plan`: on production, or an undo with `ask_before_undo`, ask."""
        if not self.production and not (batch.what == "undo" and self.ask_before_undo):
            return True
        approved = self.confirm(plan, batch.what)
        log.info("%s %s", batch.what, "confirmed" if approved else "cancelled")
        return approved

    def finish(self, batch: Batch, applied: Applied) -> None:
        """Record a written batch: an apply is pushed for undo and leaves the staged list (only
        what it held: changes staged meanwhile stay); an undo pops the apply it reverted."""
        if batch.source is None:
            self.undo_stack.append(applied)
            written = {id(change) for change in batch.changes}
            self.staged = ChangeSet(c for c in self.staged if id(c) not in written)
        elif self.undo_stack and self.undo_stack[-1] is batch.source:
            self.undo_stack.pop()

    # -- in one call ------------------------------------------------------------------------

    def apply(self, conn: EtcdConnection) -> Applied | None:
        """Apply everything staged as one transaction; None when the operator said no."""
        return self._run(conn, self.begin_apply())

    def undo(self, conn: EtcdConnection) -> Applied | None:
        """Revert the last apply, guarded by what it wrote; None when the operator said no."""
        return self._run(conn, self.begin_undo())

    def _run(self, conn: EtcdConnection, batch: Batch) -> Applied | None:
        plan = batch.plan(conn)
        if not self.approve(batch, plan):
            return None
        applied = batch.write(conn, plan)
        self.finish(batch, applied)
        return applied

    def _writable(self, done: str) -> None:
        if self.read_only:
            raise ReadOnlyConnection(
                f"this connection is read-only: nothing can be {done}. Connect with a profile "
                "that is not marked read-only to change keys"
            )
