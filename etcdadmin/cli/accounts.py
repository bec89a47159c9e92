"""`etcdadmin access user ...` and `etcdadmin access role ...`."""

from __future__ import annotations

from pathlib import Path

import click

from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option
from etcdadmin.cli.secret_input import new_password, password_file_option
from etcdadmin.cli.writes import refuse_if_read_only
from etcdadmin.core.access import accounts as core
from etcdadmin.core.access.reach import describe_permission


@click.group()
def user() -> None:
    """etcd users: add, rm, ls, and their roles."""


@user.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="give the new user this role (repeatable)")
@password_file_option
@click.pass_obj
def user_add(
    session: CliSession, name: str, roles: tuple[str, ...], password_file: Path | None
) -> None:
    """Add user NAME; its password from --password-file, ETCDADMIN_NEW_PASSWORD or a prompt."""
    refuse_if_read_only(session)
    core.check_name("user", name)
    password = new_password(f"etcd user {name}", password_file, "ETCDADMIN_NEW_PASSWORD")
    core.add_user(session.connect(), name, password, roles)
    click.echo(f"user {name} added" + (f" with role {', '.join(roles)}" if roles else ""))


@user.command("rm")
@click.argument("name")
@click.pass_obj
def user_rm(session: CliSession, name: str) -> None:
    """Remove user NAME (its roles stay)."""
    refuse_if_read_only(session)
    core.remove_user(session.connect(), name)
    click.echo(f"user {name} removed")


@user.command("ls")
@json_option
@click.pass_obj
def user_ls(session: CliSession, as_json: bool) -> None:
    """Every user and its roles."""
    users = core.list_users(session.connect())
    if as_json:
        emit_json([{"user": u.name, "roles": list(u.roles)} for u in users])
        return
    for account in users:
        click.echo(f"{account.name}\t{','.join(account.roles) or '-'}")


@user.command("grant-role")
@click.argument("name")
@click.argument("role_name", metavar="ROLE")
@click.pass_obj
def user_grant_role(session: CliSession, name: str, role_name: str) -> None:
    """Give user NAME the role ROLE."""
    refuse_if_read_only(session)
    core.give_role(session.connect(), name, role_name)
    click.echo(f"user {name}: role {role_name} given")


@user.command("revoke-role")
@click.argument("name")
@click.argument("role_name", metavar="ROLE")
@click.pass_obj
def user_revoke_role(session: CliSession, name: str, role_name: str) -> None:
    """Take the role ROLE from user NAME."""
    refuse_if_read_only(session)
    core.take_role(session.connect(), name, role_name)
    click.echo(f"user {name}: role {role_name} taken away")


@click.group()
def role() -> None:
    """etcd roles: add, rm, ls (grant and revoke give them directories)."""


@role.command("add")
@click.argument("name")
@click.pass_obj
def role_add(session: CliSession, name: str) -> None:
    """Add role NAME, with no permission yet."""
    refuse_if_read_only(session)
    core.add_role(session.connect(), name)
    click.echo(f"role {name} added")


@role.command("rm")
@click.argument("name")
@click.pass_obj
def role_rm(session: CliSession, name: str) -> None:
    """Remove role NAME (users holding it lose what it granted)."""
    refuse_if_read_only(session)
    core.remove_role(session.connect(), name)
    click.echo(f"role {name} removed")


@role.command("ls")
@json_option
@click.pass_obj
def role_ls(session: CliSession, as_json: bool) -> None:
    """Every role and its permissions."""
    roles = core.list_roles(session.connect())
    if as_json:
        emit_json(
            [
                {
                    "role": r.name,
                    "permissions": [
                        {"access": p.kind, "range": describe_permission(p)} for p in r.permissions
                    ],
                }
                for r in roles
            ]
        )
        return
    for grants in roles:
        shown = [f"{p.kind} {describe_permission(p)}" for p in grants.permissions]
        if grants.name == "root":
            shown = ["everything"]
        click.echo(f"{grants.name}\t{'; '.join(shown) or '-'}")
