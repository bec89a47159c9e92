"""Where backups live, behind one small interface: Swift (`swift.SwiftLocation`) or a local
directory (`local_dir.LocalDirectory`). Both hold the same layout and the same manifests.

Large objects (the snapshot, the export) are written as segments by several threads at once
(`ObjectUpload.put_segment` is thread-safe) and become visible under their name only at
`commit`; small ones (manifest, catalog) are written whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from etcdadmin.core.backup.manifest import Segment

CATALOG_NAME = "catalog.json"


@dataclass(frozen=True)
class ListedObject:
    """One stored object or leftover segment, as a listing shows it."""

    name: str
    size: int
    # seconds since the epoch (UTC) of its last write
    modified: float
    # a segment (or partial file) of a large object rather than an object of its own
    segment: bool = False


class ObjectUpload(Protocol):
    def put_segment(self, index: int, offset: int, data: memoryview) -> Segment:
        """Store one segment; called from several threads at once. `data` is a view of a
        buffer the caller reuses once this returns: store it, never keep it."""
        ...

    def commit(self, segments: list[Segment]) -> None:
        """Make the object visible under its name, made of `segments` in order."""
        ...

    def abort(self) -> None:
        """Give up: what was stored stays as leftovers until the next prune."""
        ...


class Location(Protocol):
    description: str

    def prepare(self) -> None:
        """Check the credentials and create the container or directory when missing."""
        ...

    def open_upload(self, name: str) -> ObjectUpload: ...

    def read(self, name: str) -> Iterator[bytes]:
        """The object's bytes as they arrive; raises BackupNotFound when it is absent."""
        ...

    def read_small(self, name: str) -> bytes | None: ...

    def write_small(self, name: str, data: bytes) -> None: ...

    def children(self, prefix: str, after: str = "") -> list[str]:
        """The names one level under `prefix` (sorted, those greater than `after`), without
        their trailing slash: cluster ids under "", backup ids under "<cluster>/"."""
        ...

    def list_all(self) -> Iterator[ListedObject]:
        """Every object and every segment (for prune's leftover sweep)."""
        ...

    def delete(self, item: ListedObject) -> None:
        """Delete an object (a large one with its segments) or a leftover segment; absent is
        fine."""
        ...

    def close(self) -> None: ...


def open_location(
    directory: str | None = None,
    container: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Location:
    """The location the options and environment name: `directory` when given; else Swift when
    ST_AUTH or OS_AUTH_URL is set; else the user data directory's `backups` folder."""
    from etcdadmin.core.backup.local_dir import LocalDirectory
    from etcdadmin.core.backup.swift import DEFAULT_CONTAINER, SwiftCredentials, SwiftLocation

    if directory:
        return LocalDirectory(Path(directory))
    credentials = SwiftCredentials.from_environment(env)
    if credentials is not None:
        return SwiftLocation(credentials, container or DEFAULT_CONTAINER)
    return LocalDirectory()
