"""The seed's demo, end to end, with the agent running as the container Dockerfile.agent builds.

A registry whose Swift password is wrong is down; the operator stores
`<dir>/storage/swift/password` in etcd as a secret, encrypted to the agent's `id_rsa` (published
as the directory's recipient) and to the operator's own key, as `etcdadmin secret put` does; the
agent opens it, rewrites config.yml and restarts the registry; `GET /v2/` answers 200 and a
`docker push` lands its blobs in the Swift container. etcd never holds the password.
"""

from __future__ import annotations

import json
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.secrets.envelope import is_envelope, seal
from etcdadmin.core.secrets.recipients import (
    Recipient,
    RecipientBook,
    add_recipient,
    pyrage_recipients,
)
from etcdadmin.core.secrets.sealer import SecretSealer
from tests.stack.docker_daemon import STACK_LABELS
from tests.stack.procs import free_port, wait_until
from tests.stack.registry import (
    CONFIG_NAME,
    registry_config,
    registry_up,
    run_registry,
    wait_container_exit,
    write_registry_config,
)


def agent_status(etcd_server, directory: str) -> dict:
    out = etcd_server.etcdctl(
        "get", "--prefix", f"/etcdadmin/agents/{directory}/", "--print-value-only"
    ).stdout.strip()
    return json.loads(out.splitlines()[0]) if out else {}


def run_agent(client, image: str, name: str, volumes: dict, env: dict):
    return client.containers.run(
        image,
        name=name,
        detach=True,
        network_mode="host",
        volumes=volumes,
        environment=env,
        labels=STACK_LABELS,
    )


def logs(container) -> str:
    return container.logs().decode(errors="replace")[-4000:]


def publish_agent_key(etcd_server, directory: str, key_file: Path) -> None:
    """The agent's public key as the recipient of the directory's secrets."""
    public_key = key_file.with_name(key_file.name + ".pub").read_text()
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        add_recipient(conn, directory, Recipient("watcher", public_key, "agent"))


def put_with_etcdctl(etcd_server, key: str, envelope: bytes) -> None:
    # From stdin: an armored value begins with dashes, which etcdctl would read as a flag.
    etcd_server.etcdctl("put", key, input=envelope.decode())


def assert_ciphertext_only(etcd_server, key: str, plaintext: str) -> None:
    stored = etcd_server.etcdctl("get", key).stdout
    assert plaintext not in stored, "etcd holds the password in plaintext"
    assert is_envelope(stored.split("\n", 1)[1].encode())


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The agent's private key, as the seed mounts it: an id_rsa from `ssh-keygen`."""
    path = tmp_path / "keys" / "id_rsa"
    path.parent.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", str(path)], check=True
    )
    return path


def test_password_set_in_etcd_brings_the_registry_up_and_a_push_lands_in_swift(
    tmp_path, etcd_server, swift, docker_daemon, registry_image, agent_image, key_file, os_keyring
):
    client = docker_daemon.client()
    suffix = uuid.uuid4().hex[:8]
    port, name, directory = free_port(), f"registry-{suffix}", f"hack-{suffix}"
    config_dir = tmp_path / "registry"
    write_registry_config(
        config_dir, registry_config(swift, "wrong-password", container=name, port=port)
    )
    registry = run_registry(client, registry_image, config_dir, name, port)
    assert wait_container_exit(registry) != 0, "with the wrong password the registry is down"

    socket_path = docker_daemon.host.removeprefix("unix://")
    agent = run_agent(
        client,
        agent_image,
        f"watcher-{suffix}",
        {
            str(config_dir): {"bind": "/etc/docker/registry", "mode": "rw"},
            str(key_file): {"bind": "/id_rsa", "mode": "ro"},
            socket_path: {"bind": "/var/run/docker.sock", "mode": "rw"},
        },
        {
            "ETCD_HOST": etcd_server.endpoint,
            "WATCH_ETCD_DIR": directory,
            "CONFIG": f"/etc/docker/registry/{CONFIG_NAME}",
            "PRIVATE_KEY": "/id_rsa",
            "SERVE_CONTAINER": name,
            "HEALTH_URL": f"http://127.0.0.1:{port}/v2/",
        },
    )
    try:
        wait_until(lambda: agent_status(etcd_server, directory) != {}, 60, "agent status")
        publish_agent_key(etcd_server, directory, key_file)
        # What `etcdadmin secret put` does: the operator's identity (OS keyring) joins the
        # directory's recipients and the value is sealed to all of them.
        password_key = f"{directory}/storage/swift/password"
        with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
            envelope = SecretSealer(conn).seal(password_key.encode(), swift.key.encode())
        put_with_etcdctl(etcd_server, password_key, envelope)
        assert_ciphertext_only(etcd_server, password_key, swift.key)

        wait_until(lambda: registry_up(port), 90, f"registry up\n--- agent:\n{logs(agent)}")
        wait_until(
            lambda: agent_status(etcd_server, directory).get("last_result") == "ok",
            30,
            "agent reports ok",
        )
        assert swift.key not in logs(agent), "the agent never logs values"
        config = config_dir / CONFIG_NAME
        assert f"password: {swift.key}" in config.read_text()
        assert stat.S_IMODE(config.stat().st_mode) == 0o600, "the rendered secret is private"

        image = client.images.get(registry_image)
        target = f"127.0.0.1:{port}/demo/registry"
        image.tag(target, "v1")
        result = list(client.images.push(target, "v1", stream=True, decode=True))
        errors = [line for line in result if "error" in line]
        assert errors == [], errors
        _, objects = swift.connection().get_container(name)
        blobs = [o["name"] for o in objects if "/blobs/" in o["name"]]
        assert blobs, f"no blob in Swift container {name}: {[o['name'] for o in objects]}"
        client.images.remove(f"{target}:v1")
    finally:
        agent.remove(force=True)
        registry.remove(force=True)


def test_the_seed_run_line_with_single_file_mounts_works_and_warns(
    tmp_path, etcd_server, swift, docker_daemon, registry_image, agent_image, key_file
):
    client = docker_daemon.client()
    suffix = uuid.uuid4().hex[:8]
    port, name, directory = free_port(), f"registry-{suffix}", f"hack-{suffix}"
    config = write_registry_config(
        tmp_path / "registry", registry_config(swift, "wrong-password", container=name, port=port)
    )
    registry = client.containers.run(
        registry_image,
        name=name,
        detach=True,
        network_mode="host",
        volumes={str(config): {"bind": f"/etc/docker/registry/{CONFIG_NAME}", "mode": "ro"}},
        labels=STACK_LABELS,
    )
    assert wait_container_exit(registry) != 0
    socket_path = docker_daemon.host.removeprefix("unix://")
    # The seed's line: docker run -d -v config.yml:/config.yml -v id_rsa:/id_rsa
    #   -v /var/run/docker.sock:/var/run/docker.sock -e ETCD_HOST -e WATCH_ETCD_DIR -e CONFIG
    #   -e PRIVATE_KEY -e SERVE_CONTAINER --name watcher <image>
    agent = run_agent(
        client,
        agent_image,
        f"watcher-{suffix}",
        {
            str(config): {"bind": "/config.yml", "mode": "rw"},
            str(key_file): {"bind": "/id_rsa", "mode": "ro"},
            socket_path: {"bind": "/var/run/docker.sock", "mode": "rw"},
        },
        {
            "ETCD_HOST": etcd_server.endpoint,
            "WATCH_ETCD_DIR": directory,
            "CONFIG": "/config.yml",
            "PRIVATE_KEY": "/id_rsa",
            "SERVE_CONTAINER": name,
        },
    )
    try:
        wait_until(lambda: agent_status(etcd_server, directory) != {}, 60, "agent status")
        publish_agent_key(etcd_server, directory, key_file)
        password_key = f"{directory}/storage/swift/password"
        with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
            recipients = RecipientBook.read(conn).for_key(password_key.encode())
        envelope = seal(password_key.encode(), swift.key.encode(), pyrage_recipients(recipients))
        put_with_etcdctl(etcd_server, password_key, envelope)
        assert_ciphertext_only(etcd_server, password_key, swift.key)
        wait_until(lambda: registry_up(port), 90, f"registry up\n--- agent:\n{logs(agent)}")
        assert "Mount its directory to get atomic updates" in logs(agent)
        assert f"password: {swift.key}" in config.read_text()
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert swift.key not in logs(agent)
    finally:
        agent.remove(force=True)
        registry.remove(force=True)
