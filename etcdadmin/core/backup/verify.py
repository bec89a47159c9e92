"""Verifying a backup: download every object again and check it against the manifest.

Each object's SHA-256 and size must match; the snapshot must also match the SHA-256 etcd
appended to it (unencrypted snapshots: an encrypted one would need the private key). With
`deep`, `etcdctl snapshot status` reads the downloaded database too, as a restore would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from etcdadmin.core.backup.catalog import Catalog
from etcdadmin.core.backup.errors import BackupDamaged, BackupError, BackupNotFound
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


def load_manifest(location: Location, backup: str) -> BackupManifest:
    name = manifest_name(backup)
    data = location.read_small(name)
    if data is None:
        raise BackupNotFound(
            f"no complete backup {backup} in {location.description}: list them with "
            "`etcdadmin backup ls`"
        )
    return BackupManifest.from_json(data, name)


def verify_backup(location: Location, backup: str, *, deep: bool = False) -> VerifyReport:
    """Check every object of `backup`; raises BackupDamaged naming what differs."""
    manifest = load_manifest(location, backup)
    status = None
    for stored in manifest.objects:
        keep = deep and stored.kind == SNAPSHOT and not stored.encrypted
        if keep:
            status = _check_deep(location, stored)
        else:
            _check(location, stored, None)
    stamp = iso(utc_now())
    Catalog(location).mark_verified(backup, stamp)
    log.info("backup verified")
    return VerifyReport(backup, stamp, tuple(o.name for o in manifest.objects), status)


def download_verified(location: Location, stored: StoredObject, path: Path) -> None:
    """Download `stored` into a new file at `path` (mode 0600), checked as `verify` checks it;
    raises BackupDamaged (and removes the file) when it differs from its manifest."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _check(location, stored, fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    log.info("backup object downloaded and checked")


def _check(location: Location, stored: StoredObject, copy_to: int | None) -> None:
    digest = hashlib.sha256()
    trailing = (
        TrailingHashCheck(stored.name) if stored.kind == SNAPSHOT and not stored.encrypted else None
    )
    size = 0
    try:
        for chunk in location.read(stored.name):
            digest.update(chunk)
            size += len(chunk)
            if trailing is not None:
                trailing.feed(chunk)
            if copy_to is not None:
                os.write(copy_to, chunk)
    except BackupNotFound:
        raise BackupDamaged(
            f"{stored.name} is listed in the manifest but missing from {location.description}: "
            "use another backup"
        ) from None
    if size != stored.size or digest.hexdigest() != stored.sha256:
        what = f"{size} bytes, not {stored.size}" if size != stored.size else "its SHA-256 differs"
        raise BackupDamaged(
            f"{stored.name} differs from its manifest ({what}): the stored copy was altered or "
            "damaged; use another backup"
        )
    if trailing is not None:
        trailing.finish()


def _check_deep(location: Location, stored: StoredObject) -> dict[str, int]:
    etcdctl = shutil.which("etcdctl")
    if etcdctl is None:
        raise BackupError("verify --deep needs etcdctl on PATH: apt-get install etcd-client")
    with tempfile.TemporaryDirectory(prefix="etcdadmin-verify-") as folder:
        path = Path(folder, "snapshot.db")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _check(location, stored, fd)
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
