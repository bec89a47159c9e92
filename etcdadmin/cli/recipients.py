"""`keys`: who can open a directory's secrets (its recipients, public keys kept in etcd), and
`keys rotate DIR` to re-encrypt its secrets after they changed.

A recipient added or removed changes nothing already written: until `keys rotate DIR`, a new
recipient cannot open the existing secrets and a removed one still can.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from etcdadmin.cli import exits
from etcdadmin.cli.apply import run_interruptible
from etcdadmin.cli.arguments import DIR
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option, show
from etcdadmin.cli.writes import confirm_production, yes_option
from etcdadmin.core.secrets.errors import BadKeyFile
from etcdadmin.core.secrets.identities import new_agent_key, write_key_pair
from etcdadmin.core.secrets.recipients import (
    Recipient,
    RecipientBook,
    add_recipient,
    describe,
    remove_recipient,
)
from etcdadmin.core.secrets.rotation import apply_rotation, plan_rotation
from etcdadmin.core.secrets.sealer import SecretSealer

_ROTATE_HINT = "existing secrets change only with `etcdadmin keys rotate {dir}`"


@click.group()
def keys() -> None:
    """Recipients: the public keys a directory's secrets are encrypted to."""


@keys.command()
@click.argument("name")
@click.option("--dir", "directory", required=True, type=DIR, help="the directory it may read")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="where to write the private key (0600; the public key goes to OUT.pub)",
)
@click.option(
    "--type", "kind", type=click.Choice(["ed25519", "rsa"]), default="ed25519", show_default=True
)
@yes_option
@click.pass_obj
def new(session: CliSession, name: str, directory: bytes, out: Path, kind: str, yes: bool) -> None:
    """Make a key pair for an agent and publish its public key as a recipient of DIR.

    Give the private key file to the agent (its PRIVATE_KEY setting); it is never sent to etcd.
    """
    confirm_production(session, [f"add recipient {name} to {show(directory)}"], yes=yes)
    conn = session.connect()
    if out.exists():
        raise BadKeyFile(f"{out} exists; refusing to overwrite a key file")
    key = new_agent_key("rsa" if kind == "rsa" else "ed25519", comment=name)
    public_path = write_key_pair(out, key)
    try:
        add_recipient(conn, directory, Recipient(name, key.public_key, "agent"))
    except BaseException:
        # Nobody may hold a private key whose public half was never published: remove both.
        for path in (out, public_path):
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    click.echo(f"wrote {out} (private, 0600) and {public_path}")
    click.echo(
        f"{name} is a recipient of {show(directory)}; " + _ROTATE_HINT.format(dir=show(directory)),
        err=True,
    )


@keys.command()
@click.argument("name")
@click.option("--dir", "directory", required=True, type=DIR, help="the directory it may read")
@click.option(
    "--public-key",
    "public_key",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="an ssh-rsa or ssh-ed25519 .pub file, or a file holding an age1... key",
)
@click.option(
    "--role", type=click.Choice(["agent", "operator"]), default="agent", show_default=True
)
@yes_option
@click.pass_obj
def add(
    session: CliSession, name: str, directory: bytes, public_key: Any, role: str, yes: bool
) -> None:
    """Add an existing public key as a recipient of DIR."""
    text = public_key.read().strip()
    recipient = Recipient(name, text, "operator" if role == "operator" else "agent")
    recipient.to_pyrage()  # refuse a bad key before asking anything
    confirm_production(session, [f"add recipient {name} to {show(directory)}"], yes=yes)
    if not add_recipient(session.connect(), directory, recipient):
        click.echo(f"{name} already holds this key in {show(directory)}: nothing changed", err=True)
        return
    click.echo(f"added {name} ({recipient.fingerprint}) to {show(directory)}")
    click.echo(_ROTATE_HINT.format(dir=show(directory)), err=True)


@keys.command(name="ls")
@click.argument("directory", metavar="[DIR]", type=DIR, required=False)
@json_option
@click.pass_obj
def ls_keys(session: CliSession, directory: bytes | None, as_json: bool) -> None:
    """The recipients of DIR and of the directories below it (no DIR: of every directory)."""
    book = RecipientBook.read(session.connect())
    rows = [
        {
            "name": r.name,
            "role": r.role,
            "fingerprint": r.fingerprint,
            "type": r.kind,
            "directory": show(prefix),
        }
        for prefix, recipients in sorted(book.by_directory.items())
        if directory is None or prefix.startswith(directory)
        for r in recipients
    ]
    if as_json:
        emit_json(rows)
        return
    if not rows and directory is not None:
        governing = book.governing(directory)
        where = f"those of {show(governing)}" if governing else "nobody: add a recipient first"
        click.echo(f"{show(directory)} has no recipients of its own; its secrets go to {where}")
    for row in rows:
        click.echo(f"{row['directory']}\t{row['name']}\t{row['role']}\t{row['fingerprint']}")


@keys.command(name="rm")
@click.argument("name")
@click.option("--dir", "directory", required=True, type=DIR, help="the directory")
@yes_option
@click.pass_obj
def rm(session: CliSession, name: str, directory: bytes, yes: bool) -> None:
    """Remove recipient NAME from DIR (it still opens what was written before a rotation)."""
    confirm_production(session, [f"remove recipient {name} from {show(directory)}"], yes=yes)
    if not remove_recipient(session.connect(), directory, name):
        raise exits.NotFound(f"{show(directory)} has no recipient named {name}")
    click.echo(f"removed {name} from {show(directory)}")
    click.echo(_ROTATE_HINT.format(dir=show(directory)), err=True)


@keys.command()
@click.argument("directory", metavar="DIR", type=DIR)
@yes_option
@click.pass_obj
def rotate(session: CliSession, directory: bytes, yes: bool) -> None:
    """Re-encrypt every secret of DIR to its current recipients.

    Written in guarded batches: a secret changed meanwhile stops the rotation (exit 1) with
    that batch unwritten, saying how far it got; run it again. A secret you cannot open is
    named and left as it is (exit 2 once the others are done).
    """
    confirm_production(session, [f"re-encrypt the secrets of {show(directory)}"], yes=yes)
    conn = session.connect()
    sealer = SecretSealer(conn, join=False)
    rotation = plan_rotation(conn, directory, sealer)
    governing = sealer.book.governing(directory)
    recipients = (
        describe(sealer.book.by_directory[governing]) if governing else "their directories'"
    )
    if rotation.count:
        click.echo(
            f"re-encrypting {rotation.count} secrets of {show(directory)} for: {recipients}",
            err=True,
        )
        show_progress = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if show_progress:
                click.echo(f"\rre-encrypted {done} of {total}", err=True, nl=done == total)

        result = run_interruptible(
            lambda cancel: apply_rotation(conn, rotation, progress=progress, cancel=cancel)
        )
        click.echo(result.describe(), err=True)
        if result.cancelled:
            raise exits.Interrupted(f"cancelled: {result.describe()}; rotate again to finish")
    elif not rotation.unreadable:
        click.echo(f"no secrets under {show(directory)}: nothing to re-encrypt", err=True)
    if rotation.unreadable:
        names = "; ".join(f"{show(u.key)} ({u.reason})" for u in rotation.unreadable)
        raise exits.Refused(
            f"{len(rotation.unreadable)} secrets could not be opened with your identity and "
            f"stay encrypted to their old recipients: {names}. Write them again "
            "(`etcdadmin secret put KEY`) or rotate as an operator who can open them"
        )


COMMANDS = (keys,)
