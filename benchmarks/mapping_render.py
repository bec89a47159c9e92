"""The key <-> YAML mapping in-process: render and flatten of large directories and values.

    .venv/bin/python -m benchmarks.mapping_render [--keys 100000] [--rounds 3]

Prints the best of ``--rounds`` CPU times (the process's own, so other load on the machine
counts less) for what the agent and `etcdadmin export`/`apply -f` do with a directory once its
keys are read: `render` of ``--keys`` keys ``bench/svcNNNN/keyNN``, of 20,000 keys under one
mapping level onto a base that already holds half of them, of one 1 MB value (plain, quoted,
a flow list of 1.3 MB) and of an alias bomb (refused), and `flatten_text` of the rendered
config. For scale, `etcdctl get --prefix -w json` of the 100,000 keys took 0.48 s on the
project's machine kind (see benchmarks/cli_export_apply.py). Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import time
from collections.abc import Callable
from typing import Any

from etcdadmin.core.config import mapping
from etcdadmin.core.errors import MappingError


def best_of(rounds: int, action: Callable[[], Any]) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        with contextlib.suppress(MappingError):  # the bomb: its refusal is what is timed
            action()
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    entries = {
        f"bench/svc{n // 100:04d}/key{n % 100:02d}": b"value-%d" % n for n in range(args.keys)
    }
    flat = {f"bench/k{n:05d}": f"new{n}" for n in range(20_000)}
    flat_base = "".join(f"k{n:05d}: old\n" for n in range(0, 20_000, 2))
    bomb = "[&a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]" + "".join(
        f",&a{n} [{','.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)
    )
    cases: list[tuple[str, Callable[[], Any]]] = [
        (f"render {args.keys:,} keys", lambda: mapping.render("", entries, "bench/")),
        ("render 20,000 keys in one mapping", lambda: mapping.render(flat_base, flat, "bench")),
        (
            "render a 1 MB plain value",
            lambda: mapping.render("", {"bench/v": "x" * 10**6}, "bench"),
        ),
        (
            "render a 1 MB double-quoted value",
            lambda: mapping.render("", {"bench/v": '"' + "ab\\n" * 333_333 + '"'}, "bench"),
        ),
        (
            "render a 1.3 MB flow list",
            lambda: mapping.render(
                "", {"bench/v": "[" + ", ".join(f"item{n}" for n in range(120_000)) + "]"}, "bench"
            ),
        ),
        (
            f"refuse a {len(bomb) + 1}-byte alias bomb",
            lambda: mapping.render("", {"bench/b": bomb + "]"}, "bench"),
        ),
    ]
    text = mapping.render("", entries, "bench/").decode()
    cases.append(
        (
            f"flatten_text of the {args.keys:,}-key config",
            lambda: mapping.flatten_text(text, "bench"),
        )
    )
    for label, action in cases:
        print(f"{label:44s} {best_of(args.rounds, action):7.3f} s")


if __name__ == "__main__":
    main()
