"""The one way into etcd: reads pinned at a revision, writes, transactions, leases, watches.

Everyone else (agent, CLI, desktop client) goes through `EtcdConnection`; nothing else opens a
gRPC channel. It wraps `pyetcd` (etcd-sdk-python) for unary calls and translates every failure
into the project's exceptions (`etcdadmin.core.errors`) with a message an operator can act on.

Watches are created here and iterated through `etcdadmin.core.etcd.watch.WatchStream`. The
client lifecycle, token renewal and endpoint failover every call runs through are
`etcdadmin.core.etcd.failover.FailoverClient`'s.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from pyetcd import etcdrpc
from pyetcd import exceptions as pyetcd_errors

from etcdadmin.core.errors import EtcdError
from etcdadmin.core.etcd import paging
from etcdadmin.core.etcd.auth import AuthCalls
from etcdadmin.core.etcd.cluster import ClusterCalls
from etcdadmin.core.etcd.columns import range_columns, range_records
from etcdadmin.core.etcd.failover import FailoverClient, leave_endpoint
from etcdadmin.core.etcd.keyvalue import KeyValue, prefix_end
from etcdadmin.core.etcd.records import (
    Compare,
    Page,
    Snapshot,
    TxnOp,
    TxnResult,
)
from etcdadmin.core.etcd.translate import Reach, member_went_away, permission_denied
from etcdadmin.core.etcd.watch import WatchStream

log = logging.getLogger(__name__)

A = TypeVar("A", bound=paging.Answer)

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


class EtcdConnection(FailoverClient, ClusterCalls, AuthCalls):
    """A connection to one etcd cluster, failing over between its endpoints.

    Thread-safe for concurrent unary calls (gRPC channels are); each watch has its own stream.
    """

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
        answers = self._pages(prefix, range_records, keys_only, page_size, revision=revision)
        for pinned, answer in answers:
            yield Snapshot(revision=pinned, cluster_id=answer.cluster_id, items=answer.items)

    def iter_plain_pages(
        self,
        prefix: str | bytes,
        *,
        keys_only: bool = True,
        page_size: int = PAGE_SIZE,
        ahead: bool = False,
    ) -> Iterator[Page]:
        """The pages of a prefix read as plain bytes (see `Page`), all at the first page's
        revision, read straight into columns (`etcdadmin.core.etcd.columns`).

        With `ahead`, the first page is asked for at once, before the iteration starts, and
        each page after it before the one before it is handed out: the caller's work on a
        page overlaps etcd's on the next (see `etcdadmin.core.etcd.paging`).
        """
        answers = self._pages(prefix, range_columns, keys_only, page_size, ahead=ahead)
        return (
            Page(pinned, answer.cluster_id, answer.keys, answer.values)
            for pinned, answer in answers
        )

    def _pages(
        self,
        prefix: str | bytes,
        read: Callable[[Any, etcdrpc.RangeRequest], A],
        keys_only: bool,
        page_size: int,
        *,
        revision: int | None = None,
        ahead: bool = False,
    ) -> Iterator[tuple[int, A]]:
        """(pinned revision, answer) of each page of a prefix read (`paging.pages`), each
        Range call made by `read` (`columns.range_records` or `columns.range_columns`)."""
        start = _key_bytes(prefix)
        end = prefix_end(start)
        reach = Reach.of("read", [start], prefix=True)

        def fetch(first: bytes, upto: bytes | None, pinned: int | None, limit: int) -> A:
            request = etcdrpc.RangeRequest(
                key=first,
                range_end=end if upto is None else upto,
                limit=limit,
                revision=pinned or 0,
                keys_only=keys_only,
            )
            return self._call("read keys", lambda c: read(c, request), reach=reach)  # type: ignore[no-any-return]

        return paging.pages(fetch, start or b"\0", end, page_size, revision=revision, ahead=ahead)

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
            leave_endpoint(client, member_went_away(exc))
            return self._translate(exc, what)

        return WatchStream(
            etcdrpc.WatchStub(channel),
            request,
            metadata,
            broken,
            denied=lambda: permission_denied(self.settings, "watch keys", reach),
            # etcd ends a watch stream by itself only when the member shuts down
            ended=lambda: leave_endpoint(client, gone=True),
        )
