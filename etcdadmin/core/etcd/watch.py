"""A watch as the agent and the client consume it: batches, in order, or a clear exception.

Driven directly on pyetcd's generated stub rather than through pyetcd's `Watcher`, because that
one cannot send etcd's require-leader flag, drops the cancel reason and dies silently on an etcd
restart (measured with etcd-sdk-python 0.0.7: one UNAVAILABLE error, then nothing): the agent
must see every one of those. Streams are created by `EtcdConnection.watch_prefix` / `watch_key`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import grpc
from pyetcd.etcdrpc import kv_pb2

from etcdadmin.core.errors import EtcdError, EtcdUnavailable, RevisionCompacted, WatchCancelled
from etcdadmin.core.etcd.keyvalue import KeyValue


@dataclass(frozen=True)
class WatchEvent:
    kind: Literal["put", "delete"]
    kv: KeyValue


@dataclass(frozen=True)
class WatchBatch:
    """One watch response, applied as a whole: a transaction's events never span two batches."""

    header_revision: int
    cluster_id: int
    events: tuple[WatchEvent, ...]

    @property
    def revision(self) -> int:
        """The revision up to which everything has been received.

        A catching-up watcher's response header carries the store's current revision while
        later events of the backlog are still to come, so the header is only trusted for
        progress notifications (no events), which etcd sends only once the watcher is in sync.
        """
        if self.events:
            return self.events[-1].kv.mod_revision
        return self.header_revision


class WatchStream:
    """One etcd watch as a blocking iterator of `WatchBatch`.

    Iteration raises `RevisionCompacted` when the start revision is gone, `WatchCancelled` when
    etcd cancels the watch, `EtcdUnavailable` when the stream breaks (member down, no leader);
    in each case the caller re-reads and watches again. `ended` is called when etcd ends the
    stream by itself (a member shutting down). `close()` from any thread ends the iteration
    quietly.
    """

    def __init__(
        self,
        stub: Any,
        create_request: Any,
        metadata: Sequence[tuple[str, str]],
        translate: Any,
        denied: Callable[[], EtcdError] | None = None,
        ended: Callable[[], None] | None = None,
    ) -> None:
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._requests.put(create_request)
        self._closed = False
        self._translate = translate
        self._denied = denied
        self._ended = ended
        self._call = stub.Watch(iter(self._requests.get, None), metadata=tuple(metadata))

    def __iter__(self) -> Iterator[WatchBatch]:
        try:
            for rs in self._call:
                if rs.compact_revision:
                    raise RevisionCompacted(
                        f"etcd compacted past the watch's start (compaction at revision "
                        f"{rs.compact_revision}); re-reading everything",
                        rs.compact_revision,
                    )
                if rs.canceled and "permission denied" in rs.cancel_reason and self._denied:
                    # etcd checks a watch's permission once, at creation (a grant removed
                    # later does not end it: measured on 3.4.23); this is that refusal
                    raise self._denied()
                if rs.canceled:
                    raise WatchCancelled(
                        f"etcd cancelled the watch: {rs.cancel_reason or 'no reason given'}"
                    )
                if rs.created and not rs.events:
                    continue
                events = tuple(
                    WatchEvent(
                        "put" if ev.type == kv_pb2.Event.PUT else "delete",
                        KeyValue.from_proto(ev.kv),
                    )
                    for ev in rs.events
                )
                yield WatchBatch(rs.header.revision, rs.header.cluster_id, events)
        except grpc.RpcError as exc:
            if self._closed:
                return
            raise self._translate(exc, "watch keys") from None
        if not self._closed:
            if self._ended is not None:
                self._ended()
            raise EtcdUnavailable("the etcd watch stream ended; watching again")

    def close(self) -> None:
        self._closed = True
        self._requests.put(None)
        self._call.cancel()


def pump(
    stream: WatchStream, name: str = "etcd-watch"
) -> queue.SimpleQueue[WatchBatch | BaseException]:
    """Read `stream` on a thread of its own into a queue, so the consumer can keep time (a
    debounce, a deadline) while it waits. The queue carries batches in order and, if the
    stream fails, the exception last; a stream closed on purpose just stops."""
    inbox: queue.SimpleQueue[WatchBatch | BaseException] = queue.SimpleQueue()

    def run() -> None:
        try:
            for batch in stream:
                inbox.put(batch)
        except BaseException as exc:
            inbox.put(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return inbox
