"""A private session bus with gnome-keyring's Secret Service: the real OS keyring for tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from tests.stack.procs import ManagedProcess, StackError, require_binary, wait_until


class KeyringService:
    """dbus-daemon (session bus) + gnome-keyring-daemon, state under `state_dir`.

    `env` holds what a client needs (DBUS_SESSION_BUS_ADDRESS); the login keyring is created
    and unlocked with a throwaway password.
    """

    def __init__(self, state_dir: Path) -> None:
        self.dbus_bin = require_binary("dbus-daemon", "dbus")
        self.keyring_bin = require_binary("gnome-keyring-daemon", "gnome-keyring")
        self.state_dir = state_dir
        self.address = f"unix:path={state_dir / 'bus'}"
        self.env = {
            "DBUS_SESSION_BUS_ADDRESS": self.address,
            "XDG_DATA_HOME": str(state_dir / "data"),
            "XDG_RUNTIME_DIR": str(state_dir / "run"),
            "HOME": str(state_dir / "home"),
        }
        self._dbus = ManagedProcess(
            "dbus",
            [self.dbus_bin, "--session", "--nofork", f"--address={self.address}"],
            state_dir / "dbus.log",
        )
        self._keyring_pid: int | None = None

    def start(self) -> None:
        for sub in ("data", "run", "home"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir / "run", 0o700)
        self._dbus.start()
        wait_until(lambda: (self.state_dir / "bus").exists(), 10, "the session bus socket")
        done = subprocess.run(
            [self.keyring_bin, "--unlock", "--components=secrets", "--daemonize"],
            input=b"test-keyring-password",
            env={**os.environ, **self.env},
            capture_output=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise StackError(f"gnome-keyring-daemon failed: {done.stderr.decode(errors='replace')}")
        for line in done.stdout.decode().splitlines():
            if line.startswith("GNOME_KEYRING_CONTROL="):
                self.env["GNOME_KEYRING_CONTROL"] = line.split("=", 1)[1]
        pids = subprocess.run(
            ["pgrep", "-f", "gnome-keyring-daemon"], capture_output=True, text=True
        ).stdout.split()
        # The daemon we started is the newest one whose environment has our bus.
        for pid in reversed(pids):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if self.address.encode() in environ:
                self._keyring_pid = int(pid)
                break

    def stop(self) -> None:
        if self._keyring_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._keyring_pid, 15)
            self._keyring_pid = None
        self._dbus.stop()
