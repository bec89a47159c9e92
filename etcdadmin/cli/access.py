"""`etcdadmin access ...`: auth on and off, directory grants, who can reach what.

Users and roles are in `cli/accounts.py`, teams in `cli/teams.py`; this module holds the group.
Every change needs a connection that may write (a read-only profile refuses it).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

from etcdadmin.cli import accounts, exits, teams
from etcdadmin.cli.arguments import DIR
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option, show
from etcdadmin.cli.secret_input import new_password
from etcdadmin.cli.writes import refuse_if_read_only
from etcdadmin.core.access.enabling import ROOT, auth_enabled, disable_auth, enable_auth
from etcdadmin.core.access.grants import grant_directory, revoke_directory
from etcdadmin.core.access.reach import Grant, describe_permission, what_user_reaches, who_can_reach
from etcdadmin.core.etcd import ConnectionSettings


@click.group()
def access() -> None:
    """Users, roles, teams and what they may reach (etcd auth)."""


def _root_password(session: CliSession, path: Path | None) -> str:
    given = path is not None or os.environ.get("ETCDADMIN_ROOT_PASSWORD")
    if not given and session.profile.user in ("", ROOT) and session.profile.password:
        return session.profile.password
    return new_password("etcd user root", path, "ETCDADMIN_ROOT_PASSWORD")


def _operator_settings(session: CliSession, root_password: str) -> ConnectionSettings:
    """The operator's settings; root (the default) logs in with the root password."""
    if session.profile.user in ("", ROOT):
        return replace(session.profile.settings(session.timeout), user=ROOT, password=root_password)
    return session.settings()


@access.command()
@click.option(
    "--root-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="root's password (else ETCDADMIN_ROOT_PASSWORD, the root login's, or a prompt)",
)
@click.pass_obj
def enable(session: CliSession, root_password_file: Path | None) -> None:
    """Enable etcd auth without locking anyone out.

    Makes `root` (with the root role) and sets its password first, enables auth, then logs in
    as root and as --user; if a login fails, auth is disabled again and nothing is locked.
    """
    refuse_if_read_only(session)
    root_password = _root_password(session, root_password_file)
    outcome = enable_auth(_operator_settings(session, root_password), root_password)
    if outcome.already_enabled:
        click.echo(f"auth was already enabled; {outcome.operator} can log in")
        return
    made = "created" if outcome.root_created else "password set"
    click.echo(f"auth enabled (root {made}); {outcome.operator} logged in afterwards")


@access.command()
@click.pass_obj
def disable(session: CliSession) -> None:
    """Disable etcd auth (as root or a user with the root role)."""
    refuse_if_read_only(session)
    if disable_auth(session.settings()):
        click.echo("auth disabled: every client may read and write every key again")
    else:
        click.echo("auth was not enabled")


@access.command()
@click.pass_obj
def status(session: CliSession) -> None:
    """Say whether etcd auth is enabled (asked without logging in)."""
    settings = replace(session.profile.settings(session.timeout), user=None, password=None)
    click.echo("auth is enabled" if auth_enabled(settings) else "auth is disabled")


@access.command()
@click.argument("role")
@click.argument("directory", metavar="DIR", type=DIR)
@click.option("--read", "level", flag_value="read", help="read only")
@click.option("--readwrite", "level", flag_value="readwrite", help="read and write")
@click.pass_obj
def grant(session: CliSession, role: str, directory: bytes, level: str | None) -> None:
    """Give ROLE read (--read) or read-write (--readwrite) on every key of DIR.

    A grant already there is replaced, so --read after --readwrite takes writing away.
    """
    refuse_if_read_only(session)
    if level is None:
        raise exits.Refused("say what ROLE may do on DIR: --read or --readwrite")
    permission = grant_directory(session.connect(), role, directory, level)  # type: ignore[arg-type]
    click.echo(f"role {role}: {level} on {describe_permission(permission)}")


@access.command()
@click.argument("role")
@click.argument("directory", metavar="DIR", type=DIR)
@click.pass_obj
def revoke(session: CliSession, role: str, directory: bytes) -> None:
    """Take ROLE's grant on DIR away."""
    refuse_if_read_only(session)
    revoke_directory(session.connect(), role, directory)
    click.echo(f"role {role}: nothing on {show(directory)}")


def _records(grants: list[Grant]) -> list[dict[str, object]]:
    return [
        {
            "user": g.user,
            "role": g.role,
            "access": g.permission.kind,
            "range": describe_permission(g.permission),
            "whole": g.whole,
        }
        for g in grants
    ]


def _print(grants: list[Grant], as_json: bool, empty: str) -> None:
    if as_json:
        emit_json(_records(grants))
        return
    if not grants:
        click.echo(empty, err=True)
    for record in _records(grants):
        part = "" if record["whole"] else "  (part of it)"
        click.echo(
            f"{record['user']}\t{record['role']}\t{record['access']}\t{record['range']}{part}"
        )


@access.command()
@click.argument("directory", metavar="DIR", type=DIR)
@json_option
@click.pass_obj
def who(session: CliSession, directory: bytes, as_json: bool) -> None:
    """Who can reach DIR: user, role, access and the range granted, one per line."""
    grants = who_can_reach(session.connect(), directory)
    _print(grants, as_json, f"no user can reach {show(directory)} (root aside, if none holds it)")


@access.command()
@click.argument("user")
@json_option
@click.pass_obj
def what(session: CliSession, user: str, as_json: bool) -> None:
    """What USER can reach: role, access and range, one per line."""
    grants = what_user_reaches(session.connect(), user)
    _print(grants, as_json, f"user {user} holds no permission")


access.add_command(accounts.user)
access.add_command(accounts.role)
access.add_command(teams.team)

COMMANDS = (access,)
