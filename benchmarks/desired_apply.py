"""Desired state of a 100,000-key directory: plan and apply, next to `etcdctl txn`.

    .venv/bin/python -m benchmarks.desired_apply [--keys 100000] [--changes 10000]

Starts a scratch etcd, writes a directory of `--keys` keys from a YAML config, then prints:
a plan with no changes (YAML flatten, the paged read and the comparison), a plan with
`--changes` changed values, its apply in batches of 128, and `etcdctl txn` writing the same
puts in the same batches (one etcdctl run per batch, as a shell script would). Targets: the
no-change plan under 2 s, the apply within 1.5x of etcdctl. Not a test.
"""

from __future__ import annotations

import argparse
import shlex
import tempfile
import time
from pathlib import Path

import yaml

from etcdadmin.core.changes.changeset import MAX_TXN_OPS
from etcdadmin.core.changes.desired import apply_desired, plan_desired
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.stack.etcd import EtcdServer

DIRECTORY = b"bench/"


def config(keys: int, generation: str, changed: int) -> dict[str, object]:
    """A config of `keys` leaves, 10 settings per service; the first `changed` get `generation`."""
    doc: dict[str, dict[str, dict[str, str]]] = {}
    for n in range(keys):
        value = f"{generation if n < changed else 'v0'}-value-{n:06d}"
        team = doc.setdefault(f"team{n // 1000:03d}", {})
        team.setdefault(f"service{(n // 10) % 100:02d}", {})[f"setting{n % 10}"] = value
    return doc


def best(runs: list[float]) -> str:
    return f"{min(runs):.2f} s (runs: {', '.join(f'{r:.2f}' for r in runs)})"


def etcdctl_txn(server: EtcdServer, puts: list[tuple[bytes, bytes]]) -> float:
    """`etcdctl txn` of `puts` in batches of 128, one process per batch; seconds taken."""
    scripts = []
    for start in range(0, len(puts), MAX_TXN_OPS):
        part = puts[start : start + MAX_TXN_OPS]
        lines = [f"put {shlex.quote(k.decode())} {shlex.quote(v.decode())}" for k, v in part]
        scripts.append("\n" + "\n".join(lines) + "\n\n\n")
    began = time.perf_counter()
    for script in scripts:
        server.etcdctl("txn", input=script)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="etcdadmin-bench-") as root:
        server = EtcdServer(Path(root) / "etcd", "bench")
        server.start()
        try:
            run(server, args.keys, args.changes, args.repeat)
        finally:
            server.stop()


def run(server: EtcdServer, keys: int, changes: int, repeat: int) -> None:
    with EtcdConnection(ConnectionSettings((server.endpoint,))) as conn:
        base = yaml.safe_dump(config(keys, "v0", 0), sort_keys=False)
        began = time.perf_counter()
        apply_desired(conn, plan_desired(conn, DIRECTORY, base))
        print(f"desired state of {keys:,} keys ({len(base) / 2**20:.1f} MiB of YAML)")
        print(f"  initial load (plan + apply)          {time.perf_counter() - began:8.2f} s")

        runs = []
        for _ in range(repeat):
            began = time.perf_counter()
            plan = plan_desired(conn, DIRECTORY, base)
            runs.append(time.perf_counter() - began)
            assert plan.empty and plan.unchanged == keys
        print(f"  plan, no changes                     {best(runs)}   target < 2 s")

        ours, theirs = [], []
        for generation in range(1, repeat + 1):
            text = yaml.safe_dump(config(keys, f"v{generation}", changes), sort_keys=False)
            plan = plan_desired(conn, DIRECTORY, text)
            assert len(plan.changed) == changes
            began = time.perf_counter()
            result = apply_desired(conn, plan)
            ours.append(time.perf_counter() - began)
            assert result.complete
            puts = [(c.key, c.after or b"") for c in plan.changes]
            theirs.append(etcdctl_txn(server, puts))
        ratio = min(ours) / min(theirs)
        print(f"  apply {changes:,} changes, batches of 128  {best(ours)}")
        print(f"  etcdctl txn, same puts and batches   {best(theirs)}")
        print(f"  ratio                                {ratio:8.2f}x   target <= 1.5x")


if __name__ == "__main__":
    main()
