"""`backup restore` of an encrypted backup without `--identity`: the operator's own identity
from the real OS keyring (gnome-keyring on a private bus) opens a backup encrypted to it; a
backup encrypted to others is refused by name, with nothing written (read back with etcdctl)."""

from __future__ import annotations

import pytest

from etcdadmin.cli import exits
from etcdadmin.core.secrets.operator import load_operator_identity
from tests.cli.test_backup_encrypted import age_identity, created_id, listed
from tests.cli.test_backup_restore import values

pytestmark = pytest.mark.usefixtures("os_keyring")


def test_a_restore_without_identity_opens_a_backup_encrypted_to_the_operators_own_key(
    at, top, etcd_server, tmp_path
):
    options = ["--dir", str(tmp_path / "backups")]
    made = load_operator_identity(create=True)  # what `secret put` makes on first use
    assert made is not None
    operator = made.public_key
    _, stranger = age_identity(tmp_path)
    etcd_server.etcdctl("put", f"{top}/app/a", "1")
    mine = created_id(
        at("backup", *options, "create", "--prefix", f"{top}/", "--encrypt-to", operator)
    )
    etcd_server.etcdctl("put", f"{top}/app/b", "2")  # a revision (and so an id) of its own
    theirs = created_id(
        at("backup", *options, "create", "--prefix", f"{top}/", "--encrypt-to", stranger)
    )
    etcd_server.etcdctl("put", f"{top}/app/a", "changed")

    restored = at("backup", *options, "restore", mine, "--prefix", f"{top}/app", "--yes")

    assert restored.exit_code == 0, restored.stderr
    assert values(etcd_server, f"{top}/app/") == {f"{top}/app/a": "1"}

    etcd_server.etcdctl("put", f"{top}/app/a", "changed again")
    before = len(listed(at, options, {}))
    refused = at("backup", *options, "restore", theirs, "--prefix", f"{top}/app", "--yes")

    assert refused.exit_code == exits.USAGE, refused.stderr
    message = " ".join(refused.stderr.split())
    assert stranger in message and f"your operator identity ({operator}) is not one" in message
    assert "--identity FILE" in message
    assert values(etcd_server, f"{top}/app/") == {f"{top}/app/a": "changed again"}
    assert len(listed(at, options, {})) == before, "no safety backup was taken"
