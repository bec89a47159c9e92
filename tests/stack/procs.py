"""Process plumbing shared by every service of the test stack.

The stack runs real daemons (etcd, Swift, dockerd) as children of the test session. Each one
logs to a file in its state directory so that a failure can quote the daemon's own words, and
each one runs in its own session so that a daemon signalling its process group (Swift's
servers do ``killpg(0, SIGTERM)`` on shutdown) never reaches pytest itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A service of the test stack is missing, failed to start, or misbehaved."""


class StackUnavailable(StackError):
    """The machine lacks something the stack needs (a program, root), as opposed to a failure.

    Kept apart from start-up failures so a test session can skip on a bare machine yet still
    fail loudly when an installed service is broken.
    """


class MissingBinary(StackUnavailable):
    """A program the stack needs is not installed; the message names the Debian package."""

    def __init__(self, name: str, package: str) -> None:
        super().__init__(f"{name} not found: apt-get install {package}")
        self.name = name
        self.package = package


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    The kernel picks it, so parallel stacks do not collide on fixed ports; the small window
    between closing the probe socket and the daemon binding is accepted. A port handed out
    before is never handed out again in this process: the kernel may offer a just-closed port
    twice in a row, and an etcd given one port for both its client and peer URLs fails to
    start ("address already in use", seen in a 3-member cluster fixture).
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


_HANDED_OUT: set[int] = set()


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> None:
    """Poll ``predicate`` until it returns true, or raise ``TimeoutError`` after ``timeout``.

    Tests wait on conditions, never on fixed sleeps. Exceptions from the predicate count as
    "not yet" (a port that refuses connections is the normal state of a starting daemon); the
    last one is quoted in the timeout message because it usually says why.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            if predicate():
                return
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            message = f"gave up after {timeout}s waiting for {what}"
            if last_error is not None:
                message += f" (last error: {type(last_error).__name__}: {last_error})"
            raise TimeoutError(message)
        time.sleep(interval)


def require_binary(name: str, package: str) -> str:
    """Return the path of executable ``name``, or say which Debian package provides it."""
    path = shutil.which(name)
    if path is None:
        # Debian puts daemons such as dockerd in /usr/sbin, which a non-login PATH may lack.
        for directory in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
            candidate = Path(directory) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                path = str(candidate)
                break
    if path is None:
        raise MissingBinary(name, package)
    return path


def tail(path: Path, n: int = 40) -> str:
    """Return the last ``n`` lines of a text file, or a note that it is missing."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log file {path})"
    return "\n".join(lines[-n:])


class ManagedProcess:
    """One daemon started by the stack: its command line, its log file and its pid.

    ``start_new_session`` makes the daemon the leader of its own process group, so ``stop`` can
    also reap worker processes it forked (the group id is the daemon's own pid) and signals a
    daemon sends to its group stay inside it.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def start(self) -> None:
        """Spawn the process; output is appended to the log file so restarts keep history."""
        if self.alive:
            raise StackError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"--- starting: {' '.join(self.argv)}\n".encode())
        self._log_file.flush()
        env = {**os.environ, **self.env} if self.env is not None else None
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise StackError(f"cannot start {self.name}: {exc}") from exc
        log.info("started %s (pid %s)", self.name, self._popen.pid)

    def wait_ready(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait for ``predicate``; fail fast, with the log tail, if the process dies first."""

        died = False

        def ready() -> bool:
            nonlocal died
            if not self.alive:
                died = True  # ends the wait at once; reported below with the log tail
                return True
            return predicate()

        try:
            wait_until(ready, timeout, what)
        except TimeoutError as exc:
            raise StackError(f"{exc}; last lines of {self.log_path}:\n{self.log_tail()}") from exc
        if died:
            raise StackError(
                f"{self.name} exited with code {self.returncode} while starting; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def terminate(self) -> None:
        """Send SIGTERM without waiting, so several daemons can shut down at the same time."""
        if self.alive and self._popen is not None:
            _signal_pid(self._popen.pid, signal.SIGTERM)

    def stop(self, timeout: float = 10) -> int | None:
        """Stop the process: SIGTERM, then SIGKILL after ``timeout``; return its exit code.

        Whatever is left of its process group afterwards (forked workers) is killed too. Safe to
        call twice and on a process that already exited.
        """
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            _signal_pid(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM for %ss; killing it", self.name, timeout)
                _signal_pid(popen.pid, signal.SIGKILL)
                popen.wait(timeout)
        # The group id is the leader's pid (start_new_session); it outlives the leader while
        # any member remains, so this only reaches the daemon's own children.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        self._close_log()
        return popen.returncode

    def log_tail(self, n: int = 40) -> str:
        """The last lines the process wrote, for error messages."""
        if self._log_file is not None:
            self._log_file.flush()
        return tail(self.log_path, n)

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _signal_pid(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def run_checked(
    argv: Sequence[str],
    what: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a short-lived command; on failure raise ``StackError`` quoting its output."""
    full_env = {**os.environ, **env} if env is not None else None
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise StackError(
            f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n"
            + "\n".join(output[-40:])
        )
    return result
