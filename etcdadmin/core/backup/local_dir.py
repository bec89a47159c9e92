"""Backups in a local directory: the same names as in Swift, as files and folders.

A large object is written by several threads into `<name>.part` at each segment's offset
(`os.pwrite`, which releases the GIL) and renamed to `<name>` at commit, so a crashed upload
leaves only `.part` files, which prune removes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from etcdadmin.core.backup.errors import BackupNotFound, LocationUnreachable
from etcdadmin.core.backup.location import ListedObject
from etcdadmin.core.backup.manifest import Segment
from etcdadmin.core.private_file import write_private

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
READ_CHUNK = 1024 * 1024


def default_directory() -> Path:
    # the one owner of the user data directory (ETCDADMIN_DATA_DIR overrides it)
    from etcdadmin.core.changes.recovery import default_data_dir

    return default_data_dir() / "backups"


class _FileUpload:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + PART_SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._lock = threading.Lock()

    def put_segment(self, index: int, offset: int, data: memoryview) -> Segment:
        view = data
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written
        return Segment(name=f"{index:08d}", size=len(data))

    def commit(self, segments: list[Segment]) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


class LocalDirectory:
    """Backups under `root` (default: the user data directory's `backups`)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else default_directory()
        self.description = f"directory {self.root}"

    def _path(self, name: str) -> Path:
        return self.root.joinpath(*name.split("/"))

    def prepare(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise PermissionError(13, "not writable")
        except OSError as exc:
            raise LocationUnreachable(
                f"cannot write backups to {self.root} ({exc.strerror}): pick another with --dir"
            ) from None

    def open_upload(self, name: str) -> _FileUpload:
        return _FileUpload(self._path(name))

    def read(self, name: str) -> Iterator[bytes]:
        try:
            handle = self._path(name).open("rb")
        except FileNotFoundError:
            raise BackupNotFound(f"{name} is missing from {self.description}") from None
        with handle:
            while chunk := handle.read(READ_CHUNK):
                yield chunk

    def read_small(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def write_small(self, name: str, data: bytes) -> None:
        # write_private: a temp file then a rename, so a reader never sees half a catalog
        write_private(self._path(name), data.decode("utf-8"))

    def children(self, prefix: str, after: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        try:
            names = sorted(entry.name for entry in os.scandir(base))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [n for n in names if n > after]

    def list_all(self) -> Iterator[ListedObject]:
        for folder, _, files in os.walk(self.root):
            for file in files:
                path = Path(folder, file)
                name = path.relative_to(self.root).as_posix()
                with contextlib.suppress(FileNotFoundError):
                    stat = path.stat()
                    yield ListedObject(
                        name, stat.st_size, stat.st_mtime, name.endswith(PART_SUFFIX)
                    )

    def delete(self, item: ListedObject) -> None:
        path = self._path(item.name)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # drop the folders the backup leaves empty, up to (not including) the root
        for parent in path.parents:
            if parent == self.root or self.root not in parent.parents:
                break
            with contextlib.suppress(OSError):
                parent.rmdir()

    def close(self) -> None:
        pass
