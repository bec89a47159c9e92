"""Online restore of one prefix: put a live directory back exactly as a logical backup has it.

`plan_restore` compares the backup's keys (read from an export made at revision R) with the
prefix as it is now, read at one revision: keys to add back (deleted since), to change back,
and to delete (added since). `apply_restore` writes that plan in guarded batches through the
desired-state apply (`etcdadmin.core.changes.desired`), so a restore and `etcdadmin apply`
share one way to write many keys: each batch is one transaction, guarded by the mod revision
the plan saw for each of its keys and by its whole slice of the prefix, so a key anyone writes
after the plan stops the restore with that key named, and the report says how far it got.

Values are written back byte for byte: a secret stored encrypted comes back still encrypted.
`render_restore_plan` shows a plan to the operator without the values of secrets; messages and
logs name keys and counts only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from etcdadmin.core.changes.changeset import MAX_TXN_OPS, ChangeConflict, name_conflicts
from etcdadmin.core.changes.commands import Conflict
from etcdadmin.core.changes.desired import (
    DesiredChange,
    DesiredConflict,
    DesiredPlan,
    DesiredResult,
    apply_desired,
    plan_state,
)
from etcdadmin.core.changes.desired_display import render_line
from etcdadmin.core.errors import EtcdAdminError, EtcdError
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.releases.history import PublishNote
from etcdadmin.core.tree.directories import directory_prefix
from etcdadmin.core.tree.names import display_segment

log = logging.getLogger(__name__)


class BackupRecord(Protocol):
    """One key of a logical backup, as the backup engine reads it from an export."""

    @property
    def key(self) -> bytes: ...

    @property
    def value(self) -> bytes: ...


class BackupNotRestorable(EtcdAdminError):
    """The backup's keys cannot be restored onto the prefix as given: nothing was planned."""

    def __init__(self, message: str, key: bytes) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class RestorePlan:
    """What restoring `prefix` from a backup taken at `backup_revision` writes.

    `differences` is the prefix read now, at `revision`, against the backup's keys: its
    `added` are the keys to add back, `changed` to change back and `removed` the keys added
    since the backup, to delete. `apply_restore` guards every write on what was read then.
    """

    prefix: bytes
    backup_revision: int
    differences: DesiredPlan

    @property
    def revision(self) -> int:
        return self.differences.revision

    @property
    def to_add(self) -> tuple[DesiredChange, ...]:
        return self.differences.added

    @property
    def to_change(self) -> tuple[DesiredChange, ...]:
        return self.differences.changed

    @property
    def to_delete(self) -> tuple[DesiredChange, ...]:
        return self.differences.removed

    @property
    def unchanged(self) -> int:
        return self.differences.unchanged

    @property
    def total(self) -> int:
        """Keys the restore writes (puts and deletes)."""
        return len(self.to_add) + len(self.to_change) + len(self.to_delete)

    @property
    def empty(self) -> bool:
        return self.differences.empty

    def summary(self) -> str:
        """``3 to add back, 1 to change back, 2 to delete (added since), 120 unchanged``."""
        return (
            f"{len(self.to_add)} to add back, {len(self.to_change)} to change back, "
            f"{len(self.to_delete)} to delete (added since), {self.unchanged} unchanged"
        )


def plan_restore(
    conn: EtcdConnection,
    prefix: bytes,
    records: Iterable[BackupRecord],
    *,
    backup_revision: int,
) -> RestorePlan:
    """Compare the backup's keys under `prefix` with the prefix as it is now.

    `records` are the backup's keys under that prefix, sorted by key, each once. A key out of
    order, repeated or outside the prefix raises `BackupNotRestorable` naming it: such a
    backup was not read from one export of this prefix.
    """
    directory = directory_prefix(prefix)
    differences = plan_state(conn, directory, lambda: _backup_state(directory, records), prune=True)
    plan = RestorePlan(directory, backup_revision, differences)
    log.info(
        "planned a restore from revision %d at revision %d: %d to add back, %d to change back, "
        "%d to delete, %d unchanged",
        backup_revision,
        plan.revision,
        len(plan.to_add),
        len(plan.to_change),
        len(plan.to_delete),
        plan.unchanged,
    )
    return plan


def _backup_state(prefix: bytes, records: Iterable[BackupRecord]) -> dict[bytes, bytes]:
    state: dict[bytes, bytes] = {}
    previous: bytes | None = None
    for record in records:
        key = record.key
        if not key.startswith(prefix):
            raise BackupNotRestorable(
                f"the backup holds {display_segment(key)}, outside {display_segment(prefix)}; "
                "restore each prefix from its own keys",
                key,
            )
        if previous is not None and key <= previous:
            raise BackupNotRestorable(
                f"the backup's keys are not sorted, or {display_segment(key)} comes twice; read "
                "them again from one export",
                key,
            )
        state[key] = record.value
        previous = key
    return state


# -- apply ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreReport:
    """How far `apply_restore` got: the batches written (each one whole), and whether a
    cancel stopped it. `safety_backup` is what the `before_write` hook returned."""

    plan: RestorePlan
    result: DesiredResult
    safety_backup: object = None

    @property
    def written_keys(self) -> int:
        return self.result.applied_keys

    @property
    def batches(self) -> int:
        return len(self.result.batches)

    @property
    def cancelled(self) -> bool:
        return self.result.cancelled

    @property
    def complete(self) -> bool:
        return self.result.complete

    def describe(self) -> str:
        """One line: ``restored 10000 of 10000 keys in 79 batches at revisions 5 to 83``."""
        line = self.result.describe()
        if self.complete:
            return f"{display_segment(self.plan.prefix)} restored: {line}"
        return f"{display_segment(self.plan.prefix)} partly restored: {line}"


class RestoreConflict(ChangeConflict):
    """A key under the prefix was written after the plan: the restore stopped at its batch.

    `conflicts` names the keys; `report` says which batches were written before it.
    """

    def __init__(self, message: str, conflicts: Iterable[Conflict], report: RestoreReport):
        super().__init__(message, conflicts)
        self.report = report


class RestoreInterrupted(EtcdAdminError):
    """etcd failed in the middle of a restore (`__cause__` says how): the prefix is partly
    restored. `written_keys` in `batches` were written for sure; the batch in flight may or
    may not have been."""

    def __init__(self, message: str, written_keys: int, batches: int) -> None:
        super().__init__(message)
        self.written_keys = written_keys
        self.batches = batches


def apply_restore(
    conn: EtcdConnection,
    plan: RestorePlan,
    *,
    before_write: Callable[[], object] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    max_txn_ops: int = MAX_TXN_OPS,
    record: PublishNote | None = None,
) -> RestoreReport:
    """Write `plan` so that the prefix ends exactly as in the backup.

    With `record` (kind `restore`), each batch is recorded in the release history.

    `before_write()` runs once, before the first write (a safety backup of the prefix as it
    is); whatever it raises stops the restore with nothing written. Then every batch is one
    transaction guarded by the revisions the plan read and by its slice of the prefix (no key
    there written since the plan). `progress(done_keys, total_keys)` is called after each
    batch; `cancel` is checked before each batch, and once set the report says how far it got.

    A key written after the plan raises `RestoreConflict`: its batch wrote nothing, no later
    batch runs, and the prefix is partly restored. etcd failing meanwhile raises
    `RestoreInterrupted` with what was written. Either way, planning again compares the prefix
    as it is then, so the next apply finishes the job. A plan without changes writes nothing
    and does not call `before_write`.
    """
    if plan.empty:
        return RestoreReport(plan, DesiredResult(0, ()))
    if cancel is not None and cancel.is_set():
        log.info("restore cancelled before it started")
        return RestoreReport(plan, DesiredResult(plan.total, (), cancelled=True))
    safety = None
    if before_write is not None:
        log.info("taking the safety backup before the restore writes")
        safety = before_write()
    written = [0, 0]  # keys, batches: what etcd confirmed, should it fail at the next batch

    def advance(done: int, total: int) -> None:
        written[0], written[1] = done, written[1] + 1
        if progress is not None:
            progress(done, total)

    try:
        result = apply_desired(
            conn,
            plan.differences,
            progress=advance,
            cancel=cancel,
            max_txn_ops=max_txn_ops,
            exact=True,
            record=record,
        )
    except DesiredConflict as exc:
        report = RestoreReport(plan, exc.result, safety)
        log.info(
            "restore stopped by %d keys written since the plan: %d of %d keys written",
            len(exc.conflicts),
            report.written_keys,
            plan.total,
        )
        raise RestoreConflict(
            _conflict_message(exc.conflicts, report), exc.conflicts, report
        ) from None
    except EtcdError as exc:
        log.info("restore interrupted by an etcd failure after %d batches", written[1])
        raise RestoreInterrupted(
            f"etcd failed during the restore of {display_segment(plan.prefix)} ({exc}); "
            f"{written[0]} of {plan.total} keys were written in {written[1]} "
            f"batch{'' if written[1] == 1 else 'es'}, and the "
            "batch in flight may or may not have been. When etcd answers again, plan the "
            "restore again (it compares the prefix as it is then) and apply it to finish",
            written[0],
            written[1],
        ) from exc
    report = RestoreReport(plan, result, safety)
    log.info(
        "restore %s: %d of %d keys in %d batches",
        "cancelled" if report.cancelled else "applied",
        report.written_keys,
        plan.total,
        report.batches,
    )
    return report


def _conflict_message(conflicts: tuple[Conflict, ...], report: RestoreReport) -> str:
    plan = report.plan
    return (
        f"keys under {display_segment(plan.prefix)} were written after the restore plan read "
        f"them at revision {plan.revision}: {name_conflicts(conflicts)}. The restore stopped "
        f"with batch {report.batches + 1}, which wrote nothing; before it, "
        f"{report.result.describe()}. Plan the restore again (it compares the prefix as it is "
        "now) and apply it to finish"
    )


# -- display --------------------------------------------------------------------------------


def render_restore_plan(plan: RestorePlan) -> str:
    """The plan as text: a header, one line per key in key order, and the counts.

    ``+ key = value`` adds a key back, ``~ key: now -> backup`` changes one back, ``- key``
    deletes a key added since. Values of secrets (by their key, a private key, or a value
    stored encrypted) never appear: ``(secret)`` and ``(secret value changed)`` stand in, and
    a value stored encrypted shows as its fingerprint, ``secret (sha256:...)``.
    """
    differences = plan.differences
    header = (
        f"restore {display_segment(plan.prefix)} from the backup at revision "
        f"{plan.backup_revision} (prefix read at revision {plan.revision})"
    )
    lines = [header, *(render_line(differences, c) for c in differences.changes), plan.summary()]
    return "\n".join(lines) + "\n"
