"""Backups of an etcd cluster: etcd's snapshot and a logical export, to Swift or a directory.

`create_backup` takes one, `Catalog` lists them, `verify_backup` checks one, `prune` applies a
retention policy, `open_location` picks where they live. `restore_online` puts a prefix back
as a backup holds it; `disaster` makes a new data directory from a snapshot.
"""

from etcdadmin.core.backup.catalog import Catalog
from etcdadmin.core.backup.create import BackupOptions, create_backup
from etcdadmin.core.backup.location import Location, open_location
from etcdadmin.core.backup.manifest import BackupManifest, CatalogEntry, StoredObject
from etcdadmin.core.backup.prune import PruneResult, prune, remove_backup
from etcdadmin.core.backup.retention import RetentionPolicy
from etcdadmin.core.backup.verify import VerifyReport, load_manifest, verify_backup

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
