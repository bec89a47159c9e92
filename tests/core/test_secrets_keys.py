"""Recipients kept in etcd, and the operator's identity kept in the real OS keyring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdadmin.core.errors import ConflictError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.secrets.errors import NoRecipients
from etcdadmin.core.secrets.identities import new_agent_key
from etcdadmin.core.secrets.recipients import (
    Recipient,
    RecipientBook,
    add_recipient,
    public_key_fingerprint,
    remove_recipient,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def conn(etcd_server) -> Iterator[EtcdConnection]:
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as connection:
        yield connection


def test_recipients_are_public_records_in_etcd_and_the_nearest_directory_governs(conn, etcd_server):
    team = f"team-{uuid.uuid4().hex[:8]}"
    agent = Recipient("agent-1", new_agent_key("ed25519", comment="agent@host").public_key)
    nested = Recipient("prod-agent", new_agent_key("ed25519").public_key)
    assert add_recipient(conn, team, agent)
    assert not add_recipient(conn, f"{team}/", agent), "the same key again changes nothing"
    assert add_recipient(conn, f"{team}/prod", nested)

    record = json.loads(
        etcd_server.etcdctl(
            "get", "--print-value-only", f"/etcdadmin/recipients/{team}/agent-1"
        ).stdout
    )
    assert record["fingerprint"] == public_key_fingerprint(agent.public_key)
    assert record["public_key"] == agent.public_key.rsplit(" ", 1)[0], "no comment kept"
    assert "PRIVATE" not in json.dumps(record)

    book = RecipientBook.read(conn)
    assert [r.name for r in book.for_key(f"{team}/http/secret".encode())] == ["agent-1"]
    assert [r.name for r in book.for_key(f"{team}/prod/db/password".encode())] == ["prod-agent"]
    with pytest.raises(NoRecipients, match="keys new"):
        book.for_key(f"elsewhere-{team}/password".encode())

    other = Recipient("agent-1", new_agent_key("ed25519").public_key)
    with pytest.raises(ConflictError, match="already exists"):
        add_recipient(conn, team, other)
    assert remove_recipient(conn, team, "agent-1")
    assert RecipientBook.read(conn).of_directory(team) == ()


def _identity_in(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the operator-identity code in a process of its own, on the keyring at `env`."""
    script = (
        "import sys\n"
        "from etcdadmin.core.secrets.operator import load_operator_identity\n"
        "identity = load_operator_identity(create=sys.argv[1] == 'create')\n"
        "print(identity.public_key if identity else 'none')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_operator_identity_lives_in_the_keyring_and_survives_its_restart(
    private_keyring, tmp_path
):
    env = private_keyring.env
    assert _identity_in(env, "read").stdout.strip() == "none"
    created = _identity_in(env, "create")
    assert created.returncode == 0, created.stderr
    public_key = created.stdout.strip()
    assert public_key.startswith("age1")

    private_keyring.stop()
    private_keyring.start()
    assert _identity_in(private_keyring.env, "read").stdout.strip() == public_key

    # the secret half is in no file anywhere under the keyring's HOME and data directories
    # (gnome-keyring stores its own file encrypted) nor in the project's config directory
    needle = b"AGE-SECRET-KEY-"
    for path in Path(private_keyring.state_dir).rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), f"{path} holds the identity in plain text"


def test_with_no_keyring_the_operator_is_told_what_to_install(tmp_path):
    empty_bus = {
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus'}",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    done = _identity_in(empty_bus, "create")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "KeyringUnavailable" in last and "gnome-keyring" in last
    assert not list(tmp_path.rglob("*AGE*")) and needle_free(tmp_path)


def needle_free(root: Path) -> bool:
    return all(b"AGE-SECRET-KEY-" not in p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_an_operator_writing_a_secret_joins_the_recipients_and_the_agent_opens_it(
    conn, etcd_server, os_keyring, tmp_path
):
    from etcdadmin.core.secrets.envelope import open_envelope
    from etcdadmin.core.secrets.identities import load_key_files, write_key_pair
    from etcdadmin.core.secrets.sealer import SecretSealer

    team = f"team-{uuid.uuid4().hex[:8]}"
    key = f"{team}/storage/swift/password".encode()
    with pytest.raises(NoRecipients):
        SecretSealer(conn).seal(key, b"pw")

    agent_key = new_agent_key("ed25519")
    write_key_pair(tmp_path / "id_ed25519", agent_key)
    add_recipient(conn, team, Recipient("agent-1", agent_key.public_key))
    sealer = SecretSealer(conn)
    envelope = sealer.seal(key, b"swift-password")
    conn.put(key, envelope)

    stored = etcd_server.etcdctl("get", "--print-value-only", key.decode()).stdout
    assert "swift-password" not in stored and "BEGIN AGE ENCRYPTED FILE" in stored
    roles = {r.name: r.role for r in RecipientBook.read(conn).of_directory(team)}
    assert roles["agent-1"] == "agent" and "operator" in roles.values()
    agent = load_key_files(str(tmp_path / "id_ed25519"))[0].identities[0]
    assert open_envelope(key, stored.encode(), [agent]) == b"swift-password"
    assert sealer.open(key, stored.encode()) == b"swift-password"


def test_a_team_operator_granted_one_directory_writes_a_secret_there(
    secure_cluster, os_keyring, tmp_path
):
    from etcdadmin.core.secrets.envelope import open_envelope
    from etcdadmin.core.secrets.identities import load_key_files, write_key_pair
    from etcdadmin.core.secrets.sealer import SecretSealer
    from tests.stack.secure import DIRECTORY, OPERATOR

    agent_key = new_agent_key("ed25519")
    write_key_pair(tmp_path / "id_ed25519", agent_key)
    with secure_cluster.connect("root") as root:
        add_recipient(root, DIRECTORY, Recipient("agent", agent_key.public_key))
    key = f"{DIRECTORY}/storage/swift/password".encode()
    # etcd refuses this user a read of every directory's recipients: the book reads its own
    with secure_cluster.connect(OPERATOR) as operator:
        operator.put(key, SecretSealer(operator).seal(key, b"team-secret"))
    stored = secure_cluster.etcdctl("get", "--print-value-only", key.decode()).encode()
    agent = load_key_files(str(tmp_path / "id_ed25519"))[0].identities[0]
    assert open_envelope(key, stored, [agent]) == b"team-secret"
