"""The agent opening secret values on the real stack: plaintext only in the config it renders,
nothing applied for a secret it cannot open, a key rotation without a restart of the service.

Secrets are written as an operator's tools write them (recipients published in etcd, the value
sealed with the core's `seal`) and checked as an operator would (`etcdctl get`, the file, the
status record, the agent's log).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.secrets.envelope import is_envelope, recipient_types, seal
from etcdadmin.core.secrets.identities import load_key_file
from etcdadmin.core.secrets.opener import SecretOpener
from etcdadmin.core.secrets.recipients import (
    Recipient,
    RecipientBook,
    add_recipient,
    parse_public_key,
    pyrage_recipients,
    remove_recipient,
    ssh_tag,
)
from tests.agent.harness import AgentProcess, status
from tests.stack.procs import free_port, wait_until
from tests.stack.registry import (
    registry_config,
    registry_up,
    run_registry,
    wait_container_exit,
    write_registry_config,
)

PLAINTEXT = "pl41ntext-7c1e-never-logged"


def ssh_key(directory: Path, name: str, kind: str = "ed25519", passphrase: str = "") -> Path:
    """A key pair as `ssh-keygen` makes it; the private key's path (`.pub` beside it)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    bits = ["-b", "3072"] if kind == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *bits, "-N", passphrase, "-C", name, "-f", str(path)],
        check=True,
    )
    return path


def public_key(private_key: Path) -> str:
    return private_key.with_name(private_key.name + ".pub").read_text().strip()


def connect(endpoint: str) -> EtcdConnection:
    return EtcdConnection(ConnectionSettings((endpoint,)))


def publish(endpoint: str, directory: str, name: str, private_key: Path) -> None:
    """Make the key a recipient of the directory's secrets."""
    with connect(endpoint) as conn:
        add_recipient(conn, directory, Recipient(name, public_key(private_key)))


def sealed(endpoint: str, key: str, value: str) -> bytes:
    """`value` sealed for `key` to the recipients its directory has in etcd."""
    with connect(endpoint) as conn:
        book = RecipientBook.read(conn)
    return seal(key.encode(), value.encode(), pyrage_recipients(book.for_key(key.encode())))


def put(endpoint: str, key: str, value: str | bytes) -> int:
    with connect(endpoint) as conn:
        return conn.put(key, value)


def etcd_value(etcd_server, key: str) -> str:
    return str(etcd_server.etcdctl("get", "--print-value-only", key).stdout)


def record(etcd_server, directory: str) -> dict[str, Any]:
    records = status(etcd_server.endpoint, directory)
    return records[0] if records else {}


def rendered(agent: AgentProcess) -> dict[str, Any]:
    return yaml.safe_load(agent.config.read_text()) or {}


def wait_applied(agent: AgentProcess, etcd_server, directory: str, revision: int) -> None:
    def applied() -> bool:
        now = record(etcd_server, directory)
        return now.get("last_result") == "ok" and now.get("applied_revision", 0) >= revision

    wait_until(applied, 60, f"revision {revision} applied\n--- agent log:\n{agent.log()[-3000:]}")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_never_logged(agent: AgentProcess, *values: str) -> None:
    log = agent.log()
    hits = [v for v in values if v in log]
    assert hits == [], "a secret value reached the agent's log"


def tampered(armored: str) -> str:
    """The envelope with one byte of its encrypted payload flipped (still an armored age file)."""
    lines = armored.strip().splitlines()
    raw = bytearray(base64.b64decode("".join(lines[1:-1])))
    raw[-5] ^= 0x01
    body = base64.b64encode(bytes(raw)).decode()
    return "\n".join([lines[0], *(body[i : i + 64] for i in range(0, len(body), 64)), lines[-1]])


@pytest.fixture
def agent_key(tmp_path: Path) -> Path:
    return ssh_key(tmp_path / "keys", "id_ed25519")


def test_a_secret_is_rendered_in_plaintext_into_a_private_config_while_etcd_holds_ciphertext(
    etcd_server, make_agent, agent_key
):
    directory = f"sec-{uuid.uuid4().hex[:8]}"
    key = f"{directory}/storage/swift/password"
    publish(etcd_server.endpoint, directory, "agent-1", agent_key)
    put(etcd_server.endpoint, key, sealed(etcd_server.endpoint, key, PLAINTEXT))
    put(etcd_server.endpoint, f"{directory}/log/level", "debug")

    stored = etcd_value(etcd_server, key)
    assert PLAINTEXT not in stored and is_envelope(stored.encode())

    agent = make_agent(
        {
            "ETCD_HOST": etcd_server.endpoint,
            "WATCH_ETCD_DIR": directory,
            "PRIVATE_KEY": str(agent_key),
            "LOG_LEVEL": "DEBUG",
        }
    )
    wait_until(
        lambda: rendered(agent).get("storage", {}).get("swift", {}).get("password") == PLAINTEXT,
        30,
        f"the secret's value in the config\n--- agent log:\n{agent.log()[-3000:]}",
    )
    assert rendered(agent)["log"]["level"] == "debug"
    assert mode(agent.config) == 0o600, "a config holding a secret is readable by its owner only"
    for copy in (agent.state_dir / "history").glob("*.yml"):
        assert mode(copy) == 0o600
    assert agent.metrics()["secret_values"] == 1
    assert agent.metrics()["secret_decryptions_total"] == 1

    # An unrelated change renders the directory again without decrypting anything again.
    revision = put(etcd_server.endpoint, f"{directory}/log/level", "warn")
    wait_applied(agent, etcd_server, directory, revision)
    assert rendered(agent)["log"]["level"] == "warn"
    assert rendered(agent)["storage"]["swift"]["password"] == PLAINTEXT
    assert agent.metrics()["secret_decryptions_total"] == 1, "the opened value was cached"

    # A new value of the secret is a new ciphertext: opened once more.
    revision = put(etcd_server.endpoint, key, sealed(etcd_server.endpoint, key, PLAINTEXT + "-2"))
    wait_applied(agent, etcd_server, directory, revision)
    assert rendered(agent)["storage"]["swift"]["password"] == PLAINTEXT + "-2"
    assert agent.metrics()["secret_decryptions_total"] == 2
    assert PLAINTEXT not in json.dumps(record(etcd_server, directory))
    assert_never_logged(agent, PLAINTEXT, PLAINTEXT + "-2")


def _copied_by_hand(etcd_server, directory: str, key: str, tmp_path: Path) -> tuple[str, str]:
    """A ciphertext copied under another key with etcdctl: (the key it went to, why refused)."""
    other = f"{directory}/storage/swift/username"
    value = etcd_value(etcd_server, key)
    etcd_server.etcdctl("put", other, input=value)  # etcdctl reads the value from stdin
    return other, "moved"


def _tampered(etcd_server, directory: str, key: str, tmp_path: Path) -> tuple[str, str]:
    etcd_server.etcdctl("put", key, input=tampered(etcd_value(etcd_server, key)))
    return key, "damaged"


def _sealed_to_another_key(etcd_server, directory: str, key: str, tmp_path: Path):
    stranger = ssh_key(tmp_path / "stranger", "id_ed25519")
    envelope = seal(
        key.encode(), b"other-" + PLAINTEXT.encode(), [parse_public_key(public_key(stranger))]
    )
    put(etcd_server.endpoint, key, envelope)
    return key, "no_matching_key"


UNREADABLE = {
    "tampered": _tampered,
    "moved": _copied_by_hand,
    "wrong recipient": _sealed_to_another_key,
}


@pytest.mark.parametrize("case", list(UNREADABLE), ids=list(UNREADABLE))
def test_a_secret_the_agent_cannot_open_applies_nothing_and_the_status_names_key_and_reason(
    etcd_server, make_agent, agent_key, tmp_path, case
):
    directory = f"bad-{uuid.uuid4().hex[:8]}"
    key = f"{directory}/storage/swift/password"
    publish(etcd_server.endpoint, directory, "agent-1", agent_key)
    revision = put(etcd_server.endpoint, key, sealed(etcd_server.endpoint, key, PLAINTEXT))
    agent = make_agent(
        {
            "ETCD_HOST": etcd_server.endpoint,
            "WATCH_ETCD_DIR": directory,
            "PRIVATE_KEY": str(agent_key),
            "LOG_LEVEL": "DEBUG",
        }
    )
    wait_applied(agent, etcd_server, directory, revision)
    applied = record(etcd_server, directory)["applied_revision"]
    before = agent.config.read_bytes()
    history = sorted(p.name for p in (agent.state_dir / "history").glob("*.yml"))

    failed_key, reason = UNREADABLE[case](etcd_server, directory, key, tmp_path)
    # After the bad secret, a harmless change that must not be applied either.
    put(etcd_server.endpoint, f"{directory}/log/level", "debug")

    wait_until(
        lambda: record(etcd_server, directory).get("last_result") == "secret_failed",
        30,
        f"secret_failed in the status\n--- agent log:\n{agent.log()[-3000:]}",
    )
    now = record(etcd_server, directory)
    assert now["failed_key"] == failed_key
    assert now["failed_reason"] == reason
    assert failed_key in now["last_error"]
    assert now["applied_revision"] == applied, "the revision before the bad secret stays applied"
    assert agent.config.read_bytes() == before, "nothing is applied"
    assert sorted(p.name for p in (agent.state_dir / "history").glob("*.yml")) == history
    assert PLAINTEXT not in json.dumps(now)
    assert_never_logged(agent, PLAINTEXT)

    # Writing the secret again (sealed for its key, to the agent) applies everything.
    if failed_key != key:
        etcd_server.etcdctl("del", failed_key)
    revision = put(etcd_server.endpoint, key, sealed(etcd_server.endpoint, key, PLAINTEXT))
    wait_applied(agent, etcd_server, directory, revision)
    assert rendered(agent)["log"]["level"] == "debug"
    assert record(etcd_server, directory)["failed_reason"] is None


def test_an_agent_without_private_key_reports_each_secret_as_unreadable_and_says_why(
    etcd_server, make_agent, agent_key
):
    directory = f"nokey-{uuid.uuid4().hex[:8]}"
    key = f"{directory}/storage/swift/password"
    publish(etcd_server.endpoint, directory, "agent-1", agent_key)
    put(etcd_server.endpoint, key, sealed(etcd_server.endpoint, key, PLAINTEXT))
    agent = make_agent({"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": directory})
    wait_until(
        lambda: record(etcd_server, directory).get("last_result") == "secret_failed",
        30,
        f"secret_failed in the status\n--- agent log:\n{agent.log()[-3000:]}",
    )
    now = record(etcd_server, directory)
    assert (now["failed_key"], now["failed_reason"]) == (key, "no_matching_key")
    assert "PRIVATE_KEY" in now["last_error"]
    assert "password" not in rendered(agent).get("storage", {}).get("swift", {})


def _missing(tmp_path: Path) -> str:
    return str(tmp_path / "no-such-key")


def _with_passphrase(tmp_path: Path) -> str:
    return str(ssh_key(tmp_path / "pp", "id_ed25519", passphrase="correct horse"))


def _not_a_key(tmp_path: Path) -> str:
    path = tmp_path / "id_rsa"
    path.write_text("placeholder private key\n")
    return str(path)


def _a_fifo(tmp_path: Path) -> str:
    os.mkfifo(tmp_path / "id_fifo")
    return str(tmp_path / "id_fifo")


def _empty_directory(tmp_path: Path) -> str:
    (tmp_path / "keys").mkdir()
    return str(tmp_path / "keys")


def _a_directory_with_one_bad_key(tmp_path: Path) -> str:
    good = ssh_key(tmp_path / "keys", "id_ed25519")
    (good.parent / "id_old").write_text("not a key\n")
    return str(good.parent)


BAD_KEYS = {
    "missing": _missing,
    "passphrase": _with_passphrase,
    "not a key": _not_a_key,
    "fifo": _a_fifo,
    "empty directory": _empty_directory,
    "one bad key in the directory": _a_directory_with_one_bad_key,
}


@pytest.mark.parametrize("case", list(BAD_KEYS), ids=list(BAD_KEYS))
def test_an_unusable_private_key_stops_the_agent_with_exit_2_and_one_line(
    tmp_path, make_agent, case
):
    spec = BAD_KEYS[case](tmp_path)
    agent = make_agent(
        {"ETCD_HOST": "127.0.0.1:2379", "WATCH_ETCD_DIR": "bad", "PRIVATE_KEY": spec}
    )
    assert agent.proc is not None
    assert agent.proc.wait(timeout=30) == 2
    lines = [line for line in agent.log().splitlines() if line.strip()]
    assert len(lines) == 1, agent.log()
    assert "PRIVATE_KEY" in lines[0]
    assert not Path(agent.env["STATE_DIR"]).exists(), "nothing is written before the checks"
    if case == "passphrase":
        assert "passphrase" in lines[0]


def test_a_key_rotation_keeps_the_service_running_and_its_config_right(
    tmp_path, etcd_server, swift, docker_daemon, registry_image, make_agent
):
    """Old key (id_rsa, as the seed) and new key held together; secrets re-sealed to the new
    key only; the agent restarted with the new key alone. The registry's Swift password exists
    only as a secret, so the registry is up exactly when the agent opened it."""
    client = docker_daemon.client()
    port, name = free_port(), f"reg-rot-{uuid.uuid4().hex[:8]}"
    directory, key = name, f"{name}/storage/swift/password"
    config_dir = tmp_path / "registry-conf"
    config = write_registry_config(
        config_dir, registry_config(swift, "wrong-password", container=name, port=port)
    )
    registry = run_registry(client, registry_image, config_dir, name, port)
    try:
        assert wait_container_exit(registry) != 0, "with the wrong password the registry is down"
        keys = tmp_path / "agent-keys"
        old, new = ssh_key(keys, "id_rsa", kind="rsa"), ssh_key(keys, "id_ed25519")
        publish(etcd_server.endpoint, directory, "agent-old", old)
        put(etcd_server.endpoint, key, sealed(etcd_server.endpoint, key, swift.key))
        env = {
            "ETCD_HOST": etcd_server.endpoint,
            "WATCH_ETCD_DIR": directory,
            "SERVE_CONTAINER": name,
            "DOCKER_HOST": docker_daemon.host,
            "HEALTH_URL": f"http://127.0.0.1:{port}/v2/",
            "PRIVATE_KEY": str(keys),
            "LOG_LEVEL": "DEBUG",
        }
        agent = make_agent(env, config=config)
        wait_until(
            lambda: registry_up(port) and record(etcd_server, directory).get("last_result") == "ok",
            90,
            f"registry up with the secret's password\n--- agent log:\n{agent.log()[-3000:]}",
        )
        registry.reload()
        started = registry.attrs["State"]["StartedAt"]
        restarts = agent.metrics()["restarts_total"]

        # The rotation: the new key joins, the old one leaves, the secret is sealed again.
        publish(etcd_server.endpoint, directory, "agent-new", new)
        with connect(etcd_server.endpoint) as conn:
            remove_recipient(conn, directory, "agent-old")
            book = RecipientBook.read(conn)
        opener = SecretOpener(list(load_key_file(old).identities))
        envelope = etcd_value(etcd_server, key).encode()
        resealed = opener.reseal(
            key.encode(), envelope, key.encode(), pyrage_recipients(book.for_key(key.encode()))
        )
        revision = put(etcd_server.endpoint, key, resealed)
        wait_applied(agent, etcd_server, directory, revision)
        stanzas = recipient_types(etcd_value(etcd_server, key).encode())
        assert stanzas == [f"ssh-ed25519 {ssh_tag(public_key(new))}"], "sealed to the new key only"
        assert agent.metrics()["restarts_total"] == restarts, "same config: no restart"

        # The old key is retired: the agent comes back with the new key alone.
        agent.stop()
        agent.env["PRIVATE_KEY"] = str(new)
        agent.start()
        wait_until(
            lambda: (
                agent.metrics()["secret_decryptions_total"] == 1
                and record(etcd_server, directory).get("last_result") == "ok"
            ),
            30,
            f"the restarted agent opened the secret\n--- agent log:\n{agent.log()[-3000:]}",
        )
        assert agent.metrics()["restarts_total"] == 0
        registry.reload()
        assert registry.attrs["State"]["StartedAt"] == started, "the registry kept running"
        assert registry_up(port)
        assert yaml.safe_load(config.read_text())["storage"]["swift"]["password"] == swift.key
        assert mode(config) == 0o600
        assert swift.key not in etcd_value(etcd_server, key)
        assert_never_logged(agent, swift.key)
    finally:
        registry.remove(force=True)
