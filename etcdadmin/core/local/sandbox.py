"""A local etcd for a new user who has no cluster to connect to yet.

The desktop client offers it on first start so that a newcomer can explore the tree, the editor
and the environment comparison on real etcd without asking anyone for an endpoint. It runs the
`etcd` binary installed on the machine (nothing is downloaded), listening on 127.0.0.1 only,
with its data, log and chosen ports in the user's data directory: the same sandbox, with the
same keys, comes back on the same endpoint next time, so a saved connection to it keeps working.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from etcdadmin.core.errors import EtcdAdminError

log = logging.getLogger(__name__)

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install etcd-server; macOS: brew install etcd)"
# Desktop sessions often start the client with a minimal PATH (a .desktop file, macOS Finder),
# where a packaged etcd is installed but not found.
EXTRA_BIN_DIRS: tuple[str, ...] = ("/usr/bin", "/usr/local/bin", "/opt/homebrew/bin")
STATE_FILE = "sandbox.json"
LOG_FILE = "etcd.log"
# etcd 3.4 refuses to run on architectures it does not list as supported unless this names the
# architecture; 3.5 supports arm64 and ignores it there.
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class SandboxUnavailable(EtcdAdminError):
    """The sandbox etcd cannot run here: the binary is missing, or it failed to start."""


class Sandbox:
    """One local etcd member kept in `data_dir` (default: the user data dir's `sandbox/`).

    `start()` returns its endpoint (`127.0.0.1:PORT`); `stop()` ends it. If the sandbox of the
    same data dir is still running (a previous client session that did not stop it), `start()`
    takes that one over instead of failing on the locked data dir.
    """

    def __init__(self, data_dir: Path | None = None, *, etcd_binary: str | None = None) -> None:
        # Absolute: etcd runs with the data dir as its working directory, and adoption
        # recognises a running sandbox by the data dir on its command line.
        self.data_dir = (Path(data_dir) if data_dir is not None else _default_data_dir()).absolute()
        self.etcd_binary = etcd_binary
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._client_port: int | None = None

    # -- paths and state --------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @property
    def member_dir(self) -> Path:
        return self.data_dir / "etcd.data"

    @property
    def pid(self) -> int | None:
        """The etcd process id while started, else None."""
        return self._pid

    @property
    def endpoint(self) -> str | None:
        """`127.0.0.1:PORT` while started, else None."""
        return f"127.0.0.1:{self._client_port}" if self._pid is not None else None

    def _running(self) -> bool:
        if self._pid is None:
            return False
        if self._process is not None:
            # our child: poll() also reaps it, where kill(pid, 0) would see a zombie as alive
            return self._process.poll() is None
        return _pid_alive(self._pid)

    def _read_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _write_state(self, state: dict[str, Any]) -> None:
        temp = self.state_path.with_suffix(".tmp")
        temp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        temp.replace(self.state_path)

    # -- start ------------------------------------------------------------------------------

    def start(self) -> str:
        """Run the sandbox (or take over the one already running); returns its endpoint."""
        with self._lock:
            if self._running():
                return f"127.0.0.1:{self._client_port}"
            if self._pid is not None:  # it died under us: clean up, then start afresh
                self._terminate()
            self.data_dir.mkdir(parents=True, exist_ok=True)
            state = self._read_state()
            adopted = self._adopt(state)
            if adopted is not None:
                return adopted
            binary = self._find_binary()
            client_port, peer_port = _choose_ports(state)
            self._launch(binary, client_port, peer_port)
            assert self._pid is not None
            self._write_state(
                {"client_port": client_port, "peer_port": peer_port, "pid": self._pid}
            )
            log.info("sandbox etcd started on 127.0.0.1:%d", client_port)
            return f"127.0.0.1:{client_port}"

    def _find_binary(self) -> str:
        if self.etcd_binary is not None:
            found = shutil.which(self.etcd_binary)
            if found is None:
                raise SandboxUnavailable(
                    f"etcd was not found at {self.etcd_binary}: {INSTALL_HINT}"
                )
            return found
        found = shutil.which("etcd")
        if found is None:
            for directory in EXTRA_BIN_DIRS:
                candidate = shutil.which("etcd", path=directory)
                if candidate is not None:
                    found = candidate
                    break
        if found is None:
            raise SandboxUnavailable(f"etcd was not found on PATH: {INSTALL_HINT}")
        return found

    def _adopt(self, state: dict[str, Any]) -> str | None:
        """Take over the sandbox etcd a previous session left running on this data dir."""
        pid = state.get("pid")
        port = state.get("client_port")
        if not isinstance(pid, int) or not isinstance(port, int):
            return None
        if not _pid_alive(pid) or not self._is_our_etcd(pid) or not _healthy(port):
            return None
        self._pid = pid
        self._client_port = port
        log.info("sandbox etcd already running on 127.0.0.1:%d; using it", port)
        return f"127.0.0.1:{port}"

    def _is_our_etcd(self, pid: int) -> bool:
        """Whether `pid` is still the etcd of this data dir, not a process that reused the id.

        Without /proc (macOS) the id and a healthy etcd on the recorded port must do.
        """
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            return not Path("/proc/self").exists()
        except OSError:
            return False
        return str(self.member_dir).encode() in cmdline.split(b"\0")

    def _launch(self, binary: str, client_port: int, peer_port: int) -> None:
        client_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        argv = [
            binary,
            "--name", "sandbox",
            "--data-dir", str(self.member_dir),
            "--listen-client-urls", client_url,
            "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url,
            "--initial-advertise-peer-urls", peer_url,
            # Ignored once the data dir exists; a changed peer port is fine for a lone member.
            "--initial-cluster", f"sandbox={peer_url}",
            "--initial-cluster-state", "new",
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]  # fmt: skip
        # etcd reads ETCD_* variables as flags and refuses to start when one shadows a flag
        # given on the command line; a user's shell setup must not break the sandbox.
        env = {name: value for name, value in os.environ.items() if not name.startswith("ETCD_")}
        goarch = _GOARCH.get(platform.machine().lower())
        if goarch is not None and goarch != "amd64":
            env["ETCD_UNSUPPORTED_ARCH"] = goarch
        with self.log_path.open("ab") as logfile:
            log_offset = logfile.tell()
            logfile.write(f"--- sandbox start {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            logfile.flush()
            try:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=logfile,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.data_dir,
                    # Its own session: a Ctrl-C meant for a terminal-started client must not
                    # kill the member halfway through a write; stop() ends it.
                    start_new_session=True,
                )
            except OSError as exc:
                raise SandboxUnavailable(
                    f"etcd at {binary} could not be run ({exc.strerror}): {INSTALL_HINT}"
                ) from None
        self._process = process
        self._pid = process.pid
        self._client_port = client_port
        try:
            self._wait_serving(process, client_port, log_offset)
        except BaseException:
            self._terminate()
            raise

    def _wait_serving(self, process: subprocess.Popen[bytes], port: int, log_offset: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            code = process.poll()
            if code is not None:
                raise SandboxUnavailable(
                    f"the sandbox etcd exited at start (exit code {code}); its log "
                    f"({self.log_path}) ends with:\n{self._log_tail(log_offset)}"
                )
            if _healthy(port):
                return
            if time.monotonic() >= deadline:
                raise SandboxUnavailable(
                    f"the sandbox etcd did not serve on 127.0.0.1:{port} within "
                    f"{START_TIMEOUT:.0f} s; its log ({self.log_path}) ends with:\n"
                    f"{self._log_tail(log_offset)}"
                )
            time.sleep(0.1)

    def _log_tail(self, offset: int, lines: int = 20) -> str:
        """The last lines this start wrote to the log (not those of earlier runs)."""
        try:
            with self.log_path.open("rb") as logfile:
                logfile.seek(offset)
                text = logfile.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"(the log cannot be read: {exc.strerror})"
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])

    # -- stop -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the sandbox: SIGTERM, wait, then SIGKILL. Its data stays for next time."""
        with self._lock:
            if self._pid is None:
                return
            self._terminate()
            state = self._read_state()
            if state.pop("pid", None) is not None:
                self._write_state(state)
            log.info("sandbox etcd stopped")

    def _terminate(self) -> None:
        pid = self._pid
        process = self._process
        self._pid = None
        self._process = None
        if pid is None:
            return
        for sig, timeout in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if self._wait_exit(pid, process, timeout):
                break
            log.warning("sandbox etcd (pid %d) ignored %s", pid, sig.name)
        if process is not None:
            # reap it, so no zombie keeps the pid
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)

    @staticmethod
    def _wait_exit(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> bool:
        if process is not None:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        # a member adopted from an earlier session is not our child: poll for it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.05)
        return False

    # -- context manager --------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, but belongs to someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal check is all there is
    # A killed member whose parent has not reaped it yet is a zombie: gone, for our purposes.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _default_data_dir() -> Path:
    # Imported here: platformdirs comes with the desktop client (the `gui` extra); the agent
    # image shares this package without it.
    import platformdirs

    return Path(platformdirs.user_data_dir("etcdadmin")) / "sandbox"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # etcd (Go) binds with SO_REUSEADDR: connections of its last run lingering in TIME_WAIT
        # must not make its own port look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_ports(state: dict[str, Any]) -> tuple[int, int]:
    """The ports of the last run when both are free (a saved connection keeps working), else
    two ports the kernel picks."""
    client, peer = state.get("client_port"), state.get("peer_port")
    if (
        isinstance(client, int)
        and isinstance(peer, int)
        and client != peer
        and _port_free(client)
        and _port_free(peer)
    ):
        return client, peer
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second,
    ):
        # both held open at once, so the kernel cannot hand out the same port twice
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        if isinstance(client, int):
            log.info("sandbox port %d is taken; moving the sandbox to another port", client)
        return int(first.getsockname()[1]), int(second.getsockname()[1])


def _healthy(port: int) -> bool:
    """etcd's /health: true only once the member has a leader and serves requests."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            body = json.load(response)
    except (OSError, ValueError):  # URLError and refused connections are OSErrors
        return False
    return isinstance(body, dict) and body.get("health") == "true"
