"""Where one config's state lives, and making sure only one agent uses it.

Each config file has its own state directory, named after the file, under the state root
(`<config dir>/.watcher-agent/config.yml/` by default). Before this layout one `.watcher-agent/`
held the state of whichever agent used it: two agents whose configs sat in one directory shared
it, and after restarts one rendered the other's base config into its own file. That layout is
moved into the new one at start by the agent whose config it belongs to (recognised by hash).

An exclusive `flock` on `<state dir>/lock`, held for the agent's life, keeps a second agent on
the same config (or the same state) out; the kernel drops it when the agent dies, however it
dies, so a stale lock file never needs cleaning up.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from watcher_agent.config_file import sha256
from watcher_agent.state import StateError, load_state, own_hashes

log = logging.getLogger(__name__)

# What the single shared `.watcher-agent/` of earlier versions held.
OLD_LAYOUT = ("state.json", "base.yml", "last-good.yml", "history")


class StateLock:
    """The exclusive lock on one state directory; released by `release` or by the process dying."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(
                f"cannot use state directory {self.path.parent}: {exc.strerror}; set STATE_DIR "
                "to a writable directory"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateError(
                f"another agent (pid {holder}) already uses the state in {self.path.parent}: run "
                "one agent per config file, or give this one its own STATE_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def migrate_shared_layout(root: Path, state_dir: Path, config: bytes) -> bool:
    """Move the earlier single-directory state into `state_dir` if it belongs to this config.

    It belongs to this config when the config file holds something that state wrote or kept
    (its base, last good, a history entry, the applied or written hash). Otherwise it is left
    where it is for the agent it belongs to. True when something was moved.
    """
    if state_dir.name in OLD_LAYOUT or not (root / "state.json").exists():
        return False
    with _locked(root / ".layout.lock"):  # two agents starting together: one moves, once
        if not (root / "state.json").exists() or (state_dir / "state.json").exists():
            return False
        old = load_state(root)
        if old is None or sha256(config) not in own_hashes(root, old):
            log.info("the state in %s belongs to another config: left in place", root)
            return False
        for name in OLD_LAYOUT:
            if (root / name).exists():
                os.replace(root / name, state_dir / name)
    log.info("state moved from %s to %s (one state directory per config file)", root, state_dir)
    return True
