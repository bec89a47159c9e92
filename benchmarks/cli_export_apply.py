"""`etcdadmin export` and `etcdadmin apply` of a large directory, beside etcdctl doing the same.

    .venv/bin/python -m benchmarks.cli_export_apply [--keys 100000] [--changes 10000] [--rounds 3]

Loads `--keys` keys into a scratch etcd (`bench/svcNNNN/keyNN`), then times whole processes,
as an operator would run them, and prints the median of `--rounds` runs with each process's peak
resident memory (GNU time's figure):

- reading the directory: `etcdctl get --prefix bench/ -w json` against `etcdadmin export bench`;
- `etcdadmin apply -f FILE --dir bench --yes` with nothing to change (it must write nothing: the
  cluster revision is checked before and after);
- `--changes` changed values: `etcdadmin apply` against `etcdctl txn` of the same puts, in
  transactions of 128 guarded puts (etcd's default --max-txn-ops) with the same guards
  (each key's mod revision) and failure reads, one `etcdctl txn` process per transaction.

Not a test: it prints figures for the README.
Targets: export within 1.5x of etcdctl's read; apply with no changes under 2 s, writing nothing;
10,000 changes within 1.5x of the etcdctl transactions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.installed import installed_etcdadmin
from etcdadmin.core.config import mapping
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, TxnOp
from tests.stack.etcd import EtcdServer

TXN_OPS = 128
TIME = "/usr/bin/time"  # GNU time, Debian package `time`
DIRECTORY = "bench"


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mib: float


def run(argv: Sequence[str], *, stdin: bytes | None = None, stdout: Path | None = None) -> Run:
    """One process, timed from start to exit, with its peak RSS as GNU time reports it.

    GNU time (not wait4 here): a child forked from this process carries the parent's resident
    pages until it execs, and wait4 counts them, so every tool looked as big as this script.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        out = stdout.open("wb") if stdout else subprocess.DEVNULL
        started = time.perf_counter()
        done = subprocess.run(
            [TIME, "-f", "%M", "-o", rss.name, *argv],
            input=stdin,
            stdout=out,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if stdout:
            out.close()  # type: ignore[union-attr]
        if done.returncode != 0:
            raise SystemExit(f"{argv[0]} {' '.join(argv[1:4])} ... exited {done.returncode}")
        peak_kib = int(rss.read().split()[-1])
    return Run(elapsed, peak_kib / 1024)


def key_of(i: int) -> str:
    return f"{DIRECTORY}/svc{i // 100:04d}/key{i % 100:02d}"


def load(conn: EtcdConnection, n: int) -> None:
    keys = [key_of(i).encode() for i in range(n)]
    for start in range(0, n, TXN_OPS):
        conn.txn(
            [],
            [
                TxnOp("put", k, b"value-%d" % (start + j))
                for j, k in enumerate(keys[start:][:TXN_OPS])
            ],
        )


def desired_file(path: Path, values: dict[str, str]) -> None:
    path.write_bytes(mapping.render("", values, DIRECTORY + "/"))


def etcdctl_txns(conn: EtcdConnection, changed: dict[str, str]) -> list[bytes]:
    """One `etcdctl txn` input per 128 keys: guards on each key's current mod revision, the
    puts, and reads of the keys when a guard fails, as `etcdadmin apply` sends them."""
    current = {kv.key.decode(): kv.mod_revision for kv in conn.read_prefix(DIRECTORY + "/").items}
    keys = sorted(changed)
    inputs = []
    for start in range(0, len(keys), TXN_OPS):
        batch = keys[start : start + TXN_OPS]
        compares = "".join(f'mod("{k}") = "{current[k]}"\n' for k in batch)
        puts = "".join(f'put {k} "{changed[k]}"\n' for k in batch)
        reads = "".join(f"get {k}\n" for k in batch)
        inputs.append(f"{compares}\n{puts}\n{reads}\n".encode())
    return inputs


def median(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.seconds for r in runs), statistics.median(r.peak_mib for r in runs)
    )


def row(label: str, reference: Run, ours: Run) -> str:
    ratio = ours.seconds / reference.seconds if reference.seconds else float("nan")
    return (
        f"| {label} | {reference.seconds:.2f} s, {reference.peak_mib:.0f} MiB "
        f"| {ours.seconds:.2f} s, {ours.peak_mib:.0f} MiB | {ratio:.2f}x |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="etcdadmin-bench-"))
    server = EtcdServer(work / "etcd")
    server.start()
    try:
        env = {**os.environ, "ETCDCTL_API": "3", "ETCDADMIN_ENDPOINTS": server.endpoint}
        os.environ.update(env)
        etcdctl = [server.etcdctl_bin, "--endpoints", server.endpoint]
        etcdadmin = installed_etcdadmin(work)
        with EtcdConnection(ConnectionSettings((server.endpoint,))) as conn:
            print(f"loading {args.keys:,} keys ...", flush=True)
            load(conn, args.keys)
            values = {key_of(i): f"value-{i}" for i in range(args.keys)}

            reads, exports = [], []
            for _ in range(args.rounds):
                reads.append(run([*etcdctl, "get", "--prefix", DIRECTORY + "/", "-w", "json"]))
                exports.append(run([*etcdadmin, "export", DIRECTORY], stdout=work / "export.yml"))
            exported = mapping.flatten_text(
                (work / "export.yml").read_text(encoding="utf-8"), DIRECTORY + "/"
            )
            assert exported == values, "the export does not hold the loaded keys"

            unchanged = []
            desired = work / "desired.yml"
            desired_file(desired, values)
            for _ in range(args.rounds):
                before = conn.header()[0]
                unchanged.append(
                    run([*etcdadmin, "apply", "-f", str(desired), "--dir", DIRECTORY, "--yes"])
                )
                assert conn.header()[0] == before, "an apply with no changes wrote something"

            applies, txns = [], []
            step = max(1, args.keys // args.changes)
            chosen = [key_of(i) for i in range(0, args.keys, step)][: args.changes]
            for r in range(args.rounds):
                for key in chosen:
                    values[key] = f"changed-{r}-{key.rsplit('/', 2)[-2]}"
                desired_file(desired, values)
                before = conn.header()[0]
                applies.append(
                    run([*etcdadmin, "apply", "-f", str(desired), "--dir", DIRECTORY, "--yes"])
                )
                written = conn.header()[0] - before
                assert written >= 1, "the apply wrote nothing"
                assert conn.get(chosen[-1]).value.decode() == values[chosen[-1]]  # type: ignore[union-attr]

                changed = {key: f"etcdctl-{r}" for key in chosen}
                inputs = etcdctl_txns(conn, changed)
                started = time.perf_counter()
                peaks = [run([*etcdctl, "txn"], stdin=data).peak_mib for data in inputs]
                txns.append(Run(time.perf_counter() - started, max(peaks)))
                for key, value in changed.items():
                    values[key] = value
                assert conn.get(chosen[-1]).value.decode() == changed[chosen[-1]]  # type: ignore[union-attr]
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"\n{args.keys:,} keys in one directory, {args.changes:,} changed; median of "
        f"{args.rounds} runs, whole processes (start to exit), peak RSS per process"
    )
    print("| operation | etcdctl | etcdadmin | ratio |\n|---|---|---|---|")
    print(row("read the directory (`get -w json` / `export`)", median(reads), median(exports)))
    noop = median(unchanged)
    print(
        f"| `apply` with nothing to change (wrote nothing) | | {noop.seconds:.2f} s, "
        f"{noop.peak_mib:.0f} MiB | |"
    )
    print(
        row(
            f"{args.changes:,} changed keys (`txn` x {len(inputs)} / `apply`)",
            median(txns),
            median(applies),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
