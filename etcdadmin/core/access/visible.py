"""What a user with access to some directories only can list.

etcd refuses a range that is not wholly inside one of the user's permissions: `ls` of the top
level (the whole key space) or of `/` fails for a user granted `team-a/` alone. A user may read
its own roles and their permissions, so the listing falls back to reading each range the user
may read inside the prefix asked for, and says that it is partial. The client's tree can use
the same function for its root.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from etcdadmin.core.access.reach import what_user_reaches
from etcdadmin.core.certs.identity import certificate_user
from etcdadmin.core.errors import EtcdError, EtcdPermissionDenied
from etcdadmin.core.etcd import EtcdConnection, prefix_end
from etcdadmin.core.etcd.auth import RolePermission

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VisibleKeys:
    """The keys under a prefix the user may read, in key order.

    `partial` is true when etcd refused the whole prefix and only `ranges` (the user's
    readable permissions inside it) were read.
    """

    keys: tuple[bytes, ...]
    partial: bool
    ranges: tuple[RolePermission, ...] = ()


def etcd_identity(conn: EtcdConnection) -> str | None:
    """The etcd user the connection acts as: its user, else its client certificate's CN."""
    settings = conn.settings
    if settings.user:
        return settings.user
    if settings.cert_file:
        return certificate_user(settings.cert_file)
    return None


def readable_ranges(conn: EtcdConnection, prefix: bytes) -> list[RolePermission]:
    """The user's readable permissions that lie inside `prefix` (or contain it), clipped to it."""
    user = etcd_identity(conn)
    if user is None:
        return []
    start, end = prefix, prefix_end(prefix)
    found: list[RolePermission] = []
    for grant in what_user_reaches(conn, user):
        permission = grant.permission
        if not permission.reads or not permission.overlaps(start, end):
            continue
        if permission.covers(start, end):
            return [RolePermission(permission.kind, start, end)]
        found.append(permission)
    return sorted(set(found), key=lambda p: p.key)


def visible_keys(conn: EtcdConnection, prefix: bytes) -> VisibleKeys:
    """Every key under `prefix` the connection's user may read (keys only)."""
    try:
        return VisibleKeys(tuple(_keys(conn, prefix)), False)
    except EtcdPermissionDenied as denied:
        try:
            ranges = readable_ranges(conn, prefix)
        except EtcdError:
            log.info("the user's own roles could not be read either")
            raise denied from None
        if not ranges:
            raise
    log.info("whole prefix refused; reading the user's %d readable ranges", len(ranges))
    streams = [_range_keys(conn, permission) for permission in ranges]
    return VisibleKeys(tuple(heapq.merge(*streams)), True, tuple(ranges))


def _keys(conn: EtcdConnection, prefix: bytes) -> Iterator[bytes]:
    for page in conn.iter_plain_pages(prefix):
        yield from page.keys


def _range_keys(conn: EtcdConnection, permission: RolePermission) -> list[bytes]:
    if not permission.range_end:
        return [permission.key] if conn.get(permission.key) is not None else []
    if permission.range_end == prefix_end(permission.key):
        return list(_keys(conn, permission.key))
    # Ranges that are not a prefix are not made by etcdadmin; read what prefix they start with
    # would over-reach, so they are left out of the listing.
    log.info("a readable range that is not a prefix is left out of the listing")
    return []
