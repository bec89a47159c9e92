"""Where etcd is and how to authenticate: what the agent's variables, the CLI's options and the
client's profiles all turn into."""

from __future__ import annotations

from dataclasses import dataclass, field

from etcdadmin.core.errors import EtcdError


@dataclass(frozen=True)
class ConnectionSettings:
    """Where etcd is and how to authenticate. `password` is excluded from repr (it is a secret)."""

    endpoints: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    timeout: float = 5.0

    @staticmethod
    def parse_endpoints(text: str) -> tuple[str, ...]:
        """Accept `host:port`, a comma list, and `http(s)://` prefixes as etcdctl does."""
        endpoints = []
        for raw in text.split(","):
            item = raw.strip()
            for scheme in ("http://", "https://"):
                if item.startswith(scheme):
                    item = item[len(scheme) :]
            item = item.rstrip("/")
            if not item:
                continue
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise EtcdError(
                    f"etcd endpoint {raw.strip()!r} is not host:port (for example 127.0.0.1:2379)"
                )
            endpoints.append(item)
        if not endpoints:
            raise EtcdError("no etcd endpoint given: set host:port, or a comma list of them")
        return tuple(endpoints)

    @property
    def secure(self) -> bool:
        return self.ca_file is not None

    def describe(self) -> str:
        return ",".join(self.endpoints)
