"""Writing a file only its owner may read, replaced whole or not at all.

The profiles file and the staged changes kept for recovery both go through here: a temporary
file in the same directory (mode 0600 before a byte is written), fsync, then a rename, so a
crash never leaves half a file and another process never reads one.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8), mode 0600; raises OSError."""
    # Imported here: every CLI command imports this module (through the profiles), and
    # tempfile (with shutil, bz2, lzma) cost 6-8 ms of each command's start, before its request.
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
