"""Permissions on directories: the one rule for the key range a grant on a directory covers.

A directory's range is its prefix (`directory_prefix`, the rule every part of etcdadmin uses)
up to `prefix_end`, so a grant on `registry-test` covers `registry-test/...` and never
`registry-test-2/...`. `read` grants etcd's READ, `readwrite` its READWRITE.
"""

from __future__ import annotations

import logging
from typing import Literal

from etcdadmin.core.errors import AccessError
from etcdadmin.core.etcd import EtcdConnection, prefix_end
from etcdadmin.core.etcd.auth import RolePermission
from etcdadmin.core.releases.gray import GRAY_PREFIX
from etcdadmin.core.releases.history import RELEASES_PREFIX
from etcdadmin.core.secrets.recipients import RECIPIENTS_PREFIX
from etcdadmin.core.tree.directories import directory_prefix

log = logging.getLogger(__name__)

Access = Literal["read", "readwrite"]


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def directory_permission(directory: str | bytes, access: Access) -> RolePermission:
    """The permission covering every key of `directory` (and nothing beside it)."""
    prefix = directory_prefix(_bytes(directory))
    return RolePermission(access, prefix, prefix_end(prefix))


def recipients_permission(directory: str | bytes, access: Access) -> RolePermission:
    """The permission on the secret recipients of `directory`
    (`/etcdadmin/recipients/<directory prefix>`), who may open its secrets."""
    prefix = RECIPIENTS_PREFIX + directory_prefix(_bytes(directory))
    return RolePermission(access, prefix, prefix_end(prefix))


def gray_permission(directory: str | bytes, access: Access) -> RolePermission:
    """The permission on the gray releases of `directory` (`/etcdadmin/gray/<prefix>`):
    operators create and promote them, agents read the ones they may be targeted by."""
    prefix = GRAY_PREFIX + directory_prefix(_bytes(directory))
    return RolePermission(access, prefix, prefix_end(prefix))


def history_permission(directory: str | bytes, access: Access) -> RolePermission:
    """The permission on the release history of `directory` (`/etcdadmin/releases/<prefix>`),
    which every publish writes in its own transaction."""
    prefix = RELEASES_PREFIX + directory_prefix(_bytes(directory))
    return RolePermission(access, prefix, prefix_end(prefix))


def grant_directory(
    conn: EtcdConnection, role: str, directory: str | bytes, access: Access
) -> RolePermission:
    """Give `role` `access` on `directory`; a grant already there is replaced (etcd keeps one
    permission per range, so read then readwrite upgrades, readwrite then read downgrades)."""
    if role not in conn.role_list():
        raise AccessError(f"there is no role {role!r}: add it first (etcdadmin access role add)")
    permission = directory_permission(directory, access)
    conn.role_grant(role, permission)
    log.info("granted a directory to a role")
    return permission


def revoke_directory(conn: EtcdConnection, role: str, directory: str | bytes) -> None:
    """Take `role`'s permission on `directory` away (exactly that range)."""
    permission = directory_permission(directory, "read")
    held = conn.role_permissions(role)
    if not any((p.key, p.range_end) == (permission.key, permission.range_end) for p in held):
        shown = permission.key.decode("utf-8", "backslashreplace")
        raise AccessError(
            f"role {role!r} holds no grant on {shown}: see its grants with etcdadmin access role ls"
        )
    conn.role_revoke(role, permission.key, permission.range_end)
    log.info("revoked a directory from a role")
