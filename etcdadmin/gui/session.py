"""One connected etcd: the key index kept current by a background loader and watch.

The loader thread reads every key (keys only, in pages, so a million keys never hit gRPC's
message limit) and then watches the whole key space from the revision it read at. Watch events
are coalesced for `COALESCE_SECONDS` and merged into the index on the loader thread (the index
rebuilds its list aside and swaps it in under its lock), so a burst of 10,000 changes costs the
UI thread a model refresh of the directories it shows, not a merge.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import threading
import time

from PySide6.QtCore import QObject, Signal

from etcdadmin.core.errors import EtcdAdminError, RevisionCompacted
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.etcd.watch import WatchStream, pump
from etcdadmin.core.tree.index import KeyIndex

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.2
# Smaller than the core's default page: parsing one response holds the GIL, and so stalls the
# UI thread, for as long as it takes (100k keys: ~100 ms measured; 25k keys: a quarter).
LOAD_PAGE = 25_000


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
    """

    load_started = Signal(object)
    page_loaded = Signal(int, int, bool)
    keys_changed = Signal(object)
    revision_changed = Signal(int)
    failed = Signal(str)
    recovered = Signal()

    def __init__(self, settings: ConnectionSettings, name: str) -> None:
        super().__init__()
        self.settings = settings
        self.name = name
        self.conn = EtcdConnection(settings)
        self.index = KeyIndex()
        self.revision = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream_lock = threading.Lock()
        self._stream: WatchStream | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="etcd-loader", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop without waiting: the UI thread never joins a thread that may be in a network
        call. The loader closes the connection itself on its way out; its late signals are
        cut off here so they cannot overwrite what the next session shows."""
        self._stop.set()
        for signal in (
            self.load_started,
            self.page_loaded,
            self.keys_changed,
            self.revision_changed,
            self.failed,
            self.recovered,
        ):
            with contextlib.suppress(RuntimeError, TypeError):  # nothing was connected
                signal.disconnect()
        with self._stream_lock:
            if self._stream is not None:
                self._stream.close()
        if self._thread is None or not self._thread.is_alive():
            self.conn.close()

    # -- loader thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self.conn.close()

    def _loop(self) -> None:
        delay = 0.5
        failing = False
        while not self._stop.is_set():
            try:
                keys = self._load()
                if failing:
                    self.recovered.emit()
                    failing = False
                delay = 0.5
                self._follow(keys)
            except RevisionCompacted:
                continue  # fell behind the compaction point: read everything again
            except EtcdAdminError as exc:
                if self._stop.is_set():
                    return
                if not failing:
                    self.failed.emit(str(exc))
                failing = True
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
            except Exception as exc:  # never let the loader die silently
                log.exception("key loader failed")
                self.failed.emit(f"internal error in the key loader: {exc}")
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _load(self) -> KeyIndex:
        index = KeyIndex()
        self.index = index
        self.load_started.emit(index)
        revision = 0
        for revision, keys in self.conn.iter_key_pages(b"", page_size=LOAD_PAGE):
            index.extend_sorted(keys)
            self.page_loaded.emit(len(index), revision, False)
            if self._stop.is_set():
                break
        self.page_loaded.emit(len(index), revision, True)
        # The index's objects live as long as the session: keep the collector's full passes
        # from walking them again and again (each pass stalls the UI thread). Collect first,
        # so the previous session's tree (reference cycles) is freed, not frozen forever.
        gc.collect()
        gc.freeze()
        self.revision = revision
        self.revision_changed.emit(revision)
        return index

    def _follow(self, index: KeyIndex) -> None:
        stream = self.conn.watch_prefix(b"", self.revision + 1)
        with self._stream_lock:
            self._stream = stream
        pending_puts: set[bytes] = set()
        pending_deletes: set[bytes] = set()
        first_pending = 0.0
        inbox = pump(stream)
        try:
            while not self._stop.is_set():
                wait = COALESCE_SECONDS
                if first_pending:
                    wait = max(0.0, first_pending + COALESCE_SECONDS - time.monotonic())
                try:
                    item = inbox.get(timeout=wait)
                except queue.Empty:
                    item = None
                if isinstance(item, BaseException):
                    if self._stop.is_set():
                        return
                    raise item  # the caller reloads everything: nothing pending is lost
                if item is not None:
                    for event in item.events:
                        if event.kind == "put":
                            pending_puts.add(event.kv.key)
                            pending_deletes.discard(event.kv.key)
                        else:
                            pending_deletes.add(event.kv.key)
                            pending_puts.discard(event.kv.key)
                    self.revision = max(self.revision, item.revision)
                    if item.events and not first_pending:
                        first_pending = time.monotonic()
                if first_pending and time.monotonic() - first_pending >= COALESCE_SECONDS:
                    changed = pending_puts | pending_deletes
                    index.apply(puts=pending_puts, deletes=pending_deletes)
                    pending_puts, pending_deletes = set(), set()
                    first_pending = 0.0
                    self.keys_changed.emit(changed)
                    self.revision_changed.emit(self.revision)
        finally:
            stream.close()
            with self._stream_lock:
                self._stream = None
