"""Watcher agent figures, printed side by side with etcdctl's own watch as the floor.

    .venv/bin/python -m benchmarks.agent_latency [--changes 200]

Starts a scratch etcd, a private dockerd and a registry (in-memory storage) of its own, then:
1. the debounce window: for each candidate, bursts of 50 puts from one client (one connection)
   and from a shell loop of `etcdctl put` processes, and the config writes each burst gave
   (the default is the smallest window where every burst gave one);
2. 200 single-key changes, one at a time: put -> config.yml written, p50/p99, for the agent
   with its default debounce and with DEBOUNCE=0; the floor is put -> event printed by
   `etcdctl watch`;
3. bursts of 50 puts of both kinds against a real registry: restarts per burst;
4. 20,000 keys in one mapping, then one put: put -> config.yml written;
5. the render time of a 1 MB value, in-process and through the agent's render process;
6. the agent's resident memory (current and peak).
Not a test: it prints figures for the README.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from etcdadmin.core.config.mapping import render
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, TxnOp
from tests.stack.docker_daemon import DockerDaemon
from tests.stack.etcd import EtcdServer
from tests.stack.images import build_registry_image
from tests.stack.procs import free_port, wait_until
from tests.stack.registry import run_registry, wait_registry_up, write_registry_config
from watcher_agent.render_worker import RenderWorker
from watcher_agent.settings import DEFAULT_DEBOUNCE

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


def metric(port: int, name: str) -> float:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=2) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(f"watcher_agent_{name} "):
                return float(line.split()[1])
    raise KeyError(name)


def burst_one_client(conn: EtcdConnection, directory: str, b: int) -> int:
    """50 puts on one connection, as fast as it sends them; the last revision."""
    last = 0
    for i in range(50):
        last = conn.put(f"{directory}/notifications/burst{b}/k{i:02d}", "true")
    return last


def burst_shell_loop(
    conn: EtcdConnection, etcd: EtcdServer, directory: str, b: int
) -> tuple[int, list[float]]:
    """50 `etcdctl put` processes from a shell loop; the last revision and the gaps (s)."""
    script = (
        'for i in $(seq -w 0 49); do "$ETCDCTL" --endpoints "$URL" put '
        f'"{directory}/notifications/shell{b}/k$i" true >/dev/null; date +%s.%N; done'
    )
    done = subprocess.run(
        ["sh", "-c", script],
        env={**os.environ, "ETCDCTL_API": "3", "ETCDCTL": etcd.etcdctl_bin, "URL": etcd.client_url},
        capture_output=True,
        text=True,
        check=True,
    )
    stamps = [float(line) for line in done.stdout.split()]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    # The last put's own revision: the cluster's is higher once the agent publishes its status.
    last = conn.get(f"{directory}/notifications/shell{b}/k49")
    assert last is not None
    return last.mod_revision, gaps


def debounce_sweep(
    conn: EtcdConnection, etcd: EtcdServer, root: Path, windows: list[str], bursts: int
) -> tuple[list[tuple[str, list[int], list[int]]], list[float]]:
    """Config writes per burst for each window (render only: each write would be a restart)."""
    rows = []
    all_gaps: list[float] = []
    for window in windows:
        workdir = root / f"sweep-{window}"
        workdir.mkdir()
        config = workdir / "config.yml"
        config.write_text("version: 0.1\nnotifications: {}\n")
        directory = f"sweep-{uuid.uuid4().hex[:6]}"
        port = free_port()
        proc = start_agent(
            workdir,
            {
                "ETCD_HOST": etcd.endpoint,
                "WATCH_ETCD_DIR": directory,
                "CONFIG": str(config),
                "DEBOUNCE": window,
                "HISTORY_KEEP": "1000",
                "METRICS_ADDR": f"127.0.0.1:{port}",
            },
        )
        history = workdir / "state" / "config.yml" / "history"
        try:
            wait_until(lambda p=port: metric(p, "applied_revision") > 0, 30, "agent start")
            counts: dict[str, list[int]] = {"client": [], "shell": []}
            for b in range(bursts):
                for kind in ("client", "shell"):
                    before = len(list(history.glob("*.yml")))
                    if kind == "client":
                        last = burst_one_client(conn, directory, b)
                    else:
                        last, gaps = burst_shell_loop(conn, etcd, directory, b)
                        all_gaps += gaps
                    wait_until(
                        lambda last=last, p=port: metric(p, "applied_revision") >= last,
                        60,
                        "burst",
                    )
                    counts[kind].append(len(list(history.glob("*.yml"))) - before)
            rows.append((window, counts["client"], counts["shell"]))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return rows, all_gaps


def agent_latencies(conn: EtcdConnection, endpoint: str, workdir: Path, debounce: str, n: int):
    config = workdir / "config.yml"
    config.write_text("version: 0.1\nbench: {}\n")
    directory = f"bench-{uuid.uuid4().hex[:6]}"
    env = {"ETCD_HOST": endpoint, "WATCH_ETCD_DIR": directory, "CONFIG": str(config)}
    if debounce != "default":
        env["DEBOUNCE"] = debounce
    proc = start_agent(workdir, env)
    try:
        wait_until(
            lambda: (workdir / "state" / "config.yml" / "state.json").exists(), 30, "agent start"
        )
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


def restarts_per_burst(
    conn: EtcdConnection, etcd: EtcdServer, root: Path, bursts: int
) -> tuple[dict[str, list[int]], float]:
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
        try:
            wait_until(lambda: metric(metrics_port, "applied_revision") > 0, 30, "agent start")
            counts: dict[str, list[int]] = {"client": [], "shell": []}
            apply_times = []
            for b in range(bursts):
                for kind in ("client", "shell"):
                    before = metric(metrics_port, "restarts_total")
                    started = time.perf_counter()
                    if kind == "client":
                        last = burst_one_client(conn, directory, b)
                    else:
                        last, _ = burst_shell_loop(conn, etcd, directory, b)
                    wait_until(
                        lambda last=last: metric(metrics_port, "applied_revision") >= last,
                        60,
                        "burst applied",
                    )
                    if kind == "client":
                        apply_times.append(time.perf_counter() - started)
                    counts[kind].append(int(metric(metrics_port, "restarts_total") - before))
            return counts, statistics.median(apply_times)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            registry.remove(force=True)
    finally:
        dockerd.stop()


def big_mapping_latencies(
    conn: EtcdConnection, endpoint: str, workdir: Path, keys: int, samples: int
) -> list[float]:
    """`keys` keys under one mapping, then single puts: put -> config.yml written."""
    config = workdir / "config.yml"
    config.write_text("version: 0.1\nbench: {}\n")
    directory = f"big-{uuid.uuid4().hex[:6]}"
    ops = [TxnOp("put", f"{directory}/many/k{i:05d}".encode(), b"v") for i in range(keys)]
    for start in range(0, len(ops), 128):  # etcd's default --max-txn-ops
        conn.txn([], ops[start : start + 128])
    proc = start_agent(
        workdir, {"ETCD_HOST": endpoint, "WATCH_ETCD_DIR": directory, "CONFIG": str(config)}
    )
    try:
        last_key = f"k{keys - 1:05d}".encode()
        wait_until(lambda: last_key in config.read_bytes(), 120, "the big mapping rendered")
        latencies = []
        for i in range(samples):
            marker = f"v{i}-{uuid.uuid4().hex[:6]}"
            started = time.perf_counter()
            conn.put(f"{directory}/bench/value", marker)
            while marker.encode() not in config.read_bytes():
                time.sleep(0.001)
            latencies.append(time.perf_counter() - started)
        return latencies
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def one_mb_render_times(samples: int) -> tuple[list[float], list[float]]:
    """Render of one 1 MB value: in-process, and through the agent's render process."""
    base = "version: 0.1\nbench: {}\n"
    entries = {b"big/bench/value": b"x" * (1 << 20)}
    text_entries = {k.decode(): v for k, v in entries.items()}
    inline = []
    for _ in range(samples):
        started = time.perf_counter()
        render(base, text_entries, "big")
        inline.append(time.perf_counter() - started)
    worker = RenderWorker(timeout=60, memory_limit=1 << 30)
    worker.start()
    through = []
    try:
        worker.render(base, {}, "big")  # the child's imports, once
        for _ in range(samples):
            started = time.perf_counter()
            assert worker.render(base, entries, "big").config is not None
            through.append(time.perf_counter() - started)
    finally:
        worker.close()
    return inline, through


def row(label: str, values: list[float], extra: str = "") -> None:
    p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
    print(f"  {label:<56}{p50:8.1f}{p99:8.1f}  {extra}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--windows", default="25ms,50ms,75ms,100ms,150ms")
    parser.add_argument("--big-keys", type=int, default=20000)
    parser.add_argument("--skip-registry", action="store_true")
    args = parser.parse_args()
    # Each figure is printed as soon as it is measured: a long run that fails late keeps them.
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        root = Path(tmp)
        etcd = EtcdServer(root / "etcd", "bench")
        etcd.start()
        try:
            conn = EtcdConnection(ConnectionSettings((etcd.endpoint,)))
            print("debounce window: config writes per 50-put burst (one write = one restart)")
            sweep, gaps = debounce_sweep(conn, etcd, root, args.windows.split(","), args.bursts)
            for window, client, shell in sweep:
                print(f"  DEBOUNCE={window:<8} one client {client}   shell loop of etcdctl {shell}")
            ms = sorted(g * 1000 for g in gaps)
            print(
                f"  gaps between etcdctl puts in the shell loop: p50 {percentile(ms, 50):.1f} ms, "
                f"p99 {percentile(ms, 99):.1f} ms, max {ms[-1]:.1f} ms",
                flush=True,
            )

            print(
                f"\nput -> visible, {args.changes} single-key changes (ms)", " " * 20, "p50", "p99"
            )
            row(
                "etcdctl watch (floor: event printed)",
                etcdctl_watch_latencies(conn, etcd, args.changes),
            )
            for debounce in ("default", "0"):
                workdir = root / f"agent-{debounce}"
                workdir.mkdir()
                lat, (rss, hwm) = agent_latencies(
                    conn, etcd.endpoint, workdir, debounce, args.changes
                )
                memory = f"RSS {rss / 1024:.1f} MiB (peak {hwm / 1024:.1f})"
                label = (
                    f"default {DEFAULT_DEBOUNCE * 1000:g}ms" if debounce == "default" else debounce
                )
                row(f"watcher-agent DEBOUNCE={label} (config written)", lat, memory)
            big_dir = root / "agent-big"
            big_dir.mkdir()
            big = big_mapping_latencies(conn, etcd.endpoint, big_dir, args.big_keys, 10)
            row(f"{args.big_keys} keys in one mapping, then one put (default)", big)
            inline, through = one_mb_render_times(5)
            row("render of a 1 MB value, in-process", inline)
            row("render of a 1 MB value, through the render process", through)
            if not args.skip_registry:
                counts, burst_time = restarts_per_burst(conn, etcd, root, args.bursts)
                print(
                    f"\nregistry restarts per 50-put burst: one client {counts['client']}, ", end=""
                )
                print(f"shell loop of etcdctl {counts['shell']}")
                print(
                    "median time from the burst's first put to applied and healthy: "
                    f"{burst_time:.2f} s"
                )
        finally:
            etcd.stop()


if __name__ == "__main__":
    main()
