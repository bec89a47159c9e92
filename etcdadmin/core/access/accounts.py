"""Users and roles as an operator sees them: names, their roles, each role's permissions."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from etcdadmin.core.errors import AccessError
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.auth import RolePermission

log = logging.getLogger(__name__)

# etcd accepts nearly any name, but a name with ':' cannot be given to etcdctl as
# `--user name:password`, and one with '/' or spaces makes a poor status key segment.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


@dataclass(frozen=True)
class UserAccount:
    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class RoleGrants:
    name: str
    permissions: tuple[RolePermission, ...]


def check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise AccessError(
            f"{kind} name {name!r} is not usable: start with a letter or digit and use only "
            "letters, digits, '.', '_', '@' and '-'"
        )
    return name


def check_password(password: str) -> str:
    if not password:
        raise AccessError("the password is empty: give one (a file, a variable, or the prompt)")
    if password != password.strip():
        raise AccessError(
            "the password starts or ends with white space, which files and prompts lose: "
            "choose one without"
        )
    return password


def add_user(conn: EtcdConnection, name: str, password: str, roles: tuple[str, ...] = ()) -> None:
    check_name("user", name)
    check_password(password)
    if name in conn.user_list():
        raise AccessError(f"user {name!r} exists already: remove it first, or give it roles")
    missing = [role for role in roles if role not in conn.role_list()]
    if missing:
        raise AccessError(f"no role named {', '.join(missing)}: add it first")
    conn.user_add(name, password)
    for role in roles:
        conn.user_grant_role(name, role)
    log.info("user added")


def remove_user(conn: EtcdConnection, name: str) -> None:
    if name == "root":
        raise AccessError(
            "root cannot be removed while auth may be enabled: disable auth first "
            "(etcdadmin access disable)"
        )
    if name not in conn.user_list():
        raise AccessError(f"there is no user {name!r}")
    conn.user_delete(name)


def list_users(conn: EtcdConnection) -> list[UserAccount]:
    return [UserAccount(name, tuple(conn.user_roles(name))) for name in conn.user_list()]


def add_role(conn: EtcdConnection, name: str) -> None:
    check_name("role", name)
    if name in conn.role_list():
        raise AccessError(f"role {name!r} exists already")
    conn.role_add(name)


def remove_role(conn: EtcdConnection, name: str) -> None:
    if name == "root":
        raise AccessError("the root role is etcd's own and cannot be removed")
    if name not in conn.role_list():
        raise AccessError(f"there is no role {name!r}")
    conn.role_delete(name)


def list_roles(conn: EtcdConnection) -> list[RoleGrants]:
    return [RoleGrants(name, tuple(conn.role_permissions(name))) for name in conn.role_list()]


def give_role(conn: EtcdConnection, user: str, role: str) -> None:
    if role not in conn.role_list():
        raise AccessError(f"there is no role {role!r}: add it first")
    conn.user_grant_role(user, role)


def take_role(conn: EtcdConnection, user: str, role: str) -> None:
    if role not in conn.user_roles(user):
        raise AccessError(f"user {user!r} does not hold role {role!r}")
    conn.user_revoke_role(user, role)
