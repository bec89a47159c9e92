"""The one way into etcd: reads pinned at a revision, writes, transactions, leases, watches.

Everyone else (agent, CLI, desktop client) goes through `EtcdConnection`; nothing else opens a
gRPC channel. It wraps `pyetcd` (etcd-sdk-python) for unary calls and translates every failure
into the project's exceptions (`etcdadmin.core.errors`) with a message an operator can act on.

Watches are created here and iterated through `etcdadmin.core.etcd.watch.WatchStream`.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import pyetcd
from pyetcd import etcdrpc
from pyetcd import exceptions as pyetcd_errors

from etcdadmin.core.errors import EtcdError, EtcdTLSError, EtcdUnavailable
from etcdadmin.core.etcd.auth import AuthCalls
from etcdadmin.core.etcd.cluster import ClusterCalls
from etcdadmin.core.etcd.keyvalue import KeyValue, prefix_end
from etcdadmin.core.etcd.records import (
    Compare,
    Page,
    Snapshot,
    TxnOp,
    TxnResult,
)
from etcdadmin.core.etcd.settings import ConnectionSettings
from etcdadmin.core.etcd.translate import (
    Reach,
    member_went_away,
    permission_denied,
    token_needs_renewal,
    translate_error,
)
from etcdadmin.core.etcd.watch import WatchStream

log = logging.getLogger(__name__)

# gRPC refuses messages over 4 MiB by default; a prefix read of ~30k keys with values already
# exceeds it (measured: 100k keys of 100 bytes fail with RESOURCE_EXHAUSTED). Pages are
# bounded by PAGE_SIZE keys, and one etcd value is at most 1.5 MiB by default, so this limit
# is generous without being unbounded.
MAX_MESSAGE_BYTES = 512 * 1024 * 1024

# etcd counts every key in [start, range_end) on every Range call, even with a limit, so paging
# costs O(N^2 / page). Measured with 1M keys: pages of 10k took 16 s, pages of 100k 2.7 s against
# 2.1 s for one unpaged call (etcd 3.4.23, 2 cores). 100k keeps reads linear in practice.
PAGE_SIZE = 100_000

# etcd's gRPC metadata for clientv3.WithRequireLeader: a member cut off from its leader cancels
# the watch instead of silently sending nothing.
_REQUIRE_LEADER = ("hasleader", "true")


_COMPARE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}


def _key_bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode("utf-8")


def _leave_endpoint(client: pyetcd.MultiEndpointEtcd3Client, gone: bool) -> None:
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


class EtcdConnection(ClusterCalls, AuthCalls):
    """A connection to one etcd cluster, failing over between its endpoints.

    Thread-safe for concurrent unary calls (gRPC channels are); each watch has its own stream.
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: pyetcd.MultiEndpointEtcd3Client | None = None
        self._retired: list[pyetcd.MultiEndpointEtcd3Client] = []
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------------

    def _make_client(self) -> pyetcd.MultiEndpointEtcd3Client:
        s = self.settings
        creds = None
        if s.secure:
            try:
                creds = pyetcd.MultiEndpointEtcd3Client.get_secure_creds(
                    s.ca_file, s.key_file, s.cert_file
                )
            except OSError as exc:
                raise EtcdTLSError(
                    f"cannot read a TLS file ({exc.filename}): {exc.strerror}; "
                    "check the CA, certificate and key paths"
                ) from None
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
                _leave_endpoint(client, member_went_away(exc))
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

    def __enter__(self) -> EtcdConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ------------------------------------------------------------------------------

    def header(self, prefix: str | bytes = b"") -> tuple[int, int]:
        """The cluster's current (revision, cluster_id), with a one-key probe.

        The probe reads inside `prefix` so that a user whose role covers only that prefix may
        make it; keep the prefix narrow, as etcd counts every key in the probed range.
        """
        start = _key_bytes(prefix) or b"\0"
        end = prefix_end(_key_bytes(prefix))
        resp = self._call(
            "read the current revision",
            lambda c: c.get_range_response(start, end, keys_only=True, limit=1),
            reach=Reach.of("read", [_key_bytes(prefix)], prefix=True),
        )
        return resp.header.revision, resp.header.cluster_id

    def get(self, key: str | bytes, *, revision: int | None = None) -> KeyValue | None:
        """One key, now or as it was at `revision` (None when absent then)."""
        resp = self._call(
            "read a key",
            lambda c: c.get_response(_key_bytes(key), revision=revision),
            reach=Reach.of("read", [_key_bytes(key)]),
        )
        return KeyValue.from_proto(resp.kvs[0]) if resp.kvs else None

    def read_prefix(
        self,
        prefix: str | bytes,
        *,
        revision: int | None = None,
        keys_only: bool = False,
        page_size: int = PAGE_SIZE,
    ) -> Snapshot:
        """Every key under `prefix`, paged, all pages pinned at the first page's revision.

        An empty prefix means the whole key space.
        """
        items: list[KeyValue] = []
        pinned, cluster_id = 0, 0
        for page in self.iter_pages(
            prefix, revision=revision, keys_only=keys_only, page_size=page_size
        ):
            items.extend(page.items)
            pinned, cluster_id = page.revision, page.cluster_id
        return Snapshot(revision=pinned, cluster_id=cluster_id, items=tuple(items))

    def iter_pages(
        self,
        prefix: str | bytes,
        *,
        revision: int | None = None,
        keys_only: bool = False,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[Snapshot]:
        """The pages of a prefix read, as they arrive, all at one revision (the first page's)."""
        for pinned, resp in self._range_pages(prefix, revision, keys_only, page_size):
            items = tuple(KeyValue.from_proto(kv) for kv in resp.kvs)
            yield Snapshot(revision=pinned, cluster_id=resp.header.cluster_id, items=items)

    def iter_plain_pages(
        self, prefix: str | bytes, *, keys_only: bool = True, page_size: int = PAGE_SIZE
    ) -> Iterator[Page]:
        """The pages of a prefix read as plain bytes (see `Page`), all at the first page's
        revision."""
        for pinned, resp in self._range_pages(prefix, None, keys_only, page_size):
            keys = [kv.key for kv in resp.kvs]
            values = None if keys_only else [kv.value for kv in resp.kvs]
            yield Page(pinned, int(resp.header.cluster_id), keys, values)

    def _range_pages(
        self, prefix: str | bytes, revision: int | None, keys_only: bool, page_size: int
    ) -> Iterator[tuple[int, Any]]:
        """Raw Range responses over a prefix, paged, pinned at the first page's revision."""
        start = _key_bytes(prefix)
        end = prefix_end(start)
        reach = Reach.of("read", [start], prefix=True)
        if not start:
            start = b"\0"
        pinned = revision
        while True:
            resp = self._call(
                "read keys",
                lambda c, s=start, r=pinned: c.get_range_response(
                    s, end, limit=page_size, revision=r, keys_only=keys_only
                ),
                reach=reach,
            )
            if pinned is None:
                pinned = int(resp.header.revision)
            yield pinned, resp
            if not resp.more or not resp.kvs:
                return
            start = resp.kvs[-1].key + b"\0"

    # -- writes -----------------------------------------------------------------------------

    def put(self, key: str | bytes, value: str | bytes, lease: int | None = None) -> int:
        """Write one key; returns the revision of the write."""
        resp = self._call(
            "write a key",
            lambda c: c.put(_key_bytes(key), _key_bytes(value), lease=lease),
            reach=Reach.of("read-write", [_key_bytes(key)]),
        )
        return int(resp.header.revision)

    def delete(self, key: str | bytes) -> bool:
        return bool(
            self._call(
                "delete a key",
                lambda c: c.delete(_key_bytes(key)),
                reach=Reach.of("read-write", [_key_bytes(key)]),
            )
        )

    def delete_prefix(self, prefix: str | bytes) -> int:
        resp = self._call(
            "delete keys",
            lambda c: c.delete_prefix(_key_bytes(prefix)),
            reach=Reach.of("read-write", [_key_bytes(prefix)], prefix=True),
        )
        return int(resp.deleted)

    def grant_lease(self, ttl: int) -> int:
        return int(self._call("grant a lease", lambda c: c.lease(ttl)).id)

    def refresh_lease(self, lease_id: int) -> int:
        """Keep a lease alive; returns its remaining TTL, 0 when it has already expired."""
        responses = self._call("refresh a lease", lambda c: list(c.refresh_lease(lease_id)))
        return int(responses[0].TTL) if responses else 0

    def lease_ttl(self, lease_id: int) -> int:
        """Seconds left on a lease; -1 when it has expired or never existed."""
        info = self._call("read a lease", lambda c: c.get_lease_info(lease_id))
        return int(info.TTL)

    def revoke_lease(self, lease_id: int) -> None:
        self._call("revoke a lease", lambda c: c.revoke_lease(lease_id))

    def txn(
        self,
        compares: Sequence[Compare],
        success: Sequence[TxnOp],
        failure_reads: Sequence[bytes] = (),
    ) -> TxnResult:
        """One etcd transaction: `success` runs only if every compare holds.

        When it does not, `failure_reads` are read in the same transaction, so a conflict can
        be shown with the values that won, as of the same revision.
        """
        client = self._get_client()
        txs = client.transactions
        built = []
        for cmp in compares:
            target = {"mod": txs.mod, "create": txs.create, "version": txs.version}.get(
                cmp.target, txs.value
            )(cmp.key, range_end=cmp.range_end)
            # pyetcd's compare objects record the operator by mutating themselves: apply
            # exactly one (a dict of all four would leave the last one applied).
            built.append(_COMPARE_OPS[cmp.op](target, cmp.value))
        ops: list[Any] = []
        for op in success:
            if op.kind == "put":
                ops.append(txs.put(op.key, op.value, lease=op.lease or None))
            elif op.kind == "delete":
                ops.append(txs.delete(op.key))
            else:
                ops.append(txs.delete(op.key, range_end=prefix_end(op.key)))
        reads = [txs.get(key) for key in failure_reads]

        def run(c: Any) -> Any:
            compare_msgs = [b.build_message() for b in built]
            request = etcdrpc.TxnRequest(
                compare=compare_msgs,
                success=c._ops_to_requests(ops),
                failure=c._ops_to_requests(reads),
            )
            return c.kvstub.Txn(
                request, c.timeout, credentials=c.call_credentials, metadata=c.metadata
            )

        written = [op.key for op in success] + [cmp.key for cmp in compares]
        resp = self._call("apply a transaction", run, reach=Reach.of("read-write", written))
        found: dict[bytes, KeyValue | None] = {key: None for key in failure_reads}
        if not resp.succeeded:
            for item in resp.responses:
                for kv in item.response_range.kvs:
                    found[kv.key] = KeyValue.from_proto(kv)
        return TxnResult(bool(resp.succeeded), int(resp.header.revision), found)

    # -- watch ------------------------------------------------------------------------------

    def watch_prefix(
        self, prefix: str | bytes, start_revision: int, *, require_leader: bool = True
    ) -> WatchStream:
        """Watch every key under `prefix` from `start_revision` on (inclusive)."""
        start = _key_bytes(prefix)
        return self._watch(start, prefix_end(start), start_revision, require_leader)

    def watch_key(self, key: str | bytes, start_revision: int) -> WatchStream:
        """Watch one key from `start_revision` on: replays its history, then follows it."""
        return self._watch(_key_bytes(key), b"", start_revision, True)

    def _watch(
        self, start: bytes, end: bytes, start_revision: int, require_leader: bool
    ) -> WatchStream:
        client = self._get_client()
        try:
            channel = client.channel
        except pyetcd_errors.Etcd3Exception as exc:
            raise self._translate(exc, "watch keys") from None
        metadata: list[tuple[str, str]] = list(client.metadata or ())
        if require_leader:
            metadata.append(_REQUIRE_LEADER)
        request = etcdrpc.WatchRequest(
            create_request=etcdrpc.WatchCreateRequest(
                key=start or b"\0",
                range_end=end or None,
                start_revision=start_revision,
                progress_notify=True,
            )
        )
        reach = Reach.of("read", [start], prefix=bool(end))

        def broken(exc: BaseException, what: str) -> EtcdError:
            # a stream cut by a stopped member: the next watch goes to another one
            _leave_endpoint(client, member_went_away(exc))
            return self._translate(exc, what)

        return WatchStream(
            etcdrpc.WatchStub(channel),
            request,
            metadata,
            broken,
            denied=lambda: permission_denied(self.settings, "watch keys", reach),
            # etcd ends a watch stream by itself only when the member shuts down
            ended=lambda: _leave_endpoint(client, gone=True),
        )
