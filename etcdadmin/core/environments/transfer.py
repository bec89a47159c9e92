"""Importing a YAML config file into a directory, and exporting a directory as YAML.

Both use the agent's own mapping (`etcdadmin.core.config.mapping`), so what is exported is what an
agent would render and what is imported is what an agent would read back.
"""

from __future__ import annotations

from pathlib import Path

from etcdadmin.core.changes import SetValue
from etcdadmin.core.environments.compare import export_directory, import_entries
from etcdadmin.core.etcd import EtcdConnection
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


def export_file(conn: EtcdConnection, directory: bytes, path: Path) -> int:
    text = export_directory(conn, directory_prefix(directory))
    path.write_text(text, encoding="utf-8")
    return len(text)
