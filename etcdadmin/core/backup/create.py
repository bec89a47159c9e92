"""Taking a backup: etcd's snapshot, the logical export at the snapshot's revision, then the
manifest, written last (a backup without it is incomplete and never listed).

The snapshot streams from etcd through the hash check (and the age encryption, when asked) to
the location's segment workers: nothing is held whole in memory or on disk.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from etcdadmin.core.backup.catalog import Catalog
from etcdadmin.core.backup.errors import BackupAborted, BackupError
from etcdadmin.core.backup.location import Location
from etcdadmin.core.backup.manifest import (
    EXPORT,
    SNAPSHOT,
    BackupManifest,
    StoredObject,
    backup_id,
    iso,
    manifest_name,
    utc_now,
)
from etcdadmin.core.backup.segments import DEFAULT_SEGMENT_SIZE, DEFAULT_WORKERS, SegmentedWriter
from etcdadmin.core.backup.snapshot import TrailingHashCheck
from etcdadmin.core.etcd import EtcdConnection

log = logging.getLogger(__name__)

SNAPSHOT_NAME = "snapshot.db"
EXPORT_NAME = "keys.jsonl.gz"


@dataclass(frozen=True)
class BackupOptions:
    # the logical export's prefix ("" = every key); etcd's snapshot always holds every key
    prefix: str = ""
    export: bool = True
    # False: the export alone (the safety backup a restore takes of the prefix it rewrites)
    snapshot: bool = True
    recipients: tuple[str, ...] = ()
    segment_size: int = DEFAULT_SEGMENT_SIZE
    workers: int = DEFAULT_WORKERS
    # test hook: fail the snapshot upload after this many segments, as a crash would
    stop_after_segments: int | None = None


def create_backup(
    conn: EtcdConnection,
    location: Location,
    options: BackupOptions = BackupOptions(),
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> BackupManifest:
    """Back up the cluster `conn` reaches into `location`; returns the manifest written.

    `cancel`, once set, stops the backup at its next chunk with BackupAborted: no manifest is
    written, and what was stored is left for the next prune."""
    if not (options.snapshot or options.export):
        raise BackupError("a backup needs the snapshot, the export or both: ask for one")
    recipients: list[Any] = []
    if options.recipients:
        # imported when used, as the export below: a snapshot-only backup needs neither
        from etcdadmin.core.backup.encryption import parse_recipients

        recipients = parse_recipients(options.recipients)
    location.prepare()
    before = conn.status()
    if options.snapshot:
        stream = iter(conn.snapshot_stream())
        # etcd opens the snapshot's read transaction before it sends the first bytes, and its
        # Snapshot messages carry no header: a revision read before and again after the first
        # bytes pins the snapshot exactly when both agree.
        first = next(stream, b"")
        after = conn.status()
    else:
        # the export alone is read pinned at `revision`: exact by construction
        after = before
    revision = before.revision
    created = utc_now()
    backup = backup_id(before.cluster_id, created, revision)
    if location.read_small(manifest_name(backup)) is not None:
        raise BackupError(f"a backup {backup} exists already: wait a second and run it again")
    log.info("backup started")
    objects = []
    if options.snapshot:
        check = TrailingHashCheck(f"the snapshot from member {before.member_id:x}")
        objects.append(
            _store(
                location,
                f"{backup}/{SNAPSHOT_NAME}",
                SNAPSHOT,
                _cancellable(check.passing(itertools.chain([first], stream)), cancel),
                options,
                recipients,
                progress,
                options.stop_after_segments,
                # unencrypted, the stored bytes are the checked ones: one hash serves both
                sha256=None if recipients else check.whole_sha256,
            )
        )
    key_count = 0
    if options.export:
        from etcdadmin.core.backup.export import ExportStream

        export = ExportStream(conn, options.prefix.encode("utf-8"), revision)
        objects.append(
            _store(
                location,
                f"{backup}/{EXPORT_NAME}",
                EXPORT,
                _cancellable(export, cancel),
                options,
                recipients,
                progress,
                None,
            )
        )
        key_count = export.key_count
    manifest = BackupManifest(
        id=backup,
        cluster_id=f"{before.cluster_id:016x}",
        member_id=f"{before.member_id:x}",
        endpoint=conn.settings.describe(),
        revision=revision,
        revision_exact=after.revision == before.revision,
        etcd_version=before.version,
        created=iso(created),
        prefix=options.prefix,
        key_count=key_count,
        objects=tuple(objects),
        encrypted_to=tuple(options.recipients),
    )
    location.write_small(manifest_name(backup), manifest.to_json())
    Catalog(location).add(manifest)
    log.info("backup complete")
    return manifest


def _cancellable(chunks: Iterable[bytes], cancel: threading.Event | None) -> Iterator[bytes]:
    for chunk in chunks:
        if cancel is not None and cancel.is_set():
            raise BackupAborted("the backup was cancelled: nothing is listed")
        yield chunk


def _store(
    location: Location,
    name: str,
    kind: str,
    chunks: Iterable[bytes],
    options: BackupOptions,
    recipients: Sequence[Any],
    progress: Callable[[int], None] | None,
    stop_after_segments: int | None,
    sha256: Callable[[], str] | None = None,
) -> StoredObject:
    if recipients:
        from etcdadmin.core.backup.encryption import AGE_SUFFIX

        name += AGE_SUFFIX
    writer = SegmentedWriter(
        location.open_upload(name),
        name,
        kind,
        segment_size=options.segment_size,
        workers=options.workers,
        encrypted=bool(recipients),
        progress=progress,
        stop_after_segments=stop_after_segments,
        sha256=sha256,
    )
    try:
        if recipients:
            from etcdadmin.core.backup.encryption import encrypt_stream

            encrypt_stream(chunks, writer, recipients)
        else:
            for chunk in chunks:
                writer.write(chunk)
        return writer.close()
    except BaseException:
        # Ctrl-C included: no manifest is written, so nothing looks complete; the segments
        # already stored are leftovers that the next prune removes.
        writer.abort()
        raise
