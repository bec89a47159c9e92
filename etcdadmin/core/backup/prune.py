"""Removing backups: one (`remove_backup`), by retention policy (`prune`), and the leftovers
of uploads that never finished (segments and objects under an id without a manifest).

A backup is removed manifest first: from then on it is incomplete and never listed, so a
crash in the middle leaves leftovers for the next prune, never a backup that looks whole.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from etcdadmin.core.backup.catalog import Catalog
from etcdadmin.core.backup.deltas import DeltaIndex, is_delta_name
from etcdadmin.core.backup.errors import BackupError, BackupNotFound
from etcdadmin.core.backup.location import ListedObject, Location
from etcdadmin.core.backup.manifest import MANIFEST_NAME, CatalogEntry, id_of, manifest_name
from etcdadmin.core.backup.retention import RetentionPolicy, kept
from etcdadmin.core.backup.verify import load_manifest

log = logging.getLogger(__name__)

# An upload in progress writes a segment every few seconds; one silent for an hour is dead.
LEFTOVER_AGE = 3600.0


@dataclass(frozen=True)
class PruneResult:
    removed: tuple[str, ...]
    kept: tuple[str, ...]
    # ids of incomplete backups whose leftovers were (or, dry run, would be) removed
    leftovers: tuple[str, ...]
    dry_run: bool


def remove_backup(location: Location, backup: str, *, catalog: Catalog | None = None) -> None:
    catalog = catalog or Catalog(location)
    try:
        manifest = load_manifest(location, backup)
    except BackupNotFound:
        # Removed already, and listed again by another writer's catalog, written from a copy
        # read before the removal: the entry goes; there is nothing else left to delete.
        if not catalog.remove({backup}):
            raise
        log.info("a removed backup's catalog entry dropped")
        return
    location.delete(ListedObject(manifest_name(backup), 0, 0.0))
    for stored in manifest.objects:
        location.delete(ListedObject(stored.name, stored.size, 0.0))
    catalog.remove({backup})
    log.info("backup removed")


def prune(
    location: Location,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    leftover_age: float = LEFTOVER_AGE,
) -> PruneResult:
    if policy.empty:
        raise BackupError(
            "prune needs a policy: --keep-last N and/or --keep-daily/--keep-weekly/--keep-monthly"
        )
    catalog = Catalog(location)
    entries = catalog.entries()
    keep = kept(entries, policy)
    doomed = [e.id for e in entries if e.id not in keep]
    leftovers = _leftovers(location, leftover_age)
    if not dry_run:
        for backup in doomed:
            remove_backup(location, backup, catalog=catalog)
        for items in leftovers.values():
            # whole objects first: deleting a Swift SLO takes its segments with it
            for item in sorted(items, key=lambda i: i.segment):
                location.delete(item)
        _prune_deltas(location, [e for e in entries if e.id in keep])
    return PruneResult(
        removed=tuple(doomed),
        kept=tuple(e.id for e in entries if e.id in keep),
        leftovers=tuple(sorted(leftovers)),
        dry_run=dry_run,
    )


def _prune_deltas(location: Location, kept_entries: list[CatalogEntry]) -> None:
    """Deltas are replayed on top of a full backup: those that end at or before the oldest
    kept backup of their cluster can no longer be used, and go."""
    oldest: dict[str, int] = {}
    for e in kept_entries:
        oldest[e.cluster_id] = min(oldest.get(e.cluster_id, e.revision), e.revision)
    for cluster, revision in oldest.items():
        removed = DeltaIndex(location, cluster).remove_before(revision)
        if removed:
            log.info("removed %d deltas older than the oldest kept backup", removed)


def _leftovers(location: Location, age: float) -> dict[str, list[ListedObject]]:
    """What incomplete backups left behind, by id, when nothing was written for `age` s."""
    by_id: dict[str, list[ListedObject]] = defaultdict(list)
    complete: set[str] = set()
    for item in location.list_all():
        backup = id_of(item.name)
        if backup is None or is_delta_name(item.name):
            # deltas have no backup manifest: their own index lists them
            continue
        if not item.segment and item.name == f"{backup}/{MANIFEST_NAME}":
            complete.add(backup)
        by_id[backup].append(item)
    cutoff = time.time() - age
    return {
        backup: items
        for backup, items in by_id.items()
        if backup not in complete and max(i.modified for i in items) < cutoff
    }
