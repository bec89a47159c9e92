"""The agent restarting a real registry on a private dockerd: rollback, bursts, restarts, errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent.harness import REPO, AgentProcess, status
from tests.stack.procs import free_port, wait_until
from tests.stack.registry import (
    registry_config,
    registry_up,
    run_registry,
    wait_registry_up,
    write_registry_config,
)


@dataclass
class Served:
    container: Any
    port: int
    config: Path
    directory: str

    def started_at(self) -> str:
        self.container.reload()
        return str(self.container.attrs["State"]["StartedAt"])


@pytest.fixture
def served_registry(tmp_path, docker_daemon, registry_image, swift):
    """A registry that is up with the right Swift password, configured from a mounted dir."""
    client = docker_daemon.client()
    port = free_port()
    name = f"reg-{uuid.uuid4().hex[:8]}"
    config_dir = tmp_path / "registry-conf"
    config = write_registry_config(
        config_dir, registry_config(swift, swift.key, container=name, port=port)
    )
    container = run_registry(client, registry_image, config_dir, name, port)
    wait_registry_up(container, port)
    yield Served(container, port, config, name)
    container.remove(force=True)


def agent_env(etcd_server, docker_daemon, served: Served, **extra: str) -> dict[str, str]:
    return {
        "ETCD_HOST": etcd_server.endpoint,
        "WATCH_ETCD_DIR": served.directory,
        "SERVE_CONTAINER": served.container.name,
        "DOCKER_HOST": docker_daemon.host,
        "HEALTH_URL": f"http://127.0.0.1:{served.port}/v2/",
        **extra,
    }


def put(etcd_server, key: str, value: str) -> int:
    """Put with etcdctl; returns the revision of the write."""
    out = etcd_server.etcdctl("put", key, value, "-w", "json").stdout
    return int(json.loads(out)["header"]["revision"])


def put_many(endpoint: str, items: list[tuple[str, str]]) -> int:
    """Puts from a separate client process, as fast as one client sends them; last revision."""
    script = (
        "import sys, json\n"
        "from etcdadmin.core.etcd import EtcdConnection, ConnectionSettings\n"
        f"c = EtcdConnection(ConnectionSettings(('{endpoint}',)))\n"
        "print([c.put(k, v) for k, v in json.loads(sys.stdin.read())][-1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        input=json.dumps(items).encode(),
        check=True,
        capture_output=True,
    )
    return int(done.stdout)


def first_status(etcd_server, served: Served) -> dict[str, Any]:
    records = status(etcd_server.endpoint, served.directory)
    return records[0] if records else {}


def wait_applied(agent: AgentProcess, etcd_server, served: Served, revision: int) -> None:
    wait_until(
        lambda: (
            first_status(etcd_server, served).get("applied_revision", 0) >= revision
            and first_status(etcd_server, served).get("last_result") == "ok"
        ),
        60,
        f"agent applying revision {revision}\n--- agent log:\n{agent.log()[-3000:]}",
    )


def test_a_config_that_breaks_the_registry_is_rolled_back_and_reported(
    etcd_server, docker_daemon, served_registry, make_agent
):
    served = served_registry
    good = served.config.read_bytes()
    # Without pre-flight (which would catch the config first): the second line of defence.
    env = agent_env(etcd_server, docker_daemon, served, PREFLIGHT="off")
    agent = make_agent(env, config=served.config)
    wait_until(lambda: first_status(etcd_server, served).get("last_result") == "ok", 30, "start")

    etcd_server.etcdctl("put", f"{served.directory}/storage/swift/password", "not-the-password")

    wait_until(
        lambda: first_status(etcd_server, served).get("last_result") == "rolled_back",
        90,
        f"rollback reported\n--- agent log:\n{agent.log()[-3000:]}",
    )
    record = first_status(etcd_server, served)
    assert "exited with code" in record["last_error"]
    assert "last good config is running again" in record["last_error"]
    assert "not-the-password" not in agent.log()
    assert served.config.read_bytes() == good
    wait_until(lambda: registry_up(served.port), 30, "registry back up on the good config")
    assert agent.metrics()["rollbacks_total"] == 1

    # The failed config is quarantined: the same keys do not restart the registry again.
    started = served.started_at()
    etcd_server.etcdctl("put", f"{served.directory}/storage/swift/password", "not-the-password")
    wait_until(
        lambda: first_status(etcd_server, served).get("last_result") == "quarantined",
        30,
        "quarantine reported",
    )
    assert served.started_at() == started


def test_fifty_puts_in_a_burst_give_one_restart(
    etcd_server, docker_daemon, served_registry, make_agent
):
    served = served_registry
    agent = make_agent(agent_env(etcd_server, docker_daemon, served), config=served.config)
    wait_until(lambda: first_status(etcd_server, served).get("last_result") == "ok", 30, "start")
    since = int(time.time()) - 1
    items = [(f"{served.directory}/notifications/events/k{i:02d}", "true") for i in range(49)]
    items.append((f"{served.directory}/log/level", "debug"))
    revision = put_many(etcd_server.endpoint, items)
    wait_applied(agent, etcd_server, served, revision)
    assert agent.metrics()["restarts_total"] == 1
    events = docker_daemon.client().events(
        since=since,
        until=int(time.time()) + 1,
        filters={"container": served.container.id, "event": "restart"},
        decode=True,
    )
    assert len(list(events)) == 1
    assert "level: debug" in served.config.read_text()


def test_restarting_the_agent_with_nothing_changed_does_not_restart_the_registry(
    etcd_server, docker_daemon, served_registry, make_agent
):
    served = served_registry
    env = agent_env(etcd_server, docker_daemon, served)
    agent = make_agent(env, config=served.config)
    revision = put(etcd_server, f"{served.directory}/log/level", "debug")
    wait_applied(agent, etcd_server, served, revision)
    started = served.started_at()
    first_agent_start = first_status(etcd_server, served)["started_at"]
    agent.stop()

    agent.start()
    wait_until(
        lambda: (
            agent.metrics()["resyncs_total"] >= 1
            and first_status(etcd_server, served).get("started_at") != first_agent_start
            and first_status(etcd_server, served).get("last_result") == "ok"
        ),
        30,
        "second agent in sync",
    )
    assert agent.metrics()["restarts_total"] == 0
    assert served.started_at() == started
    assert registry_up(served.port)


def test_a_missing_container_is_reported_and_the_config_is_not_touched(
    etcd_server, docker_daemon, served_registry, make_agent
):
    served = served_registry
    before = served.config.read_bytes()
    env = agent_env(etcd_server, docker_daemon, served, SERVE_CONTAINER="no-such-registry")
    agent = make_agent(env, config=served.config)
    etcd_server.etcdctl("put", f"{served.directory}/log/level", "debug")
    wait_until(
        lambda: first_status(etcd_server, served).get("last_result") == "docker_failed",
        30,
        f"docker_failed reported\n{agent.log()[-2000:]}",
    )
    error = first_status(etcd_server, served)["last_error"]
    assert "no-such-registry" in error and "SERVE_CONTAINER" in error
    assert served.config.read_bytes() == before


def _image_with_healthcheck(client, base: str, command: list[str], tag: str) -> str:
    """The registry image plus a HEALTHCHECK (exec form: the image has no shell)."""
    dockerfile = (
        f"FROM {base}\n"
        f"HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD {json.dumps(command)}\n"
    )
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return tag


@pytest.mark.parametrize("healthy", [True, False], ids=["healthy", "unhealthy"])
def test_the_images_healthcheck_decides_whether_a_restart_succeeded(
    tmp_path, etcd_server, docker_daemon, registry_image, swift, make_agent, healthy
):
    client = docker_daemon.client()
    command = ["/usr/bin/docker-registry", "--version"] if healthy else ["/no/such/probe"]
    image = _image_with_healthcheck(
        client, registry_image, command, f"etcdadmin-test/registry-hc:{str(healthy).lower()}"
    )
    port, name = free_port(), f"reg-hc-{uuid.uuid4().hex[:8]}"
    config_dir = tmp_path / "conf"
    config = write_registry_config(
        config_dir, registry_config(swift, swift.key, container=name, port=port)
    )
    container = run_registry(client, image, config_dir, name, port)
    try:
        served = Served(container, port, config, name)
        # Without pre-flight, which would judge the canary by the same HEALTHCHECK first.
        env = agent_env(etcd_server, docker_daemon, served, PREFLIGHT="off")
        agent = make_agent(env, config=config)
        wait_until(lambda: first_status(etcd_server, served).get("last_result"), 30, "start")
        revision = put(etcd_server, f"{name}/log/level", "debug")
        if healthy:
            wait_applied(agent, etcd_server, served, revision)
            container.reload()
            assert container.attrs["State"]["Health"]["Status"] == "healthy"
        else:
            wait_until(
                lambda: first_status(etcd_server, served).get("last_result") == "rolled_back",
                60,
                f"rollback\n{agent.log()[-2000:]}",
            )
            assert "HEALTHCHECK" in first_status(etcd_server, served)["last_error"]
    finally:
        container.remove(force=True)
