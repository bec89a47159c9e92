"""The secure setup of the README's "Production setup", for the demo and the tests: three etcd
members with TLS for clients and peers (certificates from the core's `certs` authority), auth
on, and one team whose operator and agent log in as their own users.

Everything is made with the product's own functions (`init_cluster_certificates`,
`enable_auth`, `create_team`), so the demo and the tests exercise what an operator runs; what
it made is then checked with `etcdctl`, the reference client.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from etcdadmin.core.access.enabling import enable_auth
from etcdadmin.core.access.teams import Team, create_team
from etcdadmin.core.certs.authority import (
    CertificateAuthority,
    ClusterCertificates,
    KeyPair,
    init_cluster_certificates,
    write_pair,
)
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.private_file import write_private
from tests.stack.etcd import EtcdCluster, ServerTLS

TEAM, DIRECTORY = "registry", "registry-test"
OPERATOR, AGENT = "alice", "agent-1"


@dataclass(frozen=True)
class SecureCluster:
    """A running three-member TLS cluster with auth on and team `TEAM` on `DIRECTORY`.

    `passwords` holds one file per user (root, the operator, the agent), mode 0600; each user
    also has a client certificate whose CN is its name (`client(user)`), which etcd's
    `--client-cert-auth` accepts instead of a password.
    """

    cluster: EtcdCluster
    certs: ClusterCertificates
    passwords: Path
    team: Team

    @property
    def endpoints(self) -> str:
        """`host:port,host:port,...` as `--endpoints` and `ETCD_HOST` take them."""
        return ",".join(self.cluster.endpoints)

    @property
    def ca(self) -> Path:
        return self.certs.ca

    def client(self, user: str) -> KeyPair:
        return KeyPair(
            self.certs.directory / f"client-{user}.crt",
            self.certs.directory / f"client-{user}.key",
        )

    def password_file(self, user: str) -> Path:
        return self.passwords / user

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()

    def settings(self, user: str, *, with_password: bool = False) -> ConnectionSettings:
        """Settings for `user` over TLS with its own certificate; with `with_password` it also
        logs in with its password (a token), as a client without a certificate CN would."""
        pair = self.client(user)
        return ConnectionSettings(
            tuple(self.cluster.endpoints),
            user=user if with_password else None,
            password=self.password(user) if with_password else None,
            ca_file=str(self.ca),
            cert_file=str(pair.cert),
            key_file=str(pair.key),
            timeout=5,
        )

    def connect(self, user: str = "root", *, with_password: bool = False) -> EtcdConnection:
        return EtcdConnection(self.settings(user, with_password=with_password))

    def etcdctl(self, *args: str, check: bool = True) -> str:
        """`etcdctl` as root (the stack's client certificate has CN root), all members."""
        return self.cluster.etcdctl(*args, check=check).stdout

    def etcdctl_as(self, user: str, *args: str, check: bool = True) -> str:
        """`etcdctl` with `user`'s certificate (its CN is the user), all members."""
        pair = self.client(user)
        return self.cluster.etcdctl(
            f"--cert={pair.cert}", f"--key={pair.key}", *args, check=check
        ).stdout

    def stop(self) -> None:
        self.cluster.stop()


def _new_password() -> str:
    return secrets.token_urlsafe(18)


def start_secure_cluster(state_dir: Path, members: int = 3) -> SecureCluster:
    """Certificates, `members` TLS members, auth on, team `TEAM` with `OPERATOR` and `AGENT`.

    On any failure the members already started are stopped before the error propagates.
    """
    certs = init_cluster_certificates(state_dir / "pki", members=members, client_user="root")
    authority = CertificateAuthority.load(certs.directory)
    for user in (OPERATOR, AGENT):
        write_pair(certs.directory, f"client-{user}", *authority.issue(user, client=True))
    passwords = state_dir / "passwords"
    passwords.mkdir(mode=0o700, parents=True, exist_ok=True)
    for user in ("root", OPERATOR, AGENT):
        write_private(passwords / user, _new_password() + "\n")
    tls = [
        ServerTLS(
            certs.ca,
            member.server.cert,
            member.server.key,
            certs.client.cert,
            certs.client.key,
            peer_cert=member.peer.cert,
            peer_key=member.peer.key,
        )
        for member in certs.members
    ]
    cluster = EtcdCluster(state_dir / "etcd", size=members, tls=tls)
    cluster.start()
    try:
        root_pair = certs.client
        admin = ConnectionSettings(
            tuple(cluster.endpoints),
            ca_file=str(certs.ca),
            cert_file=str(root_pair.cert),
            key_file=str(root_pair.key),
            timeout=5,
        )
        enable_auth(admin, (passwords / "root").read_text().strip())
        with EtcdConnection(admin) as root:
            team = create_team(
                root,
                TEAM,
                DIRECTORY,
                operators=[OPERATOR],
                agents=[AGENT],
                passwords={u: (passwords / u).read_text().strip() for u in (OPERATOR, AGENT)},
            )
    except BaseException:
        cluster.stop()
        raise
    return SecureCluster(cluster, certs, passwords, team)
