"""A throw-away certificate authority for one etcd cluster (`etcdadmin certs init`).

It makes, with `cryptography`: a CA, per member a server certificate (client port) and a peer
certificate (member to member), and client certificates whose common name is an etcd user (etcd
`--client-cert-auth` takes the user from the CN when no password is given). Keys are ECDSA
P-256 and written mode 0600; certificates are public (0644). Nothing is overwritten: a directory
that already holds the authority's files is refused, so a second run never invalidates the
certificates a running cluster uses.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etcdadmin.core.errors import CertificateError
from etcdadmin.core.private_file import write_private

log = logging.getLogger(__name__)

DEFAULT_HOSTS = ("127.0.0.1", "localhost")
DEFAULT_VALIDITY = datetime.timedelta(days=365)
# Clocks of the machines that check a certificate are rarely exactly in step with the one that
# made it: a certificate valid only from "now" is refused for a few seconds elsewhere.
CLOCK_SKEW = datetime.timedelta(minutes=5)

CA_CERT, CA_KEY = "ca.crt", "ca.key"


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class MemberCertificates:
    """One member's files: `server` for its client port, `peer` for the other members."""

    name: str
    server: KeyPair
    peer: KeyPair


@dataclass(frozen=True)
class ClusterCertificates:
    directory: Path
    ca: Path
    ca_key: Path
    members: tuple[MemberCertificates, ...]
    client: KeyPair
    client_user: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def parse_hosts(text: str | Sequence[str]) -> tuple[x509.GeneralName, ...]:
    """Subject alternative names from `127.0.0.1,localhost`: IP addresses and DNS names."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names: list[x509.GeneralName] = []
    for raw in items:
        host = raw.strip()
        if not host:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            if not all(part.replace("-", "").isalnum() for part in host.split(".") if part):
                raise CertificateError(
                    f"{host!r} is neither an IP address nor a host name: list the names clients "
                    "use to reach etcd, e.g. 127.0.0.1,localhost,etcd1.example.com"
                ) from None
            names.append(x509.DNSName(host))
    if not names:
        raise CertificateError("no host given: list at least one, e.g. 127.0.0.1,localhost")
    return tuple(names)


class CertificateAuthority:
    """A CA certificate and its key, issuing the cluster's certificates."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert = cert
        self.key = key

    @classmethod
    def create(
        cls,
        common_name: str = "etcdadmin cluster CA",
        *,
        valid_for: datetime.timedelta = DEFAULT_VALIDITY,
    ) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + valid_for)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """The CA that `certs init` wrote into `directory` (to issue more certificates)."""
        try:
            cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
            key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
        except (OSError, ValueError) as exc:
            raise CertificateError(
                f"cannot read the CA in {directory} ({CA_CERT}, {CA_KEY}): {exc}; run "
                "`etcdadmin certs init` there first"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CertificateError(f"{directory / CA_KEY} is not an ECDSA key made by certs init")
        return cls(cert, key)

    def issue(
        self,
        common_name: str,
        *,
        hosts: Sequence[x509.GeneralName] = (),
        server: bool = False,
        client: bool = False,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A certificate for `common_name`, valid for `hosts` (server) and/or as a client.

        `not_before`/`not_after` default to now (less the clock skew) and a year on; tests
        backdate them to make an expired certificate.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - CLOCK_SKEW)
            .not_valid_after(
                min(not_after or now + DEFAULT_VALIDITY, self.cert.not_valid_after_utc)
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(hosts)), False)
        return builder.sign(self.key, hashes.SHA256()), key

    def write_ca(self, directory: Path) -> KeyPair:
        return write_pair(directory, "ca", self.cert, self.key)


def write_pair(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> KeyPair:
    """`stem.crt` (0644) and `stem.key` (0600) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(key_path, pem.decode("ascii"))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cert_path.chmod(0o644)
    return KeyPair(cert_path, key_path)


def init_cluster_certificates(
    directory: Path,
    *,
    hosts: str | Sequence[str] = DEFAULT_HOSTS,
    members: int = 1,
    client_user: str = "root",
) -> ClusterCertificates:
    """A new CA in `directory` and every certificate a cluster of `members` members needs.

    Every member's certificates name all `hosts`: members on one machine (distinct ports) share
    its names; on several machines list every member's name, so one CA serves them all.
    """
    if not 1 <= members <= 9:
        raise CertificateError(f"--members {members}: an etcd cluster has 1 to 9 members")
    if not client_user or any(c in client_user for c in "/:, "):
        raise CertificateError(
            f"client user {client_user!r} is not an etcd user name (no '/', ':', ',' or space)"
        )
    sans = parse_hosts(hosts)
    if (directory / CA_CERT).exists() or (directory / CA_KEY).exists():
        raise CertificateError(
            f"{directory} already holds a CA ({CA_CERT}): certificates made from a new one would "
            "not be trusted by the running cluster; choose an empty directory"
        )
    authority = CertificateAuthority.create()
    ca = authority.write_ca(directory)
    made = []
    for index in range(members):
        name = f"etcd{index}"
        server = write_pair(
            directory,
            f"{name}-server",
            *authority.issue(name, hosts=sans, server=True),
        )
        # A member dials the others with its peer certificate and serves them with it: both
        # usages.
        peer = write_pair(
            directory, f"{name}-peer", *authority.issue(name, hosts=sans, server=True, client=True)
        )
        made.append(MemberCertificates(name, server, peer))
    client = write_pair(
        directory, f"client-{client_user}", *authority.issue(client_user, client=True)
    )
    log.info("certificates made for %d member(s) and one client", members)
    return ClusterCertificates(directory, ca.cert, ca.key, tuple(made), client, client_user)


def etcd_flags(certs: ClusterCertificates, member: MemberCertificates) -> list[str]:
    """The flags that make one etcd member serve clients and peers with these certificates.

    Both sides require certificates signed by the CA (`--client-cert-auth`,
    `--peer-client-cert-auth`): a client without one is refused at the handshake.
    """
    return [
        "--cert-file", str(member.server.cert),
        "--key-file", str(member.server.key),
        "--trusted-ca-file", str(certs.ca),
        "--client-cert-auth",
        "--peer-cert-file", str(member.peer.cert),
        "--peer-key-file", str(member.peer.key),
        "--peer-trusted-ca-file", str(certs.ca),
        "--peer-client-cert-auth",
    ]  # fmt: skip
