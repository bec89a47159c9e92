"""etcd access: the one client, its settings, the records it returns, and watches.

Everyone imports from here (`from etcdadmin.core.etcd import EtcdConnection, Compare, ...`).
"""

from etcdadmin.core.etcd.client import PAGE_SIZE, EtcdConnection
from etcdadmin.core.etcd.keyvalue import KeyValue, prefix_end
from etcdadmin.core.etcd.records import (
    Compare,
    Member,
    MemberStatus,
    Page,
    Snapshot,
    TxnOp,
    TxnResult,
)
from etcdadmin.core.etcd.settings import ConnectionSettings
from etcdadmin.core.etcd.watch import WatchBatch, WatchEvent, WatchStream, pump

__all__ = [
    "PAGE_SIZE",
    "Compare",
    "ConnectionSettings",
    "EtcdConnection",
    "KeyValue",
    "Member",
    "MemberStatus",
    "Page",
    "Snapshot",
    "TxnOp",
    "TxnResult",
    "WatchBatch",
    "WatchEvent",
    "WatchStream",
    "prefix_end",
    "pump",
]
