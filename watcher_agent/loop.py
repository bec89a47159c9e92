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
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from etcdadmin.core.errors import (
    EtcdError,
    EtcdUnavailable,
    RevisionCompacted,
    WatchCancelled,
)
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.watch import WatchBatch, pump
from watcher_agent.apply import Applier
from watcher_agent.metrics import Metrics
from watcher_agent.status import StatusPublisher

log = logging.getLogger(__name__)

TICK = 1.0
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)


class Backoff:
    """0.5 s doubling to 30 s; reset after a success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self.current = first, cap, first

    def next(self) -> float:
        delay, self.current = self.current, min(self.cap, self.current * 2)
        return delay

    def reset(self) -> None:
        self.current = self.first


class _NeedsResync(Exception):
    pass


class SyncLoop:
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
    ) -> None:
        self.conn = conn
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
        self._pending_since: float | None = None
        self._last_event = 0.0
        self._retry_at: float | None = None
        self._retry_index = 0
        self._next_resync = 0.0

    # -- top level --------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        backoff = Backoff()
        need_full = True
        while not stop.is_set():
            try:
                if need_full:
                    self._resync()
                    need_full = False
                else:
                    self._check_same_history()
                backoff.reset()
                self._watch(stop)
            except (RevisionCompacted, WatchCancelled, _NeedsResync) as exc:
                log.warning("%s; re-reading %s", exc, self.prefix)
                need_full = True
            except EtcdUnavailable as exc:
                delay = backoff.next()
                log.warning("%s; retrying in %.1fs", exc, delay)
                self.status.update(etcd="unreachable")
                self._sleep(stop, delay)
            except EtcdError as exc:
                delay = backoff.next()
                log.error("%s; retrying in %.1fs", exc, delay)
                need_full = True
                self._sleep(stop, delay)
            except Exception:
                # Last line of defence: an agent that dies leaves the service unwatched. The
                # traceback names code, not values (no locals are logged).
                delay = backoff.next()
                log.exception("unexpected error; re-reading everything in %.1fs", delay)
                need_full = True
                self._sleep(stop, delay)

    def _sleep(self, stop: threading.Event, delay: float) -> None:
        """Wait, still ticking /healthz: backing off is the loop working, not stalling."""
        deadline = self.clock() + delay
        while not stop.is_set() and self.clock() < deadline:
            self.metrics.tick()
            stop.wait(min(TICK, max(0.0, deadline - self.clock())))

    def _resync(self) -> None:
        snapshot = self.conn.read_prefix(self.prefix)
        if self.cluster_id and snapshot.cluster_id != self.cluster_id:
            log.warning(
                "etcd cluster id changed (%x -> %x): a different or restored cluster",
                self.cluster_id,
                snapshot.cluster_id,
            )
        elif snapshot.revision < self.seen_revision:
            log.warning(
                "etcd revision went backwards (%d -> %d): the cluster was restored",
                self.seen_revision,
                snapshot.revision,
            )
        self.cluster_id = snapshot.cluster_id
        self.applier.store.state.cluster_id = snapshot.cluster_id
        self.metrics.resyncs += 1
        self._next_resync = self.clock() + self.resync_interval
        changed = snapshot.as_dict() != self.keys or self.seen_revision == 0
        if changed and self.seen_revision:
            log.info("re-read found changes the watch had not delivered")
        self.keys = snapshot.as_dict()
        self.seen_revision = snapshot.revision
        self.metrics.seen_revision = snapshot.revision
        log.info(
            "read %d keys under %s at revision %d", len(self.keys), self.prefix, snapshot.revision
        )
        self.status.update(etcd="ok", seen_revision=snapshot.revision)
        if changed or self._pending_since is not None or self._retry_at is not None:
            self._pending_since = None
            self._apply()

    def _check_same_history(self) -> None:
        """After a broken stream: resume only if this is still the history we were following."""
        revision, cluster_id = self.conn.header(self.prefix)
        if cluster_id != self.cluster_id:
            raise _NeedsResync(f"etcd cluster id changed ({self.cluster_id:x} -> {cluster_id:x})")
        if revision < self.seen_revision:
            raise _NeedsResync(
                f"etcd revision went backwards ({self.seen_revision} -> {revision}): "
                "the cluster was restored"
            )
        self.status.update(etcd="ok")

    # -- watching ---------------------------------------------------------------------------

    def _watch(self, stop: threading.Event) -> None:
        stream = self.conn.watch_prefix(self.prefix, self.seen_revision + 1)
        inbox = pump(stream)
        log.info("watching %s from revision %d", self.prefix, self.seen_revision + 1)
        try:
            while not stop.is_set():
                self.metrics.tick()
                try:
                    item = inbox.get(timeout=self._wait_time())
                except queue.Empty:
                    item = None
                if isinstance(item, BaseException):
                    raise item
                if item is not None:
                    self._take(item)
                now = self.clock()
                if self._pending_since is not None and (
                    now - self._last_event >= self.debounce
                    or now - self._pending_since >= self.debounce_max
                ):
                    self._pending_since = None
                    self._apply()
                elif self._retry_at is not None and now >= self._retry_at:
                    self._apply()
                if self.clock() >= self._next_resync:
                    raise _NeedsResync("periodic safety re-read")
        finally:
            stream.close()

    def _wait_time(self) -> float:
        now = self.clock()
        deadlines = [now + TICK, self._next_resync]
        if self._pending_since is not None:
            deadlines.append(
                min(self._last_event + self.debounce, self._pending_since + self.debounce_max)
            )
        if self._retry_at is not None:
            deadlines.append(self._retry_at)
        return max(0.0, min(deadlines) - now)

    def _take(self, batch: WatchBatch) -> None:
        changed = 0
        for event in batch.events:
            if event.kv.mod_revision <= self.seen_revision:
                continue  # already held (a replay after resuming)
            if event.kind == "put":
                self.keys[event.kv.key] = event.kv.value
            else:
                self.keys.pop(event.kv.key, None)
            changed += 1
        if batch.revision > self.seen_revision:
            self.seen_revision = batch.revision
            self.metrics.seen_revision = batch.revision
        if changed:
            log.info("change at revision %d (%d key events)", batch.revision, changed)
            now = self.clock()
            if self._pending_since is None:
                self._pending_since = now
            self._last_event = now

    def _apply(self) -> None:
        outcome = self.applier.apply(self.keys, self.seen_revision)
        if outcome.retry:
            delay = RETRY_DELAYS[min(self._retry_index, len(RETRY_DELAYS) - 1)]
            self._retry_index += 1
            self._retry_at = self.clock() + delay
            log.info("will retry in %.0fs", delay)
        else:
            self._retry_at = None
            self._retry_index = 0
