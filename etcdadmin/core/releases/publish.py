"""Creating, promoting and abandoning a gray release, each as guarded transactions recorded in
the release history (the record is a put of the same transaction, `apply_plan`'s `record`).

- create: the overlay is planned like `etcdadmin apply -f` plans a file (the agent's mapping,
  `!secret` values sealed for the directory key they will land on), then written under
  `/etcdadmin/gray/` in ONE transaction guarded by the touched directory keys as read and by
  the release's manifest being absent;
- promote: the overlay is written into the directory and the release removed in ONE
  transaction guarded by the touched directory keys (they must still be as when the release was
  made) and by the release's own keys. A release too large for one transaction is written in
  batches: the directory's keys first, the manifest removed last, so a promote that stops
  half-way leaves the release active, its agents unchanged, and can be run again;
- abandon: the release's keys removed, the manifest first, so its agents return to the
  directory's config at once.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from etcdadmin.core.agents.record import now_text
from etcdadmin.core.changes.changeset import (
    MAX_TXN_OPS,
    Applied,
    ChangeConflict,
    Plan,
    PlannedStep,
    apply_plan,
    name_conflicts,
)
from etcdadmin.core.changes.commands import Conflict
from etcdadmin.core.changes.desired import DesiredPlan, plan_desired
from etcdadmin.core.changes.desired_secrets import Sealer
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.releases.gray import (
    MANIFEST,
    VALUES,
    GrayRelease,
    ReleaseError,
    find_release,
)
from etcdadmin.core.releases.history import PublishNote
from etcdadmin.core.tree.directories import directory_prefix

log = logging.getLogger(__name__)


def new_release_id() -> str:
    """A readable id that sorts by time: `20261202-013912-3fa2`."""
    return time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(2)


@dataclass(frozen=True)
class ReleaseDraft:
    """A release planned but not written: the overlay and the directory as read for it."""

    release: GrayRelease
    plan: DesiredPlan
    # Directory keys as read at `plan.revision` (None: absent), for the create guards.
    before: Mapping[bytes, KeyValue | None]

    @property
    def empty(self) -> bool:
        return not self.release.puts and not self.release.deletes


def draft_release(
    conn: EtcdConnection,
    directory: bytes,
    yaml_text: str,
    *,
    agents: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    deletes: Collection[bytes] = (),
    who: str,
    secrets: Sealer | None = None,
    release_id: str | None = None,
) -> ReleaseDraft:
    """Plan a release of `directory`: the keys `yaml_text` maps to that differ from the
    directory (the file names only what changes; nothing else is removed), and `deletes`
    (directory keys, full or relative) that exist."""
    labels = dict(labels or {})
    if not agents and not labels:
        raise ReleaseError(
            "a gray release needs targets: name agent ids (--agents) or labels (--labels)"
        )
    prefix = directory_prefix(directory)
    plan = plan_desired(conn, prefix, yaml_text or "{}", prune=False, secrets=secrets)
    before: dict[bytes, KeyValue | None] = {c.key: c.before for c in plan.changes}
    wanted_deletes = []
    for name in deletes:
        key = name if name.startswith(prefix) else prefix + name
        if key in before:
            raise ReleaseError(
                f"{key.decode(errors='replace')} is both changed and deleted: pick one"
            )
        kv = conn.get(key, revision=plan.revision)
        if kv is not None:
            before[key] = kv
            wanted_deletes.append(key)
    puts = {c.key: c.after for c in plan.changes if c.after is not None}
    release = GrayRelease(
        release_id=release_id or new_release_id(),
        directory=prefix,
        agents=tuple(agents),
        labels=labels,
        who=who,
        created_at=now_text(),
        base_revision=plan.revision,
        puts=puts,
        deletes=tuple(sorted(wanted_deletes)),
        base={key: kv.mod_revision if kv else 0 for key, kv in before.items()},
    )
    return ReleaseDraft(release, plan, before)


def create_release(
    conn: EtcdConnection, draft: ReleaseDraft, *, max_txn_ops: int = MAX_TXN_OPS
) -> Applied:
    """Write the release in ONE transaction: its manifest and values, guarded by the manifest
    being absent and every touched directory key being as the draft read it."""
    release = draft.release
    if draft.empty:
        raise ReleaseError(
            "the release changes nothing: every key already holds the value the file gives"
        )
    root = release.root
    prefix = len(release.directory)
    steps = [PlannedStep(root + MANIFEST, None, release.manifest_json())]
    steps += [
        PlannedStep(root + VALUES + key[prefix:], None, value)
        for key, value in sorted(release.puts.items())
    ]
    # The manifest's absence guards the whole release: its id is new and its values are
    # written only with it (one compare rather than one per value keeps room for the keys).
    basis = [(root + MANIFEST, None), *sorted(draft.before.items())]
    plan = Plan(revision=draft.plan.revision, steps=tuple(steps), basis=tuple(basis))
    note = PublishNote(
        "gray-create",
        release.who,
        directory=release.directory,
        keys=release.keys,
        release=release.release_id,
        detail=f"to {release.describe_targets()}",
    )
    applied = apply_plan(conn, plan, max_txn_ops=max_txn_ops, record=note)
    log.info(
        "gray release created with %d keys at revision %d", len(release.keys), applied.revision
    )
    return applied


@dataclass(frozen=True)
class PromoteResult:
    """What a promote wrote: one revision per transaction; `complete` once the release is gone."""

    total_steps: int
    done_steps: int
    revisions: tuple[int, ...]

    @property
    def complete(self) -> bool:
        return self.done_steps == self.total_steps

    def describe(self) -> str:
        if not self.revisions:
            return f"nothing written (0 of {self.total_steps} writes)"
        at = ", ".join(str(r) for r in self.revisions)
        return f"{self.done_steps} of {self.total_steps} writes done at revision(s) {at}"


class ReleaseConflict(ChangeConflict):
    """Keys changed under a promote or abandon; `result` says how far it got."""

    def __init__(self, message: str, conflicts: tuple[Conflict, ...], result: PromoteResult):
        super().__init__(message, conflicts)
        self.result = result


def promote_release(
    conn: EtcdConnection,
    release_id: str,
    *,
    who: str,
    directory: bytes | None = None,
    max_txn_ops: int = MAX_TXN_OPS,
    progress: Callable[[int, int], None] | None = None,
) -> PromoteResult:
    """Write the release into its directory and remove it, in one guarded transaction when it
    fits (else batches, the manifest removed last). A touched directory key changed since the
    release was made refuses the promote with nothing written."""
    release = find_release(conn, release_id, directory)
    revision = conn.header(release.root)[0]
    current = {key: conn.get(key, revision=revision) for key in release.keys}
    moved = tuple(
        Conflict(
            key, None, current.get(key), f"changed since the release was made (revision {base})"
        )
        for key, base in release.base.items()
        if _mod_revision(current.get(key)) != base
    )
    if moved:
        raise ReleaseConflict(
            f"the directory changed under gray release {release_id}: {name_conflicts(moved)}. "
            "Nothing was written; abandon the release and create it again from the directory "
            "as it is now",
            moved,
            PromoteResult(0, 0, ()),
        )
    steps = []
    for key in release.keys:
        kv = current.get(key)
        if key in release.puts:
            # Written even when the directory already holds the value: the put carries the
            # key's guard, so a write landing between this read and the promote conflicts.
            value = release.puts[key]
            steps.append(PlannedStep(key, kv, value, kv.lease if kv else 0))
        elif kv is not None:
            steps.append(PlannedStep(key, kv, None))
    steps += _removal(release, manifest_first=False)
    note = PublishNote(
        "gray-promote", who, directory=release.directory, keys=release.keys, release=release_id
    )
    result = _write(conn, steps, revision, note, max_txn_ops, progress, "promote")
    log.info("gray release promoted: %s", result.describe())
    return result


def abandon_release(
    conn: EtcdConnection,
    release_id: str,
    *,
    who: str,
    directory: bytes | None = None,
    max_txn_ops: int = MAX_TXN_OPS,
) -> PromoteResult:
    """Remove the release; its agents return to the directory's config."""
    release = find_release(conn, release_id, directory)
    revision = max(kv.mod_revision for kv in release.stored)
    note = PublishNote(
        "gray-abandon", who, directory=release.directory, keys=release.keys, release=release_id
    )
    steps = _removal(release, manifest_first=True)
    result = _write(conn, steps, revision, note, max_txn_ops, None, "abandon")
    log.info("gray release abandoned: %s", result.describe())
    return result


def _mod_revision(kv: KeyValue | None) -> int:
    return kv.mod_revision if kv is not None else 0


def _removal(release: GrayRelease, *, manifest_first: bool) -> list[PlannedStep]:
    manifest = release.root + MANIFEST
    steps = [PlannedStep(kv.key, kv, None) for kv in release.stored if kv.key != manifest]
    last = [PlannedStep(kv.key, kv, None) for kv in release.stored if kv.key == manifest]
    return last + steps if manifest_first else steps + last


def _write(
    conn: EtcdConnection,
    steps: list[PlannedStep],
    revision: int,
    note: PublishNote,
    max_txn_ops: int,
    progress: Callable[[int, int], None] | None,
    what: str,
) -> PromoteResult:
    # One key costs one compare and one put or delete; the record one put more, in the last.
    size = max(1, max_txn_ops - 1)
    parts = [steps[i : i + size] for i in range(0, len(steps), size)]
    revisions: list[int] = []
    done = 0
    for number, part in enumerate(parts, start=1):
        plan = Plan(
            revision=revision,
            steps=tuple(part),
            basis=tuple((step.key, step.before) for step in part),
        )
        last = number == len(parts)
        try:
            applied = apply_plan(
                conn,
                plan,
                max_txn_ops=max_txn_ops,
                record=note.in_batch(number, len(parts)) if last else None,
            )
        except ChangeConflict as exc:
            result = PromoteResult(len(steps), done, tuple(revisions))
            raise ReleaseConflict(
                f"keys changed during the {what}: {name_conflicts(exc.conflicts)}. Batch "
                f"{number} of {len(parts)} wrote nothing; before it, {result.describe()}. The "
                "release stays active until its manifest is removed: look at "
                "`etcdadmin release show` and run the command again",
                exc.conflicts,
                result,
            ) from None
        revisions.append(applied.revision)
        done += len(part)
        if progress is not None:
            progress(done, len(steps))
    return PromoteResult(len(steps), done, tuple(revisions))
