"""Continuous protection: record every change etcd makes into delta objects between full
backups, so a prefix can be put back as it was at any moment (`point_in_time`).

`follow_backup` starts from the newest full backup of the cluster whose export covers the
prefix (or takes one first) and watches from the revision right after it, through the one
read-then-watch loop (`etcdadmin.core.etcd.follow.Follower`). Changes are buffered and stored
as one delta every `flush_seconds` or `flush_events`, whichever comes first. When the watch
cannot resume where it stopped (etcd compacted past it, a restored or different cluster), the
follower reads again and a new full backup is taken: the chain of deltas starts over from it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from etcdadmin.core.backup.catalog import Catalog
from etcdadmin.core.backup.create import BackupOptions, create_backup
from etcdadmin.core.backup.deltas import Change, DeltaIndex, FollowStatus, iso_precise, store_delta
from etcdadmin.core.backup.location import Location
from etcdadmin.core.backup.manifest import CatalogEntry
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.follow import Backoff, FollowConsumer, Follower
from etcdadmin.core.etcd.watch import WatchEvent

log = logging.getLogger(__name__)

# A re-read after a gap only learns the revision: keys without values, in large pages.
REREAD_PAGE_SIZE = 50_000


@dataclass(frozen=True)
class FollowOptions:
    prefix: str = ""
    flush_seconds: float = 2.0
    flush_events: int = 10_000
    # idle, the status is written (and reported) this often, so its reader sees it alive
    status_seconds: float = 10.0


def covers(entry_prefix: str, prefix: str) -> bool:
    """Whether a backup exported under `entry_prefix` holds every key under `prefix`."""
    return prefix.startswith(entry_prefix)


def newest_base(location: Location, cluster_id: str, prefix: str) -> CatalogEntry | None:
    """The newest complete backup of the cluster whose export holds the prefix."""
    candidates = [
        e
        for e in Catalog(location).entries()
        if e.cluster_id == cluster_id and covers(e.prefix, prefix)
    ]
    return max(candidates, key=lambda e: e.revision, default=None)


class DeltaRecorder(FollowConsumer):
    """Buffers watch events and stores them as deltas; reports its recovery point.

    `report(status)` is called, on the follower's thread, after each stored delta, each full
    backup, and every `options.status_seconds` while no delta is stored.
    """

    def __init__(
        self,
        conn: EtcdConnection,
        location: Location,
        cluster_id: str,
        base: CatalogEntry,
        options: FollowOptions,
        report: Callable[[FollowStatus], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.location = location
        self.cluster_id = cluster_id
        self.base = base
        self.options = options
        self.report = report
        self.clock = clock
        self.index = DeltaIndex(location, cluster_id)
        # everything up to `stored` is in the base backup or a delta
        self.stored = base.revision
        self.received = base.revision
        self.pending: list[Change] = []
        self._pending_since: float | None = None
        self._pending_wall: datetime | None = None
        self.deltas_written = 0
        self._last_status = clock()
        self.new_backups: list[str] = []

    # -- FollowConsumer -----------------------------------------------------------------------

    def loaded(self, revision: int, cluster_id: int) -> None:
        # Only a gap brings a full read here (the follower starts from the base's revision):
        # the deltas can no longer be chained to the base, so a new full backup starts over.
        self.flush()
        log.warning(
            "the watch could not resume (compaction, or a restored or different cluster): "
            "taking a new full backup"
        )
        manifest = create_backup(
            self.conn, self.location, BackupOptions(prefix=self.options.prefix)
        )
        self.cluster_id = manifest.cluster_id
        self.index = DeltaIndex(self.location, manifest.cluster_id)
        self.base = CatalogEntry.of(manifest)
        self.new_backups.append(manifest.id)
        # events after the read's revision arrive next; those up to the backup's are in it too
        self.stored = self.received = revision
        self.write_status("new-full-backup")

    def changed(self, events: Sequence[WatchEvent], revision: int) -> None:
        if events:
            now = datetime.now(UTC)
            stamp = iso_precise(now)
            if not self.pending:
                self._pending_since, self._pending_wall = self.clock(), now
            for event in events:
                kv = event.kv
                value = None if event.kind == "delete" else kv.value
                self.pending.append(Change(kv.key, value, kv.mod_revision, stamp))
        self.received = max(self.received, revision)
        if len(self.pending) >= self.options.flush_events:
            self.flush()
        elif not self.pending:
            # a progress notification: nothing pending, so everything up to it is stored
            self.stored = self.received

    def tick(self) -> float | None:
        now = self.clock()
        due: float | None = None
        if self._pending_since is not None:
            due = self._pending_since + self.options.flush_seconds
            if now >= due:
                self.flush()
                due = None
        if now - self._last_status >= self.options.status_seconds:
            self.write_status("pending" if self.pending else "idle")
        wanted = self._last_status + self.options.status_seconds
        return wanted if due is None else min(due, wanted)

    # -- storing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Store what is buffered as one delta (nothing when nothing is)."""
        if not self.pending:
            return
        # kept buffered until stored: a failed upload (Swift away) is retried with them
        changes = list(self.pending)
        to_revision = max(self.received, changes[-1].mod_revision)
        entry = store_delta(
            self.location,
            self.cluster_id,
            self.stored,
            to_revision,
            changes,
            datetime.now(UTC),
        )
        self.index.add(entry)
        del self.pending[: len(changes)]
        self.stored = to_revision
        self._pending_since = self._pending_wall = None
        self.deltas_written += 1
        log.debug("stored a delta of %d changes", len(changes))
        self.write_status("flushed")

    def status(self, event: str = "checked") -> FollowStatus:
        now = datetime.now(UTC)
        point = self._pending_wall or now
        return FollowStatus(
            cluster_id=self.cluster_id,
            prefix=self.options.prefix,
            base_backup=self.base.id,
            revision=self.stored,
            point_time=iso_precise(point),
            checked_at=iso_precise(now),
            lag_seconds=round((now - point) / timedelta(seconds=1), 3),
            pending_changes=len(self.pending),
            deltas_written=self.deltas_written,
            event=event,
        )

    def write_status(self, event: str) -> None:
        status = self.status(event)
        self.index.write_status(status)
        self._last_status = self.clock()
        if self.report is not None:
            self.report(status)


def follow_backup(
    conn: EtcdConnection,
    location: Location,
    options: FollowOptions = FollowOptions(),
    *,
    report: Callable[[FollowStatus], None] | None = None,
    stop: threading.Event | None = None,
    on_follower: Callable[[Follower], None] | None = None,
) -> FollowStatus:
    """Record every change under the prefix until `stop` is set; flushes what is buffered
    before returning the last status. `on_follower` receives the follower (to stop it from a
    signal handler)."""
    location.prepare()
    _, cluster = conn.header(options.prefix)
    cluster_id = f"{cluster:016x}"
    base = newest_base(location, cluster_id, options.prefix)
    if base is None:
        log.info("no full backup of this cluster holds the prefix: taking one first")
        manifest = create_backup(conn, location, BackupOptions(prefix=options.prefix))
        base = CatalogEntry.of(manifest)
    recorder = DeltaRecorder(conn, location, cluster_id, base, options, report)
    follower = Follower(
        conn,
        options.prefix,
        recorder,
        keys_only=True,
        page_size=REREAD_PAGE_SIZE,
        backoff=Backoff(),
        cluster_id=cluster,
        start_revision=base.revision,
        stop=stop,
    )
    if on_follower is not None:
        on_follower(follower)
    log.info("following from the full backup's revision")
    recorder.write_status("started")
    try:
        follower.run()
    finally:
        recorder.flush()
    recorder.write_status("stopped")
    return recorder.status("stopped")
