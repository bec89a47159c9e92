"""Why a TLS connection to etcd failed, in the operator's words.

gRPC reports every failed handshake as UNAVAILABLE; the reason is only in its details text
(measured with grpcio 1.85 against etcd 3.4.23), and pyetcd drops even that for unary calls
(it raises a bare ConnectionFailedError whose context is the gRPC error). This module reads the
reason back out so that an untrusted CA (or none given), an expired certificate, a wrong host
name, a refused client certificate, a key that does not match its certificate, a plaintext
client on a TLS-only port and a TLS client on a plaintext one each get their own message.
"""

from __future__ import annotations

import socket

import grpc

from etcdadmin.core.errors import EtcdTLSError
from etcdadmin.core.etcd.settings import ConnectionSettings


def grpc_details(exc: BaseException | None) -> str:
    """The details text of `exc` or of the gRPC error it was raised from."""
    seen = 0
    while exc is not None and seen < 4:
        if isinstance(exc, grpc.RpcError):
            details = getattr(exc, "details", None)
            return (details() if callable(details) else "") or ""
        exc, seen = exc.__context__, seen + 1
    return ""


def tls_failure(exc: BaseException, settings: ConnectionSettings) -> EtcdTLSError | None:
    """A precise `EtcdTLSError` when `exc` is a failed handshake, else None."""
    details = grpc_details(exc)
    where = settings.describe()
    if settings.secure:
        ca = settings.ca_file
        if "certificate has expired" in details or "certificate is not yet valid" in details:
            return EtcdTLSError(
                f"the certificate etcd at {where} presented has expired (or is not valid yet): "
                "renew etcd's certificates (etcdadmin certs init makes new ones) and check "
                "that this machine's clock is right"
            )
        if "Hostname Verification" in details or "not in peer certificate" in details:
            return EtcdTLSError(
                f"etcd's certificate does not name the host in {where}: connect with a name "
                "the certificate lists, or issue it again with that name (certs init --hosts)"
            )
        if "CERTIFICATE_VERIFY_FAILED" in details and ca is None:
            return EtcdTLSError(
                f"etcd at {where} presented a certificate that is not trusted: no --cacert was "
                "given, so only public CAs are; pass the CA that signed etcd's certificate "
                "with --cacert"
            )
        if "CERTIFICATE_VERIFY_FAILED" in details:
            return EtcdTLSError(
                f"etcd at {where} presented a certificate that the CA file {ca} did not sign "
                "(untrusted CA): pass the CA that signed etcd's certificate with --cacert"
            )
        if "Failed to create security handshaker" in details:
            return _unusable_files(settings)
        if "TSI_DATA_CORRUPTED" in details or "BAD_CERTIFICATE" in details:
            return EtcdTLSError(
                f"etcd at {where} refused this client's certificate (none given, expired, or "
                "signed by a CA it does not trust): pass --cert and --key signed by the CA "
                "etcd trusts (--trusted-ca-file)"
            )
        if "Handshake read failed" in details and not any(
            _speaks_tls(e, settings.timeout) for e in settings.endpoints
        ):
            return EtcdTLSError(
                f"etcd at {where} does not speak TLS, and this connection asks for it (an "
                "https:// endpoint, or TLS files): check the endpoint; a plaintext etcd takes "
                "http://host:port and no TLS files"
            )
        return None
    if "Socket closed" in details and any(
        _speaks_tls(e, settings.timeout) for e in settings.endpoints
    ):
        return EtcdTLSError(
            f"etcd at {where} only accepts TLS and this connection is plaintext: pass the CA "
            "file with --cacert (and a client certificate with --cert and --key if etcd asks "
            "for one)"
        )
    return None


def _unusable_files(settings: ConnectionSettings) -> EtcdTLSError:
    """gRPC could not load the TLS files it was given (each holds a PEM block: `credentials`
    checked that), and says no more than that."""
    if settings.cert_file:
        return EtcdTLSError(
            f"the private key {settings.key_file} (--key) does not match the client "
            f"certificate {settings.cert_file} (--cert), or one of them (or the CA file) is "
            "damaged: pass the key the certificate was issued for"
        )
    if settings.ca_file:
        return EtcdTLSError(
            f"the CA file {settings.ca_file} (--cacert) cannot be loaded: check that it holds "
            "PEM CA certificates"
        )
    return EtcdTLSError(
        "gRPC could not load its trusted CAs for this https:// connection (its own list, or the "
        "file GRPC_DEFAULT_SSL_ROOTS_FILE_PATH names): pass etcd's CA file with --cacert"
    )


def _speaks_tls(endpoint: str, timeout: float) -> bool:
    """Whether `endpoint` answers a TLS handshake (its certificate is not checked: this only
    tells a TLS port from a closed or plaintext one)."""
    # Imported here: only a connection that failed needs it, and it took 8.6 ms of every
    # command's start (`python -X importtime`).
    import ssl

    host, _, port = endpoint.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(
                (host.strip("[]"), int(port)), timeout=min(timeout, 3.0)
            ) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return tls.version() is not None
    except ssl.SSLError as exc:
        # a server that wants a client certificate may end the handshake with an alert: that
        # is still TLS speaking
        return "ALERT" in exc.reason if exc.reason else False
    except (OSError, ValueError):
        return False
