"""Key index figures at 1,000,000 keys, next to the targets and to what etcd itself costs.

    .venv/bin/python -m benchmarks.keyindex [--teams 90] [--big 100000]

Builds a key space shaped like real config trees, ``registry-team{0..89}/env{0..9}/
service{0..99}/<10 setting names>`` (900,000 keys) plus ``bulk/item-{000000..099999}``, one
directory with 100,000 direct leaf children, fed to the index in sorted pages of 100k as the
initial load reads them from etcd. Then prints build time, memory, the tree operations the
desktop client performs, a 10,000-change watch batch and a full search. Not a test.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from etcdadmin.core.tree.index import KeyIndex

T = TypeVar("T")

PAGE = 100_000
SETTINGS = [
    b"http-addr",
    b"http.secret",
    b"log-level",
    b"storage/swift/password",
    b"storage/swift/container",
    b"redis-addr",
    b"replicas",
    b"image",
    b"tls.cert",
    b"tls.key",
]
# etcd's own cost for one directory probe (Range limit=1, it counts the whole range anyway)
# and for the keys-only paged read of 1M keys, measured with etcd 3.4.23 on 2 cores.
ETCD_PROBE_MS = 150
ETCD_LOAD_S = 2.7


def rss_mb() -> float:
    """Resident memory of this process, from the kernel's own accounting."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(run: Callable[[], T], repeat: int = 5) -> tuple[float, T]:
    """Best of ``repeat`` runs, in milliseconds, with the last result."""
    best = float("inf")
    result: T
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        best = min(best, (time.perf_counter() - began) * 1000)
    return best, result


def config_keys(teams: int, big: int) -> list[bytes]:
    keys = [
        b"registry-team%d/env%d/service%d/%s" % (team, env, service, setting)
        for team in range(teams)
        for env in range(10)
        for service in range(100)
        for setting in SETTINGS
    ]
    keys += [b"bulk/item-%06d" % n for n in range(big)]
    keys.sort()
    return keys


def line(what: str, figure: str, target: str = "") -> None:
    print(f"  {what:<44} {figure:>12}   {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=90)
    parser.add_argument("--big", type=int, default=100_000)
    args = parser.parse_args()

    baseline = rss_mb()
    source = config_keys(args.teams, args.big)
    pages = [source[n : n + PAGE] for n in range(0, len(source), PAGE)]
    del source
    gc.collect()

    index = KeyIndex()
    began = time.perf_counter()
    for page in pages:
        index.extend_sorted(page)
    build_ms = (time.perf_counter() - began) * 1000
    del pages
    gc.collect()
    keys = index.keys_under(b"")
    payload = sum(sys.getsizeof(key) for key in keys) + sys.getsizeof(keys)
    del keys
    after_build = rss_mb()

    print(f"KeyIndex with {len(index):,} keys (Python {sys.version.split()[0]})")
    line("build from sorted pages of 100k", f"{build_ms:.1f} ms", f"(etcd read: {ETCD_LOAD_S} s)")
    line("RSS after build", f"{after_build:.0f} MB", f"(interpreter alone {baseline:.0f} MB)")
    line("RSS growth for the index", f"{after_build - baseline:.0f} MB", "target < 200 MB")
    line("getsizeof(keys) + getsizeof(list)", f"{payload / 2**20:.0f} MB")

    ms, root = timed(lambda: index.children(b""))
    line(
        f"root children ({len(root)})",
        f"{ms:.2f} ms",
        f"target < 10 ms (etcd probe: {ETCD_PROBE_MS} ms each)",
    )

    def expand() -> int:
        team = index.children(b"registry-team42")
        env = index.children(team[3].path)
        service = index.children(env[57].path)
        return len(team) + len(env) + len(service)

    ms, shown = timed(expand)
    line(f"3-level expansion ({shown} children)", f"{ms:.2f} ms", "target < 10 ms")

    ms, first = timed(lambda: index.children(b"bulk", limit=1000))
    line(f"first {len(first):,} children of bulk/", f"{ms:.2f} ms", "target well under 10 ms")
    ms, second = timed(lambda: index.children(b"bulk", after=first[-1].segment, limit=1000))
    line(f"next {len(second):,} (after=...)", f"{ms:.2f} ms")
    ms, every = timed(lambda: index.children(b"bulk"), repeat=3)
    line(f"all {len(every):,} children of bulk/", f"{ms:.1f} ms", "target < 100 ms")
    # A third of that is the cyclic GC walking the 1M-key list while 100k Child objects are
    # made; after gc.freeze() (what a GUI can do once the load is done) it no longer does.
    gc.freeze()
    ms, every = timed(lambda: index.children(b"bulk"), repeat=3)
    gc.unfreeze()
    line("  the same after gc.freeze()", f"{ms:.1f} ms")

    rng = random.Random(1)
    everything = index.keys_under(b"")
    deletes = rng.sample(everything, 5_000)
    del everything
    puts = [
        b"registry-team%d/env%d/new%d" % (rng.randrange(200), rng.randrange(10), n)
        for n in range(5_000)
    ]
    began = time.perf_counter()
    index.apply(puts=puts, deletes=deletes)
    apply_ms = (time.perf_counter() - began) * 1000
    line("apply 10,000 changes (5k puts, 5k deletes)", f"{apply_ms:.1f} ms", "target < 300 ms")
    began = time.perf_counter()
    for key in puts[:50]:
        index.apply(deletes=[key])
    line("apply 1 change (in-place)", f"{(time.perf_counter() - began) * 1000 / 50:.3f} ms")

    def search_all(needle: bytes) -> int:
        found, start = 0, 0
        while start != -1:
            chunk, start = index.search(needle, start=start)
            found += len(chunk)
        return found

    ms, hits = timed(lambda: search_all(b"ITEM-09999"), repeat=3)
    line(f"search rare needle, all keys ({hits} hits)", f"{ms:.0f} ms")
    ms, hits = timed(lambda: search_all(b"-099"), repeat=3)
    line(f"search needle without letters ({hits} hits)", f"{ms:.0f} ms")


if __name__ == "__main__":
    main()
