"""Shared by the backup tests: a fresh location of each kind, a filled private etcd, and the
`swift` command-line client the way an operator would run it."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from etcdadmin.core.backup.local_dir import LocalDirectory
from etcdadmin.core.backup.location import Location
from etcdadmin.core.backup.swift import SwiftCredentials, SwiftLocation
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection

KINDS = ("swift", "local")
MiB = 1024 * 1024


def credentials(swift) -> SwiftCredentials:
    return SwiftCredentials(swift.auth_url, swift.user, swift.key)


def new_location(kind: str, request, tmp_path: Path) -> Location:
    """A Swift container of the test's own (Swift starts on first use), or a directory."""
    if kind == "swift":
        swift = request.getfixturevalue("swift")
        return SwiftLocation(credentials(swift), f"backups-{uuid.uuid4().hex[:10]}")
    return LocalDirectory(tmp_path / "backups")


def connect(server) -> EtcdConnection:
    return EtcdConnection(ConnectionSettings((server.endpoint,)))


def fill(conn: EtcdConnection, prefix: str, count: int, size: int = 1000) -> dict[bytes, bytes]:
    """`count` keys of `size` bytes under `prefix`; returns what was written."""
    written = {}
    for i in range(count):
        key = f"{prefix}k{i:05d}".encode()
        value = (f"{i:05d}".encode() + os.urandom(size // 2).hex().encode())[:size]
        conn.put(key, value)
        written[key] = value
    return written


def swift_cli(swift, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    argv = ["swift", "-A", swift.auth_url, "-U", swift.user, "-K", swift.key, *args]
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=True
    )
