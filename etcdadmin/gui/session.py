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
from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal

from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, Page, WatchEvent
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
        self.secrets = SecretKeeper(self.conn)
        self.index = KeyIndex()
        self.revision = 0
        self._follower = Follower(
            self.conn,
            b"",
            _Loader(self),
            keys_only=True,
            page_size=LOAD_PAGE,
            backoff=Backoff(cap=RETRY_CAP),
        )
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
        ):
            with contextlib.suppress(RuntimeError, TypeError):  # nothing was connected
                signal.disconnect()
        self._follower.stop()
        if self._thread is None or not self._thread.is_alive():
            self.conn.close()

    # -- loader thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._follower.run()
        finally:
            self.conn.close()


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
