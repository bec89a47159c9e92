"""Values that cross the etcd boundary: a pinned snapshot, transaction guards and operations,
members and their status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from etcdadmin.core.etcd.keyvalue import KeyValue


@dataclass(frozen=True)
class Snapshot:
    """Every key under a prefix as of exactly one revision (all pages read at that revision)."""

    revision: int
    cluster_id: int
    items: tuple[KeyValue, ...]

    def as_dict(self) -> dict[bytes, bytes]:
        return {kv.key: kv.value for kv in self.items}


@dataclass(frozen=True)
class Page:
    """One page of a prefix read pinned at `revision`, as plain bytes.

    Plain bytes rather than `KeyValue` objects: a million of those would each be tracked by
    Python's garbage collector, whose full passes then stall every thread (measured: >100 ms).
    `values` is None for a keys-only read, else one value per key, in the same order.
    """

    revision: int
    cluster_id: int
    keys: Sequence[bytes]
    values: Sequence[bytes] | None = None


@dataclass(frozen=True)
class Compare:
    """A transaction guard: `key`'s `target` (mod/create/version revision, or value) `op` value."""

    key: bytes
    target: Literal["mod", "create", "version", "value"]
    op: Literal["==", "!=", "<", ">"]
    value: int | bytes
    # With range_end the compare must hold for every key in [key, range_end): how a whole
    # directory is guarded against keys added by someone else.
    range_end: bytes | None = None


@dataclass(frozen=True)
class TxnOp:
    kind: Literal["put", "delete", "delete_prefix"]
    key: bytes
    value: bytes = b""
    lease: int = 0


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int
    # on failure: the keys asked for, as they are now (None: absent)
    current: dict[bytes, KeyValue | None]


@dataclass(frozen=True)
class Member:
    member_id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]


@dataclass(frozen=True)
class MemberStatus:
    endpoint: str
    member_id: int
    version: str
    db_size: int
    leader: int
    raft_index: int
    raft_term: int
    revision: int
    cluster_id: int = 0
