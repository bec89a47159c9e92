"""`etcdadmin export DIR`: a directory as the YAML config file an agent renders from it.

A module of its own so that the command imports no more than it uses (see `main`'s command
table): reading and rendering 100,000 keys is what an operator waits for, not the staged-change
machinery of `copy` or `diff`.
"""

from __future__ import annotations

import click

from etcdadmin.cli.arguments import DIR
from etcdadmin.cli.connection import CliSession
from etcdadmin.core.environments.compare import export_directory


@click.command()
@click.argument("directory", metavar="DIR", type=DIR)
@click.pass_obj
def export(session: CliSession, directory: bytes) -> None:
    """Print DIR as the YAML config file an agent renders from it.

    No --json: YAML is already what scripts (and `apply -f`) read.
    """
    click.echo(export_directory(session.connect(), directory), nl=False)


COMMANDS = (export,)
