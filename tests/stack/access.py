"""etcd with auth for access tests, set up with etcdctl (the reference client), so that what
etcdadmin's access code is tested against is not made by that same code."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.stack.etcd import EtcdServer

ROOT_PASSWORD = "root-pw-for-tests"


@dataclass(frozen=True)
class SecuredEtcd:
    """An etcd with auth enabled and a root user (password `ROOT_PASSWORD`)."""

    server: EtcdServer

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def settings(
        self, user: str | None = "root", password: str | None = None
    ) -> ConnectionSettings:
        if user == "root" and password is None:
            password = ROOT_PASSWORD
        return ConnectionSettings((self.server.endpoint,), user=user, password=password, timeout=5)

    def connect(self, user: str = "root", password: str | None = None) -> EtcdConnection:
        return EtcdConnection(self.settings(user, password))

    def etcdctl_as(
        self, user: str, password: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.server.etcdctl(f"--user={user}:{password}", *args, check=check)

    def root(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.etcdctl_as("root", ROOT_PASSWORD, *args)


def enable_auth_with_etcdctl(server: EtcdServer) -> SecuredEtcd:
    server.etcdctl("user", "add", f"root:{ROOT_PASSWORD}")
    server.etcdctl("user", "grant-role", "root", "root")
    server.etcdctl("auth", "enable")
    return SecuredEtcd(server)


@contextmanager
def secured_etcd(state_dir: Path) -> Iterator[SecuredEtcd]:
    """An etcd member of its own with auth on; stopped at the end."""
    server = EtcdServer(state_dir, f"auth-{uuid.uuid4().hex[:6]}")
    server.start()
    try:
        yield enable_auth_with_etcdctl(server)
    finally:
        server.stop()
