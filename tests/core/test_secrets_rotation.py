"""Rotation: every secret of a directory re-encrypted to its current recipients, in guarded
batches, on the real etcd and the real OS keyring; checked with `etcdctl` and Debian's `age`."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdadmin.core.changes.desired import DesiredConflict
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.secrets.envelope import open_envelope, seal
from etcdadmin.core.secrets.errors import NoMatchingKey
from etcdadmin.core.secrets.identities import load_key_files, new_agent_key, write_key_pair
from etcdadmin.core.secrets.recipients import (
    Recipient,
    add_recipient,
    parse_public_key,
    remove_recipient,
)
from etcdadmin.core.secrets.rotation import apply_rotation, plan_rotation
from etcdadmin.core.secrets.sealer import SecretSealer

VALUES = {f"db{i}/password": f"pw-{i}-{uuid.uuid4().hex[:6]}".encode() for i in range(5)}


@pytest.fixture
def conn(etcd_server) -> Iterator[EtcdConnection]:
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as connection:
        yield connection


def _agent(tmp_path: Path, name: str, kind: str = "ed25519") -> tuple[Path, str]:
    key = new_agent_key("rsa" if kind == "rsa" else "ed25519", comment=name)
    path = tmp_path / name
    write_key_pair(path, key)
    return path, key.public_key


def _identity(path: Path) -> object:
    return load_key_files(str(path))[0].identities[0]


def _stored(etcd_server, key: str) -> bytes:
    return etcd_server.etcdctl("get", "--print-value-only", key).stdout.rstrip("\n").encode()


def _team_with_secrets(conn, tmp_path: Path) -> tuple[str, Path]:
    team = f"rot-{uuid.uuid4().hex[:8]}"
    old_path, old_public = _agent(tmp_path, "agent-old")
    add_recipient(conn, team, Recipient("agent-old", old_public))
    sealer = SecretSealer(conn)
    for relative, value in VALUES.items():
        key = f"{team}/{relative}".encode()
        conn.put(key, sealer.seal(key, value))
    conn.put(f"{team}/http/addr".encode(), b":5000")
    return team, old_path


def test_rotation_after_adding_a_key_and_removing_the_old_one_opens_with_the_new_key_only(
    conn, etcd_server, os_keyring, age_cli, tmp_path
):
    team, old_path = _team_with_secrets(conn, tmp_path)
    new_path, new_public = _agent(tmp_path, "id_rsa", "rsa")
    add_recipient(conn, team, Recipient("agent-new", new_public))
    remove_recipient(conn, team, "agent-old")
    plain_before = conn.get(f"{team}/http/addr".encode())

    rotation = plan_rotation(conn, team.encode(), SecretSealer(conn, join=False))
    assert rotation.count == len(VALUES) and not rotation.unreadable
    result = apply_rotation(conn, rotation)
    assert result.complete and result.applied_keys == len(VALUES)

    new, old = _identity(new_path), _identity(old_path)
    for relative, value in VALUES.items():
        key = f"{team}/{relative}"
        stored = _stored(etcd_server, key)
        assert value not in stored
        assert open_envelope(key.encode(), stored, [new]) == value
        with pytest.raises(NoMatchingKey):
            open_envelope(key.encode(), stored, [old])
    assert conn.get(f"{team}/http/addr".encode()) == plain_before, "plain keys are not written"

    # A stock tool opens a rotated value with the new id_rsa, as the README shows.
    key = f"{team}/db0/password"
    done = subprocess.run(
        [age_cli, "-d", "-i", str(new_path)],
        input=_stored(etcd_server, key),
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert done.stdout.split(b"\n", 3)[3] == VALUES["db0/password"]
    refused = subprocess.run(
        [age_cli, "-d", "-i", str(old_path)],
        input=_stored(etcd_server, key),
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert refused.returncode != 0


def test_a_secret_written_between_plan_and_apply_stops_the_rotation_with_nothing_written(
    conn, etcd_server, os_keyring, tmp_path
):
    team, _ = _team_with_secrets(conn, tmp_path)
    rotation = plan_rotation(conn, team.encode(), SecretSealer(conn, join=False))
    before = {k: conn.get(f"{team}/{k}".encode()) for k in VALUES}

    # Someone writes one of the secrets after the plan was read.
    etcd_server.etcdctl("put", f"{team}/db3/password", "written-by-someone-else")

    with pytest.raises(DesiredConflict) as caught:
        apply_rotation(conn, rotation)
    assert f"{team}/db3/password" in str(caught.value)
    assert "Batch 1 of 1 wrote nothing" in str(caught.value)
    assert caught.value.result.applied_keys == 0
    for relative, kv in before.items():
        if relative != "db3/password":
            assert conn.get(f"{team}/{relative}".encode()) == kv, f"{relative} was rewritten"


def test_a_change_during_apply_stops_between_batches_and_says_how_far_it_got(
    conn, etcd_server, os_keyring, tmp_path
):
    team, _ = _team_with_secrets(conn, tmp_path)
    rotation = plan_rotation(conn, team.encode(), SecretSealer(conn, join=False))
    original = {k: conn.get(f"{team}/{k}".encode()) for k in VALUES}

    def someone_writes_after_the_first_batch(done: int, total: int) -> None:
        if done == 2:
            etcd_server.etcdctl("put", f"{team}/db2/password", "written-meanwhile")

    with pytest.raises(DesiredConflict) as caught:
        apply_rotation(conn, rotation, progress=someone_writes_after_the_first_batch, max_txn_ops=2)
    message = str(caught.value)
    assert f"{team}/db2/password" in message and "Batch 2 of 3 wrote nothing" in message
    assert "2 of 5 keys written" in message
    assert caught.value.result.applied_keys == 2
    # batch 1 (db0, db1) rewritten, batch 3 (db4) never reached
    assert conn.get(f"{team}/db0/password".encode()) != original["db0/password"]
    assert conn.get(f"{team}/db4/password".encode()) == original["db4/password"]


def test_a_secret_the_operator_cannot_open_is_named_and_left_as_it_is(
    conn, etcd_server, os_keyring, tmp_path
):
    team, _ = _team_with_secrets(conn, tmp_path)
    _, stranger_public = _agent(tmp_path, "stranger")
    key = f"{team}/foreign/token".encode()
    conn.put(key, seal(key, b"not-for-the-operator", [parse_public_key(stranger_public)]))
    foreign_before = conn.get(key)

    rotation = plan_rotation(conn, team.encode(), SecretSealer(conn, join=False))
    assert [(u.key, u.reason) for u in rotation.unreadable] == [(key, "no_matching_key")]
    assert b"not-for-the-operator" not in rotation.unreadable[0].message.encode()
    apply_rotation(conn, rotation)
    assert conn.get(key) == foreign_before
