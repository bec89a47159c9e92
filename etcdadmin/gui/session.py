"""One connected etcd: the key index kept current by a background loader and watch.

The loader thread is the core's `Follower` over the whole key space: it reads every key (keys
only, in pages, so a million keys never hit gRPC's message limit), then watches from the
revision it read at, resuming or re-reading after failures. Watch events are coalesced for
`COALESCE_SECONDS` and merged into the index on the loader thread (the index rebuilds its list
aside and swaps it in under its lock), so a burst of 10,000 changes costs the UI thread a model
refresh of the directories it shows, not a merge.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from PySide6.QtCore import QObject, Signal

from etcdadmin.core.access.permits import Permits, read_permits
from etcdadmin.core.access.visible import readable_ranges
from etcdadmin.core.errors import EtcdAdminError, EtcdError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, Page, WatchEvent, prefix_end
from etcdadmin.core.etcd.follow import Backoff, FollowConsumer, Follower
from etcdadmin.core.tree.index import KeyIndex
from etcdadmin.gui.secrets.keeper import SecretKeeper

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.2
# Smaller than the core's default page: parsing one response holds the GIL, and so stalls the
# UI thread, for as long as it takes (100k keys: ~100 ms measured; 25k keys: a quarter).
LOAD_PAGE = 25_000
# A person is waiting on the window: retry sooner than the agent's 30 s cap.
RETRY_CAP = 10.0

T = TypeVar("T")


class Session(QObject):
    """A connection plus its live key index.

    Signals:
        load_started(object): a (re)load begins into this new, empty KeyIndex; drop what
            was shown, pages follow.
        page_loaded(int, int, bool): keys loaded so far, the revision they were read at,
            and whether that was the last page.
        keys_changed(object): the set of keys (set[bytes]) a coalesced watch batch changed;
            the index already holds the change.
        revision_changed(int): the newest revision seen.
        failed(str): the loader lost etcd; it retries by itself.
        recovered(): the loader is back in sync after a failure.
        permits_known(object): the Permits of the connection's user, read once before loading.
        partial(object): the user may read only these prefixes (tuple[bytes, ...]); only they
            are loaded.
    """

    load_started = Signal(object)
    page_loaded = Signal(int, int, bool)
    keys_changed = Signal(object)
    revision_changed = Signal(int)
    failed = Signal(str)
    recovered = Signal()
    permits_known = Signal(object)
    partial = Signal(object)

    def __init__(self, settings: ConnectionSettings, name: str) -> None:
        super().__init__()
        self.settings = settings
        self.name = name
        self.conn = EtcdConnection(settings)
        self.secrets = SecretKeeper(self.conn)
        self.index = KeyIndex()
        self.revision = 0
        self.permits: Permits | None = None
        # Every follower watches this: a close stops them all, even one not yet made.
        self._stop = threading.Event()
        self._followers: list[Follower] = []
        self._followers_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="etcd-loader", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop without waiting: the UI thread never joins a thread that may be in a network
        call. The loader closes the connection itself on its way out; its late signals are
        cut off here so they cannot overwrite what the next session shows."""
        for signal in (
            self.load_started,
            self.page_loaded,
            self.keys_changed,
            self.revision_changed,
            self.failed,
            self.recovered,
            self.permits_known,
            self.partial,
        ):
            with contextlib.suppress(RuntimeError, TypeError):  # nothing was connected
                signal.disconnect()
        self._stop.set()
        with self._followers_lock:
            for follower in self._followers:
                follower.stop()
        if self._thread is None or not self._thread.is_alive():
            self.conn.close()

    # -- loader thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            permits = self._read_permits()
            if permits is None:
                return
            self.permits = permits
            self.permits_known.emit(permits)
            if permits.everything:
                self._follow(b"", _Loader(self)).run()
                return
            prefixes = self._readable_prefixes()
            if prefixes is not None:
                self._follow_each(prefixes)
        finally:
            self.conn.close()

    def _follow(self, prefix: bytes, consumer: FollowConsumer) -> Follower:
        follower = Follower(
            self.conn,
            prefix,
            consumer,
            keys_only=True,
            page_size=LOAD_PAGE,
            backoff=Backoff(cap=RETRY_CAP),
            stop=self._stop,
        )
        with self._followers_lock:
            self._followers.append(follower)
        if self._stop.is_set():
            follower.stop()
        return follower

    def _retrying(self, what: str, read: Callable[[], T]) -> T | None:
        """`read()` until it succeeds (None once closed), reporting failures as the loader
        does: a person waits on the window, so the same backoff as the followers'."""
        backoff, failing = Backoff(cap=RETRY_CAP), False
        while not self._stop.is_set():
            try:
                result = read()
            except EtcdError as exc:
                log.warning("could not read %s; retrying", what)
                if not failing:
                    failing = True
                    self.failed.emit(str(exc))
                self._stop.wait(backoff.next())
                continue
            if failing:
                self.recovered.emit()
            return result
        return None

    def _read_permits(self) -> Permits | None:
        return self._retrying("the user's permissions", lambda: read_permits(self.conn))

    def _readable_prefixes(self) -> tuple[bytes, ...] | None:
        ranges = self._retrying(
            "the user's readable ranges", lambda: readable_ranges(self.conn, b"")
        )
        if ranges is None:
            return None
        # A grant on one key (an agent's status key) cannot be followed as a prefix: etcd
        # refuses a watch on a range wider than the grant. Nested prefixes load once.
        prefixes = sorted(r.key for r in ranges if r.range_end and r.range_end == prefix_end(r.key))
        kept: list[bytes] = []
        for prefix in prefixes:
            if not any(prefix.startswith(outer) for outer in kept):
                kept.append(prefix)
        return tuple(kept)

    def _follow_each(self, prefixes: tuple[bytes, ...]) -> None:
        """One follower per readable prefix, on threads of their own, into one index."""
        log.info("the user may read %d prefixes only; following each", len(prefixes))
        self.partial.emit(prefixes)
        self.load_started.emit(self.index)
        progress = _RangeProgress(self, len(prefixes))
        if not prefixes:
            self.page_loaded.emit(0, 0, True)
            self._stop.wait()
            return
        threads = [
            threading.Thread(
                target=self._follow(prefix, _RangeLoader(self, prefix, progress)).run,
                name="etcd-loader-range",
                daemon=True,
            )
            for prefix in prefixes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


class _Loader(FollowConsumer):
    """Turns what the follower reports into the session's index and signals (loader thread)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.index = session.index
        self.failing = False
        self.puts: set[bytes] = set()
        self.deletes: set[bytes] = set()
        self.first_pending = 0.0

    def load_started(self) -> None:
        # Free what earlier loads left behind (reference cycles of a previous tree) now, while
        # the new index is empty: collected after a million keys are loaded, the same pass
        # walked their lists and held the GIL, so stalled the UI thread, for 113 ms.
        gc.collect()
        self.index = self.session.index = KeyIndex()
        self.puts, self.deletes, self.first_pending = set(), set(), 0.0
        self.session.load_started.emit(self.index)

    def page_loaded(self, page: Page) -> None:
        self.index.extend_sorted(page.keys)
        # Out of the collector's reach as they arrive: a full pass over a half-loaded index
        # stalled the UI thread for up to 90 ms (1,000,000 keys). This freezes nothing the
        # freeze at the end of the load would not; objects freed by reference counting are
        # freed frozen or not.
        gc.freeze()
        self.session.page_loaded.emit(len(self.index), page.revision, False)

    def loaded(self, revision: int, cluster_id: int) -> None:
        self.session.page_loaded.emit(len(self.index), revision, True)
        # The index's objects live as long as the session: keep the collector's full passes
        # from walking them again and again (each pass stalls the UI thread). What was garbage
        # before this load was collected when it started.
        gc.freeze()
        self.session.revision = revision
        self.session.revision_changed.emit(revision)

    def changed(self, events: Sequence[WatchEvent], revision: int) -> None:
        for event in events:
            if event.kind == "put":
                self.puts.add(event.kv.key)
                self.deletes.discard(event.kv.key)
            else:
                self.deletes.add(event.kv.key)
                self.puts.discard(event.kv.key)
        self.session.revision = max(self.session.revision, revision)
        if events and not self.first_pending:
            self.first_pending = time.monotonic()

    def tick(self) -> float | None:
        if not self.first_pending:
            return None
        if time.monotonic() - self.first_pending < COALESCE_SECONDS:
            return self.first_pending + COALESCE_SECONDS
        changed = self.puts | self.deletes
        self.index.apply(puts=self.puts, deletes=self.deletes)
        self.puts, self.deletes, self.first_pending = set(), set(), 0.0
        self.session.keys_changed.emit(changed)
        self.session.revision_changed.emit(self.session.revision)
        return None

    def failed(self, error: Exception) -> None:
        if not self.failing:
            self.failing = True
            if isinstance(error, EtcdAdminError):
                self.session.failed.emit(str(error))
            else:
                self.session.failed.emit(f"internal error in the key loader: {error}")

    def recovered(self) -> None:
        self.failing = False
        self.session.recovered.emit()


class _RangeProgress:
    """Whether every prefix of a partial load has been read once (any follower's thread).

    Every progress signal of a partial load goes out from here under one lock, and none after
    the last: emitted outside it, one prefix's "loading keys ... N" could be queued after
    another's final "N keys loaded" and replace it in the status bar (seen with two readable
    prefixes: the load done, the status bar saying it was still loading)."""

    def __init__(self, session: Session, count: int) -> None:
        self.session = session
        self.waiting = count
        self.lock = threading.Lock()

    def page_loaded(self, revision: int) -> None:
        with self.lock:
            if self.waiting:
                self.session.page_loaded.emit(len(self.session.index), revision, False)

    def first_loaded(self, revision: int) -> None:
        with self.lock:
            self.waiting -= 1
            last = self.waiting == 0
            self.session.page_loaded.emit(len(self.session.index), revision, last)
        if last:
            gc.freeze()


class _RangeLoader(_Loader):
    """One readable prefix of a partial load: its keys go into the session's shared index
    (so pages are merged, not appended), and a re-read replaces only this prefix's keys."""

    def __init__(self, session: Session, prefix: bytes, progress: _RangeProgress) -> None:
        super().__init__(session)
        self.prefix = prefix
        self.progress = progress
        self.loaded_once = False
        self.before: set[bytes] = set()
        self.seen: set[bytes] = set()

    def load_started(self) -> None:
        self.puts, self.deletes, self.first_pending = set(), set(), 0.0
        self.before = set(self.index.keys_under(self.prefix))
        self.seen = set()

    def page_loaded(self, page: Page) -> None:
        self.index.apply(puts=page.keys)
        self.seen.update(page.keys)
        if not self.loaded_once:
            self.progress.page_loaded(page.revision)

    def loaded(self, revision: int, cluster_id: int) -> None:
        gone = self.before - self.seen
        if gone:
            self.index.apply(deletes=gone)
        with self.progress.lock:
            self.session.revision = max(self.session.revision, revision)
        if not self.loaded_once:
            self.loaded_once = True
            self.progress.first_loaded(revision)
        else:
            self.session.keys_changed.emit(gone | (self.seen - self.before))
        self.session.revision_changed.emit(self.session.revision)
