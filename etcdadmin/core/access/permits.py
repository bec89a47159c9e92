"""What the connection's own etcd user may read and write, read once per connection.

A client checks its staged writes against this before it sends them, and greys out what the
user may not do (editing in a directory it may only read). etcd stays the judge: a permission
taken away after the check still makes the write fail, with the same message
(`etcdadmin.core.etcd.translate.permission_denied` words both).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from etcdadmin.core.access.reach import ROOT_ROLE, what_user_reaches
from etcdadmin.core.access.visible import etcd_identity
from etcdadmin.core.errors import EtcdPermissionDenied
from etcdadmin.core.etcd import EtcdConnection, prefix_end
from etcdadmin.core.etcd.auth import RolePermission
from etcdadmin.core.etcd.settings import ConnectionSettings
from etcdadmin.core.etcd.translate import Reach, permission_denied

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Permits:
    """The permissions of `user`. `everything`: auth is off, the user holds the root role, or
    the identity is unknown (no user and no certificate: etcd decides alone)."""

    auth_enabled: bool
    user: str | None
    everything: bool
    permissions: tuple[RolePermission, ...] = ()

    def may_read(self, start: bytes, end: bytes = b"") -> bool:
        """Whether [start, end) (etcd's encoding of `end`) lies inside one readable grant."""
        return self.everything or any(p.reads and p.covers(start, end) for p in self.permissions)

    def may_write(self, key: bytes) -> bool:
        return self.everything or any(p.writes and p.covers(key, b"") for p in self.permissions)

    def may_write_under(self, prefix: bytes) -> bool:
        """Whether every key under `prefix` may be written (a new key anywhere in it)."""
        end = prefix_end(prefix) if prefix else b"\0"
        return self.everything or any(
            p.writes and p.covers(prefix or b"\0", end) for p in self.permissions
        )

    def check_writes(self, settings: ConnectionSettings, keys: Iterable[bytes], what: str) -> None:
        """Raise `EtcdPermissionDenied` naming the user and the directories it lacks
        read-write on, when one of `keys` is not writable; etcd would refuse it the same way."""
        refused = [key for key in keys if not self.may_write(key)]
        if refused:
            log.info("a write was refused before it reached etcd")
            raise permission_denied(settings, what, Reach.of("read-write", refused))

    def refusal(self, settings: ConnectionSettings, keys: Iterable[bytes], what: str) -> str:
        """`check_writes` as a message, or "" when every key is writable."""
        try:
            self.check_writes(settings, keys, what)
        except EtcdPermissionDenied as exc:
            return str(exc)
        return ""


EVERYTHING = Permits(auth_enabled=False, user=None, everything=True)


def read_permits(conn: EtcdConnection) -> Permits:
    """The connection user's permits: one auth probe when auth is off, else the user's roles
    and their permissions (a user may read its own without the root role)."""
    if not conn.auth_is_enabled():
        return EVERYTHING
    user = etcd_identity(conn)
    if user is None:
        return Permits(True, None, True)
    grants = what_user_reaches(conn, user)
    if any(grant.role == ROOT_ROLE for grant in grants):
        return Permits(True, user, True)
    return Permits(True, user, False, tuple(grant.permission for grant in grants))
