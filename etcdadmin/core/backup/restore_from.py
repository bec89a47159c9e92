"""Restoring from a stored backup: the one flow the CLI and the client share.

Online: `plan_from_backup` reads the backup's key export back (checked against the SHA-256 its
manifest recorded before anything is planned), keeps the keys of one directory or one key, and
plans against live etcd (`restore_online.plan_restore`); `restore_from_backup` takes a safety
backup of what it is about to overwrite (the export alone, into the same location) and then
writes the plan in guarded batches (`restore_online.apply_restore`).

Point in time: `plan_at` rebuilds a prefix as it was at a moment from a full backup and the
deltas `backup follow` recorded (`point_in_time.state_at`) and plans it the same way, so
`restore_from_backup` writes it with the same safety backup, progress and cancel.

Disaster recovery: `recover_from_backup` downloads the snapshot, checks it as `verify` does,
and makes the data directories with etcd's own tool (`disaster.restore_snapshot`).

An encrypted backup is opened on the way (`encryption.opener_for`): with the identities
given, else the operator's own from the OS keyring when the backup was encrypted to it. When
none opens it, BackupLocked names its recipients before anything is written.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from etcdadmin.core.backup.create import BackupOptions, create_backup
from etcdadmin.core.backup.disaster import RecoveredCluster, RestoredMember, restore_snapshot
from etcdadmin.core.backup.errors import BackupError
from etcdadmin.core.backup.export import ExportRecord
from etcdadmin.core.backup.location import Location
from etcdadmin.core.backup.manifest import EXPORT, SNAPSHOT, BackupManifest, StoredObject
from etcdadmin.core.backup.point_in_time import PointInTimeState, state_at
from etcdadmin.core.backup.restore_online import (
    RestorePlan,
    RestoreReport,
    apply_restore,
    plan_restore,
)
from etcdadmin.core.backup.verify import (
    download_verified,
    export_records,
    load_manifest,
    opener_of,
)
from etcdadmin.core.changes.desired import plan_state
from etcdadmin.core.errors import MappingError
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.releases.history import PublishNote, publisher
from etcdadmin.core.tree.directories import directory_prefix
from etcdadmin.core.tree.names import display_segment

log = logging.getLogger(__name__)


class BackupNotUsable(BackupError):
    """The backup cannot restore what was asked (no export or snapshot, another prefix)."""


@dataclass(frozen=True)
class BackupRestorePlan:
    """A restore planned from one stored backup: which one, and what it writes.

    `key` is set when a single key is restored (then `plan.prefix` is that key);
    `point_in_time` when the state was rebuilt by `plan_at` (then `backup` is its base)."""

    backup: BackupManifest
    plan: RestorePlan
    key: bytes | None = None
    point_in_time: PointInTimeState | None = None

    @property
    def target(self) -> bytes:
        """The directory prefix or the key the restore rewrites (and the safety backup keeps)."""
        return self.key if self.key is not None else self.plan.prefix

    @property
    def source(self) -> str:
        """Where the restored state comes from, as the release history records it."""
        state = self.point_in_time
        if state is None:
            return f"backup {self.backup.id}"
        return f"point in time: revision {state.revision} from {state.base_backup}"


def plan_from_backup(
    conn: EtcdConnection,
    location: Location,
    backup: str,
    *,
    directory: bytes | None = None,
    key: bytes | None = None,
    identities: Sequence[object] | None = None,
) -> BackupRestorePlan:
    """What restoring `directory` (or the single `key`) from `backup` would write now;
    `identities` open it when it is encrypted (default: the operator's, see the module).

    Raises BackupNotFound, BackupNotUsable (no export, or the export does not cover what was
    asked), BackupLocked (encrypted, and no identity at hand opens it), BackupDamaged (the
    export differs from its manifest: nothing planned).
    """
    if (directory is None) == (key is None):
        raise MappingError("restore either a directory or a single key: name one of them")
    manifest = load_manifest(location, backup)
    stored = _export_of(manifest)
    wanted = key if key is not None else directory_prefix(directory or b"")
    covered = manifest.prefix.encode("utf-8")
    if not wanted.startswith(covered):
        raise BackupNotUsable(
            f"backup {backup} exported only the keys under {manifest.prefix}: restore "
            f"{display_segment(wanted)} from a backup that holds it (`etcdadmin backup ls`)"
        )
    records = _read_export(
        export_records(location, manifest, stored, identities), wanted, exact=key is not None
    )
    if key is None:
        plan = plan_restore(conn, wanted, records, backup_revision=manifest.revision)
        return BackupRestorePlan(manifest, plan)
    if not records:
        raise BackupNotUsable(
            f"{display_segment(key)} did not exist when backup {backup} was taken: nothing to "
            "put back; delete it (`etcdadmin del`) if it should go, or restore its directory"
        )
    value = records[0].value
    # The key itself as the prefix read, without pruning: keys that merely start with it stay.
    differences = plan_state(conn, key, lambda: {key: value}, prune=False)
    return BackupRestorePlan(manifest, RestorePlan(key, manifest.revision, differences), key)


def plan_at(
    conn: EtcdConnection,
    location: Location,
    prefix: str,
    *,
    at_time: datetime | None = None,
    at_revision: int | None = None,
    identities: Sequence[object] | None = None,
) -> BackupRestorePlan:
    """What putting the keys under `prefix` back as they were at `at_time` (aware, any zone)
    or `at_revision` would write now, from the backups and deltas of the cluster `conn`
    talks to.

    `prefix` is taken as given (no `/` added), as `backup follow` recorded it. Raises
    PointInTimeUnavailable when no full backup and chain of deltas reaches that moment; an
    encrypted base backup is opened as `plan_from_backup` opens one.
    """
    _, cluster = conn.header(prefix)
    state = state_at(
        location,
        prefix,
        at_time=at_time,
        at_revision=at_revision,
        cluster_id=f"{cluster:016x}",
        identities=identities,
    )
    manifest = load_manifest(location, state.base_backup)
    wanted = prefix.encode("utf-8")
    plan = plan_restore(conn, wanted, state.records, backup_revision=state.revision)
    return BackupRestorePlan(manifest, plan, point_in_time=state)


def take_safety_backup(
    conn: EtcdConnection, location: Location, target: bytes, recipients: Sequence[str] = ()
) -> BackupManifest:
    """The keys under `target` as they are now, exported into `location` (no snapshot): what
    a restore overwrites can be restored again from it. Encrypted to `recipients` when given:
    restoring an encrypted backup leaves no plain copy of what it replaced."""
    try:
        prefix = target.decode("utf-8")
    except UnicodeDecodeError:
        raise BackupNotUsable(
            f"{display_segment(target)} is not UTF-8, which backups name prefixes in: back it "
            "up with `etcdctl get --prefix` before restoring it"
        ) from None
    options = BackupOptions(prefix=prefix, snapshot=False, recipients=tuple(recipients))
    manifest = create_backup(conn, location, options)
    log.info("safety backup taken before a restore")
    return manifest


def restore_from_backup(
    conn: EtcdConnection,
    location: Location,
    planned: BackupRestorePlan,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    on_safety_backup: Callable[[BackupManifest], None] | None = None,
) -> RestoreReport:
    """Take the safety backup, then write the plan (see `restore_online.apply_restore` for
    conflicts, interruptions and cancel). The report's `safety_backup` is its manifest;
    `on_safety_backup` hears of it before the first write."""

    def safety() -> BackupManifest:
        recipients = planned.backup.encrypted_to
        manifest = take_safety_backup(conn, location, planned.target, recipients)
        if on_safety_backup is not None:
            on_safety_backup(manifest)
        return manifest

    # recorded in the release history with the write (a key alone: under the key's directory)
    note = PublishNote(
        "restore",
        publisher(conn.settings),
        directory=None if planned.key is not None else planned.target,
        detail=planned.source,
    )
    return apply_restore(
        conn,
        planned.plan,
        before_write=safety,
        progress=progress,
        cancel=cancel,
        record=note,
    )


def recover_from_backup(
    location: Location,
    backup: str,
    members: Sequence[RestoredMember],
    *,
    bump_revision: int | None = None,
    identities: Sequence[object] | None = None,
) -> RecoveredCluster:
    """Download and check the backup's snapshot next to the first data dir (opened on the
    way when encrypted, see the module), then restore it into one data dir per member with
    etcd's tool; the downloaded file is removed after."""
    manifest = load_manifest(location, backup)
    stored = manifest.object(SNAPSHOT)
    if stored is None:
        raise BackupNotUsable(
            f"backup {backup} holds no snapshot (an export only, such as a safety backup): "
            "restore a directory from it with --prefix, or pick a full backup"
        )
    if not members:
        raise BackupNotUsable("name at least one member to restore the snapshot into")
    opener = opener_of(manifest, stored, identities)
    # Next to the data dir: the same disk, and no copy of the whole database in /tmp.
    parent = members[0].data_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".etcdadmin-snapshot-", dir=parent) as folder:
        path = Path(folder, "snapshot.db")
        # opened here when encrypted: etcd's tool reads a plain file (0600, removed below)
        download_verified(location, stored, path, opener)
        if bump_revision is None:
            return restore_snapshot(path, members)
        return restore_snapshot(path, members, bump_revision=bump_revision)


# -- the export, read back ------------------------------------------------------------------


def _export_of(manifest: BackupManifest) -> StoredObject:
    stored = manifest.object(EXPORT)
    if stored is None:
        raise BackupNotUsable(
            f"backup {manifest.id} has no key export (taken with --no-export): restore it "
            "whole with --data-dir, or pick another backup"
        )
    return stored


def _read_export(
    records: Iterator[ExportRecord], wanted: bytes, *, exact: bool
) -> list[ExportRecord]:
    """The export's keys under `wanted` (or equal to it, `exact`), in key order, once its
    stored bytes have matched the manifest's SHA-256 and size (see `export_records`)."""
    kept = [r for r in records if (r.key == wanted if exact else r.key.startswith(wanted))]
    log.info("backup export read back: %d keys kept", len(kept))
    return kept
