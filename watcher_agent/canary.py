"""A throw-away copy of a served container that runs a new config before the live one does.

The copy has the live container's image, entrypoint, command, environment, user and host
settings (mounts included), host networking, no restart policy, and the canary labels. Only
the config differs, in one of two ways:

- the config sits in a bind-mounted directory (the recommended setup): the staged file is
  bind-mounted read-only over the config's path, so the rest of that directory is the same;
- the config is bind-mounted as a single file and the staged file has no host path (an agent in
  a container keeping its staging directory in its own filesystem): the mount is dropped and
  the file copied into the canary's own filesystem, 0600, before it starts.

Either way the file is gone when the canary is removed. The canary is judged by the same health
policy as a restart (`ServedContainers.wait_healthy`), with the probe pointed at its own port.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import docker.errors
import requests

from watcher_agent.docker_control import DockerError, HealthCheckFailed, ServedContainers

log = logging.getLogger(__name__)

CANARY_LABEL = "etcdadmin.canary"
CANARY_STATE_LABEL = "etcdadmin.canary.state"
# Test hook, set only by tests/agent and benchmarks: seconds a started canary waits before its
# health check, long enough to kill the agent in the middle of a pre-flight.
TEST_CANARY_DELAY = "WATCHER_AGENT_TEST_PREFLIGHT_DELAY"
LOG_LINES = 10
LOG_LINE_CHARS = 300
_DOCKER_FAILURES = (docker.errors.DockerException, requests.RequestException)
# Host settings a copy must not take over: it publishes no ports (host networking), is never
# restarted by Docker, and is removed by the agent itself.
_NOT_COPIED = ("PortBindings", "Links", "ContainerIDFile", "AutoRemove", "RestartPolicy")


class CanaryFailed(Exception):
    """The canary did not pass; `exit_code` when it exited, `log_tail` its last log lines."""

    def __init__(self, why: str, exit_code: int | None, log_tail: str) -> None:
        super().__init__(why)
        self.why = why
        self.exit_code = exit_code
        self.log_tail = log_tail


class CanarySetupError(Exception):
    """The canary cannot be set up for this container (where its config lives): not the
    config's fault, so the config is not quarantined."""


@dataclass(frozen=True)
class ConfigMount:
    """Where the live container reads the config: its path inside the container and whether it
    is a single-file bind mount."""

    target: str
    single_file: bool


def find_config_mount(attrs: dict[str, Any], host_config: Path) -> ConfigMount | None:
    """The bind mount of the live container that holds `host_config` (the deepest one)."""
    best: tuple[int, ConfigMount] | None = None
    for mount in attrs.get("Mounts") or []:
        if mount.get("Type") != "bind":
            continue
        source, target = PurePosixPath(mount["Source"]), PurePosixPath(mount["Destination"])
        config = PurePosixPath(host_config)
        if config == source:
            found = ConfigMount(str(target), single_file=True)
        elif source in config.parents:
            found = ConfigMount(str(target / config.relative_to(source)), single_file=False)
        else:
            continue
        if best is None or len(source.parts) > best[0]:
            best = (len(source.parts), found)
    return best[1] if best else None


def canary_host_config(
    attrs: dict[str, Any], mount: ConfigMount, staged_host: Path | None
) -> dict[str, Any]:
    """The live container's host settings for the canary, its config mount replaced."""
    host = {k: v for k, v in (attrs.get("HostConfig") or {}).items() if k not in _NOT_COPIED}
    host["NetworkMode"] = "host"
    if mount.single_file:
        host["Binds"] = [b for b in host.get("Binds") or [] if _bind_target(b) != mount.target]
        host["Mounts"] = [m for m in host.get("Mounts") or [] if m.get("Target") != mount.target]
    if staged_host is not None:
        host["Mounts"] = [
            *(host.get("Mounts") or []),
            {"Type": "bind", "Source": str(staged_host), "Target": mount.target, "ReadOnly": True},
        ]
    return host


def _bind_target(bind: str) -> str:
    """`source:target[:options]` -> target."""
    parts = bind.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _file_archive(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Canary:
    """Runs one canary of `live` and removes it, whatever happens."""

    def __init__(
        self,
        containers: ServedContainers,
        labels: dict[str, str],
        stop: threading.Event | None = None,
    ) -> None:
        self.containers = containers
        self.labels = labels
        self.stop = stop

    def run(
        self,
        live: Any,
        mount: ConfigMount,
        config: bytes,
        staged_host: Path | None,
        probe_url: str | None,
    ) -> float:
        """Start the canary with `config`, wait for it to pass; seconds it took to pass.

        Raises CanaryFailed when it does not pass, DockerError when Docker fails."""
        if staged_host is None and not mount.single_file:
            raise CanarySetupError(
                f"the config is in a directory mounted into {live.name}, and the staging "
                "directory has no path on the Docker host; set PREFLIGHT_DIR to a directory "
                "the agent and Docker both see (a mount of the agent's container)"
            )
        client = self.containers.client()
        name = f"{live.name}-canary-{uuid.uuid4().hex[:8]}"
        attrs = live.attrs
        settings = attrs.get("Config") or {}
        try:
            created = client.api.create_container(
                attrs["Image"],
                name=name,
                command=settings.get("Cmd"),
                entrypoint=settings.get("Entrypoint"),
                environment=settings.get("Env"),
                user=settings.get("User") or None,
                working_dir=settings.get("WorkingDir") or None,
                healthcheck=settings.get("Healthcheck"),
                labels=self.labels,
                host_config=canary_host_config(attrs, mount, staged_host),
            )
        except _DOCKER_FAILURES as exc:
            raise DockerError(f"Docker could not create a canary of {live.name}: {exc}") from None
        canary = None
        try:
            canary = client.containers.get(created["Id"])
            if staged_host is None:
                target = PurePosixPath(mount.target)
                if not canary.put_archive(str(target.parent), _file_archive(target.name, config)):
                    raise CanarySetupError(f"cannot copy the config into the canary at {target}")
            before = canary.attrs["State"].get("StartedAt")
            log.info("starting a canary of %s", live.name)
            started = time.monotonic()
            canary.start()
            self._test_delay()
            try:
                self.containers.wait_healthy(canary, before, url=probe_url, stop=self.stop)
            except HealthCheckFailed as exc:
                raise self._failure(canary, str(exc)) from None
            return time.monotonic() - started
        except _DOCKER_FAILURES as exc:
            raise DockerError(
                f"Docker failed while running a canary of {live.name}: {exc}"
            ) from None
        finally:
            remove_quietly(canary if canary is not None else created["Id"], client)

    def _failure(self, canary: Any, why: str) -> CanaryFailed:
        try:
            canary.reload()
            state = canary.attrs["State"]
            code = None if state.get("Running") else state.get("ExitCode")
            raw = canary.logs(tail=LOG_LINES).decode("utf-8", "replace")
        except _DOCKER_FAILURES:
            code, raw = None, ""
        lines = [line[:LOG_LINE_CHARS] for line in raw.splitlines() if line.strip()]
        return CanaryFailed(why, code, "\n".join(lines[-LOG_LINES:]))

    def _test_delay(self) -> None:
        delay = float(os.environ.get(TEST_CANARY_DELAY) or 0)
        if delay:
            if self.stop is not None:
                self.stop.wait(delay)
            else:
                time.sleep(delay)


def remove_quietly(container: Any, client: Any) -> None:
    """Force-remove a canary (and its anonymous volumes); a failure is logged, and the next
    start removes what is left by its labels."""
    try:
        if isinstance(container, str):
            client.api.remove_container(container, force=True, v=True)
        else:
            container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except _DOCKER_FAILURES as exc:
        log.warning("could not remove a canary container: %s", exc)


def remove_leftovers(client: Any, labels: dict[str, str]) -> int:
    """Remove canaries a killed agent left behind (matched by all of `labels`); how many."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    try:
        leftovers = client.containers.list(all=True, filters=filters)
    except _DOCKER_FAILURES as exc:
        raise DockerError(f"Docker could not list leftover canaries: {exc}") from None
    for container in leftovers:
        remove_quietly(container, client)
    return len(leftovers)
