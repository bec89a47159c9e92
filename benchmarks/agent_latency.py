"""Watcher agent figures, printed side by side with etcdctl's own watch as the floor.

    .venv/bin/python -m benchmarks.agent_latency [--changes 200]

Starts a scratch etcd, a private dockerd and a registry (in-memory storage) of its own, then:
1. 200 single-key changes, one at a time: put -> config.yml written, p50/p99, for the agent
   with its default 500 ms debounce and with DEBOUNCE=0; the floor is put -> event printed by
   `etcdctl watch`;
2. bursts of 50 puts: registry restarts per burst;
3. the agent's resident memory (current and peak).
Not a test: it prints figures for the README.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.stack.docker_daemon import DockerDaemon
from tests.stack.etcd import EtcdServer
from tests.stack.images import build_registry_image
from tests.stack.procs import free_port, wait_until
from tests.stack.registry import run_registry, wait_registry_up, write_registry_config

REPO = Path(__file__).resolve().parents[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def start_agent(workdir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (workdir / "agent.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "watcher_agent"],
        cwd=REPO,
        env={**os.environ, "STATE_DIR": str(workdir / "state"), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def agent_latencies(conn: EtcdConnection, endpoint: str, workdir: Path, debounce: str, n: int):
    config = workdir / "config.yml"
    config.write_text("version: 0.1\nbench: {}\n")
    directory = f"bench-{uuid.uuid4().hex[:6]}"
    proc = start_agent(
        workdir,
        {
            "ETCD_HOST": endpoint,
            "WATCH_ETCD_DIR": directory,
            "CONFIG": str(config),
            "DEBOUNCE": debounce,
        },
    )
    try:
        wait_until(lambda: (workdir / "state" / "state.json").exists(), 30, "agent start")
        latencies = []
        for i in range(n):
            marker = f"v{i}-{uuid.uuid4().hex[:6]}"
            started = time.perf_counter()
            conn.put(f"{directory}/bench/value", marker)
            while marker not in config.read_text():
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - started)
        return latencies, rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def etcdctl_watch_latencies(conn: EtcdConnection, etcd: EtcdServer, n: int) -> list[float]:
    proc = subprocess.Popen(
        [etcd.etcdctl_bin, "--endpoints", etcd.client_url, "watch", "--prefix", "floor/"],
        env={**os.environ, "ETCDCTL_API": "3"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        latencies = []
        time.sleep(0.5)  # let etcdctl establish its watch before the first put
        for i in range(n):
            marker = f"v{i}"
            started = time.perf_counter()
            conn.put("floor/key", marker)
            while proc.stdout.readline().strip() != marker:
                pass
            latencies.append(time.perf_counter() - started)
        return latencies
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def restarts_per_burst(conn, etcd, root: Path, bursts: int) -> tuple[list[int], float]:
    dockerd = DockerDaemon(root / "docker")
    dockerd.start()
    try:
        client = dockerd.client()
        image = build_registry_image(client)
        port = free_port()
        config_dir = root / "registry"
        write_registry_config(
            config_dir,
            {"version": 0.1, "storage": {"inmemory": {}}, "http": {"addr": f"127.0.0.1:{port}"}},
        )
        registry = run_registry(client, image, config_dir, f"bench-{uuid.uuid4().hex[:6]}", port)
        wait_registry_up(registry, port)
        directory = f"burst-{uuid.uuid4().hex[:6]}"
        workdir = root / "burst-agent"
        workdir.mkdir()
        metrics_port = free_port()
        proc = start_agent(
            workdir,
            {
                "ETCD_HOST": etcd.endpoint,
                "WATCH_ETCD_DIR": directory,
                "CONFIG": str(config_dir / "config.yml"),
                "SERVE_CONTAINER": registry.name,
                "DOCKER_HOST": dockerd.host,
                "HEALTH_URL": f"http://127.0.0.1:{port}/v2/",
                "HEALTH_STABLE": "1s",
                "METRICS_ADDR": f"127.0.0.1:{metrics_port}",
            },
        )

        def metric(name: str) -> float:
            import urllib.request

            url = f"http://127.0.0.1:{metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=2) as resp:
                for line in resp.read().decode().splitlines():
                    if line.startswith(f"watcher_agent_{name} "):
                        return float(line.split()[1])
            raise KeyError(name)

        try:
            wait_until(lambda: metric("applied_revision") > 0, 30, "agent start")
            counts = []
            apply_times = []
            for b in range(bursts):
                before = metric("restarts_total")
                started = time.perf_counter()
                last = 0
                for i in range(50):
                    last = conn.put(f"{directory}/notifications/burst{b}/k{i:02d}", "true")
                wait_until(
                    lambda last=last: metric("applied_revision") >= last, 60, "burst applied"
                )
                apply_times.append(time.perf_counter() - started)
                counts.append(int(metric("restarts_total") - before))
            return counts, statistics.median(apply_times)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            registry.remove(force=True)
    finally:
        dockerd.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        root = Path(tmp)
        etcd = EtcdServer(root / "etcd", "bench")
        etcd.start()
        try:
            conn = EtcdConnection(ConnectionSettings((etcd.endpoint,)))
            floor = etcdctl_watch_latencies(conn, etcd, args.changes)
            rows = []
            for debounce in ("500ms", "0"):
                workdir = root / f"agent-{debounce}"
                workdir.mkdir()
                lat, (rss, hwm) = agent_latencies(
                    conn, etcd.endpoint, workdir, debounce, args.changes
                )
                rows.append((debounce, lat, rss, hwm))
            counts, burst_time = restarts_per_burst(conn, etcd, root, args.bursts)
        finally:
            etcd.stop()

    def row(label: str, values: list[float], extra: str = "") -> None:
        p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
        print(f"  {label:<48}{p50:8.1f}{p99:8.1f}  {extra}")

    print(f"\n{args.changes} single-key changes, put -> visible (ms)        p50     p99")
    row("etcdctl watch (floor: event printed)", floor)
    for debounce, lat, rss, hwm in rows:
        memory = f"RSS {rss / 1024:.1f} MiB (peak {hwm / 1024:.1f})"
        row(f"watcher-agent DEBOUNCE={debounce} (config written)", lat, memory)
    print(f"\nbursts of 50 puts: registry restarts per burst {counts}")
    print(f"median time from the burst's first put to applied and healthy: {burst_time:.2f} s")


if __name__ == "__main__":
    main()
