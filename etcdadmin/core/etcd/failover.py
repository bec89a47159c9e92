"""The pyetcd client behind an `EtcdConnection`, and the policy that keeps calls going:
made on first use (authenticating with failover), renewed when its auth token expires, and
moved off a member that went away so the one retry goes to another member.

`EtcdConnection` (`etcdadmin.core.etcd.client`) inherits this; its calls all run through
`_call`, and its watches move off a stopped member with `leave_endpoint`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Self

import grpc
import pyetcd
from pyetcd import exceptions as pyetcd_errors

from etcdadmin.core.errors import ConnectionSettingsError, EtcdError, EtcdUnavailable
from etcdadmin.core.etcd.credentials import channel_credentials
from etcdadmin.core.etcd.settings import ConnectionSettings
from etcdadmin.core.etcd.translate import (
    Reach,
    member_went_away,
    token_needs_renewal,
    translate_error,
)

log = logging.getLogger(__name__)

# gRPC refuses messages over 4 MiB by default; a prefix read of ~30k keys with values already
# exceeds it (measured: 100k keys of 100 bytes fail with RESOURCE_EXHAUSTED). Pages are
# bounded by `client.PAGE_SIZE` keys, and one etcd value is at most 1.5 MiB by default, so
# this limit is generous without being unbounded.
MAX_MESSAGE_BYTES = 512 * 1024 * 1024


def leave_endpoint(client: pyetcd.MultiEndpointEtcd3Client, gone: bool) -> None:
    """Move `client` off the member it used when that member is `gone` (or pyetcd already
    marked it failed).

    pyetcd marks an endpoint failed only inside the methods it wraps: transactions, cluster
    and auth calls made on its stubs, and watch streams, went back to the stopped member
    forever (measured on three TLS members: every transaction refused with "Connection
    refused" while two members served). And it moves to another member only when the next
    call starts, if the failed one is still within `time_retry` (1 s here): a watch resumed
    later went back to the stopped member. So mark it failed, drop the stubs bound to its
    channel, and move now; the stopped member is tried again only if the new one fails.
    """
    endpoint = client.endpoint_in_use
    if endpoint is None:
        return
    if gone and not endpoint.is_failed():
        endpoint.fail()
        client._clear_old_stubs()
    if endpoint.is_failed():
        with contextlib.suppress(pyetcd_errors.NoServerAvailableError):
            client.channel  # noqa: B018 -- choosing the channel is what moves the client


class FailoverClient:
    """The client lifecycle and the retry policy of `EtcdConnection`, one cluster's worth.

    Thread-safe for concurrent unary calls (gRPC channels are).
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: pyetcd.MultiEndpointEtcd3Client | None = None
        self._retired: list[pyetcd.MultiEndpointEtcd3Client] = []
        self._closed = False

    def _make_client(self) -> pyetcd.MultiEndpointEtcd3Client:
        s = self.settings
        if s.user and not s.password:
            # pyetcd would raise a bare Exception, which no face can tell from a bug
            raise ConnectionSettingsError(
                f"etcd user {s.user!r} needs a password, and none was given"
            )
        creds = channel_credentials(s) if s.secure else None
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Server-streaming calls (etcd has one: Maintenance.Snapshot) read on the caller's
            # thread instead of through gRPC's channel-spin thread: one thread hand-off less
            # per message. A process streaming a 197 MB snapshot (6,005 messages) used 0.9-1.2 s
            # of CPU with it, 1.4-1.7 s without (0.35 s of both is its imports), on 2 cores
            # (grpcio 1.85). The value of
            # grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, spelled out:
            # importing grpc.experimental costs 11 ms of every command's start.
            ("grpc.experimental.SingleThreadedUnaryStream", 1),
        ]
        endpoints = []
        for item in s.endpoints:
            host, _, port = item.rpartition(":")
            # time_retry: how long a failed endpoint is skipped; pyetcd's 300 s default would
            # keep a restarted single member out of use for five minutes.
            endpoints.append(
                pyetcd.Endpoint(
                    host, int(port), secure=s.secure, creds=creds, time_retry=1.0, opts=options
                )
            )
        last: Exception | None = None
        # pyetcd authenticates in its constructor against a randomly chosen endpoint, without
        # failover: try again so that one dead member does not fail the whole connection.
        for _ in range(max(2, 2 * len(endpoints))):
            try:
                client = pyetcd.MultiEndpointEtcd3Client(
                    endpoints=endpoints,
                    timeout=s.timeout,
                    user=s.user,
                    password=s.password,
                    failover=True,
                )
                if not s.secure:
                    # gRPC refuses call credentials on a plaintext channel ("insufficient
                    # security level"); the token also travels in the metadata, which is
                    # what etcd reads, so drop the credentials object there.
                    client.call_credentials = None
                return client
            except grpc.RpcError as exc:
                last = exc
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise self._translate(exc, "authenticate") from None
        assert last is not None
        raise self._translate(last, "authenticate") from None

    def _get_client(self) -> pyetcd.MultiEndpointEtcd3Client:
        with self._lock:
            if self._closed:
                # a late call from a worker of a closed session must not open a new channel
                raise EtcdUnavailable(f"the connection to {self.settings.describe()} is closed")
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _retire_client(self, failed: pyetcd.MultiEndpointEtcd3Client) -> None:
        """Stop handing out `failed`; the next call authenticates afresh.

        The old client is not closed here: other threads (a watch, the status publisher) may
        be in the middle of a call on its channels, and gRPC crashes the process when a stub is
        built on a closed channel. Retired clients are closed by `close()`. Only the client
        that failed is retired, so two threads renewing at once make one new client, not two.
        """
        with self._lock:
            if self._client is failed:
                self._client = None
                self._retired.append(failed)

    def _translate(self, exc: BaseException, what: str, reach: Reach | None = None) -> EtcdError:
        return translate_error(exc, self.settings, what, reach)

    def _call(
        self, what: str, fn: Any, *args: Any, reach: Reach | None = None, **kwargs: Any
    ) -> Any:
        """Run one unary call; renew an expired auth token once; translate failures.

        `reach` says which keys the call needs, so that a refusal names them.
        """
        for attempt in (1, 2):
            client = self._get_client()
            try:
                return fn(client, *args, **kwargs)
            except ValueError as exc:
                # grpc: "Cannot invoke RPC on closed channel!" during close() from another thread
                raise EtcdUnavailable(f"the etcd connection was closed ({what}): {exc}") from None
            except (grpc.RpcError, pyetcd_errors.Etcd3Exception) as exc:
                if attempt == 1 and token_needs_renewal(exc):
                    if self.settings.user:
                        log.info("etcd auth token expired or outdated; authenticating again")
                        self._retire_client(client)
                    # A certificate's user has no token to renew: a member that had not yet
                    # applied the latest user or role change answers "revision of auth store
                    # is old" (seen right after a team was made, three members); the same
                    # call again passes.
                    continue
                leave_endpoint(client, member_went_away(exc))
                error = self._translate(exc, what, reach)
                if attempt == 1 and isinstance(error, EtcdUnavailable) and self._can_fail_over():
                    # pyetcd marked the endpoint failed; the retry goes to another member.
                    continue
                raise error from None
        raise AssertionError("unreachable")

    @property
    def endpoint_in_use(self) -> str | None:
        """`host:port` of the member calls go to now; None before the first call."""
        client = self._client
        endpoint = client.endpoint_in_use if client is not None else None
        return str(endpoint.netloc) if endpoint is not None else None

    def _can_fail_over(self) -> bool:
        client = self._client
        return client is not None and any(not ep.is_failed() for ep in client.endpoints.values())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            clients = [*self._retired, *([self._client] if self._client else [])]
            self._client = None
            self._retired.clear()
        for client in clients:
            client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
