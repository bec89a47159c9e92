"""The sync loop: read the directory at one revision, watch from the next, apply bursts as one.

Guarantees, and how:
- no change is missed: the read is pinned at revision R, the watch starts at R+1, and after a
  broken stream it resumes from the last revision received (events at or below what is already
  held are dropped, so replays are harmless);
- everything is re-read on compaction, a cancelled watch, a different cluster id or a revision
  that went backwards (a restored cluster), and periodically as a safety net;
- a burst is one apply: the loop waits for `debounce` of quiet (at most `debounce_max` after the
  first change) and then renders the whole directory as of the last revision received;
- a revision counts as applied only when the apply succeeded.

The first two are the core's `Follower` (etcdadmin.core.etcd.follow); this module is what the
agent does with what it follows. With `gray` it follows a second prefix, the directory's gray
releases (`watcher_agent.overlay`), on a second follower thread: both feed this loop under one
lock, the first apply waits until both have been read once (a targeted agent must not start
with the directory's config and restart again a moment later), and every apply renders the
directory's keys with this agent's releases on top. A promote changes both prefixes in one
revision, which the two watches deliver independently: while the gray prefix is ahead and the
directory as of its revision differs from what the directory's watch delivered, the apply waits
for that watch (`_directory_behind`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from etcdadmin.core.errors import EtcdAuthFailed, EtcdError, EtcdPermissionDenied, EtcdUnavailable
from etcdadmin.core.etcd import EtcdConnection, Page, WatchEvent
from etcdadmin.core.etcd.follow import Backoff, FollowConsumer, Follower
from watcher_agent.apply import Applier
from watcher_agent.metrics import Metrics
from watcher_agent.overlay import GrayReleases
from watcher_agent.status import StatusPublisher

log = logging.getLogger(__name__)

# How often an apply held back for a lagging directory watch looks again, when the debounce is
# shorter: a watch event arrives within milliseconds here, a directory read costs one Range.
BEHIND_RECHECK = 0.05


class SyncLoop(FollowConsumer):
    def __init__(
        self,
        *,
        conn: EtcdConnection,
        prefix: str,
        applier: Applier,
        status: StatusPublisher,
        metrics: Metrics,
        debounce: float,
        debounce_max: float,
        resync_interval: float,
        cluster_id: int = 0,
        clock: Callable[[], float] = time.monotonic,
        on_refused: Callable[[EtcdError], None] | None = None,
        gray_prefix: str | None = None,
        agent_id: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.conn = conn
        # Both followers call in on their own threads; applies and key updates take turns.
        self._lock = threading.RLock()
        self.gray_prefix = gray_prefix
        self.gray = (
            GrayReleases(agent_id, labels or {}, self._lock, self._gray_changed, self._tick)
            if gray_prefix
            else None
        )
        self.releases: tuple[str, ...] = ()
        self.on_refused = on_refused
        self.prefix = prefix
        self.applier = applier
        self.status = status
        self.metrics = metrics
        self.debounce = debounce
        self.debounce_max = debounce_max
        self.resync_interval = resync_interval
        self.clock = clock
        self.keys: dict[bytes, bytes] = {}
        self.seen_revision = 0
        self.cluster_id = cluster_id
        self._reading: dict[bytes, bytes] = {}
        self._pending_since: float | None = None
        self._last_event = 0.0
        # A failed apply (docker down, a rollback) is tried again with the same policy as etcd
        # reads, started at 1 s: a restart plus health check rarely settles faster than that.
        self._retry = Backoff(first=1.0, cap=30.0)
        self._retry_at: float | None = None
        # Since when an apply has been held back for the directory's watch (see _apply).
        self._behind_since: float | None = None

    def run(self, stop: threading.Event) -> None:
        gray_thread = None
        if self.gray is not None and self.gray_prefix:
            gray = self.gray
            follower = Follower(
                self.conn,
                self.gray_prefix,
                gray,
                resync_interval=self.resync_interval,
                stop=gray.stop,
                clock=self.clock,
            )
            # The gray follower stops with the loop, or alone when it may not read its prefix.
            threading.Thread(target=_stop_with, args=(stop, gray.stop), daemon=True).start()
            gray_thread = threading.Thread(target=follower.run, name="gray", daemon=True)
            gray_thread.start()
        try:
            Follower(
                self.conn,
                self.prefix,
                self,
                resync_interval=self.resync_interval,
                cluster_id=self.cluster_id,
                stop=stop,
                clock=self.clock,
            ).run()
        finally:
            if self.gray is not None:
                self.gray.stop.set()
            if gray_thread is not None:
                gray_thread.join(timeout=self.conn.settings.timeout + 1)

    # -- what the follower reports ------------------------------------------------------------

    def load_started(self) -> None:
        self._reading = {}

    def page_loaded(self, page: Page) -> None:
        assert page.values is not None  # the agent reads values
        self._reading.update(zip(page.keys, page.values, strict=True))

    def loaded(self, revision: int, cluster_id: int) -> None:
        with self._lock:
            self._loaded(revision, cluster_id)

    def _loaded(self, revision: int, cluster_id: int) -> None:
        keys, self._reading = self._reading, {}
        self.cluster_id = cluster_id
        self.applier.store.state.cluster_id = cluster_id
        self.metrics.resyncs += 1
        changed = keys != self.keys or self.seen_revision == 0
        if changed and self.seen_revision:
            log.info("re-read found changes the watch had not delivered")
        self.keys = keys
        self.seen_revision = revision
        self.metrics.seen_revision = revision
        self.status.update(etcd="ok", seen_revision=revision)
        if changed or self._pending_since is not None or self._retry_at is not None:
            self._pending_since = None
            self._apply()

    def changed(self, events: Sequence[WatchEvent], revision: int) -> None:
        with self._lock:
            self._changed(events, revision)

    def _changed(self, events: Sequence[WatchEvent], revision: int) -> None:
        for event in events:
            if event.kind == "put":
                self.keys[event.kv.key] = event.kv.value
            else:
                self.keys.pop(event.kv.key, None)
        self.seen_revision = revision
        self.metrics.seen_revision = revision
        if events:
            log.info("change at revision %d (%d key events)", revision, len(events))
            now = self.clock()
            if self._pending_since is None:
                self._pending_since = now
            self._last_event = now

    def failed(self, error: Exception) -> None:
        if isinstance(error, EtcdUnavailable):
            self.status.update(etcd="unreachable")
        elif isinstance(error, EtcdPermissionDenied | EtcdAuthFailed) and self.on_refused:
            # Retrying cannot help until an administrator changes the grants or the password;
            # the agent says so once and exits (the container's restart policy retries).
            self.on_refused(error)

    def recovered(self) -> None:
        self.status.update(etcd="ok")

    def tick(self) -> float | None:
        with self._lock:
            return self._tick()

    def _gray_changed(self, revision: int) -> None:
        """The gray releases changed (or were read): a burst like a directory change."""
        now = self.clock()
        if self._pending_since is None:
            self._pending_since = now
        self._last_event = now

    def _tick(self) -> float | None:
        self.metrics.tick()
        now = self.clock()
        if self._pending_since is not None and (
            now - self._last_event >= self.debounce
            or now - self._pending_since >= self.debounce_max
        ):
            self._pending_since = None
            self._apply()
        elif self._retry_at is not None and now >= self._retry_at:
            self._apply()
        deadlines = []
        if self._pending_since is not None:
            deadlines.append(
                min(self._last_event + self.debounce, self._pending_since + self.debounce_max)
            )
        if self._retry_at is not None:
            deadlines.append(self._retry_at)
        return min(deadlines, default=None)

    # -- applying -----------------------------------------------------------------------------

    def _apply(self) -> None:
        keys, revision = self.keys, self.seen_revision
        releases: tuple[str, ...] = ()
        if self.gray is not None:
            if not self.gray.ready or not self.seen_revision:
                # Wait for both reads: the gray follower's `loaded` asks for the apply again.
                return
            if self._directory_behind():
                return
            keys, releases = self.gray.apply_to(self.keys)
            # One etcd revision counter for both prefixes: the newer says what was seen.
            revision = max(revision, self.gray.revision)
        outcome = self.applier.apply(keys, revision)
        if outcome.result == "ok" and releases != self.releases:
            self.releases = releases
            log.info("running %d gray releases", len(releases))
            self.status.update(releases=releases)
        if outcome.retry:
            delay = self._retry.next()
            self._retry_at = self.clock() + delay
            log.info("will retry in %.0fs", delay)
        else:
            self._retry_at = None
            self._retry.reset()

    def _directory_behind(self) -> bool:
        """Whether the directory's watch has yet to deliver a revision the gray one already has;
        if so, the apply is tried again shortly.

        A promote writes the release's keys into the directory and removes the release at ONE
        revision, but the two watch streams deliver it independently. Applied with the gray
        half alone, a targeted agent would render the directory without the release's values:
        a restart onto the old config, then another back. So while the gray prefix is ahead,
        the directory is read as of the gray revision; when that differs from what its watch
        delivered, the apply waits for the watch (at most `debounce_max`, then it goes ahead
        with what was delivered, as it would without this check).
        """
        assert self.gray is not None
        if self.gray.revision <= self.seen_revision:
            self._behind_since = None
            return False
        now = self.clock()
        first = self._behind_since is None
        if self._behind_since is None:
            self._behind_since = now
        elif now - self._behind_since >= self.debounce_max:
            log.warning("the directory's watch stays behind the gray releases'; applying anyway")
            self._behind_since = None
            return False
        try:
            snapshot = self.conn.read_prefix(self.prefix, revision=self.gray.revision)
        except EtcdError:
            # Cannot tell (etcd down, revision compacted): apply what was delivered, as before.
            self._behind_since = None
            return False
        if {kv.key: kv.value for kv in snapshot.items} == self.keys:
            self._behind_since = None
            return False
        if first:
            log.info("the directory's watch is behind the gray releases'; waiting for it")
        self._retry_at = now + max(self.debounce, BEHIND_RECHECK)
        return True


def _stop_with(stop: threading.Event, other: threading.Event) -> None:
    stop.wait()
    other.set()
