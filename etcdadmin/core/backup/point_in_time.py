"""A prefix as it was at a moment (or a revision), from a full backup and the deltas after it;
and one key's versions across every backup and delta (history past etcd's compaction).

The state at TIME is the newest full backup taken at or before TIME whose export holds the
prefix, plus every change the deltas recorded after the backup's revision and at or before
TIME. It is trusted only when the deltas chain without a gap from the backup's revision and
the follower was known to be recording at TIME; otherwise `PointInTimeUnavailable` says which
moments can be restored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from etcdadmin.core.backup.catalog import Catalog
from etcdadmin.core.backup.continuous import covers
from etcdadmin.core.backup.deltas import DAY_FORMAT, DeltaEntry, DeltaIndex, parse_time, read_delta
from etcdadmin.core.backup.errors import BackupAborted, BackupError, BackupLocked, BackupNotFound
from etcdadmin.core.backup.export import ExportRecord
from etcdadmin.core.backup.location import Location
from etcdadmin.core.backup.manifest import EXPORT, CatalogEntry
from etcdadmin.core.backup.verify import export_records, load_manifest

log = logging.getLogger(__name__)


class PointInTimeUnavailable(BackupError):
    """No full backup and chain of deltas reaches the moment asked for."""


@dataclass(frozen=True)
class StateRecord:
    """One key of the reconstructed state (what `restore_online.plan_restore` takes)."""

    key: bytes
    value: bytes


@dataclass(frozen=True)
class PointInTimeState:
    """The prefix at the moment asked for: `records` sorted by key; `revision` is the newest
    change applied (the base backup's revision when no delta applied)."""

    prefix: str
    base_backup: str
    revision: int
    deltas_used: int
    changes_applied: int
    records: tuple[StateRecord, ...]


@dataclass(frozen=True)
class BackupKeyVersion:
    """One version of a key found in a full backup or a delta; `value` None is a delete.
    `time` is when the change was recorded (deltas) or the backup was taken (full backups)."""

    revision: int
    time: str
    value: bytes | None
    source: str


@dataclass(frozen=True)
class KeyHistoryInBackups:
    """What `key_history_from_backups` found: the versions, newest first, and the encrypted
    backups that could not be searched (no identity given opens them), so that a caller says
    what it did not look at instead of showing less without a word."""

    versions: list[BackupKeyVersion]
    unsearched: tuple[str, ...] = ()


def _clusters(entries: list[CatalogEntry]) -> list[str]:
    return sorted({e.cluster_id for e in entries})


def _pick_cluster(entries: list[CatalogEntry], cluster_id: str | None) -> str:
    if cluster_id:
        return cluster_id
    clusters = _clusters(entries)
    if len(clusters) != 1:
        raise PointInTimeUnavailable(
            f"the location holds backups of {len(clusters)} clusters: connect to the one to "
            "restore (its cluster id picks its backups)"
        )
    return clusters[0]


def _export_records(
    location: Location, entry: CatalogEntry, identities: Sequence[object] | None
) -> Iterator[ExportRecord]:
    """The base backup's export, record by record, checked against its manifest once the
    last has been read (`export_records`); an encrypted one opened with `identities`
    (default: the operator's own from the OS keyring, see `opener_for`)."""
    manifest = load_manifest(location, entry.id)
    stored = manifest.object(EXPORT)
    if stored is None:
        raise PointInTimeUnavailable(
            f"the backup {entry.id} has no key export (taken with --no-export): pick a moment "
            "after a backup with one"
        )
    return export_records(location, manifest, stored, identities)


def _chain(entries: list[DeltaEntry], start: int) -> Iterator[DeltaEntry]:
    """The deltas that continue, without a gap, from revision `start`."""
    covered = start
    for entry in entries:
        if entry.to_revision <= covered:
            continue
        if entry.from_revision > covered:
            return
        yield entry
        covered = entry.to_revision


def state_at(
    location: Location,
    prefix: str,
    *,
    at_time: datetime | None = None,
    at_revision: int | None = None,
    cluster_id: str | None = None,
    identities: Sequence[object] | None = None,
) -> PointInTimeState:
    """The keys under `prefix` as of `at_time` (aware, any zone) or `at_revision`; an
    encrypted base backup is opened with `identities` (deltas are stored plain)."""
    if (at_time is None) == (at_revision is None):
        raise ValueError("give exactly one of at_time and at_revision")
    entries = Catalog(location).entries()
    cluster = _pick_cluster(entries, cluster_id)
    bases = [
        e
        for e in entries
        if e.cluster_id == cluster
        and covers(e.prefix, prefix)
        and (
            parse_time(e.created) <= at_time
            if at_time is not None
            else e.revision <= (at_revision or 0)
        )
    ]
    if not bases:
        raise PointInTimeUnavailable(
            f"no full backup of cluster {cluster} holding {prefix or 'every key'} was taken "
            "before that moment: the oldest restorable point is its oldest backup "
            "(see `etcdadmin backup ls`)"
        )
    base = max(bases, key=lambda e: e.revision)
    index = DeltaIndex(location, cluster)
    since_day = parse_time(base.created).strftime(DAY_FORMAT)
    chain = list(_chain(index.entries(since_day), base.revision))
    _check_reached(index, base, chain, at_time, at_revision)
    state: dict[bytes, bytes] = {}
    wanted = prefix.encode("utf-8")
    # Only the prefix's keys are kept as the export streams by: a 100,000-key export held
    # whole raised the process's peak from 61 to 94 MiB, and grows with the cluster.
    for record in _export_records(location, base, identities):
        if record.key.startswith(wanted):
            state[record.key] = record.value
    revision, applied, used = base.revision, 0, 0
    for entry in chain:
        if at_time is not None and parse_time(entry.first_time) > at_time:
            break
        if at_revision is not None and entry.from_revision >= at_revision:
            break
        used += 1
        for change in read_delta(location, entry):
            if change.mod_revision <= base.revision:
                continue
            if at_time is not None and parse_time(change.time) > at_time:
                break
            if at_revision is not None and change.mod_revision > at_revision:
                break
            revision = change.mod_revision
            if not change.key.startswith(wanted):
                continue
            applied += 1
            if change.value is None:
                state.pop(change.key, None)
            else:
                state[change.key] = change.value
    log.info("reconstructed a prefix from a full backup and %d deltas", used)
    records = tuple(StateRecord(k, state[k]) for k in sorted(state))
    return PointInTimeState(prefix, base.id, revision, used, applied, records)


def _check_reached(
    index: DeltaIndex,
    base: CatalogEntry,
    chain: list[DeltaEntry],
    at_time: datetime | None,
    at_revision: int | None,
) -> None:
    """Raise unless the base and its chain of deltas are known to hold every change up to
    the moment asked for."""
    end_revision = chain[-1].to_revision if chain else base.revision
    end_time = parse_time(chain[-1].stored_at) if chain else parse_time(base.created)
    status = index.read_status()
    if status is not None and status.revision == end_revision:
        # the follower stated that every change before `point_time` was stored, and stored
        # changes end where this chain ends: nothing happened in between
        end_time = max(end_time, parse_time(status.point_time))
    if at_revision is not None and at_revision <= end_revision:
        return
    if at_time is not None and at_time <= end_time:
        return
    raise PointInTimeUnavailable(
        f"the backup {base.id} and its deltas reach revision {end_revision} at "
        f"{end_time.isoformat()} only (a gap, or `backup follow` was not running): pick an "
        "earlier moment, or start `etcdadmin backup follow`"
    )


def key_history_from_backups(
    location: Location,
    key: bytes,
    *,
    cluster_id: str | None = None,
    identities: Sequence[object] | None = None,
    cancel: threading.Event | None = None,
    operator_identity: bool = False,
) -> KeyHistoryInBackups:
    """`key`'s versions found in the full backups and the deltas, newest first, each revision
    once. A full backup shows the version live when it was taken; deltas show every change,
    deletes included. Encrypted backups are searched with `identities` and, with
    `operator_identity`, the operator's own from the OS keyring (read once, only when an
    encrypted backup is met); those none of them opens are named in `unsearched`.

    `cancel`, once set, stops the search before its next download with BackupAborted (each
    backup's whole export is downloaded and checked: a minute or more with many large ones)."""
    entries = Catalog(location).entries()
    if not entries:
        return KeyHistoryInBackups([])
    cluster = _pick_cluster(entries, cluster_id)
    found: dict[int, BackupKeyVersion] = {}
    unsearched: list[str] = []
    keys: list[object] | None = None if operator_identity else list(identities or ())
    text = key.decode("utf-8", errors="replace")
    for entry in entries:
        if entry.cluster_id != cluster or not covers(entry.prefix, text):
            continue
        if entry.encrypted and keys is None:
            # Imported here: only an encrypted backup needs the keyring.
            from etcdadmin.core.secrets.operator import with_operator_identity

            keys = with_operator_identity(identities or ())
        if entry.encrypted and not keys:
            # one without a key export would not be searched with an identity either
            if load_manifest(location, entry.id).object(EXPORT) is not None:
                unsearched.append(entry.id)
            continue
        _check(cancel)
        # every record is read (the export is checked once its last one is in), one kept;
        # identities that open none of its recipients are told by age as the read starts
        try:
            kept = [
                BackupKeyVersion(record.mod_revision, entry.created, record.value, entry.id)
                for record in _export_records(location, entry, keys if entry.encrypted else None)
                if record.key == key
            ]
        except BackupLocked:
            unsearched.append(entry.id)
            continue
        except (PointInTimeUnavailable, BackupNotFound):
            continue
        for version in kept:
            found.setdefault(version.revision, version)
    for delta in DeltaIndex(location, cluster).entries():
        _check(cancel)
        for change in read_delta(location, delta):
            if change.key == key:
                # a delta knows when the change happened: it wins over a backup's time
                found[change.mod_revision] = BackupKeyVersion(
                    change.mod_revision, change.time, change.value, delta.name
                )
    versions = sorted(found.values(), key=lambda v: v.revision, reverse=True)
    return KeyHistoryInBackups(versions, tuple(unsearched))


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise BackupAborted("the search of the backups was stopped")
