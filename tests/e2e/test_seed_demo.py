"""The seed's demo, end to end, with the agent running as the container Dockerfile.agent builds.

A registry whose Swift password is wrong is down; the operator sets
`<dir>/storage/swift/password` in etcd; the agent rewrites config.yml and restarts the registry;
`GET /v2/` answers 200 and a `docker push` lands its blobs in the Swift container.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

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


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    # The seed mounts the agent's private key; secret values arrive with the secrets issue.
    path = tmp_path / "id_rsa"
    path.write_text("placeholder private key\n")
    path.chmod(0o600)
    return path


def test_password_set_in_etcd_brings_the_registry_up_and_a_push_lands_in_swift(
    tmp_path, etcd_server, swift, docker_daemon, registry_image, agent_image, key_file
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
        etcd_server.etcdctl("put", f"{directory}/storage/swift/password", swift.key)

        wait_until(lambda: registry_up(port), 90, f"registry up\n--- agent:\n{logs(agent)}")
        wait_until(
            lambda: agent_status(etcd_server, directory).get("last_result") == "ok",
            30,
            "agent reports ok",
        )
        assert swift.key not in logs(agent), "the agent never logs values"

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
        etcd_server.etcdctl("put", f"{directory}/storage/swift/password", swift.key)
        wait_until(lambda: registry_up(port), 90, f"registry up\n--- agent:\n{logs(agent)}")
        assert "Mount its directory to get atomic updates" in logs(agent)
        assert f"password: {swift.key}" in config.read_text()
    finally:
        agent.remove(force=True)
        registry.remove(force=True)
