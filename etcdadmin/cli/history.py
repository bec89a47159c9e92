"""A key's earlier values from etcd's MVCC history: `history`, and `restore` of one of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from etcdadmin.cli import exits
from etcdadmin.cli.arguments import KEY
from etcdadmin.cli.backup_identity import identity_option, load_identities
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option, show, value_fields
from etcdadmin.cli.writes import apply_changes, refuse_if_read_only, yes_option
from etcdadmin.core.backup.location import open_location
from etcdadmin.core.backup.point_in_time import key_history_from_backups
from etcdadmin.core.changes.history import KeyHistory, KeyVersion, key_history, restore_change
from etcdadmin.core.tree.valueformat import preview

# A value in the text listing is cut here; --json carries whole values.
_PREVIEW = 60


@click.command()
@click.argument("key", type=KEY)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--backups",
    is_flag=True,
    help="also list the versions kept in full backups and `backup follow` deltas, past "
    "etcd's compaction (location as for `etcdadmin backup`)",
)
@click.option(
    "--backup-dir",
    type=click.Path(file_okay=False),
    help="with --backups: the backups' directory (default: Swift when ST_AUTH or OS_AUTH_URL "
    "is set, else the user data directory)",
)
@click.option(
    "--container",
    envvar="ETCDADMIN_BACKUP_CONTAINER",
    default="etcdadmin-backups",
    show_default=True,
    help="with --backups: the Swift container",
)
@identity_option(
    help="with --backups: private keys that open encrypted backups (an age identity file or "
    "an OpenSSH private key), tried with your operator identity from the OS keyring; "
    "repeatable"
)
@json_option
@click.pass_obj
def history(
    session: CliSession,
    key: bytes,
    limit: int,
    backups: bool,
    backup_dir: str | None,
    container: str,
    identity_files: tuple[Path, ...],
    as_json: bool,
) -> None:
    """List KEY's versions, newest first, back to etcd's compaction point (with --backups,
    also the older ones the backups kept)."""
    if identity_files and not backups:
        raise click.UsageError("--identity opens encrypted backups: add --backups")
    found = key_history(session.connect(), key, limit=limit)
    if backups:
        identities = load_identities(identity_files)
        _history_with_backups(session, key, found, backup_dir, container, identities, as_json)
        return
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


def _history_with_backups(
    session: CliSession,
    key: bytes,
    found: KeyHistory,
    backup_dir: str | None,
    container: str,
    identities: list[object] | None,
    as_json: bool,
) -> None:
    """etcd's versions and the backups' ones, merged by revision (etcd's win: they carry the
    version number). Encrypted backups are searched with `identities` and the operator's
    own; those none of them opens are named, never skipped without a word."""
    _, cluster = session.connect().header(key)
    location = open_location(backup_dir, container)
    try:
        searched = key_history_from_backups(
            location,
            key,
            cluster_id=f"{cluster:016x}",
            identities=identities,
            operator_identity=True,
        )
    finally:
        location.close()
    kept = searched.versions
    live = {v.revision for v in found.versions}
    rows: list[tuple[int, str, bytes | None, str]] = [
        (v.revision, f"v{v.version}", v.value, "etcd") for v in found.versions
    ]
    rows += [(b.revision, b.time, b.value, b.source) for b in kept if b.revision not in live]
    rows.sort(key=lambda r: r[0], reverse=True)
    if as_json:
        versions: list[dict[str, Any]] = []
        for revision, when, value, source in rows:
            record: dict[str, Any] = {
                "revision": revision,
                "source": source,
                "deleted": value is None,
            }
            record["version" if source == "etcd" else "time"] = when
            if value is not None:
                record.update(value_fields(value))
            versions.append(record)
        emit_json(
            {
                "key": show(key),
                "compacted_before": found.compacted_before,
                "versions": versions,
                "unsearched_backups": list(searched.unsearched),
            }
        )
        return
    if not rows:
        click.echo(f"{show(key)} has no history in etcd or in the backups", err=True)
    for revision, when, value, source in rows:
        shown = "(deleted)" if value is None else preview(value, _PREVIEW)
        click.echo(f"{revision}\t{when}\t{shown}\t{source}")
    if searched.unsearched:
        count = len(searched.unsearched)
        click.echo(
            f"{count} encrypted backup{'s were' if count != 1 else ' was'} not searched, "
            f"no identity at hand opens {'them' if count != 1 else 'it'} "
            f"({', '.join(searched.unsearched)}): pass --identity FILE with a recipient's "
            "private key",
            err=True,
        )


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
    current, _ = conn.header(key)
    if revision > current:
        raise exits.Refused(
            f"revision {revision} is after etcd's current revision {current}: "
            f"see etcdadmin history {show(key)}"
        )
    then = conn.get(key, revision=revision)
    if then is None:
        raise exits.Refused(
            f"key {show(key)} did not exist at revision {revision}: see etcdadmin history"
        )
    change = restore_change(KeyVersion.from_kv(then), conn.get(key))
    apply_changes(session, [change], yes=yes)


COMMANDS = (history, restore)
