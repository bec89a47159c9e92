"""Who runs what: `agents DIR` (the watcher agents of a directory) and `cluster status`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from etcdadmin.cli.arguments import DIR
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option, show
from etcdadmin.core.agents.status import read_agents
from etcdadmin.core.errors import ConnectionSettingsError, EtcdUnavailable
from etcdadmin.core.etcd import ConnectionSettings, MemberStatus
from etcdadmin.core.tree.names import display_segment


@click.command()
@click.argument("directory", metavar="DIR", type=DIR)
@json_option
@click.pass_obj
def agents(session: CliSession, directory: bytes, as_json: bool) -> None:
    """The watcher agents of DIR, and whether each has applied its latest change."""
    view = read_agents(session.connect(), directory)
    if as_json:
        emit_json(
            {
                "directory": show(directory),
                "latest_revision": view.latest_revision,
                "agents": [
                    {
                        "agent_id": a.agent_id,
                        "applied_revision": a.applied_revision,
                        "behind": a.behind,
                        "last_result": a.last_result,
                        "last_error": a.last_error,
                        "updated_at": a.updated_at,
                        "containers": list(a.containers),
                        "labels": dict(a.labels),
                        "releases": list(a.releases),
                        "error": a.error,
                    }
                    for a in view.agents
                ],
            }
        )
        return
    if not view.agents:
        click.echo(f"no agent reports on {show(directory)}", err=True)
    for a in view.agents:
        if a.error:
            state = f"unreadable: {a.error}"
        else:
            state = "behind" if a.behind else "up to date"
            state += f", applied {a.applied_revision}, {a.last_result or 'no result yet'}"
            if a.last_error:  # its first line: a row per agent (the rest is in --json)
                first = a.last_error.strip().splitlines()[0] if a.last_error.strip() else ""
                state += f" ({display_segment(first.encode())})" if first else ""
            if a.releases:
                state += f", gray release {','.join(a.releases)}"
            if a.labels:
                state += ", labels " + ",".join(f"{k}={v}" for k, v in a.labels.items())
        click.echo(f"{a.agent_id}\t{state}")


@click.group()
def cluster() -> None:
    """The etcd cluster itself."""


@cluster.command()
@json_option
@click.pass_obj
def status(session: CliSession, as_json: bool) -> None:
    """Members, leader, version, database size and alarms."""
    conn = session.connect()
    members = conn.members()
    rows: list[dict[str, Any]] = []
    leader = 0
    for member in members:
        row: dict[str, Any] = {
            "name": member.name,
            "id": f"{member.member_id:x}",
            "client_urls": list(member.client_urls),
        }
        state = _member_status(conn.member_status, member.client_urls)
        if state is None:
            row["error"] = "unreachable"
        else:
            leader = leader or state.leader
            row.update(version=state.version, db_size=state.db_size, raft_index=state.raft_index)
        rows.append(row)
    for row in rows:
        row["leader"] = leader != 0 and row["id"] == f"{leader:x}"
    alarms = [{"member": f"{m:x}", "alarm": name} for m, name in conn.alarms()]
    if as_json:
        emit_json({"members": rows, "leader": f"{leader:x}" if leader else None, "alarms": alarms})
        return
    for row in rows:
        where = ",".join(row["client_urls"])
        if "error" in row:
            click.echo(f"{row['name']}\t{row['id']}\t{where}\tunreachable")
            continue
        role = "leader" if row["leader"] else "follower"
        size = f"{row['db_size'] / 1e6:.1f} MB"
        click.echo(f"{row['name']}\t{row['id']}\t{where}\t{role}\tv{row['version']}\t{size}")
    if alarms:
        for alarm in alarms:
            click.echo(f"ALARM {alarm['alarm']} on member {alarm['member']}")
    else:
        click.echo("no alarms", err=True)


def _member_status(
    read: Callable[[str], MemberStatus], client_urls: tuple[str, ...]
) -> MemberStatus | None:
    """The first of a member's client URLs that answers; None when none does (it is down)."""
    for url in client_urls:
        try:
            return read(ConnectionSettings.parse_endpoints(url)[0])
        except (EtcdUnavailable, ConnectionSettingsError):  # (a unix:// URL: not for gRPC here)
            continue
    return None


COMMANDS = (agents, cluster)
