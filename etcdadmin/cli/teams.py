"""`etcdadmin access team ...`: a directory's operators and agents in one step."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from etcdadmin.cli import exits
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option
from etcdadmin.cli.writes import refuse_if_read_only
from etcdadmin.core.access.teams import Team, create_team, list_teams, show_team
from etcdadmin.core.private_file import write_private


@click.group()
def team() -> None:
    """Teams: roles NAME-operators and NAME-agents on one directory."""


@team.command("create")
@click.argument("name")
@click.option("--dir", "directory", required=True, help="the team's config directory")
@click.option("--operator", "operators", multiple=True, help="an operator's user (repeatable)")
@click.option(
    "--agent", "agents", multiple=True, help="an agent's user = its AGENT_ID (repeatable)"
)
@click.option(
    "--password-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="new users get a generated password, written to DIR/<user> (mode 0600)",
)
@click.pass_obj
def create(
    session: CliSession,
    name: str,
    directory: str,
    operators: tuple[str, ...],
    agents: tuple[str, ...],
    password_dir: Path | None,
) -> None:
    """Make team NAME on --dir: operators read-write it (and its secret recipients), agents
    read it and write only their own status key. Users missing from etcd are created with a
    generated password written to --password-dir (hand each its file: an agent reads it with
    ETCD_PASSWORD_FILE)."""
    refuse_if_read_only(session)
    conn = session.connect()
    existing = set(conn.user_list())
    new = [u for u in (*operators, *agents) if u not in existing]
    if new and password_dir is None:
        raise exits.Refused(
            f"user {', '.join(new)} does not exist yet: pass --password-dir so their "
            "generated passwords have somewhere to go, or add them first"
        )
    passwords = {user: secrets.token_urlsafe(24) for user in new}
    made = create_team(
        conn, name, directory, operators=operators, agents=agents, passwords=passwords
    )
    for user, password in passwords.items():
        assert password_dir is not None
        write_private(password_dir / user, password + "\n")
        click.echo(f"user {user} created; its password is in {password_dir / user}")
    _show(made)


def _show(made: Team) -> None:
    click.echo(f"team {made.name}: {made.directory or '(no directory)'}")
    click.echo(f"  operators ({made.operators_role}): {', '.join(made.operators) or '-'}")
    click.echo(f"  agents ({made.agents_role}): {', '.join(made.agents) or '-'}")


def _record(made: Team) -> dict[str, object]:
    return {
        "team": made.name,
        "directory": made.directory,
        "operators": list(made.operators),
        "agents": list(made.agents),
    }


@team.command("ls")
@json_option
@click.pass_obj
def ls(session: CliSession, as_json: bool) -> None:
    """Every team, with its directory."""
    found = list_teams(session.connect())
    if as_json:
        emit_json([_record(t) for t in found])
        return
    for made in found:
        click.echo(f"{made.name}\t{made.directory or '-'}")


@team.command("show")
@click.argument("name")
@json_option
@click.pass_obj
def show(session: CliSession, name: str, as_json: bool) -> None:
    """Team NAME: its directory, operators and agents."""
    made = show_team(session.connect(), name)
    if as_json:
        emit_json(_record(made))
    else:
        _show(made)
