"""Follow a prefix: read it whole at one revision, then watch it from the next one.

The one read-then-watch loop of etcdadmin; the watcher agent and the desktop client's loader
plug into it through `FollowConsumer`. Guarantees, and how:
- no change is missed: the read is pinned at revision R (every page at R), the watch starts at
  R+1, and after a broken stream it resumes from the last revision received; events at or below
  what is already held are dropped, so the replays of a resumed watch are harmless;
- everything is read again on compaction past the held revision, a watch etcd cancelled, a
  different cluster id or a revision that went backwards (a cluster restored from a snapshot:
  etcd 3.4 cannot bump revisions on restore), and, if asked, every `resync_interval` seconds;
- failures are ridden out with one policy (`Backoff`), and the consumer keeps receiving ticks
  while the follower waits, so its timers (a debounce, a health check) keep running.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from etcdadmin.core.errors import EtcdError, EtcdUnavailable, RevisionCompacted, WatchCancelled
from etcdadmin.core.etcd.client import PAGE_SIZE, EtcdConnection
from etcdadmin.core.etcd.records import Page
from etcdadmin.core.etcd.watch import WatchBatch, WatchEvent, WatchStream, pump

log = logging.getLogger(__name__)

# The longest the follower goes without ticking its consumer (the agent's /healthz reads these
# ticks as "the loop is alive").
TICK = 1.0


class Backoff:
    """The retry policy for anything that failed and will be tried again: wait `first`
    seconds, then twice as long after each further failure, never more than `cap`; `reset()`
    after a success. With the defaults: 0.5, 1, 2, 4, 8, 16, 30, 30, ... seconds.

    Hand-written rather than taken from a retry library (tenacity, backoff): those wrap a call
    and sleep inside it, while the follower must keep ticking its consumer while it waits.
    """

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self._current = first, cap, first

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the one after it."""
        delay, self._current = self._current, min(self.cap, self._current * 2)
        return delay

    def reset(self) -> None:
        self._current = self.first


class FollowConsumer:
    """What a follower reports to, on the follower's thread. Every method may be left as is.

    A full read is `load_started`, `page_loaded` per page, then `loaded`; a read that is
    interrupted (failure, stop) never reaches `loaded`, and the next one starts afresh.
    """

    def load_started(self) -> None:
        """A full read begins: drop what was held, pages follow."""

    def page_loaded(self, page: Page) -> None:
        """One page of the full read (every page at the same revision)."""

    def loaded(self, revision: int, cluster_id: int) -> None:
        """The full read is complete, as of `revision`; watching starts at `revision + 1`."""

    def changed(self, events: Sequence[WatchEvent], revision: int) -> None:
        """Watch events newer than anything held (possibly none: a progress notification),
        and the revision up to which everything has now been received."""

    def failed(self, error: Exception) -> None:
        """etcd failed (or a consumer method raised); the follower retries after a backoff."""

    def recovered(self) -> None:
        """Back in sync after failures (read again, or the watch resumed)."""

    def tick(self) -> float | None:
        """Called at least every `TICK` seconds, also while backing off. Returns the time (on
        the follower's clock) by which it wants to be called again, or None."""
        return None


class _MustReread(Exception):
    pass


class Follower:
    """Keeps a `FollowConsumer` in step with every key under `prefix` until stopped.

    `keys_only` reads keys without values; `page_size` bounds one Range call (the client uses
    smaller pages than the core's default to keep its UI smooth). `cluster_id` is the cluster
    last followed, if known (the agent keeps it across restarts), so a different one is noticed.
    `start_revision`, with `cluster_id`, resumes from a state the consumer already holds (a
    backup taken at that revision): the first read is skipped and the watch starts right after
    it; if etcd compacted past it, the follower reads everything as usual.
    """

    def __init__(
        self,
        conn: EtcdConnection,
        prefix: str | bytes,
        consumer: FollowConsumer,
        *,
        keys_only: bool = False,
        page_size: int = PAGE_SIZE,
        resync_interval: float | None = None,
        backoff: Backoff | None = None,
        cluster_id: int = 0,
        start_revision: int = 0,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.prefix = prefix if isinstance(prefix, bytes) else prefix.encode("utf-8")
        self.consumer = consumer
        self.keys_only = keys_only
        self.page_size = page_size
        self.resync_interval = resync_interval
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.revision = start_revision if cluster_id else 0
        self.cluster_id = cluster_id
        self._stop = stop or threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._inbox: queue.SimpleQueue[WatchBatch | BaseException] | None = None
        self._next_resync: float | None = None
        self._wanted: float | None = None

    @property
    def name(self) -> str:
        return self.prefix.decode("utf-8", errors="replace") or "all keys"

    def stop(self) -> None:
        """End `run()` soon; callable from any thread, never blocks on the network."""
        self._stop.set()
        with self._stream_lock:
            if self._stream is not None:
                self._stream.close()
            if self._inbox is not None:
                # A stream closed on purpose ends quietly: wake the wait on its inbox now.
                self._inbox.put(_MustReread("stopped"))

    def run(self) -> None:
        """Follow until `stop()` (or the stop event given) is set."""
        need_full, failing = not self.revision, False
        while not self._stop.is_set():
            try:
                if need_full:
                    if not self._read():
                        return
                    need_full = False
                else:
                    self._check_same_history()
                self.backoff.reset()
                if failing:
                    failing = False
                    self.consumer.recovered()
                self._watch()
            except (RevisionCompacted, WatchCancelled, _MustReread) as exc:
                log.warning("%s; re-reading %s", exc, self.name)
                need_full = True
            except Exception as exc:
                if self._stop.is_set():
                    return
                delay = self.backoff.next()
                if isinstance(exc, EtcdUnavailable):
                    log.warning("%s; retrying in %.1fs", exc, delay)
                elif isinstance(exc, EtcdError):
                    log.error("%s; re-reading everything in %.1fs", exc, delay)
                    need_full = True
                else:
                    # Last line of defence: a follower that dies leaves its consumer stale.
                    # The traceback names code, not values (no locals are logged).
                    log.exception("unexpected error; re-reading everything in %.1fs", delay)
                    need_full = True
                failing = True
                self.consumer.failed(exc)
                self._sleep(delay)

    # -- reading ----------------------------------------------------------------------------

    def _read(self) -> bool:
        """Read everything at one revision; False when stopped before the end."""
        self.consumer.load_started()
        revision, cluster_id, count = 0, 0, 0
        pages = self.conn.iter_plain_pages(
            self.prefix, keys_only=self.keys_only, page_size=self.page_size
        )
        for page in pages:
            if self._stop.is_set():
                return False
            self.consumer.page_loaded(page)
            revision, cluster_id, count = page.revision, page.cluster_id, count + len(page.keys)
        if self.cluster_id and cluster_id != self.cluster_id:
            log.warning(
                "etcd cluster id changed (%x -> %x): a different or restored cluster",
                self.cluster_id,
                cluster_id,
            )
        elif revision < self.revision:
            log.warning(
                "etcd revision went backwards (%d -> %d): the cluster was restored",
                self.revision,
                revision,
            )
        self.revision, self.cluster_id = revision, cluster_id
        if self.resync_interval is not None:
            self._next_resync = self.clock() + self.resync_interval
        log.info("read %d keys under %s at revision %d", count, self.name, revision)
        self.consumer.loaded(revision, cluster_id)
        return True

    def _check_same_history(self) -> None:
        """After a broken stream: resume only if this is still the history being followed."""
        revision, cluster_id = self.conn.header(self.prefix)
        if cluster_id != self.cluster_id:
            raise _MustReread(f"etcd cluster id changed ({self.cluster_id:x} -> {cluster_id:x})")
        if revision < self.revision:
            raise _MustReread(
                f"etcd revision went backwards ({self.revision} -> {revision}): "
                "the cluster was restored"
            )

    # -- watching ---------------------------------------------------------------------------

    def _watch(self) -> None:
        stream = self.conn.watch_prefix(self.prefix, self.revision + 1)
        with self._stream_lock:
            if self._stop.is_set():
                stream.close()
                return
            self._stream = stream
            self._inbox = inbox = pump(stream)
        log.info("watching %s from revision %d", self.name, self.revision + 1)
        try:
            while not self._stop.is_set():
                # Tick first: the agent's /healthz counts the loop alive from its first tick.
                self._wanted = self.consumer.tick()
                try:
                    item = inbox.get(timeout=self._wait_time())
                except queue.Empty:
                    item = None
                if isinstance(item, BaseException):
                    if self._stop.is_set():
                        return
                    raise item
                if item is not None:
                    fresh = [e for e in item.events if e.kv.mod_revision > self.revision]
                    self.revision = max(self.revision, item.revision)
                    self.consumer.changed(fresh, self.revision)
                if self._next_resync is not None and self.clock() >= self._next_resync:
                    raise _MustReread("periodic safety re-read")
        finally:
            stream.close()
            with self._stream_lock:
                self._stream, self._inbox = None, None

    def _wait_time(self, until: float | None = None) -> float:
        now = self.clock()
        deadlines = [now + TICK, self._next_resync if until is None else until]
        if self._wanted is not None:
            deadlines.append(self._wanted)
        return max(0.0, min(d for d in deadlines if d is not None) - now)

    def _sleep(self, delay: float) -> None:
        """Back off, still ticking the consumer: waiting is the loop working, not stalling."""
        deadline = self.clock() + delay
        while not self._stop.is_set() and self.clock() < deadline:
            self._wanted = self.consumer.tick()
            self._stop.wait(self._wait_time(until=deadline))
