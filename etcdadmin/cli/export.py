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
    # The first page is asked for now, and each next one while this process writes the one
    # before (`ahead`); what writing needs (PyYAML, the mapping, the envelope format: 0.05-0.1
    # s of imports) is imported while etcd answers the first.
    pages = session.connect().iter_plain_pages(prefix, keys_only=False, ahead=True)
    from etcdadmin.core.environments.compare import read_rendered

    read = read_rendered(prefix, pages, render=not reveal)
    from etcdadmin.cli.output import show, write_stdout

    if not read.keys:  # an empty file, as for an empty directory, but a typo should show
        click.echo(f"no keys under {show(prefix)}", err=True)
    if read.text is not None:
        write_stdout(read.text.encode("utf-8"))  # a config file: UTF-8 whatever the locale
        return
    items = list(zip(read.keys, read.values, strict=True))
    from etcdadmin.cli.secrets import operator_opener
    from etcdadmin.core.environments.transfer import render_marked

    opener = operator_opener() if reveal else None
    if opener is not None and not opener.available:
        raise exits.Refused(
            "--reveal needs your identity and none is on this workstation: import it "
            "(`etcdadmin identity import FILE`)"
        )
    write_stdout(render_marked(prefix, items, opener).encode("utf-8"))


COMMANDS = (export,)
