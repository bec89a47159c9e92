"""gRPC's own log lines kept off the command line's stderr, where errors are one line each.

gRPC's C core writes lines such as `E1203 ... ssl_transport_security.cc:1569] Invalid private
key.` straight to stderr, before the one line the command then prints for the same failure.
It reads GRPC_VERBOSITY once, when grpc is imported: setting it later changes nothing, and
NONE silences it (grpcio 1.85, measured: ERROR and an unset variable both print those lines;
"none" works as well). With grpc imported already (another program importing the CLI), it is
too late to matter, and nothing is changed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

VARIABLE = "GRPC_VERBOSITY"


def wants_debug(argv: Sequence[str]) -> bool:
    """Whether the command line asks for `--log-level debug` (click has not parsed it yet)."""
    for i, arg in enumerate(argv):
        if arg.lower() == "--log-level=debug":
            return True
        if arg == "--log-level" and i + 1 < len(argv) and argv[i + 1].lower() == "debug":
            return True
    return False


@contextmanager
def grpc_quiet(argv: Sequence[str]) -> Iterator[None]:
    """Import grpc within this block to silence its logging, unless `argv` asks for debug
    output or the user set GRPC_VERBOSITY (to see gRPC's lines, or to choose which).

    The variable is put back afterwards: grpc has read it by then, and the processes the
    command starts see the environment the user gave it.
    """
    before = os.environ.get(VARIABLE)
    if before or wants_debug(argv) or "grpc" in sys.modules:
        yield
        return
    os.environ[VARIABLE] = "NONE"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = before
