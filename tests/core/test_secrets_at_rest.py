"""A secret written through etcdadmin is ciphertext wherever etcd's data goes: the snapshot
file `etcdctl snapshot save` writes, and both objects of an etcdadmin backup."""

from __future__ import annotations

import uuid
from pathlib import Path

from etcdadmin.core.backup.create import BackupOptions, create_backup
from etcdadmin.core.backup.export import iter_export
from etcdadmin.core.backup.local_dir import LocalDirectory
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.secrets.identities import new_agent_key
from etcdadmin.core.secrets.recipients import Recipient, add_recipient
from etcdadmin.core.secrets.sealer import SecretSealer

PLAINTEXT = b"swift-password-" + uuid.uuid4().hex.encode()


def test_a_secret_is_nowhere_in_plaintext_in_a_snapshot_or_a_backup(
    private_etcd, os_keyring, tmp_path: Path
):
    key = b"registry-test/storage/swift/password"
    with EtcdConnection(ConnectionSettings((private_etcd.endpoint,))) as conn:
        add_recipient(conn, "registry-test", Recipient("agent", new_agent_key().public_key))
        conn.put(key, SecretSealer(conn).seal(key, PLAINTEXT))
        conn.put(b"registry-test/http/addr", b":5000")

        snapshot = tmp_path / "etcd.db"
        private_etcd.etcdctl("snapshot", "save", str(snapshot))
        data = snapshot.read_bytes()
        assert b"BEGIN AGE ENCRYPTED FILE" in data, "the snapshot holds the key at all"
        assert PLAINTEXT not in data

        location = LocalDirectory(tmp_path / "backups")
        create_backup(conn, location, BackupOptions())

    files = [p for p in (tmp_path / "backups").rglob("*") if p.is_file()]
    assert any(p.name.startswith("snapshot") for p in files), files
    for path in files:
        assert PLAINTEXT not in path.read_bytes(), f"{path} holds the secret in plaintext"
    export = next(p for p in files if p.name.startswith("keys"))
    values = {r.key: r.value for r in iter_export([export.read_bytes()])}
    assert values[key].startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert PLAINTEXT not in values[key]
