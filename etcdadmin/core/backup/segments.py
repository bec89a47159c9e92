"""Cutting one stream into segments and storing them in parallel, with bounded memory.

The producer (the snapshot stream, the export) calls `write`; whole segments go through a
bounded queue to N worker threads, each storing one segment at a time. At most
N + QUEUE_DEPTH + 2 segments are in memory (the one being gathered is joined into one bytes
object, briefly twice its size), whatever the database's size, and nothing is written to a
temporary file. The SHA-256 of the whole object is taken here, in stream order.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable

from etcdadmin.core.backup.errors import BackupAborted
from etcdadmin.core.backup.location import ObjectUpload
from etcdadmin.core.backup.manifest import Segment, StoredObject

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_SEGMENT_SIZE = 32 * MiB
# Two uploads at once keep the test Swift (one proxy and one object server process) busy
# while the snapshot streams in; each more worker costs a segment of memory. With 32 MiB
# segments the peak is about 50 MiB (the interpreter, gRPC) + 5 x 32 MiB.
DEFAULT_WORKERS = 2
# One segment waiting while every worker uploads one keeps the workers busy; a deeper queue
# only costs memory (32 MiB each).
QUEUE_DEPTH = 1
# Swift refuses SLO segments under 1 MiB except the last one.
MIN_SEGMENT_SIZE = 1 * MiB

_DONE = None


class SegmentedWriter:
    """A file-like sink (`write`) that stores what it is given as one object, in segments.

    `progress(n)` is called from worker threads with the bytes of each stored segment;
    `stop_after_segments` is a test hook that fails the upload after that many segments, as a
    crash or Ctrl-C would.
    """

    def __init__(
        self,
        upload: ObjectUpload,
        name: str,
        kind: str,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        workers: int = DEFAULT_WORKERS,
        encrypted: bool = False,
        progress: Callable[[int], None] | None = None,
        stop_after_segments: int | None = None,
    ) -> None:
        self.upload = upload
        self.name = name
        self.kind = kind
        self.encrypted = encrypted
        self.segment_size = max(segment_size, MIN_SEGMENT_SIZE)
        self._progress = progress
        self._stop_after = stop_after_segments
        self._hash = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._size = 0
        self._index = 0
        self._segments: dict[int, Segment] = {}
        self._queue: queue.Queue[tuple[int, int, bytes] | None] = queue.Queue(QUEUE_DEPTH)
        self._failed: BaseException | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"backup-upload-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    # -- producer side ------------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        if not data:
            return 0
        data = bytes(data)
        self._hash.update(data)
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self.segment_size:
            self._submit()
        return len(data)

    def flush(self) -> None:
        pass

    def _submit(self) -> None:
        segment = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if self._stop_after is not None and self._index >= self._stop_after:
            raise BackupAborted(f"upload of {self.name} stopped by the test hook")
        item = (self._index, self._size, segment)
        self._index += 1
        self._size += len(segment)
        self._put(item)

    def _put(self, item: tuple[int, int, bytes] | None) -> None:
        while True:
            self._raise_failure()
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def close(self) -> StoredObject:
        """Store the rest, wait for every worker, and make the object visible."""
        if self._pending or self._index == 0:
            self._submit()
        for _ in self._threads:
            self._put(_DONE)
        for thread in self._threads:
            thread.join()
        self._raise_failure()
        segments = [self._segments[i] for i in range(self._index)]
        self.upload.commit(segments)
        return StoredObject(
            name=self.name,
            kind=self.kind,
            size=self._size,
            sha256=self._hash.hexdigest(),
            encrypted=self.encrypted,
            segments=tuple(segments),
        )

    def abort(self) -> None:
        """Stop the workers; stored segments stay as leftovers for prune."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            try:
                self._queue.put_nowait(_DONE)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(timeout=60)
        self.upload.abort()

    def _raise_failure(self) -> None:
        if self._failed is not None:
            raise self._failed

    # -- worker side --------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            index, offset, data = item
            try:
                self._segments[index] = self.upload.put_segment(index, offset, data)
            except BaseException as exc:
                log.warning("a segment upload failed: %s", type(exc).__name__)
                self._failed = self._failed or exc
                self._stop.set()
                return
            size = len(data)
            # Drop the segment before waiting for the next one: held while idle, it made the
            # peak one segment per worker higher (measured with three workers: 274 MiB, where
            # 50 MiB + 6 x 32 MiB = 242 MiB were expected).
            del item, data
            if self._progress is not None:
                self._progress(size)
