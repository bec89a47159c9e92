"""`etcdadmin export DIR`: a directory as the YAML config file an agent renders from it.

A module of its own so that the command imports no more than it uses (see `main`'s command
table): reading and rendering 100,000 keys is what an operator waits for, not the staged-change
machinery of `copy` or `diff`. Secrets encrypted in etcd are printed `!secret sha256:...` (their
fingerprint), or with `--reveal` `!secret VALUE`; the code that does so is imported only when
the directory holds one.
"""

from __future__ import annotations

import click

from etcdadmin.cli import exits
from etcdadmin.cli.arguments import DIR
from etcdadmin.cli.connection import CliSession
from etcdadmin.core.environments.compare import read_values, render_directory
from etcdadmin.core.secrets.envelope import is_envelope
from etcdadmin.core.tree.directories import directory_prefix


@click.command()
@click.argument("directory", metavar="DIR", type=DIR)
@click.option("--reveal", is_flag=True, help="print secrets' values (`!secret VALUE`)")
@click.pass_obj
def export(session: CliSession, directory: bytes, reveal: bool) -> None:
    """Print DIR as the YAML config file an agent renders from it.

    Encrypted values are printed `!secret sha256:...` (their fingerprint): `apply -f` of the
    file keeps them as they are. With --reveal, `!secret VALUE`. No --json: YAML is already
    what scripts (and `apply -f`) read.
    """
    prefix = directory_prefix(directory)
    items = read_values(session.connect(), prefix)
    if not reveal and not any(is_envelope(value) for _, value in items):
        click.echo(render_directory(prefix, items), nl=False)
        return
    from etcdadmin.cli.secrets import operator_opener
    from etcdadmin.core.environments.transfer import render_marked

    opener = operator_opener() if reveal else None
    if opener is not None and not opener.available:
        raise exits.Refused(
            "--reveal needs your identity and none is on this workstation: import it "
            "(`etcdadmin identity import FILE`)"
        )
    click.echo(render_marked(prefix, items, opener), nl=False)


COMMANDS = (export,)
