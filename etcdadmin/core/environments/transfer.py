"""Importing a YAML config file into a directory, and exporting a directory as YAML.

Both use the agent's own mapping (`etcdadmin.core.config.mapping`), so what is exported is what an
agent would render and what is imported is what an agent would read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from etcdadmin.core.changes import SetValue
from etcdadmin.core.config.sensitive import is_secret
from etcdadmin.core.environments.compare import import_entries, read_values, render_directory
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.private_file import write_private
from etcdadmin.core.tree.directories import directory_prefix


def import_file(conn: EtcdConnection, path: Path, directory: bytes) -> list[SetValue]:
    """The changes importing `path` into `directory` stages: only keys whose value differs."""
    entries = import_entries(path.read_text(encoding="utf-8"), directory_prefix(directory))
    current = {kv.key: kv for kv in conn.read_prefix(directory_prefix(directory)).items}
    changes = []
    for key, value in sorted(entries.items()):
        kv = current.get(key)
        if kv is None or kv.value != value:
            changes.append(
                SetValue(key, value, kv.mod_revision if kv else 0, kv.lease if kv else 0)
            )
    return changes


@dataclass(frozen=True)
class Export:
    """A directory rendered as YAML, and the paths in it that hold secrets (relative, `a/b`)."""

    text: str
    secret_paths: tuple[str, ...]


def prepare_export(conn: EtcdConnection, directory: bytes) -> Export:
    """Read and render `directory` once; say which of its keys are secret (by path or value)."""
    prefix = directory_prefix(directory)
    items = read_values(conn, prefix)
    secrets = tuple(
        relative
        for key, value in items
        if is_secret(relative := key[len(prefix) :].decode("utf-8", "replace"), value)
    )
    return Export(render_directory(prefix, items), secrets)


def write_export(export: Export, path: Path) -> int:
    """Write the file readable by its owner only (0600): an export may hold secret values."""
    write_private(path, export.text)
    return len(export.text)


def export_file(conn: EtcdConnection, directory: bytes, path: Path) -> int:
    return write_export(prepare_export(conn, directory), path)
