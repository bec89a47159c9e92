"""Restarting the served containers through the Docker API and judging whether they came back.

"Came back" means: running, not restarted again by itself (a crash loop under a restart
policy looks "running" between crashes), healthy by the image's own HEALTHCHECK when it has
one, answering the optional HTTP probe, and staying up for a short stable window.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests

from etcdadmin.core.errors import EtcdAdminError

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# The SDK raises its own errors for API answers, and requests' for a socket that is gone or
# slow (dockerd restarting): both mean "Docker failed", never a reason for the agent to die.
_DOCKER_FAILURES = (docker.errors.DockerException, requests.RequestException)
POLL_INTERVAL = 0.1


class DockerError(EtcdAdminError):
    """Docker is unreachable or a container cannot be found or restarted: retry later."""


class HealthCheckFailed(EtcdAdminError):
    """A container did not come back healthy after a restart."""


@dataclass(frozen=True)
class HealthPolicy:
    timeout: float = 60.0
    stable: float = 2.0
    url: str | None = None


class ServedContainers:
    """The containers whose config the agent renders, addressed by id or name."""

    def __init__(self, names: tuple[str, ...], docker_host: str | None, policy: HealthPolicy):
        self.names = names
        self.docker_host = docker_host or DEFAULT_SOCKET
        self.policy = policy
        self._client: docker.DockerClient | None = None

    def client(self) -> docker.DockerClient:
        """The Docker client, connected on first use (a canary shares it)."""
        return self._docker()

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            try:
                # version="auto" negotiates the API version with the engine (20.10 speaks 1.41).
                self._client = docker.DockerClient(base_url=self.docker_host, version="auto")
            except _DOCKER_FAILURES as exc:
                raise DockerError(
                    f"cannot reach Docker at {self.docker_host}: {exc}; mount the Docker "
                    "socket into the agent (or set DOCKER_HOST)"
                ) from None
        return self._client

    def resolve(self) -> list[Any]:
        """Look every container up; fails before anything is written when one is missing."""
        client = self._docker()
        found = []
        for name in self.names:
            try:
                found.append(client.containers.get(name))
            except docker.errors.NotFound:
                raise DockerError(
                    f"container {name!r} not found on Docker at {self.docker_host}: "
                    "check SERVE_CONTAINER (a name or id, or a comma list)"
                ) from None
            except _DOCKER_FAILURES as exc:
                self.close()
                raise DockerError(f"Docker at {self.docker_host} failed: {exc}") from None
        return found

    def restart_and_check(self, containers: list[Any], stop_timeout: int) -> None:
        """Restart each container in turn; raise HealthCheckFailed at the first one that fails."""
        for container in containers:
            before = container.attrs["State"].get("StartedAt")
            log.info("restarting container %s (stop timeout %ss)", container.name, stop_timeout)
            started = time.monotonic()
            try:
                container.restart(timeout=stop_timeout)
            except _DOCKER_FAILURES as exc:
                raise DockerError(f"Docker could not restart {container.name}: {exc}") from None
            self.wait_healthy(container, before)
            log.info(
                "container %s healthy %.1fs after restart",
                container.name,
                time.monotonic() - started,
            )

    def wait_healthy(
        self,
        container: Any,
        started_before: str | None,
        url: str | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Wait until `container`, started after `started_before`, passes the health policy;
        `url` replaces the policy's HTTP probe (a canary listens elsewhere). A set `stop` ends
        the wait with HealthCheckFailed, so a stopping agent does not wait out the timeout."""
        policy = self.policy
        url = url or policy.url
        deadline = time.monotonic() + policy.timeout
        first_started: str | None = None
        up_since: float | None = None
        reason = "it did not start"
        while time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                raise HealthCheckFailed("the agent is stopping")
            try:
                container.reload()
            except docker.errors.NotFound:
                raise HealthCheckFailed(f"container {container.name} disappeared") from None
            except _DOCKER_FAILURES as exc:
                raise DockerError(f"Docker failed while checking {container.name}: {exc}") from None
            state = container.attrs["State"]
            started_at = state.get("StartedAt")
            if not state.get("Running"):
                if started_at != started_before and state.get("Status") in ("exited", "dead"):
                    raise HealthCheckFailed(
                        f"container {container.name} exited with code {state.get('ExitCode')} "
                        "right after the restart"
                    )
                reason = f"it is {state.get('Status')}"
                up_since = None
                time.sleep(POLL_INTERVAL)
                continue
            if started_at == started_before:
                time.sleep(POLL_INTERVAL)  # the restart has not taken effect yet
                continue
            if first_started is None:
                first_started = started_at
            elif started_at != first_started:
                raise HealthCheckFailed(
                    f"container {container.name} restarted by itself after the restart "
                    "(crash loop under its restart policy)"
                )
            if up_since is None:
                up_since = time.monotonic()
            health = state.get("Health")
            if health:
                if health.get("Status") == "unhealthy":
                    raise HealthCheckFailed(
                        f"container {container.name} reports unhealthy (its HEALTHCHECK)"
                    )
                if health.get("Status") != "healthy":
                    reason = "its HEALTHCHECK has not passed yet"
                    time.sleep(POLL_INTERVAL)
                    continue
            if url and not _probe(url):
                reason = f"{url} does not answer"
                time.sleep(POLL_INTERVAL)
                continue
            if time.monotonic() - up_since >= policy.stable:
                return
            reason = "it has not stayed up long enough yet"
            time.sleep(POLL_INTERVAL)
        raise HealthCheckFailed(
            f"container {container.name} did not come back healthy within "
            f"{policy.timeout:.0f}s: {reason}"
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _probe(url: str) -> bool:
    """Up means any HTTP answer below 500: a registry with auth answers 401, and is up."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False
