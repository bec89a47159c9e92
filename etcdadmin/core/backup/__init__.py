"""Backups of an etcd cluster: etcd's snapshot and a logical export, to Swift or a directory.

`create_backup` takes one, `Catalog` lists them, `verify_backup` checks one, `prune` applies a
retention policy, `open_location` picks where they live. `restore_online` puts a prefix back
as a backup holds it; `disaster` makes a new data directory from a snapshot.

The names below are imported from their modules on first use (PEP 562), so that importing one
module of the package (`backup create` imports `create` alone) does not import all of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etcdadmin.core.backup.catalog import Catalog
    from etcdadmin.core.backup.create import BackupOptions, create_backup
    from etcdadmin.core.backup.location import Location, open_location
    from etcdadmin.core.backup.manifest import BackupManifest, CatalogEntry, StoredObject
    from etcdadmin.core.backup.prune import PruneResult, prune, remove_backup
    from etcdadmin.core.backup.retention import RetentionPolicy
    from etcdadmin.core.backup.verify import VerifyReport, load_manifest, verify_backup

_MODULE_OF = {
    "BackupManifest": "manifest",
    "BackupOptions": "create",
    "Catalog": "catalog",
    "CatalogEntry": "manifest",
    "Location": "location",
    "PruneResult": "prune",
    "RetentionPolicy": "retention",
    "StoredObject": "manifest",
    "VerifyReport": "verify",
    "create_backup": "create",
    "load_manifest": "verify",
    "open_location": "location",
    "prune": "prune",
    "remove_backup": "prune",
    "verify_backup": "verify",
}

__all__ = [
    "BackupManifest",
    "BackupOptions",
    "Catalog",
    "CatalogEntry",
    "Location",
    "PruneResult",
    "RetentionPolicy",
    "StoredObject",
    "VerifyReport",
    "create_backup",
    "load_manifest",
    "open_location",
    "prune",
    "remove_backup",
    "verify_backup",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
