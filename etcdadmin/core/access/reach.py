"""Who can reach a directory, and what a user can reach: users -> roles -> permissions.

A permission reaches a directory when it covers the directory's whole range, or only part of
it (a grant on a sub-directory, or on one key): both are listed, marked, since a user with a
grant on `registry-test/storage/` can read that much of `registry-test/`. The `root` role
reaches everything (etcd skips permission checks for it).
"""

from __future__ import annotations

from dataclasses import dataclass

from etcdadmin.core.etcd import EtcdConnection, prefix_end
from etcdadmin.core.etcd.auth import RolePermission
from etcdadmin.core.tree.directories import directory_prefix

ROOT_ROLE = "root"
EVERYTHING = RolePermission("readwrite", b"\0", b"\0")


@dataclass(frozen=True)
class Grant:
    """`user` holds `role`, whose `permission` reaches the range asked about (`whole`: all of
    it, else part of it)."""

    user: str
    role: str
    permission: RolePermission
    whole: bool


def _role_permissions(conn: EtcdConnection, role: str) -> list[RolePermission]:
    return [EVERYTHING] if role == ROOT_ROLE else conn.role_permissions(role)


def who_can_reach(conn: EtcdConnection, directory: str | bytes) -> list[Grant]:
    """Every (user, role, permission) that reaches `directory`, users in name order."""
    raw = directory if isinstance(directory, bytes) else directory.encode("utf-8")
    start = directory_prefix(raw)
    end = prefix_end(start)
    permissions = {role: _role_permissions(conn, role) for role in conn.role_list()}
    permissions.setdefault(ROOT_ROLE, [EVERYTHING])
    found = []
    for user in conn.user_list():
        for role in conn.user_roles(user):
            for permission in permissions.get(role, []):
                if permission.overlaps(start, end):
                    found.append(Grant(user, role, permission, permission.covers(start, end)))
    return found


def what_user_reaches(conn: EtcdConnection, user: str) -> list[Grant]:
    """Every permission `user` holds, through which role. A user may ask this about itself
    without the root role (etcd lets a user read its own roles)."""
    return [
        Grant(user, role, permission, True)
        for role in conn.user_roles(user)
        for permission in _role_permissions(conn, role)
    ]


def describe_permission(permission: RolePermission) -> str:
    """`registry-test/` for a directory, `key a/b` for one key, `[a, b)` for other ranges."""
    key, end = permission.key, permission.range_end
    text = key.decode("utf-8", "backslashreplace")
    if end == b"\0":
        return "every key" if key in (b"", b"\0") else f"every key from {text}"
    if not end:
        return f"key {text}"
    if key and end == prefix_end(key):
        return text if text.endswith("/") else f"{text}*"
    return f"[{text}, {end.decode('utf-8', 'backslashreplace')})"
