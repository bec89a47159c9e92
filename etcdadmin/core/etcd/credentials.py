"""The TLS credentials of a connection's gRPC channels, from its CA, certificate and key files.

Made here rather than by pyetcd's `get_secure_creds`, which requires a CA file: without one
(an `https://` endpoint alone, as etcdctl allows) gRPC checks etcd's certificate against its
default roots, the public CAs grpcio ships (or the file GRPC_DEFAULT_SSL_ROOTS_FILE_PATH
names). A file that is not PEM at all is named here: gRPC would only fail in every handshake,
with "Failed to create security handshaker" and no word of which file.
"""

from __future__ import annotations

import grpc

from etcdadmin.core.errors import EtcdTLSError
from etcdadmin.core.etcd.settings import ConnectionSettings


def _read(path: str, option: str, kind: str, marker: bytes) -> bytes:
    """The bytes of `path`, refused when they hold no PEM block of `kind` (`marker`)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise EtcdTLSError(
            f"cannot read a TLS file ({exc.filename}): {exc.strerror}; "
            "check the CA, certificate and key paths"
        ) from None
    if marker not in data:
        raise EtcdTLSError(
            f"{path} ({option}) holds no PEM {kind}: give the {kind} file, PEM encoded"
        )
    return data


def channel_credentials(settings: ConnectionSettings) -> grpc.ChannelCredentials:
    """TLS credentials for `settings` (which must be `secure`)."""
    certificate = b"-----BEGIN CERTIFICATE-----"
    root = (
        _read(settings.ca_file, "--cacert", "CA certificate", certificate)
        if settings.ca_file
        else None
    )
    key = chain = None
    if settings.cert_file and settings.key_file:  # one without the other: see ConnectionSettings
        chain = _read(settings.cert_file, "--cert", "client certificate", certificate)
        key = _read(settings.key_file, "--key", "private key", b"PRIVATE KEY-----")
    return grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=chain
    )
