"""Gray release on the real stack: two registries on Swift, each reconfigured by an agent
container (labelled region=eu and region=us) watching ONE directory; releases are made,
promoted and abandoned with the `etcdadmin release` CLI.

Checked as an operator would: the `X-Release` header the registry puts on `GET /v2/` (the
registry sends every `http.headers` entry of its config on each answer), the registry
container's start time (a restart changes it), the agents' status records, and the directory
read back with etcdctl. Pre-flight stays on (its default with SERVE_CONTAINER): every change
is tried on a canary registry first, as in production.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from etcdadmin.cli.main import cli
from tests.agent.harness import status
from tests.stack.docker_daemon import STACK_LABELS
from tests.stack.procs import free_port, wait_until
from tests.stack.registry import (
    CONFIG_MOUNT,
    CONFIG_NAME,
    registry_config,
    run_registry,
    wait_registry_up,
    write_registry_config,
)

HEADER = "X-Release"
# A restart with pre-flight is a canary start, a health check, the live restart and its
# health check: a few seconds each on a loaded 2-core machine.
APPLY_TIMEOUT = 90


@dataclass
class Region:
    """One registry and the agent container that reconfigures it."""

    name: str
    registry: Any
    agent: Any
    port: int
    config: Path

    def started_at(self) -> str:
        self.registry.reload()
        return str(self.registry.attrs["State"]["StartedAt"])

    def header(self) -> str | None:
        """The registry's `X-Release` header on `GET /v2/`; None while it does not answer."""
        url = f"http://127.0.0.1:{self.port}/v2/"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.headers.get(HEADER) if response.status == 200 else None
        except OSError:
            return None

    def log(self) -> str:
        return self.agent.logs().decode(errors="replace")[-3000:]


@dataclass
class Regions:
    directory: str
    eu: Region
    us: Region
    endpoint: str
    cli_config: Path

    def records(self) -> dict[str, dict[str, Any]]:
        return {r["agent_id"]: r for r in status(self.endpoint, self.directory)}

    def release(self, *args: str) -> Result:
        """`etcdadmin --endpoints ... release ARGS`, in-process, with a config dir of its own."""
        return CliRunner().invoke(
            cli,
            ["--endpoints", self.endpoint, "release", *args],
            env={"ETCDADMIN_CONFIG_DIR": str(self.cli_config)},
            catch_exceptions=False,
        )

    def create(self, changes: Path, labels: str) -> str:
        done = self.release("create", self.directory, "--labels", labels, "-f", str(changes))
        assert done.exit_code == 0, done.stderr
        return done.stdout.strip()

    def wait_header(self, region: Region, wanted: str | None, what: str) -> None:
        wait_until(
            lambda: region.header() == wanted,
            APPLY_TIMEOUT,
            f"{what}: {region.name} answers {HEADER}: {wanted}\n"
            f"--- {region.name} agent:\n{region.log()}",
        )

    def wait_settled(self, region: Region, releases: list[str], what: str) -> None:
        """The region's agent reports `ok` with exactly these releases applied."""

        def settled() -> bool:
            record = self.records().get(region.name, {})
            return record.get("last_result") == "ok" and record.get("releases") == releases

        wait_until(
            settled,
            APPLY_TIMEOUT,
            f"{what}: {region.name}'s status ok with releases {releases}\n"
            f"--- {region.name} agent:\n{region.log()}",
        )


def _start_region(
    client: Any,
    tmp: Path,
    name: str,
    directory: str,
    *,
    swift: Any,
    registry_image: str,
    agent_image: str,
    etcd_endpoint: str,
    socket_path: str,
) -> Region:
    suffix = uuid.uuid4().hex[:8]
    port, container = free_port(), f"registry-{name}-{suffix}"
    config_dir = tmp / name
    config = write_registry_config(
        config_dir, registry_config(swift, swift.key, container=container, port=port)
    )
    registry = run_registry(client, registry_image, config_dir, container, port)
    wait_registry_up(registry, port)
    agent = client.containers.run(
        agent_image,
        name=f"watcher-{name}-{suffix}",
        detach=True,
        network_mode="host",
        volumes={
            str(config_dir): {"bind": CONFIG_MOUNT, "mode": "rw"},
            socket_path: {"bind": "/var/run/docker.sock", "mode": "rw"},
        },
        environment={
            "ETCD_HOST": etcd_endpoint,
            "WATCH_ETCD_DIR": directory,
            "CONFIG": f"{CONFIG_MOUNT}/{CONFIG_NAME}",
            # On the host network every container has the host's name, the default agent id:
            # two agents on one host must be told apart by their own ids.
            "AGENT_ID": name,
            "AGENT_LABELS": f"region={name}",
            "SERVE_CONTAINER": container,
            "HEALTH_URL": f"http://127.0.0.1:{port}/v2/",
            "HEALTH_STABLE": "1s",
            "STATUS_TTL": "5",
        },
        labels=STACK_LABELS,
    )
    return Region(name, registry, agent, port, config)


@pytest.fixture(scope="module")
def regions(
    tmp_path_factory: pytest.TempPathFactory,
    etcd_server: Any,
    swift: Any,
    docker_daemon: Any,
    registry_image: str,
    agent_image: str,
) -> Iterator[Regions]:
    """Two registries (eu, us), each with its agent container, watching one directory."""
    client = docker_daemon.client()
    tmp = tmp_path_factory.mktemp("gray-e2e")
    directory = f"gray-{uuid.uuid4().hex[:8]}"
    started: list[Region] = []
    try:
        for name in ("eu", "us"):
            started.append(
                _start_region(
                    client,
                    tmp,
                    name,
                    directory,
                    swift=swift,
                    registry_image=registry_image,
                    agent_image=agent_image,
                    etcd_endpoint=etcd_server.endpoint,
                    socket_path=str(docker_daemon.socket_path),
                )
            )
        eu, us = started
        stack = Regions(directory, eu, us, etcd_server.endpoint, tmp / "cli-config")
        for region in started:
            stack.wait_settled(region, [], "agent started")
        yield stack
    finally:
        for region in started:
            # v=True: the agent's state volume goes with it, nothing piles up in the data-root.
            region.agent.remove(force=True, v=True)
            region.registry.remove(force=True)


def changes(tmp_path: Path, value: str) -> Path:
    path = tmp_path / f"{value}.yml"
    path.write_text(f"http:\n  headers:\n    {HEADER}: [{value}]\n")
    return path


def directory_value(etcd_server: Any, key: str) -> str:
    return str(etcd_server.etcdctl("get", key, "--print-value-only").stdout.strip())


def test_a_release_to_eu_reaches_only_the_eu_registry_until_promote_reaches_both(
    regions: Regions, etcd_server: Any, tmp_path: Path
):
    eu, us = regions.eu, regions.us
    assert eu.header() is None and us.header() is None
    eu_started, us_started = eu.started_at(), us.started_at()

    began = time.monotonic()
    release_id = regions.create(changes(tmp_path, "gray-1"), "region=eu")
    regions.wait_header(eu, "gray-1", "the gray release reaches eu")
    print(f"gray release to serving on eu, pre-flight on: {time.monotonic() - began:.1f} s")
    regions.wait_settled(eu, [release_id], "eu's status names the release")
    records = regions.records()
    assert records["us"]["releases"] == [] and records["us"]["labels"] == {"region": "us"}
    assert us.header() is None, "the us registry does not show the release"
    assert eu.started_at() != eu_started, "the eu registry restarted on the release"
    assert us.started_at() == us_started, "the us registry was not touched"
    assert HEADER not in us.config.read_text()
    header_key = f"{regions.directory}/http/headers/{HEADER}/0"
    assert directory_value(etcd_server, header_key) == "", "the directory is unchanged"

    eu_started = eu.started_at()
    promoted = regions.release("promote", release_id)
    assert promoted.exit_code == 0, promoted.stderr
    assert directory_value(etcd_server, header_key) == "gray-1"
    regions.wait_header(us, "gray-1", "the promoted release reaches us")
    for region in (eu, us):
        regions.wait_settled(region, [], "no agent runs a release after the promote")
    assert eu.header() == "gray-1"
    assert eu.started_at() == eu_started, "eu already ran that config: no restart"
    assert us.started_at() != us_started
    gray = etcd_server.etcdctl("get", "--prefix", f"/etcdadmin/gray/{regions.directory}/")
    assert gray.stdout == "", "the release is gone from the gray prefix"


def test_abandoning_a_release_returns_eu_to_the_directorys_config(
    regions: Regions, etcd_server: Any, tmp_path: Path
):
    eu, us = regions.eu, regions.us
    header_key = f"{regions.directory}/http/headers/{HEADER}/0"
    etcd_server.etcdctl("put", header_key, "stable")
    for region in (eu, us):
        regions.wait_header(region, "stable", "the directory's value reaches both")
    us_started = us.started_at()

    release_id = regions.create(changes(tmp_path, "gray-2"), "region=eu")
    regions.wait_header(eu, "gray-2", "the second release reaches eu")
    regions.wait_settled(eu, [release_id], "eu's status names the second release")
    assert us.header() == "stable"

    abandoned = regions.release("abandon", release_id)
    assert abandoned.exit_code == 0, abandoned.stderr
    regions.wait_header(eu, "stable", "eu returns to the directory's config")
    regions.wait_settled(eu, [], "eu's status runs no release after the abandon")
    assert us.header() == "stable"
    assert us.started_at() == us_started, "the us registry was never touched by either"
    assert directory_value(etcd_server, header_key) == "stable"
    listed = regions.release("ls", regions.directory, "--json")
    assert listed.exit_code == 0 and listed.stdout.strip() == "[]"
