"""Where etcd is and how to authenticate: what the agent's variables, the CLI's options and the
client's profiles all turn into.

The rules every face shares are checked here, before gRPC sees anything: endpoints are
`host:port`, `http://host:port` or `https://host:port`; an `https://` endpoint, or any TLS
file, means TLS (never plaintext); a client certificate comes with its key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from etcdadmin.core.errors import ConnectionSettingsError

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# A name or an IPv4 address, or an IPv6 address in brackets: what gRPC's `host:port` takes.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)\Z")


@dataclass(frozen=True)
class Endpoints:
    """A comma list of endpoints as given: `host:port` each, and whether any was written with
    `https://` (which asks for TLS, as etcdctl takes it)."""

    addresses: tuple[str, ...]
    https: bool


def parse_endpoint_list(text: str) -> Endpoints:
    """Accept `host:port`, a comma list, and `http(s)://` prefixes as etcdctl does; refuse any
    other scheme, a host gRPC cannot take (a space, an IPv6 address without brackets), a
    port that is not 1-65535 in ASCII digits, and an empty list (no silent default).

    An endpoint holding `user@` is refused without being repeated: it may hold a password,
    and every message that names an endpoint would then carry it.
    """
    addresses = []
    https = False
    for number, raw in enumerate(text.split(","), start=1):
        item = raw.strip()
        if "@" in item:
            raise ConnectionSettingsError(
                f"etcd endpoint {number} holds a user name (user@host): give the user and "
                "password as the connection's user and password, never in the endpoint"
            )
        scheme = _SCHEME.match(item)
        if scheme:
            name = scheme.group(1).lower()
            if name not in ("http", "https"):
                raise ConnectionSettingsError(
                    f"etcd endpoint {item!r} has the scheme {scheme.group(1)!r}: only http:// "
                    "and https:// (or host:port) are accepted"
                )
            https = https or name == "https"
            item = item[scheme.end() :]
        item = item.rstrip("/")
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not _HOST.match(host) or not (port.isascii() and port.isdigit()):
            raise ConnectionSettingsError(
                f"etcd endpoint {raw.strip()!r} is not host:port (for example 127.0.0.1:2379; "
                "an IPv6 address in brackets: [::1]:2379)"
            )
        if len(port) > 5 or not 0 < int(port) < 65536:
            raise ConnectionSettingsError(
                f"etcd endpoint {raw.strip()!r} has port {port}: ports run from 1 to 65535"
            )
        addresses.append(item)
    if not addresses:
        raise ConnectionSettingsError(
            "no etcd endpoint given: set host:port, or a comma list of them"
        )
    return Endpoints(tuple(addresses), https)


@dataclass(frozen=True)
class ConnectionSettings:
    """Where etcd is and how to authenticate. `password` is excluded from repr (it is a secret).

    `tls` asks for TLS without any TLS file (an `https://` endpoint): etcd's certificate is
    then checked against the public CAs grpcio ships (or the file GRPC_DEFAULT_SSL_ROOTS_FILE_PATH
    names), not the system's trust store as etcdctl's is.
    """

    endpoints: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    timeout: float = 5.0
    tls: bool = False

    def __post_init__(self) -> None:
        # gRPC's C core aborts the whole process on a certificate without its key (a failed
        # CHECK, exit 134): the GUI would vanish with it, so no such settings exist.
        if self.cert_file and not self.key_file:
            raise ConnectionSettingsError(
                "a client certificate (--cert) needs its private key (--key): give both, or neither"
            )
        if self.key_file and not self.cert_file:
            raise ConnectionSettingsError(
                "a private key (--key) needs its client certificate (--cert): give both, or neither"
            )

    @staticmethod
    def parse_endpoints(text: str) -> tuple[str, ...]:
        """The `host:port` of each endpoint of `text`, without whether TLS was asked for: to
        address one member of a connection whose settings are already made. Settings made from
        text a user wrote take `parse_endpoint_list`, which keeps it."""
        return parse_endpoint_list(text).addresses

    @property
    def secure(self) -> bool:
        """TLS: asked for by an `https://` endpoint or by any TLS file; never plaintext then."""
        return self.tls or bool(self.ca_file or self.cert_file or self.key_file)

    def describe(self) -> str:
        return ",".join(self.endpoints)
