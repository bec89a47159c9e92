"""What can go wrong with backups, in an operator's words (each message says what to do next)."""

from __future__ import annotations

from etcdadmin.core.errors import EtcdAdminError


class BackupError(EtcdAdminError):
    """Base of the backup errors."""


class LocationUnreachable(BackupError):
    """The backup location (Swift, a directory) cannot be reached or written."""


class LocationAuthFailed(BackupError):
    """Swift refused the credentials."""


class BackupNotFound(BackupError):
    """No complete backup has that id in this location."""


class BackupDamaged(BackupError):
    """A stored object differs from what its manifest recorded, or etcd's own hash fails."""


class SnapshotHashMismatch(BackupDamaged):
    """The snapshot's bytes do not match the SHA-256 etcd appended to them."""


class BackupAborted(BackupError):
    """An upload stopped before its manifest was written: the backup is incomplete."""


class BackupLocked(BackupError):
    """The backup is encrypted and none of the identities at hand is among its recipients.

    `backup`, `recipients` (as shown on one line each) and `why` let a face word it its own
    way (the client offers to open an identity file where the CLI says `--identity FILE`)."""

    def __init__(
        self, message: str, *, backup: str = "", recipients: tuple[str, ...] = (), why: str = ""
    ) -> None:
        super().__init__(message)
        self.backup = backup
        self.recipients = recipients
        self.why = why
