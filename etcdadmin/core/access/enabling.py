"""Turning etcd auth on without locking anyone out, and off again.

`enable_auth`, in this order:
1. ask etcd, without logging in, whether auth is on; if it is, only the operator's login is
   checked;
2. make sure `root` exists with the root role and the password the operator gave. While auth
   is off etcd refuses every login ("authentication is not enabled"), so no client can be using
   root's password yet, and setting it is the only way to be sure of it before enabling;
3. check that the operator's own user (when it is not root) exists and holds the root role, so
   that after enabling it can still manage users and disable auth;
4. enable, then log in as the operator and as root and list users with each;
5. if either login fails, disable auth again as root (whose password step 2 made known) and
   raise `AccessError` saying why: the cluster is left open, never locked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from etcdadmin.core.access.accounts import check_password
from etcdadmin.core.errors import AccessError, EtcdError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection

log = logging.getLogger(__name__)

ROOT = "root"


@dataclass(frozen=True)
class EnableOutcome:
    already_enabled: bool
    root_created: bool
    operator: str


def _anonymous(settings: ConnectionSettings) -> ConnectionSettings:
    return replace(settings, user=None, password=None)


def _as_root(settings: ConnectionSettings, root_password: str) -> ConnectionSettings:
    return replace(settings, user=ROOT, password=root_password)


def operator_name(settings: ConnectionSettings) -> str:
    """Who the operator logs in as: the user given, or root."""
    return settings.user or ROOT


def _check_login(settings: ConnectionSettings) -> None:
    """Log in with `settings` and make a call only an administrator may make."""
    with EtcdConnection(settings) as conn:
        conn.user_list()


def auth_enabled(settings: ConnectionSettings) -> bool:
    """Whether auth is on at the cluster `settings` reaches (asked without logging in)."""
    with EtcdConnection(_anonymous(settings)) as conn:
        return conn.auth_is_enabled()


def enable_auth(settings: ConnectionSettings, root_password: str) -> EnableOutcome:
    """Enable auth on the cluster `settings` reaches, so that the operator (`settings.user`,
    or root) can log in afterwards; see the module's docstring for the steps."""
    check_password(root_password)
    operator = operator_name(settings)
    if operator == ROOT and settings.password and settings.password != root_password:
        raise AccessError(
            "the password given for root to log in differs from the root password to set: "
            "give the same one"
        )
    operator_settings = replace(
        settings, user=operator, password=settings.password or root_password
    )
    if auth_enabled(settings):
        _check_login(operator_settings)
        log.info("auth is already enabled; the operator's login works")
        return EnableOutcome(True, False, operator)
    with EtcdConnection(_anonymous(settings)) as conn:
        users = conn.user_list()
        root_created = ROOT not in users
        if root_created:
            conn.user_add(ROOT, root_password)
        else:
            conn.user_change_password(ROOT, root_password)
        if ROOT not in conn.user_roles(ROOT):
            conn.user_grant_role(ROOT, ROOT)
        if operator != ROOT:
            if operator not in users:
                raise AccessError(
                    f"there is no user {operator!r} to log in as after enabling auth: add it "
                    "(etcdadmin access user add), or enable auth as root"
                )
            if ROOT not in conn.user_roles(operator):
                raise AccessError(
                    f"user {operator!r} lacks the root role, so after enabling auth it could "
                    "not manage users nor disable auth again: give it the role (etcdadmin "
                    f"access user grant-role {operator} root), or enable auth as root"
                )
        conn.auth_enable()
    log.info("auth enabled; checking that the operator can log in")
    try:
        _check_login(_as_root(settings, root_password))
        _check_login(operator_settings)
    except EtcdError as exc:
        log.warning("login failed after enabling auth; disabling it again")
        try:
            disable_auth(_as_root(settings, root_password))
        except EtcdError as undo:
            raise AccessError(
                f"auth was enabled but logging in failed ({exc}), and disabling it again as "
                f"root failed too ({undo}): disable it with etcdctl --user root auth disable"
            ) from None
        raise AccessError(
            f"auth was enabled, but logging in as {operator!r} then failed ({exc}); auth is "
            "disabled again, nothing is locked: check the password and try again"
        ) from None
    return EnableOutcome(False, root_created, operator)


def disable_auth(settings: ConnectionSettings) -> bool:
    """Disable auth (as root, or a user holding the root role); False when it was off."""
    if not auth_enabled(settings):
        return False
    if not settings.user and not settings.cert_file:
        raise AccessError(
            "disabling auth takes root's credentials: pass --user root (or a user with the "
            "root role)"
        )
    with EtcdConnection(settings) as conn:
        conn.auth_disable()
    with EtcdConnection(_anonymous(settings)) as conn:
        conn.header()
    log.info("auth disabled")
    return True
