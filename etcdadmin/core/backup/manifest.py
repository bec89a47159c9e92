"""A backup's manifest: what was backed up, from where, and the objects that hold it.

A backup is the objects under one id, `<cluster-id-hex>/<UTC YYYYmmddTHHMMSSZ>-r<revision>`.
The manifest (`<id>/manifest.json`) is written last: a backup without one is incomplete, is
never listed, and its leftovers go at the next prune. It holds metadata only, never values, so
it stays readable even when the data objects are encrypted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from etcdadmin.core.backup.errors import BackupDamaged

FORMAT = 1
MANIFEST_NAME = "manifest.json"
TIME_FORMAT = "%Y%m%dT%H%M%SZ"

SNAPSHOT = "snapshot"
EXPORT = "export"


def backup_id(cluster_id: int, created: datetime, revision: int) -> str:
    return f"{cluster_id:016x}/{created.astimezone(UTC).strftime(TIME_FORMAT)}-r{revision}"


def manifest_name(backup: str) -> str:
    return f"{backup}/{MANIFEST_NAME}"


def id_of(name: str) -> str | None:
    """The backup id an object name belongs to (its first two path parts), if it has one."""
    parts = name.split("/")
    return "/".join(parts[:2]) if len(parts) >= 3 else None


def created_of(backup: str) -> datetime:
    """The creation time written in a backup id."""
    stamp = backup.rpartition("/")[2].partition("-r")[0]
    return datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Segment:
    """One piece of a stored object (a Swift SLO segment; one range of a local file)."""

    name: str
    size: int
    etag: str = ""


@dataclass(frozen=True)
class StoredObject:
    """One object of a backup, with OUR SHA-256 of its stored bytes.

    Swift's ETag of a Static Large Object is an MD5 of the segments' MD5s, not a content hash,
    so verification relies on this one.
    """

    name: str
    kind: str
    size: int
    sha256: str
    encrypted: bool = False
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class BackupManifest:
    id: str
    cluster_id: str
    member_id: str
    endpoint: str
    revision: int
    # etcd's Snapshot stream carries no revision: `revision` was read just before the snapshot
    # began and checked again once its first bytes arrived. False when a write landed between
    # the two reads: the snapshot may then hold a few revisions past `revision`.
    revision_exact: bool
    etcd_version: str
    created: str
    prefix: str
    key_count: int
    objects: tuple[StoredObject, ...]
    encrypted_to: tuple[str, ...] = ()
    format: int = FORMAT

    def object(self, kind: str) -> StoredObject | None:
        return next((o for o in self.objects if o.kind == kind), None)

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str = "") -> BackupManifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            objects = tuple(
                StoredObject(
                    **{
                        **o,
                        "segments": tuple(Segment(**s) for s in o.get("segments", ())),
                    }
                )
                for o in raw.pop("objects")
            )
            recipients = tuple(raw.pop("encrypted_to", ()))
            return cls(**raw, objects=objects, encrypted_to=recipients)
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupDamaged(
                f"the manifest {where or '(unnamed)'} is unreadable ({type(exc).__name__}): "
                "it was altered or written by a newer etcdadmin; remove the backup or upgrade"
            ) from None


@dataclass(frozen=True)
class CatalogEntry:
    """One complete backup as `ls` shows it, without reading its manifest."""

    id: str
    cluster_id: str
    created: str
    revision: int
    size: int
    key_count: int
    prefix: str
    encrypted: bool
    verified_at: str | None = None

    @classmethod
    def of(cls, manifest: BackupManifest, verified_at: str | None = None) -> CatalogEntry:
        return cls(
            id=manifest.id,
            cluster_id=manifest.cluster_id,
            created=manifest.created,
            revision=manifest.revision,
            size=manifest.size,
            key_count=manifest.key_count,
            prefix=manifest.prefix,
            encrypted=bool(manifest.encrypted_to),
            verified_at=verified_at,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
