"""Directories: `ls`, `diff` of two directories, `copy` (`export` has a module of its own).

`diff` never prints the values of secret paths (`etcdadmin.core.config.sensitive`): it says
that they differ. Secrets encrypted in etcd are compared by their opened values ("secret same",
"secret differs", or "secret (cannot compare)" without an identity that opens both); `export`
prints them as `!secret sha256:...` unless `--reveal`; `copy` re-encrypts them for the target.
"""

from __future__ import annotations

import click

from etcdadmin.cli import exits
from etcdadmin.cli.arguments import DIR
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option, show, value_fields
from etcdadmin.cli.secrets import OperatorSealer, operator_opener
from etcdadmin.cli.writes import apply_changes, yes_option
from etcdadmin.core.access.reach import describe_permission
from etcdadmin.core.access.visible import visible_keys
from etcdadmin.core.changes.desired_display import SECRET
from etcdadmin.core.config.sensitive import is_secret
from etcdadmin.core.environments.compare import DiffEntry, compare_directories
from etcdadmin.core.environments.transfer import copy_changes
from etcdadmin.core.errors import EtcdPermissionDenied
from etcdadmin.core.tree.index import KeyIndex
from etcdadmin.core.tree.valueformat import preview


@click.command()
@click.argument("directory", metavar="[DIR]", type=DIR, required=False)
@click.option("-r", "--recursive", is_flag=True, help="every key below DIR, not only its children")
@json_option
@click.pass_obj
def ls(session: CliSession, directory: bytes | None, recursive: bool, as_json: bool) -> None:
    """List DIR's children: sub-directories end with '/'. No DIR: the top level."""
    prefix = directory or b""
    conn = session.connect()
    index = KeyIndex()
    try:
        for page in conn.iter_plain_pages(prefix):
            index.extend_sorted(page.keys)
    except EtcdPermissionDenied:
        # A user granted some directories only: list what its roles let it read.
        listing = visible_keys(conn, prefix)
        index = KeyIndex()
        index.extend_sorted(list(listing.keys))
        ranges = ", ".join(describe_permission(p) for p in listing.ranges)
        click.echo(f"showing only what this user may read: {ranges}", err=True)
    records: list[dict[str, object]] = []
    if recursive:
        records = [{"path": show(key), "kind": "key"} for key in index.keys_under(prefix)]
    else:
        for child in index.children_under(prefix):
            if child.is_dir:
                keys_below = child.count - (1 if child.is_key else 0)
                records.append(
                    {"path": show(child.path) + "/", "kind": "directory", "keys": keys_below}
                )
            if child.is_key:
                records.append({"path": show(child.path), "kind": "key"})
    if as_json:
        emit_json(records)
        return
    for record in records:
        click.echo(str(record["path"]))


def _secret(entry: DiffEntry) -> bool:
    """Whether the entry's values are secrets, which `diff` never prints (the same rule as the
    plan of `apply`: `etcdadmin.core.config.sensitive`, and any encrypted value)."""
    values = [kv.value for kv in (entry.left, entry.right) if kv is not None]
    return entry.secret is not None or is_secret(show(entry.relative), *values)


@click.command()
@click.argument("left", metavar="DIR_A", type=DIR)
@click.argument("right", metavar="DIR_B", type=DIR)
@click.option("--keys-only", is_flag=True, help="name the differing keys, without their values")
@json_option
@click.pass_obj
def diff(session: CliSession, left: bytes, right: bytes, keys_only: bool, as_json: bool) -> None:
    """Compare two directories key by key; exit 1 when they differ, 0 when they are equal.

    Lines: '- KEY' only in DIR_A, '+ KEY' only in DIR_B, '~ KEY' different (then both values).
    """
    result = compare_directories(session.connect(), left, right, opener=operator_opener())
    if as_json:
        entries = []
        for entry in result.entries:
            record: dict[str, object] = {"key": show(entry.relative), "status": entry.status}
            secret = _secret(entry)
            if secret:
                record["secret"] = entry.secret or True
            if not keys_only:
                for side, kv in (("left", entry.left), ("right", entry.right)):
                    if kv is None:
                        record[side] = None
                    else:
                        record[side] = {"value": SECRET} if secret else value_fields(kv.value)
            entries.append(record)
        emit_json(
            {
                "left": show(result.left),
                "right": show(result.right),
                "revision": result.revision,
                "identical": result.identical,
                "differences": entries,
                "same_secrets": [show(relative) for relative in result.same_secrets],
            }
        )
    else:
        marks = {"only_left": "-", "only_right": "+", "different": "~"}
        for entry in result.entries:
            click.echo(f"{marks[entry.status]} {show(entry.relative)}")
            if not keys_only and entry.status == "different":
                assert entry.left is not None and entry.right is not None
                if entry.secret == "cannot compare":
                    click.echo("    secret (cannot compare)")
                    continue
                if entry.secret == "differs":
                    click.echo("    secret differs")
                    continue
                if _secret(entry):
                    click.echo(f"    {SECRET}: the values differ")
                    continue
                click.echo(f"    {show(result.left)}: {preview(entry.left.value)}")
                click.echo(f"    {show(result.right)}: {preview(entry.right.value)}")
        if not keys_only:
            for relative in result.same_secrets:
                click.echo(f"  {show(relative)}\n    secret same")
        click.echo(
            f"{len(result.entries)} different, {result.identical} identical "
            f"at revision {result.revision}",
            err=True,
        )
    if not result.same:
        raise click.exceptions.Exit(exits.DIFFERENT)


@click.command()
@click.argument("source", metavar="DIR_A", type=DIR)
@click.argument("target", metavar="DIR_B", type=DIR)
@click.option(
    "--force", is_flag=True, help="overwrite keys of DIR_B whose value differs from DIR_A's"
)
@yes_option
@click.pass_obj
def copy(session: CliSession, source: bytes, target: bytes, force: bool, yes: bool) -> None:
    """Copy every key of DIR_A into DIR_B, as one guarded transaction.

    Without --force DIR_B must hold none of the names: any that exists is a conflict (exit 1,
    nothing written). With --force, differing keys are overwritten; keys only in DIR_B stay.
    Secrets are re-encrypted for their new key and DIR_B's recipients; one you cannot open
    stops the copy (nothing written).
    """
    conn = session.connect()
    changes = copy_changes(conn, source, target, OperatorSealer(conn), force=force)
    if not changes and force:
        click.echo("nothing to change: etcd already holds this", err=True)
        return
    apply_changes(
        session,
        changes,
        yes=yes,
        if_stale="pass --force to overwrite the keys of DIR_B whose value differs",
    )


COMMANDS = (ls, diff, copy)
