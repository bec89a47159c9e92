"""The mapping's property tests with a large budget: a longer fuzz run than the suite's.

    .venv/bin/python -m benchmarks.fuzz_mapping [--examples 20000] [-k PATTERN]

Runs `tests/core/test_mapping_properties.py` (round trips of flatten/render and
format_value/parse_value, only project errors on arbitrary keys, values and documents, the
limits against alias bombs and deep nesting) with ``--examples`` generated cases per property
instead of the suite's 200, and prints pytest's summary with the time taken. Not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pytest

PROPERTIES = Path(__file__).resolve().parents[1] / "tests/core/test_mapping_properties.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="cases per property")
    parser.add_argument("-k", default="", help="only the properties whose name matches")
    args = parser.parse_args()
    # Read by the test module's Hypothesis profile when it is imported.
    os.environ["ETCDADMIN_FUZZ_EXAMPLES"] = str(args.examples)
    argv = [str(PROPERTIES), "-q", "-p", "no:cacheprovider", "--timeout", "0", "--durations=0"]
    if args.k:
        argv += ["-k", args.k]
    started = time.perf_counter()
    code = pytest.main(argv)
    print(f"{args.examples} examples per property in {time.perf_counter() - started:.0f} s")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
