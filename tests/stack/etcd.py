"""Real etcd servers for tests: one member, or a three-member cluster on 127.0.0.1.

``etcdctl`` (API v3) is the reference client: tests use it to check that what etcdadmin writes
is what any other etcd client reads.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.stack.procs import ManagedProcess, StackError, free_port, require_binary

START_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServerTLS:
    """TLS for a member's client port: its certificate, the CA it trusts for clients, and the
    client certificate the stack's own `etcdctl` and health checks present."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    client_cert_auth: bool = True
    peer_cert: Path | None = None
    peer_key: Path | None = None

    def flags(self) -> list[str]:
        flags = ["--cert-file", str(self.cert), "--key-file", str(self.key)]
        flags += ["--trusted-ca-file", str(self.ca)]
        if self.client_cert_auth:
            flags.append("--client-cert-auth")
        if self.peer_cert and self.peer_key:
            flags += [
                "--peer-cert-file",
                str(self.peer_cert),
                "--peer-key-file",
                str(self.peer_key),
            ]
            flags += ["--peer-trusted-ca-file", str(self.ca), "--peer-client-cert-auth"]
        return flags

    @property
    def peer_scheme(self) -> str:
        return "https" if self.peer_cert else "http"

    def etcdctl_flags(self) -> list[str]:
        return [
            f"--cacert={self.ca}",
            f"--cert={self.client_cert}",
            f"--key={self.client_key}",
        ]

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


class EtcdServer:
    """One etcd member with its data directory, ports and log under ``state_dir``.

    Ports are picked once, so ``restart`` brings the member back where clients expect it (the
    point of restart tests: watches and clients must survive it). Used alone it is a one-member
    cluster; ``EtcdCluster`` passes ``initial_cluster`` and a shared token to form a real one.
    """

    def __init__(
        self,
        state_dir: Path,
        name: str = "etcd0",
        *,
        client_port: int | None = None,
        peer_port: int | None = None,
        initial_cluster: str | None = None,
        cluster_token: str | None = None,
        extra_args: Sequence[str] = (),
        tls: ServerTLS | None = None,
    ) -> None:
        self.etcd_bin = require_binary("etcd", "etcd-server")
        self.etcdctl_bin = require_binary("etcdctl", "etcd-client")
        self.state_dir = Path(state_dir)
        self.name = name
        self.tls = tls
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.initial_cluster = initial_cluster or f"{name}={self.peer_url}"
        # A unique token keeps members of different test stacks from ever joining each other.
        self.cluster_token = cluster_token or f"etcdadmin-stack-{uuid.uuid4().hex[:12]}"
        self.data_dir = self.state_dir / f"{name}.data"
        self.extra_args = list(extra_args)
        if initial_cluster is None:
            # A lone member waits one election timeout (1 s by default) before it leads again
            # after a restart; shorter timers make restart tests 4x faster. A single voter
            # cannot lose an election to a busy CPU, so only clusters keep etcd's defaults.
            self.extra_args[:0] = ["--heartbeat-interval", "25", "--election-timeout", "250"]
        self._process = ManagedProcess(name, self._argv(), self.state_dir / f"{name}.log")

    def __repr__(self) -> str:
        return f"EtcdServer({self.name!r}, {self.client_url})"

    @property
    def endpoint(self) -> str:
        """``host:port`` form, as etcdadmin's connection settings and gRPC clients take it."""
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.endpoint}"

    @property
    def peer_url(self) -> str:
        scheme = self.tls.peer_scheme if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.peer_port}"

    @property
    def alive(self) -> bool:
        return self._process.alive

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    def _argv(self) -> list[str]:
        return [
            self.etcd_bin,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster,
            # Ignored once the data dir exists, so restarts keep their data and membership.
            "--initial-cluster-state", "new",
            "--initial-cluster-token", self.cluster_token,
            "--logger", "zap",
            "--log-outputs", "stderr",
            *(self.tls.flags() if self.tls else ()),
            *self.extra_args,
        ]  # fmt: skip

    def start(self, wait: bool = True) -> None:
        """Start the member; with ``wait`` return only once ``/health`` says it serves."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._process.start()
        if wait:
            try:
                self.wait_healthy()
            except BaseException:
                self.stop()
                raise

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Wait for ``/health``: true only once the member has a leader and serves requests."""
        self._process.wait_ready(self.healthy, timeout, f"{self.name} at {self.client_url}/health")

    def healthy(self) -> bool:
        """HTTP health check: needs no gRPC client, so it also works where etcdctl is slow."""
        return etcd_healthy(self.client_url, self.tls.context() if self.tls else None)

    def stop(self, timeout: float = 10) -> None:
        self._process.stop(timeout)

    def restart(self) -> None:
        """Stop and start again on the same data dir and ports."""
        self.stop()
        self.start()

    def log_tail(self, n: int = 40) -> str:
        return self._process.log_tail(n)

    def etcdctl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``etcdctl`` (API v3) against this member; with ``check`` raise on failure."""
        flags = self.tls.etcdctl_flags() if self.tls else []
        return run_etcdctl(
            self.etcdctl_bin,
            [self.client_url],
            [*flags, *args],
            input=input,
            check=check,
            timeout=timeout,
        )


def etcd_healthy(client_url: str, context: ssl.SSLContext | None = None) -> bool:
    """True once the member at `client_url` has a leader and serves requests (``/health``)."""
    with urllib.request.urlopen(f"{client_url}/health", timeout=2, context=context) as response:
        body = json.load(response)
    return bool(body.get("health") == "true")


class EtcdCommand:
    """etcd started from a whole command line, as an operator would paste it (the steps a
    snapshot restore prints), logging to ``log_path``."""

    def __init__(self, argv: Sequence[str], client_url: str, log_path: Path) -> None:
        self.client_url = client_url
        self._process = ManagedProcess(Path(log_path).stem, argv, Path(log_path))

    def start(self, wait: bool = True) -> None:
        self._process.start()
        if wait:
            self.wait_healthy()

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        self._process.wait_ready(
            lambda: etcd_healthy(self.client_url), timeout, f"etcd at {self.client_url}/health"
        )

    def stop(self, timeout: float = 10) -> None:
        self._process.stop(timeout)


def run_etcdctl(
    etcdctl_bin: str,
    endpoints: Sequence[str],
    args: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``etcdctl`` with ``ETCDCTL_API=3``; a failure raises ``StackError`` with its stderr."""
    argv = [etcdctl_bin, f"--endpoints={','.join(endpoints)}", *args]
    result = subprocess.run(
        argv,
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, "ETCDCTL_API": "3"},
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise StackError(
            f"etcdctl {' '.join(args)} failed (exit {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    return result


class EtcdCluster:
    """Three (or ``size``) etcd members on 127.0.0.1, for quorum and fail-over tests."""

    def __init__(
        self, state_dir: Path, size: int = 3, tls: Sequence[ServerTLS] | None = None
    ) -> None:
        """`tls`: one `ServerTLS` per member (with peer files for TLS between members)."""
        if size < 1:
            raise ValueError("an etcd cluster needs at least one member")
        self.state_dir = Path(state_dir)
        ports = [(free_port(), free_port()) for _ in range(size)]
        names = [f"etcd{i}" for i in range(size)]
        member_tls = list(tls) if tls else [None] * size
        scheme = member_tls[0].peer_scheme if member_tls[0] else "http"
        initial_cluster = ",".join(
            f"{name}={scheme}://127.0.0.1:{peer}"
            for name, (_, peer) in zip(names, ports, strict=True)
        )
        token = f"etcdadmin-stack-{uuid.uuid4().hex[:12]}"
        self.members = [
            EtcdServer(
                self.state_dir,
                name,
                client_port=client,
                peer_port=peer,
                initial_cluster=initial_cluster,
                cluster_token=token,
                tls=member,
            )
            for name, (client, peer), member in zip(names, ports, member_tls, strict=True)
        ]

    @property
    def endpoints(self) -> list[str]:
        """``host:port`` of every member, in member order."""
        return [member.endpoint for member in self.members]

    @property
    def client_urls(self) -> list[str]:
        return [member.client_url for member in self.members]

    def start(self) -> None:
        """Start all members, then wait: none is healthy before a quorum has elected a leader."""
        try:
            for member in self.members:
                member.start(wait=False)
            for member in self.members:
                member.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop_member(self, i: int) -> None:
        self.members[i].stop()

    def start_member(self, i: int, wait: bool = True) -> None:
        """Bring member ``i`` back on its data dir; it rejoins the cluster it was part of."""
        self.members[i].start(wait=wait)

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def etcdctl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``etcdctl`` with every member as an endpoint."""
        first = self.members[0].tls
        return run_etcdctl(
            self.members[0].etcdctl_bin,
            self.client_urls,
            [*(first.etcdctl_flags() if first else []), *args],
            input=input,
            check=check,
            timeout=timeout,
        )
