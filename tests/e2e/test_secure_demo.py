"""The seed demo on the secure setup (`bash .ci/demo --secure`): three TLS members with auth on,
the agent container logged in as its own user by its client certificate, and the password
fixed by the team's operator over TLS with the command the demo prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.stack.demo_secure import SecureDemo
from tests.stack.docker_daemon import STACK_LABELS
from tests.stack.procs import free_port, wait_until
from tests.stack.registry import (
    CONFIG_MOUNT,
    CONFIG_NAME,
    registry_config,
    registry_up,
    run_registry,
    wait_container_exit,
    write_registry_config,
)
from tests.stack.secure import AGENT, DIRECTORY, OPERATOR

REPO = Path(__file__).resolve().parents[2]


def _status(secure_cluster) -> dict:
    out = secure_cluster.etcdctl(
        "get", f"/etcdadmin/agents/{DIRECTORY}/{AGENT}", "--print-value-only"
    ).strip()
    return json.loads(out) if out else {}


def _as_operator(secure_cluster, *args: str) -> subprocess.CompletedProcess[str]:
    """`etcdadmin ARGS` with the ETCDADMIN_* variables the demo tells the operator to export."""
    pair = secure_cluster.client(OPERATOR)
    env = {
        **os.environ,
        "ETCDADMIN_ENDPOINTS": secure_cluster.endpoints,
        "ETCDADMIN_CACERT": str(secure_cluster.ca),
        "ETCDADMIN_CERT": str(pair.cert),
        "ETCDADMIN_KEY": str(pair.key),
    }
    return subprocess.run(
        [sys.executable, "-m", "etcdadmin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_operator_fixes_the_password_over_tls_and_the_agent_user_brings_the_registry_up(
    tmp_path, secure_cluster, swift, docker_daemon, registry_image, agent_image
):
    demo = SecureDemo(secure_cluster, REPO)
    client = docker_daemon.client()
    suffix = uuid.uuid4().hex[:8]
    port, name = free_port(), f"registry-{suffix}"
    config_dir = tmp_path / "registry"
    write_registry_config(
        config_dir, registry_config(swift, "wrong-password", container=name, port=port)
    )
    registry = run_registry(client, registry_image, config_dir, name, port)
    assert wait_container_exit(registry) != 0, "with the wrong password the registry is down"
    agent = client.containers.run(
        agent_image,
        name=f"watcher-{suffix}",
        detach=True,
        network_mode="host",
        volumes={
            str(config_dir): {"bind": CONFIG_MOUNT, "mode": "rw"},
            docker_daemon.host.removeprefix("unix://"): {
                "bind": "/var/run/docker.sock",
                "mode": "rw",
            },
            **demo.agent_volumes(),
        },
        environment={
            **demo.agent_environment(),
            "WATCH_ETCD_DIR": demo.directory,
            "CONFIG": f"{CONFIG_MOUNT}/{CONFIG_NAME}",
            "SERVE_CONTAINER": name,
            "HEALTH_URL": f"http://127.0.0.1:{port}/v2/",
        },
        labels=STACK_LABELS,
    )

    def logs() -> str:
        return str(agent.logs().decode(errors="replace")[-4000:])

    try:
        wait_until(lambda: _status(secure_cluster) != {}, 60, f"agent status\n{logs()}")
        assert _status(secure_cluster)["agent_id"] == AGENT, "the certificate's CN is its id"

        key = f"{DIRECTORY}/storage/swift/password"
        refused = _as_operator(secure_cluster, "put", "hack/x", "--value", "1")
        assert refused.returncode == 3 and "lacks" in refused.stderr, refused
        fixed = _as_operator(secure_cluster, "put", key, "--value", swift.key)
        assert fixed.returncode == 0, fixed.stderr

        wait_until(lambda: registry_up(port), 90, f"registry up\n--- agent:\n{logs()}")
        wait_until(
            lambda: _status(secure_cluster).get("last_result") == "ok",
            30,
            "agent reports ok",
        )
        assert f"password: {swift.key}" in (config_dir / CONFIG_NAME).read_text()
        assert secure_cluster.etcdctl_as(OPERATOR, "get", key, "--print-value-only") == (
            f"{swift.key}\n"
        )
        assert swift.key not in logs(), "the agent never logs values"
    finally:
        agent.remove(force=True)
        registry.remove(force=True)
