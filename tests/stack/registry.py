"""The Docker registry (distribution 2.8) on Swift: the service the seed demo reconfigures.

Its config lives in a DIRECTORY mounted at ``/etc/docker/registry``: a config replaced with
``os.replace`` over a single-file bind mount fails with EBUSY, over a directory mount it works.
A wrong Swift password makes the registry exit at start-up (exit code 2), a clean signal that
a config change reached it.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tests.stack.docker_daemon import STACK_LABEL, STACK_LABELS
from tests.stack.procs import StackError, wait_until

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

    from tests.stack.swift import SwiftAIO

CONFIG_MOUNT = "/etc/docker/registry"
CONFIG_NAME = "config.yml"


def registry_config(
    swift: SwiftAIO,
    password: str,
    container: str = "registry",
    port: int = 5000,
) -> dict[str, Any]:
    """The registry's config as a dict: Swift storage as ``swift.user``, HTTP on 127.0.0.1."""
    return {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {
            "swift": {
                "authurl": swift.auth_url,
                "username": swift.user,
                "password": password,
                "container": container,
            },
            "delete": {"enabled": True},
            # Nothing to purge in short-lived test registries; saves a background job.
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            # With a drain timeout the registry handles SIGTERM and exits cleanly (exit 0)
            # instead of being killed by it; idle, it exits at once.
            "draintimeout": "2s",
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        # A storage health check would only turn a Swift outage into 503s on every request
        # after its interval; tests want the storage error itself.
        "health": {"storagedriver": {"enabled": False}},
    }


def write_registry_config(config_dir: Path, config: dict[str, Any]) -> Path:
    """Write ``config.yml`` atomically (temp file, then ``os.replace``) into ``config_dir``."""
    config_dir.mkdir(parents=True, exist_ok=True)
    target = config_dir / CONFIG_NAME
    partial = config_dir / f".{CONFIG_NAME}.partial"
    partial.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(partial, target)
    return target


def run_registry(
    client: docker.DockerClient,
    image: str,
    config_dir: Path,
    name: str,
    port: int,
) -> Container:
    """Run the registry detached on the host network with ``config_dir`` as its config dir.

    A leftover stack container with the same name (from an interrupted run) is replaced.
    """
    import docker.errors

    try:
        old = client.containers.get(name)
    except docker.errors.NotFound:
        old = None
    if old is not None:
        if old.labels.get(STACK_LABEL) != "1":
            raise StackError(f"a container named {name!r} exists and is not the stack's")
        old.remove(force=True)
    return client.containers.run(
        image,
        name=name,
        detach=True,
        network_mode="host",
        volumes={str(Path(config_dir).resolve()): {"bind": CONFIG_MOUNT, "mode": "ro"}},
        labels={**STACK_LABELS, "etcdadmin.stack.registry-port": str(port)},
    )


def registry_up(port: int) -> bool:
    """True when ``GET /v2/`` on 127.0.0.1:``port`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_registry_up(container: Container, port: int, timeout: float = 30) -> None:
    """Wait for ``registry_up``; fail at once, quoting the container's log, if it exits."""
    exited = False

    def up_or_exited() -> bool:
        nonlocal exited
        container.reload()
        if container.status in ("exited", "dead"):
            exited = True
            return True
        return registry_up(port)

    wait_until(up_or_exited, timeout, f"registry {container.name} on port {port}")
    if exited:
        code = container.attrs["State"]["ExitCode"]
        logs = container.logs(tail=30).decode(errors="replace")
        raise StackError(f"registry {container.name} exited with code {code}:\n{logs}")


def wait_container_exit(container: Container, timeout: float = 30) -> int:
    """Wait for ``container`` to stop; return its exit code."""

    def exited() -> bool:
        container.reload()
        return container.status in ("exited", "dead")

    wait_until(exited, timeout, f"container {container.name} to exit")
    return int(container.attrs["State"]["ExitCode"])


def push_image(client: docker.DockerClient, repository: str, tag: str) -> None:
    """Push ``repository:tag``; raise ``StackError`` on the first error in the progress stream.

    The SDK reports push failures as ``{"error": ...}`` entries, not as exceptions.
    """
    for entry in client.images.push(repository, tag=tag, stream=True, decode=True):
        if "error" in entry:
            detail = entry.get("errorDetail", {}).get("message") or entry["error"]
            raise StackError(f"push of {repository}:{tag} failed: {detail}")
