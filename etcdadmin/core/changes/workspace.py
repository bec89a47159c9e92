"""The operator's side of changing etcd: what is staged, what can be undone, and the policy.

A `Workspace` belongs to one connection. It holds the staged `ChangeSet`, the undo stack of
what was applied through it, and two flags from the connection's profile: a read-only
connection stages and writes nothing (`ReadOnlyConnection`), and a production one asks the
caller's `confirm(plan, what)` before every apply AND every undo, with the plan in hand so the
operator decides on what will really be written.

Apply and undo are split in steps so that a GUI can run the etcd calls on a worker and ask on
its own thread: `begin_apply`/`begin_undo` take a `Batch` (a snapshot: changes staged while it
runs stay staged), `Batch.plan` and `Batch.write` talk to etcd, `approve` asks, `finish`
records the result. `apply` and `undo` run the same steps in one call (the CLI, tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from etcdadmin.core.changes.changeset import Applied, ChangeSet, Plan
from etcdadmin.core.changes.commands import PendingChange
from etcdadmin.core.errors import EtcdAdminError, ReadOnlyConnection
from etcdadmin.core.etcd import EtcdConnection

log = logging.getLogger(__name__)

Confirm = Callable[[Plan, str], bool]


class NothingToDo(EtcdAdminError):
    """Apply with nothing staged, or undo with nothing applied."""


def _refuse(plan: Plan, what: str) -> bool:
    """The default for a production connection nobody can be asked about: never write."""
    return False


@dataclass(frozen=True)
class Batch:
    """Changes on their way to etcd: `what` is "apply" or "undo".

    `changes` is a snapshot taken when the batch began; `source` is the apply an undo reverts.
    """

    what: str
    changes: ChangeSet
    source: Applied | None = None

    def plan(self, conn: EtcdConnection) -> Plan:
        return self.changes.plan(conn)

    def write(self, conn: EtcdConnection, plan: Plan) -> Applied:
        """One guarded transaction; raises `ChangeConflict` and writes nothing on a conflict."""
        return self.changes.apply(conn, plan)


class Workspace:
    """Staged changes, the undo stack and the read-only/production policy of one connection."""

    def __init__(
        self, *, read_only: bool = False, production: bool = False, confirm: Confirm = _refuse
    ) -> None:
        self.read_only = read_only
        self.production = production
        self.confirm = confirm
        self.staged = ChangeSet()
        self.undo_stack: list[Applied] = []

    # -- staging ----------------------------------------------------------------------------

    def stage(self, change: PendingChange) -> None:
        self._writable("staged")
        self.staged.add(change)

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
        return Batch("apply", self.snapshot())

    def begin_undo(self) -> Batch:
        self._writable("undone")
        if not self.undo_stack:
            raise NothingToDo("nothing was applied on this connection that could be undone")
        last = self.undo_stack[-1]
        return Batch("undo", last.undo, source=last)

    def approve(self, batch: Batch, plan: Plan) -> bool:
        """Whether to write `plan`: always on a normal connection; on production, ask."""
        if not self.production:
            return True
        approved = self.confirm(plan, batch.what)
        log.info("%s on production %s", batch.what, "confirmed" if approved else "cancelled")
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
