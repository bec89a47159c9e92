"""The recovery point of `etcdadmin backup follow` under 1,000 puts per second, into Swift.

    .venv/bin/python -m benchmarks.backup_follow [--rate 1000] [--seconds 30] [--local]

Starts a scratch etcd and Swift all-in-one, runs `python -m etcdadmin backup follow --json`
as the service would run (a process of its own, default flush of 2 s / 10,000 changes), and
puts `--rate` keys per second from writer threads for `--seconds`. A put's lag is the time from
etcd acknowledging it to the first recovery point the follower printed that covers its
revision (so: the delta holding it is stored in Swift). Prints the lag percentiles, the
follower's own figure (`lag_seconds`, the age of its oldest unstored change when it reports),
and the put rate reached. Not a test.

There is no stock tool to compare with: etcd has no continuous backup, and gardener's
etcd-backup-restore takes delta snapshots every 20 s by default (`--delta-snapshot-period`),
which bounds its recovery point at 20 s plus the upload.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from benchmarks.installed import installed_etcdadmin
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.stack.etcd import EtcdServer
from tests.stack.swift import SwiftAIO

# Each put waits for etcd's WAL fsync, so the rate needs many puts in flight: 4 sequential
# writers reached 418 puts/s here; processes, because one Python client's CPU caps near that.
WRITERS = 2
THREADS = 16


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def write(
    endpoint: str, n: int, rate: float, begin: float, seconds: float
) -> list[tuple[int, float]]:
    """One process's share: puts paced to `rate` from `begin` (CLOCK_MONOTONIC, the same in
    every process) by THREADS threads, as (revision, acknowledged at)."""
    done: list[tuple[int, float]] = []
    lock = threading.Lock()

    def one(t: int) -> None:
        with EtcdConnection(ConnectionSettings((endpoint,))) as conn:
            i = 0
            while (due := begin + (i * THREADS + t) / rate) - begin <= seconds:
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing to the rate, not waiting on a condition
                revision = conn.put(f"bench/w{n}-{t}/k{i % 100}", f"value-{i:08d}" * 8)
                with lock:
                    done.append((revision, time.monotonic()))
                i += 1

    threads = [threading.Thread(target=one, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="puts per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--flush-seconds", type=float, default=2.0)
    parser.add_argument("--local", action="store_true", help="a directory instead of Swift")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="etcdadmin-bench-"))
    server = EtcdServer(work / "etcd")
    swift = None if args.local else SwiftAIO(work / "swift")
    server.start()
    follower: subprocess.Popen[str] | None = None
    try:
        env = {**os.environ, "ETCDADMIN_ENDPOINTS": server.endpoint}
        where = ["--dir", str(work / "backups")]
        if swift is not None:
            swift.start()
            env.update(ST_AUTH=swift.auth_url, ST_USER=swift.user, ST_KEY=swift.key)
            where = ["--container", f"follow-{uuid.uuid4().hex[:8]}"]
        argv_follow = [
            *installed_etcdadmin(work), "backup", *where, "follow", "--json",
            "--flush-seconds", str(args.flush_seconds), "--status-seconds", "0.5",
        ]  # fmt: skip
        follower = subprocess.Popen(
            argv_follow, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        reports: list[tuple[float, int, float]] = []  # (seen at, revision, own lag)
        started = threading.Event()

        def read_reports() -> None:
            assert follower is not None and follower.stdout is not None
            for line in follower.stdout:
                status = json.loads(line)
                reports.append((time.monotonic(), status["revision"], status["lag_seconds"]))
                started.set()

        threading.Thread(target=read_reports, daemon=True).start()
        if not started.wait(120):
            raise SystemExit("backup follow did not start in 120 s")

        begin = time.monotonic() + 1.0
        jobs = [
            (server.endpoint, n, args.rate / WRITERS, begin, args.seconds) for n in range(WRITERS)
        ]
        with multiprocessing.get_context("spawn").Pool(WRITERS) as pool:
            puts = [p for share in pool.starmap(write, jobs) for p in share]
        elapsed = max(at for _, at in puts) - begin
        newest = max(r for r, _ in puts)
        deadline = time.monotonic() + 60
        while (not reports or reports[-1][1] < newest) and time.monotonic() < deadline:
            time.sleep(0.05)
        lags = []
        for revision, acknowledged in puts:
            seen = next((at for at, rev, _ in reports if rev >= revision), None)
            if seen is not None:
                lags.append(seen - acknowledged)
        own = [lag for _, _, lag in reports]
        target = "a local directory" if swift is None else "Swift"
        print(
            f"{len(puts):,} puts in {elapsed:.1f} s ({len(puts) / elapsed:,.0f}/s), "
            f"flush every {args.flush_seconds} s, deltas to {target}"
        )
        print(
            "put acknowledged -> stored in a delta: "
            f"p50 {percentile(lags, 50):.2f} s, p90 {percentile(lags, 90):.2f} s, "
            f"p99 {percentile(lags, 99):.2f} s, max {max(lags):.2f} s "
            f"({len(lags):,} of {len(puts):,} puts covered)"
        )
        print(
            f"follower's own recovery point age when reporting: p50 "
            f"{percentile(own, 50):.2f} s, max {max(own):.2f} s over {len(own)} reports"
        )
        print("reference: gardener etcd-backup-restore delta snapshots every 20 s by default")
    finally:
        if follower is not None and follower.poll() is None:
            follower.terminate()
            follower.wait(60)
        if swift is not None:
            swift.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
