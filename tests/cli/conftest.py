"""CLI tests: Click's CliRunner for the bulk, real `python -m etcdadmin` processes for exit codes.

Every test gets its own config directory (ETCDADMIN_CONFIG_DIR), so profiles.json files written
here never meet the user's own, and no ETCDADMIN_* variable of the caller leaks in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from etcdadmin.cli.main import cli
from etcdadmin.core.profiles import ConnectionProfile, ProfileStore
from tests.conftest import REPO_ROOT

_VARIABLES = (
    "ETCDADMIN_ENDPOINTS",
    "ETCDADMIN_CACERT",
    "ETCDADMIN_CERT",
    "ETCDADMIN_KEY",
    "ETCDADMIN_USER",
    "ETCDADMIN_PASSWORD",
    "ETCDADMIN_PROFILE",
)


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "config"
    monkeypatch.setenv("ETCDADMIN_CONFIG_DIR", str(directory))
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return directory


@pytest.fixture
def profiles(config_dir: Path) -> ProfileStore:
    return ProfileStore(config_dir / "profiles.json")


Run = Callable[..., Result]


@pytest.fixture
def run(config_dir: Path) -> Run:
    """`run(*args, input=..., env=...)`: the CLI in-process, stdout and stderr kept apart."""

    def invoke(*args: str, input: str | bytes | None = None, **env: str) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def at(etcd_server, run: Run) -> Run:
    """`run`, connected to the session's etcd."""

    def invoke(*args: str, input: str | bytes | None = None, **env: str) -> Result:
        return run("--endpoints", etcd_server.endpoint, *args, input=input, **env)

    return invoke


@pytest.fixture
def top() -> str:
    """A directory of the test's own in the shared etcd."""
    return f"cli-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def run_process(*args: str, env: dict[str, str] | None = None, code: str = "") -> Finished:
    """`python -m etcdadmin ARGS` in a real process (or `python -c CODE ARGS`)."""
    argv = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "etcdadmin"]
    if not code:
        argv += list(args)
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    done = subprocess.run(
        argv, capture_output=True, text=True, env=environment, timeout=60, check=False
    )
    return Finished(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def process(config_dir: Path) -> Iterator[Callable[..., Finished]]:
    yield run_process


def save_profile(store: ProfileStore, name: str, endpoint: str, **fields: object) -> None:
    store.save(ConnectionProfile(name, endpoint, **fields))  # type: ignore[arg-type]
