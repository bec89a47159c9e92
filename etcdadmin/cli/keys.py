"""One key at a time: `get`, `put`, `del` (and `del --prefix DIR` for a directory)."""

from __future__ import annotations

import sys

import click

from etcdadmin.cli import exits
from etcdadmin.cli.arguments import KEY
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option, key_record, show, write_stdout
from etcdadmin.cli.writes import apply_changes, yes_option
from etcdadmin.core.changes import DeleteDirectory, DeleteKey, SetValue
from etcdadmin.core.tree.directories import directory_prefix


@click.command()
@click.argument("key", type=KEY)
@click.option("--revision", type=click.IntRange(min=1), help="the value as of this revision")
@json_option
@click.pass_obj
def get(session: CliSession, key: bytes, revision: int | None, as_json: bool) -> None:
    """Print KEY's value, byte for byte (no newline is added unless stdout is a terminal).

    A key that does not exist exits 1 with a message, so a script can tell it from an empty
    value (etcdctl prints nothing and exits 0).
    """
    kv = session.connect().get(key, revision=revision)
    if kv is None:
        at = f" at revision {revision}" if revision else ""
        raise exits.NotFound(f"key {show(key)} not found{at}")
    if as_json:
        emit_json(key_record(kv))
        return
    newline = sys.stdout.isatty() and not kv.value.endswith(b"\n")
    write_stdout(kv.value + b"\n" if newline else kv.value)


@click.command()
@click.argument("key", type=KEY)
@click.option("--value", help="the value (default: read stdin to its end)")
@click.option(
    "--expect-revision",
    type=click.IntRange(min=0),
    help="write only if KEY is still at this mod revision (0: only if it does not exist)",
)
@yes_option
@click.pass_obj
def put(
    session: CliSession, key: bytes, value: str | None, expect_revision: int | None, yes: bool
) -> None:
    """Write KEY, from --value or stdin. The key keeps its lease."""
    if value is not None:
        data = value.encode("utf-8")
    elif sys.stdin.isatty():
        raise click.UsageError("give the value with --value, or on stdin (etcdadmin put K < file)")
    else:
        data = sys.stdin.buffer.read()
    current = session.connect().get(key) if not session.read_only else None
    expected = expect_revision
    if expected is None:
        expected = current.mod_revision if current is not None else 0
    lease = current.lease if current is not None else 0
    apply_changes(session, [SetValue(key, data, expected, lease)], yes=yes)


@click.command(name="del")
@click.argument("name", metavar="KEY|DIR", type=KEY)
@click.option("--prefix", is_flag=True, help="delete the directory NAME and every key under it")
@click.option(
    "--expect-revision",
    type=click.IntRange(min=1),
    help="delete only if KEY is still at this mod revision",
)
@yes_option
@click.pass_obj
def delete(
    session: CliSession, name: bytes, prefix: bool, expect_revision: int | None, yes: bool
) -> None:
    """Delete KEY, or with --prefix the directory and everything under it.

    A directory delete removes exactly the keys read when planning: a key added meanwhile makes
    it conflict (exit 1) instead of vanishing unseen.
    """
    if prefix:
        if expect_revision is not None:
            raise click.UsageError("--expect-revision guards one key; it cannot go with --prefix")
        change: DeleteDirectory | DeleteKey = DeleteDirectory(directory_prefix(name))
    else:
        change = DeleteKey(name, expect_revision)
    apply_changes(session, [change], yes=yes)


COMMANDS = (get, put, delete)
