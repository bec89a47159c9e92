"""`identity`: the operator's own age identity, kept in the OS keyring (never in a file).

`show` prints its public key; `export --out FILE` writes it encrypted with a passphrase, to
carry it to another workstation, where `import FILE` keeps it in that keyring. The passphrase
comes from ETCDADMIN_IDENTITY_PASSPHRASE or a prompt without echo, never from the command line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from etcdadmin.cli import exits
from etcdadmin.core.private_file import write_private
from etcdadmin.core.secrets.operator import (
    OperatorIdentity,
    default_name,
    export_identity,
    import_identity,
    load_operator_identity,
)

PASSPHRASE_VARIABLE = "ETCDADMIN_IDENTITY_PASSPHRASE"


def _passphrase(*, confirm: bool) -> str:
    given = os.environ.get(PASSPHRASE_VARIABLE)
    if given:
        return given
    if not sys.stdin.isatty():
        raise exits.Refused(
            f"no passphrase: set {PASSPHRASE_VARIABLE}, or run in a terminal to be asked"
        )
    return str(
        click.prompt(
            "Passphrase for the identity file",
            hide_input=True,
            confirmation_prompt=confirm,
            err=True,
        )
    )


def _current() -> OperatorIdentity:
    identity = load_operator_identity(create=False)
    if identity is None:
        raise exits.NotFound(
            "this workstation holds no operator identity yet: `etcdadmin secret put` makes one, "
            "or `etcdadmin identity import FILE` brings yours from another workstation"
        )
    return identity


@click.group()
def identity() -> None:
    """Your identity (an age X25519 key in the OS keyring) that opens the secrets you write."""


@identity.command()
def show() -> None:
    """Print your public key (age1...) and the recipient name it gets in a directory."""
    current = _current()
    click.echo(current.public_key)
    click.echo(f"recipient name: {default_name()}", err=True)


@identity.command(name="export")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the file to write (0600), encrypted with a passphrase",
)
def export_command(out: Path) -> None:
    """Write your identity to FILE, encrypted with a passphrase (age's scrypt)."""
    current = _current()
    if out.exists():
        raise exits.Refused(f"{out} exists; choose another file name")
    data = export_identity(current, _passphrase(confirm=True))
    write_private(out, data.decode("ascii"))
    click.echo(
        f"wrote {out}: carry it to the other workstation and run `etcdadmin identity import`"
    )


@identity.command(name="import")
@click.argument(
    "source", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--replace", is_flag=True, help="replace the identity this workstation holds")
def import_command(source: Path, replace: bool) -> None:
    """Keep the identity exported to FILE in this workstation's OS keyring."""
    imported = import_identity(source.read_bytes(), _passphrase(confirm=False), replace=replace)
    click.echo(imported.public_key)
    click.echo("the identity is kept in the OS keyring", err=True)


COMMANDS = (identity,)
