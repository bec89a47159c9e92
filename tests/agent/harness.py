"""Running the real agent (`python -m watcher_agent`) as a child process, as an operator would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdadmin.core.agents.status import status_prefix_for
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.stack.procs import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]


class AgentProcess:
    """One agent with its own config dir, state dir, metrics port and log file."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.metrics_port = free_port()
        self.log_path = workdir / "agent.log"
        self.env = {
            "PYTHONUNBUFFERED": "1",
            "METRICS_ADDR": f"127.0.0.1:{self.metrics_port}",
            "STATE_DIR": str(workdir / "state"),
            "HEALTH_STABLE": "1s",
            "HEALTH_TIMEOUT": "20s",
            "STATUS_TTL": "5",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return Path(self.env["CONFIG"])

    @property
    def state_dir(self) -> Path:
        """This agent's own state directory: `<state root>/<config file name>`."""
        root = self.env.get("STATE_DIR") or str(self.config.parent / ".watcher-agent")
        return Path(root) / self.config.name

    def start(self) -> None:
        env = {**os.environ, **self.env}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watcher_agent"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> dict[str, float]:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            text = resp.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.split()
                values[name.removeprefix("watcher_agent_")] = float(value)
        return values

    def healthz(self) -> int:
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)

    def wait_metric(self, name: str, predicate: Any, timeout: float = 30, what: str = "") -> None:
        wait_until(
            lambda: predicate(self.metrics()[name]),
            timeout,
            what or f"agent metric {name}",
        )


def status(etcd_endpoint: str, directory: str) -> list[dict[str, Any]]:
    """The agents' status records for a directory, as the desktop client will read them."""
    with EtcdConnection(ConnectionSettings((etcd_endpoint,))) as conn:
        snap = conn.read_prefix(status_prefix_for(directory))
    return [json.loads(kv.value) for kv in snap.items]
