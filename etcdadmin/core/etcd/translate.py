"""Failures of etcd calls, in the operator's words: every gRPC or pyetcd error becomes one of the
project's exceptions (`etcdadmin.core.errors`) with a message that says what to do."""

from __future__ import annotations

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


def token_needs_renewal(exc: BaseException) -> bool:
    """An expired simple token, or a token issued before a user or role change ("revision of
    auth store is old"): both are cured by authenticating again."""
    if not isinstance(exc, grpc.RpcError):
        return False
    details = exc.details() or ""
    return (
        exc.code() == grpc.StatusCode.UNAUTHENTICATED and "invalid auth token" in details
    ) or "revision of auth store is old" in details


def translate_error(exc: BaseException, settings: ConnectionSettings, what: str) -> EtcdError:
    """The project's exception, with what to do next, for any failure of a call to etcd."""
    where = settings.describe()
    if isinstance(exc, EtcdError):
        return exc
    if isinstance(
        exc,
        pyetcd_errors.ConnectionFailedError
        | pyetcd_errors.ConnectionTimeoutError
        | pyetcd_errors.NoServerAvailableError,
    ):
        tls = (
            ", and that its certificate is signed by the CA file (and accepts the client "
            "certificate)"
            if settings.secure
            else ""
        )
        return EtcdUnavailable(
            f"etcd is unreachable at {where} (while trying to {what}): check that etcd runs "
            f"and that the endpoints are right{tls}; retrying may help"
        )
    if isinstance(exc, grpc.RpcError):
        code = exc.code()
        details = exc.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE or code == grpc.StatusCode.DEADLINE_EXCEEDED:
            reason = details or code.name
            return EtcdUnavailable(
                f"etcd at {where} did not answer (while trying to {what}): {reason}"
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
            return EtcdPermissionDenied(
                f"etcd user {settings.user!r} may not {what} at {where}: "
                "ask for a role that grants it"
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
