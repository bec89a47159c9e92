"""`etcdadmin backup create` to Swift, beside `etcdctl snapshot save` then `swift upload --use-slo`.

    .venv/bin/python -m benchmarks.backup_swift [--keys 1000000] [--rounds 3] [--segment-mib 32]

Loads `--keys` keys (about 180 bytes of database each: 1M keys is ~180 MB) into a scratch etcd
with 128-put transactions, starts a scratch Swift all-in-one, then times whole processes as an
operator would run them, each with its peak resident memory (GNU time's %M):

- reference: `etcdctl snapshot save FILE`, then `swift upload --use-slo --segment-size S`
  of that file (the two times added, the larger peak);
- ours: `etcdadmin backup create --no-export` (the same snapshot, hash-checked while it streams
  straight to Swift in parallel segments, no file), and the whole backup with the key export.

Not a test: it prints figures for the README.
Targets: the snapshot backup at least 1.5x faster than the reference; peak memory under 256 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.installed import installed_etcdadmin
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, TxnOp
from tests.stack.etcd import EtcdServer
from tests.stack.swift import SwiftAIO

TXN_OPS = 128
TIME = "/usr/bin/time"  # GNU time, Debian package `time`
VALUE = b"v" * 100


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mib: float


def run(argv: Sequence[str], env: dict[str, str]) -> Run:
    """One process, start to exit, with its peak RSS as GNU time reports it."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.perf_counter()
        done = subprocess.run(
            [TIME, "-f", "%M", "-o", rss.name, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(argv[:4])} ... exited {done.returncode}: {done.stderr.decode()[-400:]}"
            )
        peak_kib = int(rss.read().split()[-1])
    return Run(elapsed, peak_kib / 1024)


def load(conn: EtcdConnection, n: int) -> None:
    for start in range(0, n, TXN_OPS):
        conn.txn(
            [],
            [
                TxnOp("put", b"bench/svc%04d/key%05d" % (i // 1000, i), VALUE)
                for i in range(start, min(n, start + TXN_OPS))
            ],
        )


def median(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.seconds for r in runs), statistics.median(r.peak_mib for r in runs)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--segment-mib", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="ours: upload threads (0: default)")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="MIBxWORKERS",
        help="ours: another `--no-export` row with these settings, timed in the same rounds "
        "(under the same load) as the others; repeatable, e.g. --also 32x2",
    )
    parser.add_argument(
        "--no-whole", action="store_true", help="skip the whole backup (with the key export)"
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="etcdadmin-bench-"))
    etcdadmin = installed_etcdadmin(work)
    server = EtcdServer(work / "etcd")
    swift = SwiftAIO(work / "swift")
    server.start()
    try:
        swift.start()
        # system tools (/usr/bin/swift is a system-Python script): no venv settings for them
        plain = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        auth = {"ST_AUTH": swift.auth_url, "ST_USER": swift.user, "ST_KEY": swift.key}
        tools = {**plain, **auth, "ETCDCTL_API": "3"}
        ours_env = {**os.environ, **auth, "ETCDADMIN_ENDPOINTS": server.endpoint}
        with EtcdConnection(ConnectionSettings((server.endpoint,))) as conn:
            print(f"loading {args.keys:,} keys ...", flush=True)
            started = time.perf_counter()
            load(conn, args.keys)
            db_size = conn.status().db_size
            print(
                f"loaded in {time.perf_counter() - started:.0f} s, database {db_size / 1e6:.0f} MB"
            )
        segment = f"{args.segment_mib * 1024 * 1024}"
        extra = [tuple(int(n) for n in spec.split("x")) for spec in args.also]
        reference: list[Run] = []
        snapshot_only: list[Run] = []
        whole: list[Run] = []
        others: dict[tuple[int, ...], list[Run]] = {settings: [] for settings in extra}
        for _ in range(args.rounds):
            container = f"ref-{uuid.uuid4().hex[:8]}"
            db = work / "snapshot.db"
            save = run(
                [server.etcdctl_bin, "--endpoints", server.endpoint, "snapshot", "save", str(db)],
                tools,
            )
            upload = run(
                ["swift", "upload", "--use-slo", "--segment-size", segment, container, str(db)],
                {**tools, "PWD": str(work)},
            )
            db.unlink()
            reference.append(
                Run(save.seconds + upload.seconds, max(save.peak_mib, upload.peak_mib))
            )
            ours = [*etcdadmin, "backup", "--container"]
            tuning = ["--workers", str(args.workers)] if args.workers else []
            snapshot_only.append(
                run(
                    [*ours, f"ours-{uuid.uuid4().hex[:8]}", "create", "--no-export",
                     "--segment-size", str(args.segment_mib), *tuning],
                    ours_env,
                )
            )  # fmt: skip
            for (mib, workers), runs in others.items():
                runs.append(
                    run(
                        [*ours, f"ours-{uuid.uuid4().hex[:8]}", "create", "--no-export",
                         "--segment-size", str(mib), "--workers", str(workers)],
                        ours_env,
                    )
                )  # fmt: skip
            if args.no_whole:
                continue
            whole.append(
                run(
                    [*ours, f"ours-{uuid.uuid4().hex[:8]}", "create",
                     "--segment-size", str(args.segment_mib), *tuning],
                    ours_env,
                )
            )  # fmt: skip
    finally:
        swift.stop()
        server.stop()
        # a 1M-key run leaves about 2 GB (etcd's data, every uploaded copy in Swift)
        shutil.rmtree(work, ignore_errors=True)

    ref = median(reference)
    print(
        f"\n{args.keys:,} keys, database {db_size / 1e6:.0f} MB, segments of "
        f"{args.segment_mib} MiB, workers {args.workers or 'default'}; median of "
        f"{args.rounds} runs, whole processes, peak RSS; load average at the end "
        f"{' '.join(f'{n:.2f}' for n in os.getloadavg())} (2 cores shared with other work)"
    )
    print("| operation | time | peak RSS | speed-up |\n|---|---|---|---|")
    print(
        f"| `etcdctl snapshot save` + `swift upload --use-slo` | {ref.seconds:.2f} s "
        f"| {ref.peak_mib:.0f} MiB | 1.00x |"
    )
    rows = [("`etcdadmin backup create --no-export`", median(snapshot_only))]
    rows += [
        (f"`... --no-export --segment-size {mib} --workers {workers}`", median(runs))
        for (mib, workers), runs in others.items()
    ]
    if whole:
        rows.append(("`etcdadmin backup create` (with the key export)", median(whole)))
    for label, ours_run in rows:
        print(
            f"| {label} | {ours_run.seconds:.2f} s | {ours_run.peak_mib:.0f} MiB "
            f"| {ref.seconds / ours_run.seconds:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
