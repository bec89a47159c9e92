"""One key as etcd stores it: the value every module passes around."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyetcd.utils import prefix_range_end


@dataclass(frozen=True)
class KeyValue:
    """One key as etcd stores it, with the metadata the client shows and guards on."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_proto(cls, kv: Any) -> KeyValue:
        return cls(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that covers every key starting with `prefix` (etcd's --prefix)."""
    end = prefix_range_end(prefix) if prefix else b"\0"
    return b"\0" if end == prefix else end
