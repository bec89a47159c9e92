"""`backup create|ls|show|verify|rm|prune`: backups of the cluster to Swift or a directory
(`backup restore` lives in `backup_restore`).

Where backups go: `--dir PATH`; else Swift when `ST_AUTH` (tempauth: `ST_USER`, `ST_KEY`) or
`OS_AUTH_URL` (Keystone v3: `OS_USERNAME`, `OS_PASSWORD`, `OS_PROJECT_NAME`, ...) is set, into
`--container`; else the user data directory. Only `create` talks to etcd.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from etcdadmin.cli import exits
from etcdadmin.cli.backup_identity import identity_option, load_identities
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option
from etcdadmin.core.backup.errors import BackupAborted
from etcdadmin.core.backup.location import open_location
from etcdadmin.core.backup.segments import DEFAULT_SEGMENT_SIZE, DEFAULT_WORKERS, MiB

if TYPE_CHECKING:
    from etcdadmin.core.backup.location import Location

# Each command imports the part of the backup package it uses, and `restore`, `follow` and
# `restore-at` (modules of their own, each as long as this file) are imported when one of
# them runs: `backup create` spent 0.28 s of its start importing them (the staged changes,
# the online restore, the release history) on a 2-core machine, for a snapshot it streams in
# about 1.5 s.
_SUBCOMMAND_MODULES = {
    "restore": "backup_restore",
    "follow": "backup_follow",
    "restore-at": "backup_follow",
}

# Test hook (an environment variable, so a real process can be stopped mid-upload): fail the
# snapshot upload after this many segments, as a crash or Ctrl-C would.
STOP_AFTER_SEGMENTS_VARIABLE = "ETCDADMIN_BACKUP_STOP_AFTER_SEGMENTS"


class BackupContext:
    """The CLI session plus the backup location, opened on first use and closed at the end."""

    def __init__(self, session: CliSession, directory: str | None, container: str | None):
        self.session = session
        self.directory = directory
        self.container = container
        self._location: Location | None = None

    @property
    def location(self) -> Location:
        if self._location is None:
            self._location = open_location(self.directory, self.container)
        return self._location

    def close(self) -> None:
        if self._location is not None:
            self._location.close()


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class BackupGroup(click.Group):
    """The `backup` group, with the commands of `_SUBCOMMAND_MODULES` imported on first use
    (each such module registers its commands on this group when it is imported)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_SUBCOMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _SUBCOMMAND_MODULES:
            importlib.import_module(f"etcdadmin.cli.{_SUBCOMMAND_MODULES[cmd_name]}")
        return super().get_command(ctx, cmd_name)


@click.group(cls=BackupGroup)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="keep backups in this directory (default: Swift when ST_AUTH or OS_AUTH_URL is set, "
    "else the user data directory)",
)
@click.option(
    "--container",
    envvar="ETCDADMIN_BACKUP_CONTAINER",
    show_envvar=True,
    default="etcdadmin-backups",
    show_default=True,
    help="Swift container (created when missing; segments go to CONTAINER_segments)",
)
@click.pass_context
def backup(ctx: click.Context, directory: str | None, container: str) -> None:
    """Back up the cluster (etcd's snapshot and an export of the keys), list, check, prune."""
    context = BackupContext(ctx.obj, directory, container)
    ctx.obj = context
    ctx.call_on_close(context.close)


class _Progress:
    """Bytes stored so far, on stderr, when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.done = 0
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.done += n
            if self.enabled:
                click.echo(f"\rstored {_size(self.done)}", nl=False, err=True)

    def end(self) -> None:
        if self.enabled and self.done:
            click.echo("", err=True)


@backup.command()
@click.option("--prefix", default="", help="export only the keys under this prefix")
@click.option("--no-export", is_flag=True, help="etcd's snapshot only, without the key export")
@click.option(
    "--encrypt-to",
    "recipients",
    multiple=True,
    metavar="RECIPIENT",
    help="encrypt every object to this age recipient (age1..., ssh-ed25519 ..., ssh-rsa ...); "
    "repeatable",
)
@click.option(
    "--segment-size",
    type=click.IntRange(min=1),
    default=DEFAULT_SEGMENT_SIZE // MiB,
    show_default=True,
    help="MiB per uploaded segment",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=32),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="segments uploaded at once (memory: (workers + 1) x segment size)",
)
@json_option
@click.pass_obj
def create(
    context: BackupContext,
    prefix: str,
    no_export: bool,
    recipients: tuple[str, ...],
    segment_size: int,
    workers: int,
    as_json: bool,
) -> None:
    """Take a backup; prints its id."""
    from etcdadmin.core.backup.create import BackupOptions, create_backup

    stop_after = os.environ.get(STOP_AFTER_SEGMENTS_VARIABLE)
    options = BackupOptions(
        prefix=prefix,
        export=not no_export,
        recipients=recipients,
        segment_size=segment_size * MiB,
        workers=workers,
        stop_after_segments=int(stop_after) if stop_after else None,
    )
    progress = _Progress()
    try:
        manifest = create_backup(
            context.session.connect(), context.location, options, progress=progress
        )
    except (KeyboardInterrupt, BackupAborted):
        progress.end()
        raise exits.Interrupted(
            "stopped: no backup was written (what was uploaded is removed by the next "
            "`etcdadmin backup prune`)"
        ) from None
    progress.end()
    if as_json:
        emit_json(asdict(manifest))
        return
    click.echo(manifest.id)
    click.echo(
        f"{_size(manifest.size)}, revision {manifest.revision}, {manifest.key_count} keys "
        f"exported, in {context.location.description}",
        err=True,
    )


@backup.command(name="ls")
@click.option("--rebuild", is_flag=True, help="rebuild the catalog from every manifest first")
@json_option
@click.pass_obj
def list_backups(context: BackupContext, rebuild: bool, as_json: bool) -> None:
    """Complete backups, oldest first (incomplete uploads are never listed)."""
    from etcdadmin.core.backup.catalog import Catalog

    entries = Catalog(context.location).entries(rebuild=rebuild)
    if as_json:
        emit_json([e.as_dict() for e in entries])
        return
    if not entries:
        click.echo(f"no backups in {context.location.description}", err=True)
    for e in entries:
        verified = f"verified {e.verified_at}" if e.verified_at else "not verified"
        sealed = ", encrypted" if e.encrypted else ""
        click.echo(
            f"{e.id}\t{e.created}\trev {e.revision}\t{_size(e.size)}\t{e.key_count} keys"
            f"{sealed}\t{verified}"
        )


@backup.command()
@click.argument("backup_id", metavar="ID")
@json_option
@click.pass_obj
def show(context: BackupContext, backup_id: str, as_json: bool) -> None:
    """A backup's manifest: source, revision, objects and their SHA-256."""
    from etcdadmin.core.backup.verify import load_manifest

    manifest = load_manifest(context.location, backup_id)
    if as_json:
        emit_json(asdict(manifest))
        return
    exact = "" if manifest.revision_exact else " (writes raced the snapshot: it may be newer)"
    for label, value in (
        ("id", manifest.id),
        ("created", manifest.created),
        ("cluster", manifest.cluster_id),
        ("member", f"{manifest.member_id} via {manifest.endpoint}"),
        ("etcd", manifest.etcd_version),
        ("revision", f"{manifest.revision}{exact}"),
        ("export", f"{manifest.key_count} keys under {manifest.prefix or '(all)'}"),
        ("encrypted to", ", ".join(manifest.encrypted_to) or "-"),
    ):
        click.echo(f"{label}:\t{value}")
    for obj in manifest.objects:
        click.echo(
            f"object:\t{obj.name}\t{_size(obj.size)}\t{len(obj.segments)} segments\t{obj.sha256}"
        )


@backup.command()
@click.argument("backup_id", metavar="ID")
@click.option("--deep", is_flag=True, help="also run `etcdctl snapshot status` on the snapshot")
@identity_option
@json_option
@click.pass_obj
def verify(
    context: BackupContext,
    backup_id: str,
    deep: bool,
    identity_files: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Download every object again and check it; exits 1 when one differs.

    An encrypted backup is checked by the SHA-256 of its stored objects; with --identity,
    its snapshot is also opened and checked against the hash etcd appended to it."""
    from etcdadmin.core.backup.verify import verify_backup

    identities = load_identities(identity_files)
    report = verify_backup(context.location, backup_id, deep=deep, identities=identities)
    if as_json:
        emit_json(asdict(report))
        return
    click.echo(f"{report.id}: {len(report.objects)} objects match their manifest")
    if report.decrypted:
        click.echo("snapshot decrypted: it matches the SHA-256 etcd appended to it")
    if report.snapshot_status:
        status = report.snapshot_status
        click.echo(
            f"etcdctl snapshot status: revision {status.get('revision')}, "
            f"{status.get('totalKey')} keys"
        )


@backup.command()
@click.argument("backup_id", metavar="ID")
@click.pass_obj
def rm(context: BackupContext, backup_id: str) -> None:
    """Delete one backup (its manifest first, then its objects and their segments)."""
    from etcdadmin.core.backup.prune import remove_backup

    remove_backup(context.location, backup_id)
    click.echo(f"removed {backup_id}", err=True)


@backup.command(name="prune")
@click.option("--keep-last", type=click.IntRange(min=0), default=0, help="the newest N")
@click.option("--keep-daily", type=click.IntRange(min=0), default=0, help="newest of D days")
@click.option("--keep-weekly", type=click.IntRange(min=0), default=0, help="newest of W weeks")
@click.option("--keep-monthly", type=click.IntRange(min=0), default=0, help="newest of M months")
@click.option("--dry-run", is_flag=True, help="list what would go, delete nothing")
@json_option
@click.pass_obj
def prune_backups(
    context: BackupContext,
    keep_last: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete the backups a retention policy does not keep, and the leftovers of uploads
    that stopped over an hour ago. The newest verified backup is always kept."""
    from etcdadmin.core.backup.prune import prune
    from etcdadmin.core.backup.retention import RetentionPolicy

    policy = RetentionPolicy(keep_last, keep_daily, keep_weekly, keep_monthly)
    result = prune(context.location, policy, dry_run=dry_run)
    if as_json:
        emit_json(asdict(result))
        return
    verb = "would remove" if dry_run else "removed"
    for backup_id in result.removed:
        click.echo(f"{verb}\t{backup_id}")
    for backup_id in result.leftovers:
        click.echo(f"{verb}\t{backup_id}\t(incomplete upload)")
    click.echo(f"kept {len(result.kept)} backups", err=True)


COMMANDS = (backup,)
