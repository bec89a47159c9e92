"""Writing the served config file without ever leaving a half-written one behind.

The normal path is the classic atomic replace: a temp file in the same directory, fsync, rename,
fsync the directory. A config bind-mounted as a single file cannot be renamed over (EBUSY inside
the container, both `mv` and `os.replace`, seen with Docker 20.10), so there the agent falls
back to rewriting the file in place and warns once that a directory mount is safer.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, None when it does not exist; OSError when it is not a regular file.

    Opened non-blocking and checked with fstat: a config path replaced by a FIFO would
    otherwise block the agent in open() until something writes to it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read()
    finally:
        os.close(fd)


class ConfigWriter:
    """Writes one config file, keeping its mode and owner."""

    def __init__(self, path: Path, *, private: bool = False) -> None:
        self.path = path
        # `private` forces 0600 for files that hold decrypted secrets.
        self.private = private
        self._warned_in_place = False

    def write(self, data: bytes, *, private: bool = False) -> None:
        """Write `data`; `private` (or the writer's own flag) makes the file 0600."""
        try:
            st: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            st = None
        private = private or self.private
        mode = 0o600 if private else (st.st_mode & 0o7777 if st else 0o644)
        try:
            self._write_atomic(data, mode, st)
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EACCES, errno.EPERM):
                raise
            if not self._warned_in_place:
                log.warning(
                    "cannot replace %s atomically (%s): it is probably bind-mounted as a single "
                    "file; writing it in place instead. Mount its directory to get atomic updates",
                    self.path,
                    os.strerror(exc.errno or 0),
                )
                self._warned_in_place = True
            self._write_in_place(data, mode)

    def _write_atomic(self, data: bytes, mode: int, st: os.stat_result | None) -> None:
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, mode)
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except PermissionError:
                    log.warning("cannot keep the owner of %s (not running as root)", self.path)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _write_in_place(self, data: bytes, mode: int) -> None:
        """Overwrite then truncate, so a reader sees the old length at worst, never zero bytes.

        Not atomic: a reader racing the write can see a mix. The registry reads its config only
        at start-up, which the agent triggers after this returns, so the window is harmless.
        """
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        finally:
            os.close(fd)
