"""A private Docker Engine for tests, isolated from any system daemon and from the network.

dockerd always runs with ``--bridge=none --iptables=false --ip-forward=false --ip-masq=false``:
it creates no bridge, touches no firewall rule and routes nothing; containers use the host's
network namespace and talk to the stack on 127.0.0.1. Debian's dockerd supervises its own
containerd (binary from the ``containerd`` package) when no system containerd socket exists;
that containerd keeps its socket under our exec-root and its data under our data-root.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

from tests.stack.procs import (
    ManagedProcess,
    StackError,
    StackUnavailable,
    require_binary,
    wait_until,
)

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

STACK_LABEL = "etcdadmin.stack"
STACK_LABELS = {STACK_LABEL: "1"}
CACHE_ROOT = Path("/var/cache/etcdadmin-stack")
DEFAULT_DATA_ROOT = CACHE_ROOT / "docker"
START_TIMEOUT = 60.0
# sun_path holds 108 bytes; containerd adds "containerd/containerd.sock.ttrpc" to the exec-root.
_MAX_EXEC_ROOT = 60


class DockerDaemon:
    """dockerd with its socket, exec-root and pidfile under ``state_dir``.

    The data-root defaults to a persistent cache so images built once (the registry image, the
    debootstrap base) survive between test runs. Two daemons must never share a data-root, so
    an exclusive lock on ``<data_root>.lock`` is held while this daemon runs. When another
    session holds the default one, this daemon uses a throw-away data-root in ``state_dir``
    (images are then rebuilt: about 20 s with the debootstrap tarball cached); a data-root
    passed explicitly and held elsewhere is an error instead.
    """

    def __init__(self, state_dir: Path, data_root: Path | None = None) -> None:
        if os.geteuid() != 0:
            raise StackUnavailable("the private dockerd needs root (rootless mode is not set up)")
        self.dockerd_bin = require_binary("dockerd", "docker.io")
        # dockerd starts these itself; checking now gives an install hint instead of a log line.
        require_binary("containerd", "containerd")
        require_binary("runc", "runc")
        self.state_dir = Path(state_dir)
        self.data_root = Path(data_root) if data_root is not None else DEFAULT_DATA_ROOT
        self._explicit_data_root = data_root is not None
        self._own_data_root = False
        self.socket_path = self.state_dir / "docker.sock"
        self.pidfile = self.state_dir / "docker.pid"
        self.exec_root = self.state_dir / "exec"
        self._own_exec_root = False
        self._lock_file: IO[str] | None = None
        self._process: ManagedProcess | None = None
        self._client: docker.DockerClient | None = None

    def __repr__(self) -> str:
        return f"DockerDaemon({self.host})"

    @property
    def host(self) -> str:
        """The ``DOCKER_HOST`` value for this daemon."""
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def client(self, timeout: int = 600) -> docker.DockerClient:
        """A docker SDK client; ``version="auto"`` negotiates down to engine 20.10's API 1.41.

        The long timeout covers builds whose RUN steps stay silent for minutes.
        """
        import docker

        return docker.DockerClient(base_url=self.host, version="auto", timeout=timeout)

    def start(self) -> None:
        """Start dockerd and wait until it answers ``/_ping``; remove stale stack containers."""
        if len(str(self.socket_path)) > 100:
            raise StackError(f"socket path too long for a unix socket: {self.socket_path}")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        if not self._lock_data_root():
            if self._explicit_data_root:
                raise StackError(
                    f"another test stack's dockerd uses {self.data_root} (its lock is held); "
                    "pass a different data_root"
                )
            log.warning(
                "%s is in use by another session; using a private data-root", self.data_root
            )
            self.data_root = self.state_dir / "data-root"
            self._own_data_root = True
            self.data_root.mkdir(parents=True, exist_ok=True)
            self._lock_data_root()
        try:
            self._start_locked()
        except BaseException:
            self.stop()
            raise

    def _start_locked(self) -> None:
        if len(str(self.exec_root)) > _MAX_EXEC_ROOT:
            self.exec_root = Path(tempfile.mkdtemp(prefix="eas-", dir="/tmp"))
            self._own_exec_root = True
        self.exec_root.mkdir(parents=True, exist_ok=True)
        # An empty config file: a host's /etc/docker/daemon.json must not change our daemon.
        config_file = self.state_dir / "daemon.json"
        config_file.write_text("{}\n")
        self.socket_path.unlink(missing_ok=True)
        argv = [
            self.dockerd_bin,
            "--host", self.host,
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "--config-file", str(config_file),
            "--bridge=none",
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--userland-proxy=false",
        ]  # fmt: skip
        self._process = ManagedProcess("dockerd", argv, self.state_dir / "dockerd.log")
        self._process.start()
        self._process.wait_ready(self._pings, START_TIMEOUT, f"dockerd at {self.host}")
        self._client = self.client()
        # We hold the data-root lock, so labelled containers left in it belong to a run that
        # died without cleaning up.
        self.remove_stack_containers()
        # Rebuilt agent images leave their predecessors untagged in the persistent data-root;
        # without this it grows by one image per source change.
        self._client.images.prune(filters={"dangling": True})

    def _pings(self) -> bool:
        if not self.socket_path.exists():
            return False
        client = self.client(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def remove_stack_containers(self) -> None:
        """Force-remove every container labelled ``etcdadmin.stack=1``."""
        if self._client is None:
            return
        for container in self._client.containers.list(
            all=True, filters={"label": f"{STACK_LABEL}=1"}
        ):
            container.remove(force=True, v=True)

    def stop(self, timeout: float = 30) -> None:
        """Remove stack containers, stop dockerd by pid and wait for its containerd and shims."""
        try:
            if self._process is not None and self._process.alive:
                try:
                    self.remove_stack_containers()
                except Exception as exc:
                    # dockerd still stops them on shutdown; the next start removes them.
                    log.warning("could not remove stack containers: %s", exc)
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._process is not None:
                helpers = self._helper_pids()
                self._process.stop(timeout)
                self._reap_helpers(helpers)
                self._process = None
                # dockerd bind-mounts the host netns at <exec-root>/netns/default and leaves
                # it mounted on exit; the state dir could not be deleted (EBUSY) otherwise.
                _unmount_below(self.exec_root)
                _unmount_below(self.state_dir)
        finally:
            if self._own_exec_root:
                shutil.rmtree(self.exec_root, ignore_errors=True)
                self._own_exec_root = False
                self.exec_root = self.state_dir / "exec"
            self._unlock_data_root()
            if self._own_data_root:
                _unmount_below(self.data_root)
                shutil.rmtree(self.data_root, ignore_errors=True)
                self._own_data_root = False
                self.data_root = DEFAULT_DATA_ROOT

    def log_tail(self, n: int = 40) -> str:
        return self._process.log_tail(n) if self._process is not None else ""

    def _helper_pids(self) -> list[int]:
        """Pids of the containerd and shims this daemon started (they name our exec-root).

        Shims re-parent themselves to init, so they are found by command line, not ancestry.
        """
        marker = str(self.exec_root).encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline and int(entry.name) != self.pid:
                pids.append(int(entry.name))
        return pids

    def _reap_helpers(self, pids: list[int]) -> None:
        def gone() -> bool:
            return not any(_running(pid) for pid in pids)

        try:
            wait_until(gone, 15, f"containerd of {self.host} to exit")
        except TimeoutError:
            # Look again rather than trust old pids: one may have been reused meanwhile.
            for pid in self._helper_pids():
                if _running(pid):
                    log.warning("killing leftover containerd process %s", pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    def _lock_data_root(self) -> bool:
        """Take the data-root's lock without waiting; False when another process holds it."""
        lock_path = self.data_root.with_name(self.data_root.name + ".lock")
        lock_file = lock_path.open("a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            return False
        # Who holds it, for a human wondering why another session fell back.
        lock_file.truncate(0)
        lock_file.write(json.dumps({"pid": os.getpid(), "host": self.host}) + "\n")
        lock_file.flush()
        self._lock_file = lock_file
        return True

    def _unlock_data_root(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _unmount_below(directory: Path) -> None:
    """Unmount every mount point inside ``directory``, deepest first."""
    prefix = f"{Path(directory).resolve()}/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    # /proc/self/mounts escapes spaces and the like as octal (\040); our paths have none.
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        result = subprocess.run(["umount", point], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log.warning("could not unmount %s: %s", point, result.stderr.strip())
