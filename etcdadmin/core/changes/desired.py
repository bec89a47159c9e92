"""A directory's desired state, like terraform plan/apply: a YAML file says what the keys should be.

`plan_desired` turns a config file into keys with the agent's own mapping (so the keys are
exactly those an agent renders back into that file), reads the directory once at one revision,
and lists what differs: keys to add, to change and (only when pruning) to remove. `apply_desired`
writes the plan in batches that each fit one etcd transaction, every key guarded by the revision
the plan read, through the same `apply_plan` that applies the client's staged changes.

A directory larger than one transaction cannot be written atomically: each batch is atomic, the
batches are applied in key order, and a conflict or a cancel stops between batches, saying how
far it got. Messages and logs name keys and counts, never values (values may be secrets);
`etcdadmin.core.changes.desired_display` shows a plan to the operator with secrets masked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from etcdadmin.core.changes.changeset import (
    MAX_TXN_OPS,
    Applied,
    ChangeConflict,
    Plan,
    PlannedStep,
    apply_plan,
    name_conflicts,
)
from etcdadmin.core.changes.commands import Conflict, InvalidChange
from etcdadmin.core.changes.desired_secrets import Sealer, resolve_secret
from etcdadmin.core.config.documents import collector_paused
from etcdadmin.core.environments.compare import import_marked_entries
from etcdadmin.core.etcd import EtcdConnection, prefix_end
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.releases.history import PublishNote
from etcdadmin.core.tree.directories import OWN_SPACE, directory_prefix, holds_own_space
from etcdadmin.core.tree.names import display_segment

log = logging.getLogger(__name__)

Action = Literal["add", "change", "remove"]


@dataclass(frozen=True)
class DesiredChange:
    """One key that differs from the file: `before` as the plan read it, `after` None removes it.

    `secret`: the file marks the value `!secret`, and `after` is its envelope (never plaintext).
    """

    key: bytes
    before: KeyValue | None
    after: bytes | None
    secret: bool = False

    @property
    def action(self) -> Action:
        if self.before is None:
            return "add"
        return "remove" if self.after is None else "change"


@dataclass(frozen=True)
class DesiredPlan:
    """How a directory, read at `revision`, differs from a config file.

    `directory` is the key prefix (with its trailing slash). Each tuple is sorted by key.
    `unchanged` counts the keys already as the file says; `kept` counts the keys the file does
    not name that stay because the plan was made without pruning (pruning lists them in
    `removed` instead). `unchanged_secrets` names the `!secret` keys among the unchanged (their
    envelope opens to the file's value, or the file holds its placeholder).
    """

    directory: bytes
    revision: int
    added: tuple[DesiredChange, ...]
    changed: tuple[DesiredChange, ...]
    removed: tuple[DesiredChange, ...]
    unchanged: int
    kept: int
    prune: bool
    unchanged_secrets: tuple[bytes, ...] = ()

    @property
    def changes(self) -> tuple[DesiredChange, ...]:
        """Every change, in key order: the order `apply_desired` writes them."""
        return tuple(sorted((*self.added, *self.changed, *self.removed), key=lambda c: c.key))

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def relative(self, key: bytes) -> bytes:
        """`key` below the directory: what the config file calls it."""
        return key[len(self.directory) :]


def plan_desired(
    conn: EtcdConnection,
    directory: bytes,
    yaml_text: str,
    *,
    prune: bool = False,
    secrets: Sealer | None = None,
) -> DesiredPlan:
    """What it takes for `directory` to hold exactly the keys `yaml_text` maps to.

    Keys under the directory that the file does not name are removed only with `prune`.
    A file that is not valid YAML, or cannot be written as keys, raises `MappingError` naming
    the line or the config path.

    With `secrets` (the operator's `SecretSealer`), values the file marks `!secret` are sealed
    for their key here, so the plan holds envelopes only; one whose envelope in etcd opens to
    the file's value is unchanged (see `desired_secrets`). Without, `!secret` is refused.
    """
    prefix = directory_prefix(directory)
    if holds_own_space(prefix):
        # Its keys are the release history and the agents' status, written by every apply
        # (each batch's record would also fall inside the batches' own range guards).
        raise InvalidChange(
            f"{display_segment(prefix)} holds etcdadmin's own records "
            f"({OWN_SPACE.decode()}): apply to a config directory, such as registry-test"
        )
    marked: set[bytes] = set()

    def wanted() -> dict[bytes, bytes]:
        desired, found = import_marked_entries(yaml_text, prefix, secrets=secrets is not None)
        marked.update(found)
        return desired

    return plan_state(conn, prefix, wanted, prune=prune, sealer=secrets, marked=marked)


def plan_state(
    conn: EtcdConnection,
    directory: bytes,
    wanted: Callable[[], dict[bytes, bytes]],
    *,
    prune: bool,
    sealer: Sealer | None = None,
    marked: Collection[bytes] = frozenset(),
) -> DesiredPlan:
    """What it takes for `directory` (a key prefix) to hold exactly the keys `wanted()` returns.

    The one comparison of a directory with the keys it should hold: a config file's keys
    (`plan_desired`) or a backup's (`etcdadmin.core.backup.restore_online`). `wanted` is
    called while the directory is read; it returns full keys and their values, and may raise
    to refuse its input (nothing was planned then). The cyclic garbage collector is paused
    meanwhile: the keys wanted and the keys read are a few hundred thousand objects that its
    passes would walk again and again (measured on 100,000 keys, best of 4 on 2 shared cores:
    2.0 s with it running, 1.8 s paused).

    `marked` names the keys whose wanted values are plaintext secrets for `sealer` to seal
    (filled by `wanted()` itself when the file decides it, as `plan_desired` does).
    """
    with collector_paused():
        return _plan(conn, directory, wanted, prune, sealer, marked)


def _plan(
    conn: EtcdConnection,
    prefix: bytes,
    wanted: Callable[[], dict[bytes, bytes]],
    prune: bool,
    sealer: Sealer | None,
    marked: Collection[bytes],
) -> DesiredPlan:
    # One paged read pinned at one revision: every guard of the apply refers to that moment.
    # It runs while the wanted keys are built: etcd prepares and sends the keys meanwhile
    # (measured on 100,000 keys: 0.7 s for the read, of which 0.3 s is not this process's CPU).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="desired-read") as pool:
        reading = pool.submit(conn.read_prefix, prefix)
        desired = wanted()
        snapshot = reading.result()
    changed: list[DesiredChange] = []
    removed: list[DesiredChange] = []
    unchanged_secrets: list[bytes] = []
    unchanged = kept = 0
    for kv in snapshot.items:
        value = desired.pop(kv.key, None)
        if value is None:
            if prune:
                removed.append(DesiredChange(kv.key, kv, None))
            else:
                kept += 1
        elif kv.key in marked:
            assert sealer is not None
            sealed = resolve_secret(sealer, kv.key, kv, value)
            if sealed is None:
                unchanged += 1
                unchanged_secrets.append(kv.key)
            else:
                changed.append(DesiredChange(kv.key, kv, sealed, secret=True))
        elif value == kv.value:
            unchanged += 1
        else:
            changed.append(DesiredChange(kv.key, kv, value))
    # What is left of the file's keys was not in etcd.
    added = []
    for key in sorted(desired):
        if key in marked:
            assert sealer is not None
            added.append(
                DesiredChange(key, None, resolve_secret(sealer, key, None, desired[key]), True)
            )
        else:
            added.append(DesiredChange(key, None, desired[key]))
    plan = DesiredPlan(
        directory=prefix,
        revision=snapshot.revision,
        added=tuple(added),
        changed=tuple(changed),
        removed=tuple(removed),
        unchanged=unchanged,
        kept=kept,
        prune=prune,
        unchanged_secrets=tuple(unchanged_secrets),
    )
    log.info(
        "planned the desired state of a directory at revision %d: %d to add, %d to change, "
        "%d to remove, %d unchanged, %d kept",
        plan.revision,
        len(plan.added),
        len(plan.changed),
        len(plan.removed),
        plan.unchanged,
        plan.kept,
    )
    return plan


@dataclass(frozen=True)
class DesiredResult:
    """What `apply_desired` wrote: one `Applied` per batch (its revision and its undo).

    `cancelled` is true when a cancel stopped it between batches; `applied_keys` of
    `total_keys` were written then.
    """

    total_keys: int
    batches: tuple[Applied, ...]
    cancelled: bool = False

    @property
    def applied_keys(self) -> int:
        return sum(len(batch.plan.steps) for batch in self.batches)

    @property
    def revisions(self) -> tuple[int, ...]:
        return tuple(batch.revision for batch in self.batches)

    @property
    def complete(self) -> bool:
        return self.applied_keys == self.total_keys

    def describe(self) -> str:
        """One line for the operator: how far the apply got, in keys, batches and revisions."""
        if not self.batches:
            return f"nothing written (0 of {self.total_keys} keys)"
        first, last = self.revisions[0], self.revisions[-1]
        at = f"revision {first}" if first == last else f"revisions {first} to {last}"
        return (
            f"{self.applied_keys} of {self.total_keys} keys written in {len(self.batches)} "
            f"batch{'' if len(self.batches) == 1 else 'es'} at {at}"
        )


class DesiredConflict(ChangeConflict):
    """Keys changed since the plan: the batch holding them wrote nothing, and apply stopped.

    `conflicts` names the keys; `result` says which batches were written before (each one is
    complete and guarded, so what they wrote is exactly what the plan showed for their keys).
    """

    def __init__(self, message: str, conflicts: tuple[Conflict, ...], result: DesiredResult):
        super().__init__(message, conflicts)
        self.result = result


def batches(
    plan: DesiredPlan, max_txn_ops: int = MAX_TXN_OPS, *, exact: bool = False
) -> list[Plan]:
    """The plan as guarded `Plan`s that each fit one transaction, in key order.

    Each key costs one compare (its mod revision, or version 0 when it must be absent), one
    put or delete and one failure read, and etcd limits each of the three to --max-txn-ops;
    so a batch holds `max_txn_ops` keys.

    With `exact`, the batches split the whole directory into consecutive key ranges and each
    batch also guards its range (`Plan.ranges`): no key in it, planned or not, may have been
    created or changed since the plan. Each batch then writes its part exactly as planned or
    stops, save for a key someone deleted that the plan left alone (etcd has no compare that
    notices an absent key it was not told about); a write into the range of a batch already
    written, while the later ones run, is not seen. (Guarding those ranges again in each later
    batch costs etcd a read of every key in them per transaction: 10,000 changes of a
    100,000-key directory took 5.9 s instead of 1.2 s, 2 cores.) That guard is one compare
    more, so a batch holds `max_txn_ops - 1` keys.

    Each batch goes through `apply_plan` like any staged change. Measured on 2 cores: 10,000
    changed keys in 79 batches took 0.8 s, against 3.6 s for `etcdctl txn` of the same puts in
    the same batches, so building pyetcd's transaction objects per key is not worth a path of
    its own.
    """
    size = max(1, max_txn_ops - 1 if exact else max_txn_ops)
    changes = plan.changes
    starts = list(range(0, len(changes), size))
    out = []
    for number, start in enumerate(starts):
        part = changes[start : start + size]
        ranges: tuple[tuple[bytes, bytes], ...] = ()
        if exact:
            # The first batch's range starts at the directory, the last one's ends with it.
            low = plan.directory if number == 0 else part[0].key
            high = (
                changes[starts[number + 1]].key
                if number + 1 < len(starts)
                else prefix_end(plan.directory)
            )
            ranges = ((low, high),)
        out.append(
            Plan(
                revision=plan.revision,
                # a changed key keeps its lease: the file names values, not leases
                steps=tuple(
                    PlannedStep(c.key, c.before, c.after, c.before.lease if c.before else 0)
                    for c in part
                ),
                basis=tuple((c.key, c.before) for c in part),
                ranges=ranges,
            )
        )
    return out


def apply_desired(
    conn: EtcdConnection,
    plan: DesiredPlan,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    max_txn_ops: int = MAX_TXN_OPS,
    exact: bool = False,
    record: PublishNote | None = None,
) -> DesiredResult:
    """Write `plan` batch by batch, each batch one transaction guarded by what the plan read.

    `progress(done_keys, total_keys)` is called after each batch. `cancel` is checked before
    each batch: once set, apply returns with `cancelled` and what it wrote so far. A key changed
    since the plan raises `DesiredConflict`: its batch wrote nothing and no later batch runs.
    With `exact`, so does any key of the directory written since the plan (see `batches`).
    A plan without changes writes nothing (no transaction, the revision does not move).

    With `record`, each batch is recorded in the release history in its own transaction
    (`apply_plan`); the record takes one operation, so batches hold one key fewer.
    """
    parts = batches(plan, max_txn_ops - (1 if record else 0), exact=exact)
    total = sum(len(part.steps) for part in parts)
    done: list[Applied] = []
    for number, part in enumerate(parts, start=1):
        if cancel is not None and cancel.is_set():
            result = DesiredResult(total, tuple(done), cancelled=True)
            log.info("desired state apply cancelled before batch %d: %s", number, result.describe())
            return result
        try:
            note = record.in_batch(number, len(parts)) if record else None
            applied = apply_plan(conn, part, max_txn_ops=max_txn_ops, record=note)
        except ChangeConflict as exc:
            result = DesiredResult(total, tuple(done))
            log.info(
                "desired state apply stopped at batch %d of %d: %d keys changed since revision %d",
                number,
                len(parts),
                len(exc.conflicts),
                plan.revision,
            )
            raise DesiredConflict(
                _conflict_message(exc.conflicts, plan.revision, number, len(parts), result),
                exc.conflicts,
                result,
            ) from None
        done.append(applied)
        if progress is not None:
            progress(sum(len(a.plan.steps) for a in done), total)
    result = DesiredResult(total, tuple(done))
    if parts:
        log.info("desired state applied: %s", result.describe())
    return result


def _conflict_message(
    conflicts: tuple[Conflict, ...], revision: int, number: int, count: int, done: DesiredResult
) -> str:
    return (
        f"keys changed since the plan was read at revision {revision}: "
        f"{name_conflicts(conflicts)}. Batch {number} "
        f"of {count} wrote nothing and the apply stopped; before it, {done.describe()}. Plan "
        "again to see the directory as it is now, then apply"
    )
