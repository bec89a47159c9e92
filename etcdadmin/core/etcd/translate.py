"""Failures of etcd calls, in the operator's words: every gRPC or pyetcd error becomes one of the
project's exceptions (`etcdadmin.core.errors`) with a message that says what to do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from pyetcd import exceptions as pyetcd_errors

from etcdadmin.core.errors import (
    EtcdAuthFailed,
    EtcdError,
    EtcdPermissionDenied,
    EtcdUnavailable,
    RevisionCompacted,
)
from etcdadmin.core.etcd.settings import ConnectionSettings
from etcdadmin.core.etcd.tlsreason import tls_failure
from etcdadmin.core.tree.directories import OWN_SPACE


@dataclass(frozen=True)
class Reach:
    """What a call needs: `need` ("read" or "read-write") on `keys` (prefixes when `prefix`).

    Only used to word a refusal: etcd says "permission denied" and nothing more.
    """

    need: str
    keys: tuple[bytes, ...]
    prefix: bool = False

    @classmethod
    def of(cls, need: str, keys: Iterable[bytes], *, prefix: bool = False) -> Reach:
        return cls(need, tuple(keys), prefix)

    def describe(self) -> str:
        """`registry-production-1.0/`, or `the whole key space`, or several of them."""
        shown: list[str] = []
        for key in self.keys:
            if self.prefix and not key:
                text = "the whole key space"
            elif self.prefix:
                text = _text(key)
            else:
                top = _top_directory(key)
                # etcdadmin's own keys (agents' status, recipients) are granted one by one
                text = _text(top) if top and top != OWN_SPACE else f"key {_text(key)}"
            if text not in shown:
                shown.append(text)
        return ", ".join(shown) or "the keys asked for"


def _text(key: bytes) -> str:
    return key.decode("utf-8", errors="backslashreplace")


def _top_directory(key: bytes) -> bytes:
    """The top-level directory a key sits in: `a/` for `a/b/c`, `/a/` for `/a/b` (teams are
    granted directories, so that is what a refusal names)."""
    start = 1 if key.startswith(b"/") else 0
    slash = key.find(b"/", start)
    return key[: slash + 1] if slash >= 0 else b""


def who(settings: ConnectionSettings) -> str:
    """The etcd identity a connection acts as, for messages."""
    if settings.user:
        return f"user {settings.user!r}"
    if settings.cert_file:
        return "the user named by the client certificate's CN"
    return "this client (no user given)"


def token_needs_renewal(exc: BaseException) -> bool:
    """An expired simple token, or a token issued before a user or role change ("revision of
    auth store is old"): both are cured by authenticating again."""
    if not isinstance(exc, grpc.RpcError):
        return False
    details = exc.details() or ""
    return (
        exc.code() == grpc.StatusCode.UNAUTHENTICATED and "invalid auth token" in details
    ) or "revision of auth store is old" in details


# How gRPC reports a call or a watch whose member stopped under it (SIGTERM, etcd 3.4.23 over
# TLS, measured): INTERNAL or UNKNOWN with "Stream removed", or "No status received" (about
# one watch in six).
_STREAM_DROPPED_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
_STREAM_DROPPED = ("Stream removed", "No status received")


def member_went_away(exc: BaseException) -> bool:
    """The member a call or a watch went to is gone: unreachable, too slow, or its stream was
    dropped as it stopped. Another member may well answer."""
    if not isinstance(exc, grpc.RpcError):
        return False
    code = exc.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return True
    details = exc.details() or ""
    return code in _STREAM_DROPPED_CODES and any(text in details for text in _STREAM_DROPPED)


def permission_denied(
    settings: ConnectionSettings, what: str, reach: Reach | None
) -> EtcdPermissionDenied:
    """`user 'alice' lacks read-write on registry-production-1.0/`, with what to do next."""
    where = settings.describe()
    if reach is None:
        return EtcdPermissionDenied(
            f"etcd {who(settings)} may not {what} at {where}: ask an etcd administrator for "
            "a role that grants it"
        )
    grant = "--readwrite" if reach.need == "read-write" else "--read"
    return EtcdPermissionDenied(
        f"etcd {who(settings)} lacks {reach.need} on {reach.describe()} (to {what} at "
        f"{where}): ask an etcd administrator to grant it to one of the user's roles "
        f"(etcdadmin access grant ROLE DIR {grant})"
    )


def translate_error(
    exc: BaseException, settings: ConnectionSettings, what: str, reach: Reach | None = None
) -> EtcdError:
    """The project's exception, with what to do next, for any failure of a call to etcd."""
    where = settings.describe()
    if isinstance(exc, EtcdError):
        return exc
    handshake = tls_failure(exc, settings)
    if handshake is not None:
        return handshake
    tls = ""
    if settings.ca_file:
        tls = (
            ", and that its certificate is signed by the CA file (and accepts the client "
            "certificate)"
        )
    elif settings.secure:
        tls = ", and that it serves TLS"
    if isinstance(
        exc,
        pyetcd_errors.ConnectionFailedError
        | pyetcd_errors.ConnectionTimeoutError
        | pyetcd_errors.NoServerAvailableError,
    ):
        return EtcdUnavailable(
            f"etcd is unreachable at {where} (while trying to {what}): check that etcd runs "
            f"and that the endpoints are right{tls}; retrying may help"
        )
    if isinstance(exc, grpc.RpcError):
        code = exc.code()
        details = exc.details() or ""
        if member_went_away(exc):
            # The calls made on gRPC stubs directly (transactions, watches, reads into
            # columns) fail so where pyetcd's own methods raise ConnectionFailedError.
            reason = details or code.name
            advice = (
                "etcd may be overloaded or the network slow: retrying, or a longer timeout, "
                "may help"
                if code == grpc.StatusCode.DEADLINE_EXCEEDED
                else "check that etcd runs and that the endpoints are right; retrying may help"
            )
            return EtcdUnavailable(
                f"etcd at {where} did not answer (while trying to {what}): {reason}; {advice}"
            )
        if code == grpc.StatusCode.UNAUTHENTICATED or (
            code == grpc.StatusCode.INVALID_ARGUMENT and "auth" in details
        ):
            return EtcdAuthFailed(
                f"etcd at {where} refused the credentials of user {settings.user!r}: "
                f"{details}; check the user name and password"
            )
        if code == grpc.StatusCode.FAILED_PRECONDITION and "authentication is not enabled" in (
            details
        ):
            return EtcdAuthFailed(
                f"etcd at {where} has authentication disabled but a user was given: "
                "connect without a user, or enable auth on the cluster"
            )
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return permission_denied(settings, what, reach)
        if code == grpc.StatusCode.INVALID_ARGUMENT and "user name is empty" in details:
            return EtcdAuthFailed(
                f"etcd at {where} has authentication enabled and this connection gives no "
                "user: pass --user (or a client certificate whose CN is an etcd user)"
            )
        if code == grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
            return RevisionCompacted(
                f"the revision asked for is compacted on {where} ({what}); re-read instead",
                0,
            )
        return EtcdError(f"etcd at {where} refused to {what}: {details or code.name}")
    if isinstance(exc, pyetcd_errors.Etcd3Exception):
        return EtcdError(f"etcd at {where} failed to {what}: {type(exc).__name__}")
    return EtcdError(f"unexpected error talking to etcd at {where} ({what}): {exc!r}")
