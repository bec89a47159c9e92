"""What the Access panel shows, read in one go on a worker from the core's access modules."""

from __future__ import annotations

from dataclasses import dataclass

from etcdadmin.core.access.accounts import RoleGrants, UserAccount, list_roles, list_users
from etcdadmin.core.access.enabling import auth_enabled
from etcdadmin.core.access.permits import Permits, read_permits
from etcdadmin.core.access.teams import Team, list_teams
from etcdadmin.core.errors import EtcdPermissionDenied
from etcdadmin.core.etcd import EtcdConnection


@dataclass(frozen=True)
class AccessOverview:
    """Auth on or off; users, roles and teams when the connection may list them (auth off,
    or the root role), else `refused` says why and only the user's own `permits` are known."""

    auth_enabled: bool
    permits: Permits
    users: tuple[UserAccount, ...] = ()
    roles: tuple[RoleGrants, ...] = ()
    teams: tuple[Team, ...] = ()
    refused: str = ""


def read_overview(conn: EtcdConnection) -> AccessOverview:
    enabled = auth_enabled(conn.settings)
    permits = read_permits(conn)
    if enabled and not permits.everything:
        return AccessOverview(
            enabled,
            permits,
            refused=f"user {permits.user!r} does not hold the root role, so it cannot list "
            "users and roles: connect as root (or a user with the root role) to manage access",
        )
    try:
        return AccessOverview(
            enabled,
            permits,
            tuple(list_users(conn)),
            tuple(list_roles(conn)),
            tuple(list_teams(conn)),
        )
    except EtcdPermissionDenied as exc:
        return AccessOverview(enabled, permits, refused=str(exc))
