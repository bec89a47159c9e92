"""What pre-flight buys and costs, on the real registry on Swift.

    .venv/bin/python -m benchmarks.preflight [--bad 3] [--good 5]

Starts a scratch etcd, Swift and a private dockerd of its own, a registry on Swift with the
right password, and an agent with PREFLIGHT=off then PREFLIGHT=container. For each:
1. a bad config (a wrong Swift password), `--bad` times: the service's downtime, measured as
   the time `GET /v2/` (polled every 20 ms) did not answer 200, until the agent reported
   `rolled_back` (off) or `preflight_failed` (container) and the registry answered again;
2. a good config (a new log level), `--good` times: put -> the registry serving the new config
   (the agent reports it applied and `GET /v2/` answers 200), p50 and max.
Not a test: it prints figures for the README.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.agent.harness import status
from tests.stack.docker_daemon import DockerDaemon
from tests.stack.etcd import EtcdServer
from tests.stack.images import build_registry_image
from tests.stack.procs import free_port, wait_until
from tests.stack.registry import (
    registry_config,
    registry_up,
    run_registry,
    wait_registry_up,
    write_registry_config,
)
from tests.stack.swift import SwiftAIO

REPO = Path(__file__).resolve().parents[1]
POLL = 0.02


class Downtime:
    """`GET /v2/` every POLL seconds on its own thread; seconds it did not answer 200."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.down = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Downtime:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(POLL):
            up = registry_up(self.port)
            now = time.monotonic()
            if not up:
                self.down += now - last
            last = now


def record(endpoint: str, directory: str) -> dict[str, Any]:
    records = status(endpoint, directory)
    return records[0] if records else {}


def run_case(
    mode: str, root: Path, etcd: EtcdServer, swift: SwiftAIO, dockerd: DockerDaemon, args: Any
) -> tuple[list[float], list[float]]:
    client = dockerd.client()
    image = build_registry_image(client)
    name = f"bench-{mode}-{uuid.uuid4().hex[:6]}"
    directory = name
    port = free_port()
    config_dir = root / name
    config = write_registry_config(
        config_dir, registry_config(swift, swift.key, container=name, port=port)
    )
    registry = run_registry(client, image, config_dir, name, port)
    wait_registry_up(registry, port)
    log = (root / f"{name}.log").open("ab")
    agent = subprocess.Popen(
        [sys.executable, "-m", "watcher_agent"],
        cwd=REPO,
        env={
            **os.environ,
            "ETCD_HOST": etcd.endpoint,
            "WATCH_ETCD_DIR": directory,
            "CONFIG": str(config),
            "SERVE_CONTAINER": name,
            "DOCKER_HOST": dockerd.host,
            "HEALTH_URL": f"http://127.0.0.1:{port}/v2/",
            "HEALTH_STABLE": "1s",
            "HEALTH_TIMEOUT": "20s",
            "STATE_DIR": str(root / f"{name}-state"),
            "PREFLIGHT": mode,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    conn = EtcdConnection(ConnectionSettings((etcd.endpoint,)))
    password = f"{directory}/storage/swift/password"
    failed = "rolled_back" if mode == "off" else "preflight_failed"
    try:
        wait_until(lambda: record(etcd.endpoint, directory).get("last_result") == "ok", 60, "start")
        downtimes = []
        for i in range(args.bad):
            with Downtime(port) as downtime:
                # A new wrong password each time: a repeated one would only be quarantined.
                conn.put(password, f"wrong-{i}-{uuid.uuid4().hex[:6]}")
                wait_until(
                    lambda: record(etcd.endpoint, directory).get("last_result") == failed,
                    120,
                    f"{failed} ({mode})",
                )
                wait_until(lambda: registry_up(port), 60, "registry answering again")
            downtimes.append(downtime.down)
            revision = conn.put(password, swift.key)
            wait_until(
                lambda revision=revision: (
                    record(etcd.endpoint, directory).get("applied_revision", 0) >= revision
                ),
                120,
                "right password applied",
            )
        latencies = []
        for i in range(args.good):
            started = time.perf_counter()
            revision = conn.put(f"{directory}/log/level", ("debug", "info")[i % 2])
            wait_until(
                lambda revision=revision: (
                    record(etcd.endpoint, directory).get("applied_revision", 0) >= revision
                    and registry_up(port)
                ),
                120,
                "good config serving",
                interval=0.01,
            )
            latencies.append(time.perf_counter() - started)
        return downtimes, latencies
    finally:
        agent.terminate()
        agent.wait(timeout=20)
        conn.close()
        registry.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bad", type=int, default=3)
    parser.add_argument("--good", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="preflight-bench-") as tmp:
        root = Path(tmp)
        etcd = EtcdServer(root / "etcd", "bench")
        swift = SwiftAIO(root / "swift")
        dockerd = DockerDaemon(root / "docker")
        etcd.start()
        try:
            swift.start()
            dockerd.start()
            results = {}
            for mode in ("off", "container"):
                results[mode] = run_case(mode, root, etcd, swift, dockerd, args)
                bad, good = results[mode]
                print(f"PREFLIGHT={mode}", flush=True)
                print(
                    f"  bad config (wrong Swift password), {args.bad} runs: registry down "
                    + ", ".join(f"{d:.2f}" for d in bad)
                    + " s",
                    flush=True,
                )
                print(
                    f"  good config, {args.good} runs: put -> serving p50 "
                    f"{statistics.median(good):.2f} s, max {max(good):.2f} s",
                    flush=True,
                )
            added = statistics.median(results["container"][1]) - statistics.median(
                results["off"][1]
            )
            print(f"pre-flight adds {added:.2f} s (p50) to put -> serving for a good config")
        finally:
            dockerd.stop()
            swift.stop()
            etcd.stop()


if __name__ == "__main__":
    main()
