"""The etcdadmin package as an installed one runs: its modules compiled once.

pip compiles a package's modules when it installs it. A checkout run with
PYTHONDONTWRITEBYTECODE set (this project's CI machines set it) compiles every module it
imports again in each process, which a benchmark of whole `etcdadmin` processes would count
as the command's time: `etcdadmin --help` took 0.43-0.55 s so, 0.34-0.42 s compiled (2 cores,
shared with a test run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "etcdadmin"


def compile_package() -> None:
    """Write the package's bytecode, as `pip install` does."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(PACKAGE)],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
