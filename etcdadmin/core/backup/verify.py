"""Verifying a backup: download every object again and check it against the manifest.

Each object's SHA-256 and size must match (of the stored bytes: an encrypted object's hash
is of its age file, so it is checked without any private key); the snapshot must also match
the SHA-256 etcd appended to it (an encrypted one only when identities that open it are
given). With `deep`, `etcdctl snapshot status` reads the downloaded database too, as a
restore would.

`read_verified` is how restores read an object: the stored bytes hashed as they arrive,
opened on the way when encrypted, and the hash compared once the last byte is in;
`export_records` reads a key export so, record by record (restores, the point-in-time state,
a key's history in backups).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from etcdadmin.core.backup.catalog import Catalog
from etcdadmin.core.backup.encryption import BackupOpener, decrypted, opener_for
from etcdadmin.core.backup.errors import BackupDamaged, BackupError, BackupNotFound
from etcdadmin.core.backup.export import ExportRecord, iter_export
from etcdadmin.core.backup.location import Location
from etcdadmin.core.backup.manifest import (
    SNAPSHOT,
    BackupManifest,
    StoredObject,
    iso,
    manifest_name,
    utc_now,
)
from etcdadmin.core.backup.snapshot import TrailingHashCheck

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifyReport:
    id: str
    verified_at: str
    objects: tuple[str, ...]
    # what `etcdctl snapshot status` said of the snapshot (deep only)
    snapshot_status: dict[str, int] | None = None
    # an encrypted snapshot was opened with the identities given and etcd's hash checked
    decrypted: bool = False


def load_manifest(location: Location, backup: str) -> BackupManifest:
    name = manifest_name(backup)
    data = location.read_small(name)
    if data is None:
        raise BackupNotFound(
            f"no complete backup {backup} in {location.description}: list them with "
            "`etcdadmin backup ls`"
        )
    return BackupManifest.from_json(data, name)


def verify_backup(
    location: Location,
    backup: str,
    *,
    deep: bool = False,
    identities: Sequence[object] | None = None,
) -> VerifyReport:
    """Check every object of `backup`; raises BackupDamaged naming what differs.

    An encrypted backup is checked by its stored SHA-256s; with `identities`, its snapshot is
    also opened and checked as a plain one is (BackupLocked when they do not open it)."""
    manifest = load_manifest(location, backup)
    opener = None
    if identities and manifest.encrypted_to:
        opener = opener_for(manifest.id, manifest.encrypted_to, identities)
    status = None
    opened = False
    for stored in manifest.objects:
        usable = opener if stored.encrypted else None
        opened = opened or (usable is not None and stored.kind == SNAPSHOT)
        if deep and stored.kind == SNAPSHOT and (usable is not None or not stored.encrypted):
            status = _check_deep(location, stored, usable)
        else:
            _check(location, stored, None, usable)
    stamp = iso(utc_now())
    Catalog(location).mark_verified(backup, stamp)
    log.info("backup verified")
    objects = tuple(o.name for o in manifest.objects)
    return VerifyReport(backup, stamp, objects, status, decrypted=opened)


def read_verified(
    location: Location, stored: StoredObject, opener: BackupOpener | None = None
) -> Iterator[bytes]:
    """`stored`'s bytes as they arrive, opened with `opener` when it is encrypted (else as
    stored). Raises BackupDamaged after the last chunk when the stored bytes differ from the
    manifest's size and SHA-256 (a reader acts on what it read only once this ends)."""
    digest = hashlib.sha256()
    size = [0]

    def stored_bytes() -> Iterator[bytes]:
        try:
            for chunk in location.read(stored.name):
                digest.update(chunk)
                size[0] += len(chunk)
                yield chunk
        except BackupNotFound:
            raise BackupDamaged(
                f"{stored.name} is listed in the manifest but missing from "
                f"{location.description}: use another backup"
            ) from None

    raw = stored_bytes()
    if opener is not None and stored.encrypted:
        yield from decrypted(raw, opener, stored.name)
        # age may stop reading at its last chunk: bytes past it still count for the hash
        for _ in raw:
            pass
    else:
        yield from raw
    if size[0] != stored.size or digest.hexdigest() != stored.sha256:
        what = (
            f"{size[0]} bytes, not {stored.size}"
            if size[0] != stored.size
            else "its SHA-256 differs"
        )
        raise BackupDamaged(
            f"{stored.name} differs from its manifest ({what}): the stored copy was altered or "
            "damaged; use another backup"
        )


def export_records(
    location: Location,
    manifest: BackupManifest,
    stored: StoredObject,
    identities: Sequence[object] | None = None,
) -> Iterator[ExportRecord]:
    """The records of `manifest`'s key export `stored` as they arrive, never the whole export
    in memory: opened on the way when it is encrypted (with `identities`, else the
    operator's own from the OS keyring, see `opener_for`). Raises BackupLocked now when the
    keyring's identity is not a recipient, or as the first record is read when `identities`
    open none of them (age tells from the file's header); BackupDamaged after the last
    record when the stored bytes differ from the manifest, and as soon as they are not an
    export: a reader acts on what it read only once the iteration ends."""
    return _records(location, stored, opener_of(manifest, stored, identities))


def opener_of(
    manifest: BackupManifest, stored: StoredObject, identities: Sequence[object] | None
) -> BackupOpener | None:
    """What opens `stored` when it is encrypted (`opener_for`: `identities`, else the
    operator's own from the OS keyring; BackupLocked when none is at hand); None when it is
    stored plain."""
    if not stored.encrypted:
        return None
    return opener_for(manifest.id, manifest.encrypted_to, identities)


def _records(
    location: Location, stored: StoredObject, opener: BackupOpener | None
) -> Iterator[ExportRecord]:
    try:
        yield from iter_export(read_verified(location, stored, opener))
    except (ValueError, zlib.error):
        raise BackupDamaged(
            f"{stored.name} is not a readable key export: the stored copy was altered or "
            "damaged; nothing was taken from it; use another backup"
        ) from None


def download_verified(
    location: Location, stored: StoredObject, path: Path, opener: BackupOpener | None = None
) -> None:
    """Download `stored` into a new file at `path` (mode 0600), checked as `verify` checks it
    and opened with `opener` when encrypted; raises BackupDamaged (and removes the file) when
    it differs from its manifest, BackupLocked when `opener` cannot open it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _check(location, stored, fd, opener)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    log.info("backup object downloaded and checked")


def _check(
    location: Location, stored: StoredObject, copy_to: int | None, opener: BackupOpener | None
) -> None:
    plain = not stored.encrypted or opener is not None
    trailing = TrailingHashCheck(stored.name) if stored.kind == SNAPSHOT and plain else None
    for chunk in read_verified(location, stored, opener):
        if trailing is not None:
            trailing.feed(chunk)
        if copy_to is not None:
            _write_all(copy_to, chunk)
    if trailing is not None:
        trailing.finish()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _check_deep(
    location: Location, stored: StoredObject, opener: BackupOpener | None
) -> dict[str, int]:
    etcdctl = shutil.which("etcdctl")
    if etcdctl is None:
        raise BackupError("verify --deep needs etcdctl on PATH: apt-get install etcd-client")
    with tempfile.TemporaryDirectory(prefix="etcdadmin-verify-") as folder:
        path = Path(folder, "snapshot.db")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _check(location, stored, fd, opener)
        finally:
            os.close(fd)
        done = subprocess.run(
            [etcdctl, "snapshot", "status", "-w", "json", str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, "ETCDCTL_API": "3"},
            timeout=600,
            check=False,
        )
    if done.returncode != 0:
        raise BackupDamaged(
            f"etcdctl snapshot status refused {stored.name}: "
            f"{done.stderr.strip() or done.stdout.strip()}; use another backup"
        )
    raw = json.loads(done.stdout)
    return {k: int(raw[k]) for k in ("revision", "totalKey", "totalSize") if k in raw}
