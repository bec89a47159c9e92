"""`etcdadmin` as `pip install .` installs it, for benchmarks that time whole processes.

Two things make a checkout's `python -m etcdadmin` slower to start than an installed one, and a
benchmark of whole processes would count them as the command's time:
- this project's CI machines set PYTHONDONTWRITEBYTECODE, so a checkout compiles every module it
  imports again in each process (`etcdadmin --help`: 0.43-0.55 s so, 0.34-0.42 s compiled;
  2 cores shared with a test run); pip compiles a package's modules when it installs it;
- an editable install (`pip install -e .`, the test venv's) loads its import finder and pathlib
  in every process's `site` (22-28 ms of each start, measured with -X importtime).

`installed_etcdadmin` builds the wheel of this checkout and installs it, compiled, into a fresh
directory, and gives the command line of a venv that sees that package and the project venv's
dependencies, and nothing of the checkout. The command runs the `etcdadmin` script pip writes,
the one an operator types. It was `python -m etcdadmin`, which puts the working directory
first on the module path: run from the checkout, as the benchmarks are, that imported the
checkout's own modules, compiled again in every process, instead of the installed copy
(`--help`: 0.68 s from the checkout against 0.48 s elsewhere and 0.45 s for the script,
medians of 30 runs in turn, 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def installed_etcdadmin(work: Path) -> list[str]:
    """The argv prefix that runs `etcdadmin` installed from this checkout (under `work`)."""
    target = work / "installed"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(ROOT)],
        check=True,
        env=env,
    )  # fmt: skip
    home = work / "venv"
    venv.create(home, with_pip=False)
    python = home / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # A path file adds directories without running their own path files: the project venv's
    # dependencies come in, its editable finder does not.
    dependencies = sysconfig.get_paths()["purelib"]
    Path(site, "etcdadmin-bench.pth").write_text(f"{target}\n{dependencies}\n")
    # pip wrote the script for the interpreter that ran it (the project venv's): the same
    # script for this venv's interpreter, which runs it by name (no `#!` line to trust with
    # the path); the script's own directory, not the working one, heads the module path
    written = (target / "bin" / "etcdadmin").read_text().splitlines(keepends=True)
    script = home / "bin" / "etcdadmin"
    script.write_text("".join([f"#!{python}\n", *written[1:]]))
    script.chmod(0o755)
    return [str(python), str(script)]
