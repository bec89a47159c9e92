"""Which etcd user a client certificate logs in as: its subject's common name (etcd takes the
user from the CN when `--client-cert-auth` is on and no password is given)."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID


def certificate_user(path: str | Path) -> str | None:
    """The CN of the PEM certificate at `path`; None when it cannot be read or has none."""
    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None
