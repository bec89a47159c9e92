"""Cutting one stream into segments and storing them in parallel, with bounded memory.

The producer (the snapshot stream, the export) calls `write`; each byte is copied once, into
a segment buffer allocated once (a `bytearray` of the segment size), and the full buffer goes
to one of N worker threads, which stores it from a `memoryview` (no copy) and hands the buffer
back for reuse as soon as the store returns. At most N + 1 buffers ever exist (one filling,
one per worker), so the memory is N + 1 segments whatever the database's size, and nothing is
written to a temporary file. The SHA-256 of the whole object is taken here, in stream order,
unless the producer takes it already (`sha256`: the snapshot's hash check hashes the same
bytes).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from etcdadmin.core.backup.errors import BackupAborted
from etcdadmin.core.backup.location import ObjectUpload
from etcdadmin.core.backup.manifest import Segment, StoredObject

log = logging.getLogger(__name__)

MiB = 1024 * 1024
# Memory is (workers + 1) x segment size on top of the process itself (about 60 MiB: the
# interpreter, gRPC, swiftclient). 16 MiB x 4 buffers kept `backup create --no-export` at
# 125-145 MiB peak RSS with 1M keys (197 MB) and 2M keys (393 MB) alike; 8 to 32 MiB and 2 to
# 4 workers timed within the noise of each other on two shared cores.
DEFAULT_SEGMENT_SIZE = 16 * MiB
# Three uploads at once keep the test Swift (one proxy and one object server process) busy
# while the snapshot streams in; each more worker costs one segment of memory.
DEFAULT_WORKERS = 3
# Swift refuses SLO segments under 1 MiB except the last one.
MIN_SEGMENT_SIZE = 1 * MiB
# How often a blocked producer or idle worker looks at the failure / stop flags.
_POLL = 0.2


@dataclass
class _Filled:
    """A full (or last) segment on its way to a worker."""

    index: int
    offset: int
    buffer: bytearray
    size: int


class SegmentedWriter:
    """A file-like sink (`write`) that stores what it is given as one object, in segments.

    `progress(n)` is called from worker threads with the bytes of each stored segment;
    `sha256()`, when given, returns the SHA-256 (hex) of every byte written, taken by the
    producer, and the writer hashes nothing itself;
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
        sha256: Callable[[], str] | None = None,
    ) -> None:
        self.upload = upload
        self.name = name
        self.kind = kind
        self.encrypted = encrypted
        self.segment_size = max(segment_size, MIN_SEGMENT_SIZE)
        self._progress = progress
        self._stop_after = stop_after_segments
        self._hash = None
        if sha256 is None:
            self._hash = own = hashlib.sha256()
            sha256 = own.hexdigest
        self._digest: Callable[[], str] = sha256
        workers = max(1, workers)
        # Buffers are made on demand up to this count, then only reused: a small object
        # (an export of a few keys) costs one buffer, a large one workers + 1.
        self._max_buffers = workers + 1
        self._made = 0
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._buffer: bytearray | None = None
        self._fill = 0
        self._size = 0
        self._index = 0
        self._segments: dict[int, Segment] = {}
        # Unbounded on purpose: the buffer count bounds what can wait in it.
        self._queue: queue.SimpleQueue[_Filled | None] = queue.SimpleQueue()
        self._failed: BaseException | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"backup-upload-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # -- producer side ------------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        if not total:
            return 0
        if self._hash is not None:
            self._hash.update(view)
        while view:
            if self._buffer is None:
                self._buffer = self._take_buffer()
            n = min(len(view), self.segment_size - self._fill)
            self._buffer[self._fill : self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == self.segment_size:
                self._submit()
        return total

    def flush(self) -> None:
        pass

    def _take_buffer(self) -> bytearray:
        while True:
            self._raise_failure()
            try:
                return self._free.get_nowait()
            except queue.Empty:
                pass
            if self._made < self._max_buffers:
                self._made += 1
                return bytearray(self.segment_size)
            try:
                return self._free.get(timeout=_POLL)
            except queue.Empty:
                continue

    def _submit(self) -> None:
        if self._stop_after is not None and self._index >= self._stop_after:
            raise BackupAborted(f"upload of {self.name} stopped by the test hook")
        buffer = self._buffer if self._buffer is not None else self._take_buffer()
        item = _Filled(self._index, self._size, buffer, self._fill)
        self._buffer, self._fill = None, 0
        self._index += 1
        self._size += item.size
        self._raise_failure()
        self._queue.put(item)

    def close(self) -> StoredObject:
        """Store the rest, wait for every worker, and make the object visible."""
        if self._fill or self._index == 0:
            self._submit()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._release_buffers()
        self._raise_failure()
        segments = [self._segments[i] for i in range(self._index)]
        self.upload.commit(segments)
        return StoredObject(
            name=self.name,
            kind=self.kind,
            size=self._size,
            sha256=self._digest(),
            encrypted=self.encrypted,
            segments=tuple(segments),
        )

    def abort(self) -> None:
        """Stop the workers; stored segments stay as leftovers for prune."""
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=60)
        self._release_buffers()
        self.upload.abort()

    def _release_buffers(self) -> None:
        self._buffer = None
        while True:
            try:
                self._free.get_nowait()
            except queue.Empty:
                break
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    def _raise_failure(self) -> None:
        if self._failed is not None:
            raise self._failed

    # -- worker side --------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                return
            if self._stop.is_set():
                self._free.put(item.buffer)
                return
            try:
                view = memoryview(item.buffer)[: item.size]
                self._segments[item.index] = self.upload.put_segment(item.index, item.offset, view)
                del view
            except BaseException as exc:
                log.warning("a segment upload failed: %s", type(exc).__name__)
                self._failed = self._failed or exc
                self._stop.set()
                # the producer may be waiting for a buffer: give it one so it sees the failure
                self._free.put(item.buffer)
                return
            self._free.put(item.buffer)
            if self._progress is not None:
                self._progress(item.size)
