"""The project's own exceptions.

Every message says what went wrong in an operator's words and what to do next. Messages never
carry key values: values may be secrets, and exceptions end up in logs and dialogs.
"""

from __future__ import annotations


class EtcdAdminError(Exception):
    """Base of every error the core raises on purpose."""


class MappingError(EtcdAdminError):
    """A key or value under a watched directory cannot be turned into config (or back)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ConnectionSettingsError(EtcdAdminError):
    """Connection settings that cannot work, found before anything is sent: an endpoint that is
    not `host:port`, `http://` or `https://`, or a client certificate without its key.

    Not an `EtcdError`: nothing talked to etcd, the input is wrong (the CLI exits 2)."""


class EtcdError(EtcdAdminError):
    """Base of the errors talking to etcd."""


class EtcdUnavailable(EtcdError):
    """No endpoint answered, or the member answering has no leader: retry later."""


class EtcdAuthFailed(EtcdError):
    """Wrong user or password, or the token expired and could not be renewed."""


class EtcdPermissionDenied(EtcdError):
    """The etcd user lacks the role to read or write that key range."""


class EtcdTLSError(EtcdError):
    """Certificate files are missing or unreadable, or the handshake failed."""


class RevisionCompacted(EtcdError):
    """The revision asked for is older than etcd's compaction point: re-read from the present."""

    def __init__(self, message: str, compact_revision: int) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


class WatchCancelled(EtcdError):
    """etcd cancelled a watch (for example after losing its leader): re-read and watch again."""


class ConflictError(EtcdError):
    """A guarded transaction found that a key changed since it was read: nothing was written."""


class ReadOnlyConnection(EtcdAdminError):
    """The connection is marked read-only: nothing may be staged, applied or undone."""


class CertificateError(EtcdAdminError):
    """Certificates could not be made or read (`etcdadmin certs`)."""


class AccessError(EtcdAdminError):
    """An access-control change was refused before anything was written, or was undone."""
