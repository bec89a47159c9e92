"""A key's earlier values from etcd's MVCC history: `history`, and `restore` of one of them."""

from __future__ import annotations

from typing import Any

import click

from etcdadmin.cli import exits
from etcdadmin.cli.arguments import KEY
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option, show, value_fields
from etcdadmin.cli.writes import apply_changes, refuse_if_read_only, yes_option
from etcdadmin.core.changes.history import KeyVersion, key_history, restore_change
from etcdadmin.core.tree.valueformat import preview

# A value in the text listing is cut here; --json carries whole values.
_PREVIEW = 60


@click.command()
@click.argument("key", type=KEY)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@click.pass_obj
def history(session: CliSession, key: bytes, limit: int, as_json: bool) -> None:
    """List KEY's versions, newest first, back to etcd's compaction point."""
    found = key_history(session.connect(), key, limit=limit)
    if as_json:
        versions: list[dict[str, Any]] = []
        for version in found.versions:
            record: dict[str, Any] = {
                "revision": version.revision,
                "version": version.version,
                "create_revision": version.create_revision,
                "deleted": version.value is None,
            }
            if version.value is not None:
                record.update(value_fields(version.value))
            versions.append(record)
        emit_json(
            {"key": show(key), "compacted_before": found.compacted_before, "versions": versions}
        )
        return
    if not found.versions:
        click.echo(f"{show(key)} has no history (never written, or compacted away)", err=True)
    for version in found.versions:
        shown = "(deleted)" if version.value is None else preview(version.value, _PREVIEW)
        click.echo(f"{version.revision}\tv{version.version}\t{shown}")
    if found.compacted_before:
        click.echo(f"versions before revision {found.compacted_before} are compacted", err=True)


@click.command()
@click.argument("key", type=KEY)
@click.option(
    "--revision", type=click.IntRange(min=1), required=True, help="put back the value of then"
)
@yes_option
@click.pass_obj
def restore(session: CliSession, key: bytes, revision: int, yes: bool) -> None:
    """Write KEY's value as it was at --revision, guarded by its current revision."""
    refuse_if_read_only(session)
    conn = session.connect()
    then = conn.get(key, revision=revision)
    if then is None:
        raise exits.Refused(
            f"key {show(key)} did not exist at revision {revision}: see etcdadmin history"
        )
    change = restore_change(KeyVersion.from_kv(then), conn.get(key))
    apply_changes(session, [change], yes=yes)


COMMANDS = (history, restore)
