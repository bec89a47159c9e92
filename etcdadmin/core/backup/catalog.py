"""The catalog: one object (`catalog.json`) listing every complete backup of a location, so
listing 10,000 backups reads one object instead of 10,000 manifests.

Every command that adds, verifies or removes a backup updates it. It is rebuilt from the
manifests when missing or unreadable, and brought up to date cheaply when stale: backup ids
sort by the time a backup started, so one listing per cluster of the ids from a day
(`CATCH_UP`) before the newest one the catalog knows on finds a backup whose writer stopped
between its manifest and the catalog, or whose entry another writer's catalog replaced (two
writers at once may each miss the other's): the manifest of each id listed there and missing
from the catalog is read. The day back is what lets a backup that started before the newest
one, and ended after it, be found too; one missing that started earlier still needs a rebuild
(`backup ls --rebuild`). The other way round, an entry another writer's catalog brought back
after its backup was removed stays listed until `backup rm` (see `prune.remove_backup`) or a
rebuild drops it, and a verification mark lost that way is not recovered.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from etcdadmin.core.backup.errors import BackupDamaged
from etcdadmin.core.backup.location import CATALOG_NAME, Location
from etcdadmin.core.backup.manifest import (
    TIME_FORMAT,
    BackupManifest,
    CatalogEntry,
    iso,
    manifest_name,
    utc_now,
)

log = logging.getLogger(__name__)

FORMAT = 1
_CLUSTER = re.compile(r"^[0-9a-f]{16}$")
# A backup's name under its cluster (`manifest.backup_id`); anything else there (the deltas of
# continuous protection) is no backup and has no manifest to read.
_BACKUP = re.compile(r"^\d{8}T\d{6}Z-r\d+$")
# How far before the newest backup it knows the catalog looks for backups it lacks: one that
# started more than this before a later one that reached the catalog first, and whose writer
# died before its catalog write (or whose entry another writer's catalog replaced), waits for
# `backup ls --rebuild`.
CATCH_UP = timedelta(days=1)


class Catalog:
    def __init__(self, location: Location) -> None:
        self.location = location

    def entries(self, *, rebuild: bool = False) -> list[CatalogEntry]:
        """Every complete backup, oldest first."""
        return self._current(rebuild=rebuild)

    def rebuild(self) -> list[CatalogEntry]:
        """The catalog made again from every manifest in the location."""
        return self._current(rebuild=True)

    def find(self, backup: str) -> CatalogEntry | None:
        return next((e for e in self.entries() if e.id == backup), None)

    def add(self, manifest: BackupManifest) -> None:
        """List a backup whose manifest is written: one read of the catalog and one write.

        Backups another writer left out are caught up on the way, as `entries` does, but the
        new backup's own manifest is not read back and the catalog is not written twice: of
        a Swift backup's closing requests (after the last segment), this was six round trips
        and is four. The new backup is added from its manifest in hand, never from a listing,
        which Swift may give before it shows the manifest just written.
        """
        self._current(new=CatalogEntry.of(manifest))

    def remove(self, backups: set[str]) -> set[str]:
        """Drop `backups` from the catalog; returns those it listed (written only then)."""
        entries = self.entries()
        listed = {e.id for e in entries} & backups
        if listed:
            self._save([e for e in entries if e.id not in listed])
        return listed

    def mark_verified(self, backup: str, when: str | None = None) -> None:
        stamp = when or iso(utc_now())
        entries = []
        for e in self.entries():
            if e.id == backup:
                e = CatalogEntry(**{**e.as_dict(), "verified_at": stamp})
            entries.append(e)
        self._save(entries)

    # -- storage ------------------------------------------------------------------------------

    def _current(
        self, *, rebuild: bool = False, new: CatalogEntry | None = None
    ) -> list[CatalogEntry]:
        """The catalog read (made again from the manifests when `rebuild`, missing or
        unreadable), brought up to date, with `new` in it: written once when that changed it."""
        skip = new.id if new is not None else ""
        adding = [new] if new is not None else []
        loaded = None if rebuild else self._load()
        if loaded is None:
            found, clusters = self._from_manifests(skip)
            if not clusters and not adding:
                # an empty location (perhaps no Swift container yet): reading creates nothing
                return []
            return self._save([*found, *adding])
        missing = self._missing_from(loaded, skip)
        if missing:
            log.info("catalog was stale; adding backups found by their manifests")
        if not (missing or adding):
            return loaded
        return self._save([*loaded, *missing, *adding])

    def _from_manifests(self, skip: str = "") -> tuple[list[CatalogEntry], list[str]]:
        """Every complete backup found by its manifest (`skip`: an id not to read), and the
        clusters listed."""
        log.info("rebuilding the backup catalog from the manifests")
        entries = []
        clusters = self._clusters()
        for cluster in clusters:
            for stamp in self.location.children(f"{cluster}/"):
                if f"{cluster}/{stamp}" == skip or not _BACKUP.match(stamp):
                    continue
                entry = self._entry_of(f"{cluster}/{stamp}")
                if entry is not None:
                    entries.append(entry)
        return entries, clusters

    def _clusters(self) -> list[str]:
        return [name for name in self.location.children("") if _CLUSTER.match(name)]

    def _entry_of(self, backup: str) -> CatalogEntry | None:
        data = self.location.read_small(manifest_name(backup))
        if data is None:
            return None  # incomplete: an upload stopped before its manifest
        try:
            return CatalogEntry.of(BackupManifest.from_json(data, manifest_name(backup)))
        except BackupDamaged:
            log.warning("a manifest is unreadable; its backup is left out of the catalog")
            return None

    def _missing_from(self, entries: list[CatalogEntry], skip: str = "") -> list[CatalogEntry]:
        """Complete backups missing from `entries`, listed from `CATCH_UP` before each
        cluster's newest entry on (`skip`: an id not to read)."""
        known = {e.id for e in entries}
        newest: dict[str, str] = {}
        for e in entries:
            cluster, _, stamp = e.id.partition("/")
            newest[cluster] = max(newest.get(cluster, ""), stamp)
        found = []
        for cluster in self._clusters():
            after = _earlier(newest.get(cluster, ""), CATCH_UP)
            for stamp in self.location.children(f"{cluster}/", after=after):
                backup = f"{cluster}/{stamp}"
                if backup in known or backup == skip or not _BACKUP.match(stamp):
                    continue
                entry = self._entry_of(backup)
                if entry is not None:
                    found.append(entry)
        return found

    def _load(self) -> list[CatalogEntry] | None:
        data = self.location.read_small(CATALOG_NAME)
        if data is None:
            return None
        try:
            raw: dict[str, Any] = json.loads(data)
            if raw.get("format") != FORMAT:
                return None
            return [CatalogEntry(**item) for item in raw["backups"]]
        except (ValueError, TypeError, KeyError):
            log.warning("the backup catalog is unreadable; rebuilding it")
            return None

    def _save(self, entries: list[CatalogEntry]) -> list[CatalogEntry]:
        ordered = sorted(
            {e.id: e for e in entries}.values(), key=lambda e: (e.created, e.revision, e.id)
        )
        body = {
            "format": FORMAT,
            "updated": iso(utc_now()),
            "backups": [e.as_dict() for e in ordered],
        }
        self.location.write_small(CATALOG_NAME, json.dumps(body, indent=1).encode("utf-8"))
        return ordered


def _earlier(stamp: str, by: timedelta) -> str:
    """A listing marker `by` before the backup stamp `stamp` (`20261202T153104Z-r7814`); the
    stamp itself when it is not one."""
    try:
        moment = datetime.strptime(stamp.partition("-")[0], TIME_FORMAT).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return stamp
    return (moment - by).strftime(TIME_FORMAT)
