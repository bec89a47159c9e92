"""A team: the operators and the watcher agents of one directory, made in one step.

Roles, for team NAME on directory DIR:
- `NAME-operators`: readwrite on DIR and on DIR's secret recipients
  (`/etcdadmin/recipients/<DIR prefix>`), so operators edit config and manage who can open
  its secrets, and on DIR's gray releases and release history (`/etcdadmin/gray/<DIR
  prefix>`, `/etcdadmin/releases/<DIR prefix>`), which every publish writes;
- `NAME-agents`: read on DIR, on its recipients and on its gray releases, nothing else;
- `NAME-agent-<user>`, one per agent user: readwrite on that agent's status key only,
  `/etcdadmin/agents/<DIR prefix><user>`. An agent can then publish its own status and no
  other's, which is why an agent's id (AGENT_ID) must equal its etcd user (the agent's
  default when ETCD_USER is set).

Users that do not exist yet are created with the passwords given; none is created and no
role is made until every check has passed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from etcdadmin.core.access.accounts import check_name, check_password
from etcdadmin.core.access.grants import (
    directory_permission,
    gray_permission,
    history_permission,
    recipients_permission,
)
from etcdadmin.core.agents.status import status_prefix_for
from etcdadmin.core.errors import AccessError
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.auth import RolePermission
from etcdadmin.core.tree.directories import OWN_SPACE, directory_prefix

log = logging.getLogger(__name__)

OPERATORS, AGENTS, AGENT = "-operators", "-agents", "-agent-"


@dataclass(frozen=True)
class Team:
    name: str
    directory: str
    operators: tuple[str, ...]
    agents: tuple[str, ...]

    @property
    def operators_role(self) -> str:
        return self.name + OPERATORS

    @property
    def agents_role(self) -> str:
        return self.name + AGENTS


def agent_role(team: str, agent: str) -> str:
    return f"{team}{AGENT}{agent}"


def status_permission(directory: str, agent: str) -> RolePermission:
    """readwrite on exactly one key: the status key of agent `agent` for `directory`."""
    return RolePermission("readwrite", status_prefix_for(directory) + agent.encode("utf-8"))


def team_permissions(team: Team) -> dict[str, list[RolePermission]]:
    """Every role of `team` and the permissions it is given."""
    roles = {
        team.operators_role: [
            directory_permission(team.directory, "readwrite"),
            recipients_permission(team.directory, "readwrite"),
            gray_permission(team.directory, "readwrite"),
            history_permission(team.directory, "readwrite"),
        ],
        team.agents_role: [
            directory_permission(team.directory, "read"),
            recipients_permission(team.directory, "read"),
            gray_permission(team.directory, "read"),
        ],
    }
    for agent in team.agents:
        roles[agent_role(team.name, agent)] = [status_permission(team.directory, agent)]
    return roles


def create_team(
    conn: EtcdConnection,
    name: str,
    directory: str,
    *,
    operators: Sequence[str] = (),
    agents: Sequence[str] = (),
    passwords: Mapping[str, str] | None = None,
) -> Team:
    """Make (or complete) team `name` on `directory`; see the module docstring.

    Running it again with more users adds them; roles and grants already there are kept.
    """
    check_name("team", name)
    for user in (*operators, *agents):
        check_name("user", user)
    both = set(operators) & set(agents)
    if both:
        raise AccessError(
            f"{', '.join(sorted(both))} cannot be both operator and agent: an agent's user "
            "should only read its directory"
        )
    prefix = directory_prefix(directory)
    if prefix.startswith(OWN_SPACE.decode()):
        raise AccessError(f"{prefix} is etcdadmin's own space, not a config directory")
    team = Team(name, prefix, tuple(operators), tuple(agents))
    passwords = passwords or {}
    users = set(conn.user_list())
    missing = [u for u in (*operators, *agents) if u not in users and u not in passwords]
    if missing:
        raise AccessError(
            f"user {', '.join(missing)} does not exist and no password was given for it: "
            "give passwords for new users, or add them first"
        )
    for user in (*operators, *agents):
        if user not in users:
            check_password(passwords[user])
    existing = set(conn.role_list())
    for role, permissions in team_permissions(team).items():
        if role not in existing:
            conn.role_add(role)
        for permission in permissions:
            conn.role_grant(role, permission)
    for user in (*operators, *agents):
        if user not in users:
            conn.user_add(user, passwords[user])
    for user in operators:
        conn.user_grant_role(user, team.operators_role)
    for user in agents:
        conn.user_grant_role(user, team.agents_role)
        conn.user_grant_role(user, agent_role(name, user))
    log.info("team created or completed")
    return team


def list_teams(conn: EtcdConnection) -> list[Team]:
    """Every team: a role named `<team>-operators` or `<team>-agents` makes one."""
    roles = conn.role_list()
    names = sorted(
        {r.removesuffix(OPERATORS) for r in roles if r.endswith(OPERATORS)}
        | {r.removesuffix(AGENTS) for r in roles if r.endswith(AGENTS)}
    )
    holders: dict[str, list[str]] = {}
    for user in conn.user_list():
        for role in conn.user_roles(user):
            holders.setdefault(role, []).append(user)
    return [_team(conn, name, roles, holders) for name in names]


def show_team(conn: EtcdConnection, name: str) -> Team:
    for team in list_teams(conn):
        if team.name == name:
            return team
    raise AccessError(f"there is no team {name!r} (no role {name}{OPERATORS} or {name}{AGENTS})")


def _team(
    conn: EtcdConnection, name: str, roles: Sequence[str], holders: Mapping[str, list[str]]
) -> Team:
    directory = ""
    for role in (name + OPERATORS, name + AGENTS):
        if role not in roles:
            continue
        for permission in conn.role_permissions(role):
            if permission.range_end and not permission.key.startswith(OWN_SPACE):
                directory = permission.key.decode("utf-8", "backslashreplace")
                break
        if directory:
            break
    return Team(
        name,
        directory,
        tuple(sorted(holders.get(name + OPERATORS, []))),
        tuple(sorted(holders.get(name + AGENTS, []))),
    )
