"""A key's earlier values, from etcd's MVCC history back to the compaction point.

etcd keeps every revision of every key until it is compacted, but has no call that lists a
key's revisions: the only way to read them is to watch the key from an old revision, which
replays its events and then follows it. `key_history` does that from revision 1, restarts from
the compaction point when etcd says the start is compacted, and stops once it has everything
up to the revision the cluster was at when it started, so it never waits for future events.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from etcdadmin.core.changes.commands import SetValue
from etcdadmin.core.errors import EtcdAdminError, EtcdUnavailable, RevisionCompacted
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.etcd.watch import WatchBatch
from etcdadmin.core.tree.names import display_segment

log = logging.getLogger(__name__)

# etcd sends a catching-up watcher its backlog in responses of at most this many distinct
# revisions (watchBatchMaxRevs in server/mvcc/watchable_store.go, unchanged since 3.0): a
# shorter response whose header is at or past the start revision ends the backlog.
_WATCH_BATCH_MAX_REVS = 1000

# For a key that is absent now, nothing marks the end of its history: etcd sends nothing at
# all when the key has no events to replay. After this long without a response (etcd syncs
# catching-up watchers every 100 ms) the history is taken as complete.
_SETTLE_SECONDS = 2.0

# Compactions racing with the read: give up after this many restarts.
_ATTEMPTS = 5


@dataclass(frozen=True)
class KeyVersion:
    """One version of `key`: `value` None is a delete (then version and create_revision 0)."""

    revision: int
    value: bytes | None
    version: int
    create_revision: int
    key: bytes = b""

    @classmethod
    def from_kv(cls, kv: KeyValue) -> KeyVersion:
        return cls(kv.mod_revision, kv.value, kv.version, kv.create_revision, kv.key)


@dataclass(frozen=True)
class KeyHistory:
    """`versions` newest first. `compacted_before`: etcd forgot the versions replaced before
    this revision (0: nothing compacted); the version in effect at it is still listed."""

    key: bytes
    compacted_before: int
    versions: tuple[KeyVersion, ...]


def restore_change(history_version: KeyVersion, current: KeyValue | None) -> SetValue:
    """Stage `history_version`'s value again, guarded by the key's current mod revision.

    The current lease is kept: a lease says the key's owner is alive, not what its value was.
    """
    if history_version.value is None:
        raise EtcdAdminError(
            f"revision {history_version.revision} of {display_segment(history_version.key)} is a "
            "delete; stage a delete of the key instead of a restore"
        )
    key = current.key if current is not None else history_version.key
    if not key:
        raise EtcdAdminError("restoring a version needs the key's name (the version has none)")
    return SetValue(
        key,
        history_version.value,
        current.mod_revision if current is not None else 0,
        current.lease if current is not None else 0,
    )


def key_history(
    conn: EtcdConnection, key: str | bytes, *, limit: int = 1000, timeout: float = 30.0
) -> KeyHistory:
    """The newest `limit` versions of `key`, back to etcd's compaction point.

    `timeout` bounds the whole read: a watch that stops delivering raises `EtcdUnavailable`
    rather than hanging the caller.
    """
    name = key if isinstance(key, bytes) else key.encode("utf-8")
    start = 1
    for _ in range(_ATTEMPTS):
        revision = conn.header(name)[0]
        try:
            current = conn.get(name, revision=revision)
            versions = _read(conn, name, start, revision, current, timeout)
        except RevisionCompacted as exc:
            # A range read's error carries no compaction point (0); the watch's next attempt
            # will name it.
            start = max(start, exc.compact_revision)
            log.info("history of a key starts at compaction revision %d; re-reading", start)
            continue
        versions.reverse()
        return KeyHistory(name, start if start > 1 else 0, tuple(versions[:limit]))
    raise EtcdUnavailable(
        f"the history of {display_segment(name)} could not be read: etcd kept compacting past it; "
        "try again"
    )


def _read(
    conn: EtcdConnection,
    key: bytes,
    start: int,
    revision: int,
    current: KeyValue | None,
    timeout: float,
) -> list[KeyVersion]:
    """Versions from `start` up to `revision`, oldest first."""
    versions: list[KeyVersion] = []
    if start > 1:
        # Compaction keeps each key's latest version at the compaction point; it may be
        # older than the point, and a watch from there would not replay it.
        kept = conn.get(key, revision=start)
        if kept is not None and kept.mod_revision < start:
            versions.append(KeyVersion.from_kv(kept))
    if current is not None and current.mod_revision < start:
        return versions  # unchanged since the compaction point: no events to wait for
    last = current.mod_revision if current is not None else None
    versions.extend(_replay(conn, key, start, revision, last, timeout))
    return versions


def _backlog_done(batch: WatchBatch, revision: int) -> bool:
    if batch.header_revision < revision:
        return False
    return len({e.kv.mod_revision for e in batch.events}) < _WATCH_BATCH_MAX_REVS


def _replay(
    conn: EtcdConnection,
    key: bytes,
    start: int,
    revision: int,
    last: int | None,
    timeout: float,
) -> list[KeyVersion]:
    """Watch `key` from `start` and collect its events up to `revision`.

    With `last` (the key's mod revision now) the end is exact: the event at `last`. A key
    that is absent now ends with a delete at a revision no read can tell, so the end is the
    first response that is not a full backlog batch, or `_SETTLE_SECONDS` of silence.
    """
    stream = conn.watch_key(key, start)
    timed_out = threading.Event()
    settled = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        stream.close()

    def on_settle() -> None:
        settled.set()
        stream.close()

    deadline = threading.Timer(timeout, on_timeout)
    deadline.daemon = True
    deadline.start()
    settle: threading.Timer | None = None

    def restart_settle() -> threading.Timer:
        timer = threading.Timer(_SETTLE_SECONDS, on_settle)
        timer.daemon = True
        timer.start()
        return timer

    versions: list[KeyVersion] = []
    complete = False
    try:
        if last is None:
            settle = restart_settle()
        for batch in stream:
            if settle is not None:
                settle.cancel()
            for event in batch.events:
                if event.kv.mod_revision > revision:
                    complete = True  # events arrive in order: everything up to revision is in
                    break
                if event.kind == "delete":
                    versions.append(KeyVersion(event.kv.mod_revision, None, 0, 0, key))
                else:
                    versions.append(KeyVersion.from_kv(event.kv))
            if complete:
                break
            if last is not None:
                if versions and versions[-1].revision >= last:
                    complete = True
                    break
            elif _backlog_done(batch, revision):
                complete = True
                break
            else:
                settle = restart_settle()
    finally:
        deadline.cancel()
        if settle is not None:
            settle.cancel()
        stream.close()
    if not complete and not settled.is_set():
        reason = f"within {timeout:g} s" if timed_out.is_set() else "before the watch ended"
        raise EtcdUnavailable(
            f"the history of {display_segment(key)} was not fully received {reason}; try again"
        )
    return versions
