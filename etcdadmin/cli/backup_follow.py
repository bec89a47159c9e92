"""`backup follow` and `backup restore-at`: continuous protection and point-in-time restore.

Registered on the `backup` group of `etcdadmin.cli.backup`, so they share its `--dir` and
`--container` options and the swift CLI's credential variables.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import FrameType

import click

from etcdadmin.cli import exits
from etcdadmin.cli.arguments import DIR
from etcdadmin.cli.backup import BackupContext, backup
from etcdadmin.cli.backup_identity import identity_option, load_identities
from etcdadmin.cli.backup_restore import write_planned_restore
from etcdadmin.cli.output import json_option
from etcdadmin.cli.writes import refuse_if_read_only
from etcdadmin.core.backup.continuous import FollowOptions, follow_backup
from etcdadmin.core.backup.deltas import FollowStatus, parse_time
from etcdadmin.core.backup.point_in_time import PointInTimeUnavailable
from etcdadmin.core.backup.restore_from import plan_at
from etcdadmin.core.etcd.follow import Follower


def _print_status(as_json: bool) -> Callable[[FollowStatus], None]:
    def report(status: FollowStatus) -> None:
        if as_json:
            # one JSON object per line: a supervisor or a benchmark reads them as they come
            click.echo(json.dumps(asdict(status)), nl=True)
            sys.stdout.flush()
            return
        click.echo(
            f"recovery point: revision {status.revision}, {status.lag_seconds:.1f}s old "
            f"({status.event}, {status.deltas_written} deltas)",
            err=True,
        )

    return report


@backup.command()
@click.option("--prefix", default="", help="record only the keys under this prefix")
@click.option(
    "--flush-seconds",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="store a delta at least this often while changes come",
)
@click.option(
    "--flush-events",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="store a delta once this many changes are buffered",
)
@click.option(
    "--status-seconds",
    type=click.FloatRange(min=0.05),
    default=10.0,
    show_default=True,
    help="while idle, write the status object and print the recovery point this often",
)
@json_option
@click.pass_obj
def follow(
    context: BackupContext,
    prefix: str,
    flush_seconds: float,
    flush_events: int,
    status_seconds: float,
    as_json: bool,
) -> None:
    """Record every change into delta objects, from the newest full backup on (taking one
    first if needed), until SIGTERM or Ctrl-C, which store what is buffered and exit 0.

    Prints the recovery point (the newest revision stored, and its age) after each delta; a
    compaction or a gap in the watch starts a new full backup."""
    stop = threading.Event()
    followers: list[Follower] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        for f in followers:
            f.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    report = _print_status(as_json)
    follow_backup(
        context.session.connect(),
        context.location,
        FollowOptions(prefix, flush_seconds, flush_events, status_seconds),
        report=report,
        stop=stop,
        on_follower=followers.append,
    )


@backup.command(name="restore-at")
@click.option("--prefix", "directory", required=True, type=DIR, help="the directory to put back")
@click.option("--at", "at_time", metavar="TIME", help="ISO-8601 time (UTC unless a zone is given)")
@click.option(
    "--at-revision", type=click.IntRange(min=1), help="the revision to restore to, instead of --at"
)
@identity_option
@click.option("--yes", "-y", is_flag=True, help="restore without asking")
@json_option
@click.pass_obj
def restore_at(
    context: BackupContext,
    directory: bytes,
    at_time: str | None,
    at_revision: int | None,
    identity_files: tuple[Path, ...],
    yes: bool,
    as_json: bool,
) -> None:
    """Put DIR back as it was at --at TIME or --at-revision N: the newest full backup before
    then plus the deltas `backup follow` recorded. The rest is `backup restore --prefix`'s:
    the diff, the question (asked on a production profile's terminal even with --yes), a
    safety backup, guarded batches with progress; Ctrl-C stops between batches. An encrypted
    base backup opens with --identity FILE, or your operator identity by default."""
    if (at_time is None) == (at_revision is None):
        raise click.UsageError("give one of --at TIME or --at-revision N")
    session = context.session
    refuse_if_read_only(session)
    try:
        moment = parse_time(at_time) if at_time else None
    except ValueError:
        raise click.BadParameter(
            "not an ISO-8601 time: write it like 2026-12-02T01:02:03Z", param_hint="--at"
        ) from None
    try:
        # The one rule for a directory (`app` is `app/`, never `apple/` too), as `restore --prefix`.
        prefix = directory.decode("utf-8")
    except UnicodeDecodeError:
        raise click.BadParameter("not UTF-8 text", param_hint="--prefix") from None
    identities = load_identities(identity_files)
    conn = session.connect()
    try:
        planned = plan_at(
            conn,
            context.location,
            prefix,
            at_time=moment,
            at_revision=at_revision,
            identities=identities,
        )
    except PointInTimeUnavailable as exc:
        raise exits.NotFound(str(exc)) from None
    write_planned_restore(context, conn, planned, yes=yes, as_json=as_json)


# Registered on the `backup` group above; nothing at the top level.
COMMANDS: tuple[click.Command, ...] = ()
