"""`backup restore ID`: a directory or a key put back online, or a whole cluster recovered.

`--prefix DIR` (or `--key KEY`): the backup's export against live etcd, the diff printed
(values of secrets never shown), a question unless `--yes` (on a production profile the
question is asked on a terminal even with `--yes`; without a terminal, `--yes` is required
everywhere), a safety backup of what is about to be overwritten (its id printed), then
guarded batches with progress on a terminal.

`backup restore-at` (in `backup_follow`) plans from a point in time and then shares this flow
(`write_planned_restore`): the same question, safety backup, progress, Ctrl-C and JSON.

`--data-dir PATH`: the snapshot downloaded and checked, data directories made with etcd's own
tool, and the steps to start the cluster printed.

An encrypted backup (`backup create --encrypt-to`) is opened with `--identity FILE`, else
with the operator's identity from the OS keyring when it is one of the backup's recipients.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from etcdadmin.cli import exits
from etcdadmin.cli.apply import run_interruptible
from etcdadmin.cli.arguments import DIR, KEY
from etcdadmin.cli.backup import BackupContext, backup
from etcdadmin.cli.backup_identity import identity_option, load_identities
from etcdadmin.cli.output import emit_json, json_option, show
from etcdadmin.cli.writes import refuse_if_read_only
from etcdadmin.core.backup.disaster import RestoredMember
from etcdadmin.core.backup.manifest import BackupManifest
from etcdadmin.core.backup.restore_from import (
    BackupRestorePlan,
    plan_from_backup,
    recover_from_backup,
    restore_from_backup,
)
from etcdadmin.core.backup.restore_online import (
    RestoreConflict,
    RestoreInterrupted,
    RestoreReport,
    render_restore_plan,
)
from etcdadmin.core.etcd import EtcdConnection

# etcd's own local three-member layout (its Procfile): client and peer ports per member.
LOCAL_PORTS = ((2379, 12380), (22379, 22380), (32379, 32380))
SINGLE_PORTS = (2379, 2380)


# registers itself on `backup` when imported (`etcdadmin.cli.backup` imports it on first use)
@backup.command()
@click.argument("backup_id", metavar="ID")
@click.option(
    "--prefix", "directory", type=DIR, help="put this directory back as the backup has it"
)
@click.option("--key", "key", type=KEY, help="put this one key back as the backup has it")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="disaster recovery: make new etcd data directories here from the backup's snapshot",
)
@click.option(
    "--members",
    type=click.Choice(["1", "3"]),
    default="1",
    show_default=True,
    help="with --data-dir: members of the restored cluster",
)
@click.option(
    "--client-url",
    "client_urls",
    multiple=True,
    metavar="URL",
    help="with --data-dir: a member's client URL, one per member in order (default: "
    "http://127.0.0.1:2379, and 22379, 32379 for members 2 and 3)",
)
@click.option(
    "--peer-url",
    "peer_urls",
    multiple=True,
    metavar="URL",
    help="with --data-dir: a member's peer URL, one per member in order (default: "
    "http://127.0.0.1:2380, or 12380, 22380, 32380 for three)",
)
@identity_option
@click.option("--yes", "-y", is_flag=True, help="write without asking")
@json_option
@click.pass_obj
def restore(
    context: BackupContext,
    backup_id: str,
    directory: bytes | None,
    key: bytes | None,
    data_dir: Path | None,
    members: str,
    client_urls: tuple[str, ...],
    peer_urls: tuple[str, ...],
    identity_files: tuple[Path, ...],
    yes: bool,
    as_json: bool,
) -> None:
    """Restore a directory (--prefix) or a key (--key) online, or recover a whole cluster
    from the backup's snapshot (--data-dir).

    Online: prints the diff, asks (unless --yes), takes a safety backup of what it
    overwrites into the same location (its id is printed), then writes in guarded batches.
    An encrypted backup opens with --identity FILE, or your operator identity by default.
    Exit 0 done, 1 a key changed meanwhile (the report says how far it got), 2 bad input
    or refused, 3 etcd or the location unreachable, 130 stopped by Ctrl-C.
    """
    asked = (("--prefix", directory), ("--key", key), ("--data-dir", data_dir))
    chosen = [name for name, given in asked if given is not None]
    if len(chosen) != 1:
        raise exits.Refused(
            "name what to restore: one of --prefix DIR, --key KEY or --data-dir PATH"
            + (f" (not {' and '.join(chosen)} together)" if chosen else "")
        )
    identities = load_identities(identity_files)
    if data_dir is not None:
        targets = restored_members(data_dir, int(members), client_urls, peer_urls)
        _recover(context, backup_id, targets, identities, as_json)
        return
    _restore_online(context, backup_id, directory, key, identities, yes=yes, as_json=as_json)


def _restore_online(
    context: BackupContext,
    backup_id: str,
    directory: bytes | None,
    key: bytes | None,
    identities: list[object] | None,
    *,
    yes: bool,
    as_json: bool,
) -> None:
    session = context.session
    refuse_if_read_only(session)
    conn = session.connect()
    planned = plan_from_backup(
        conn, context.location, backup_id, directory=directory, key=key, identities=identities
    )
    write_planned_restore(context, conn, planned, yes=yes, as_json=as_json)


def write_planned_restore(
    context: BackupContext,
    conn: EtcdConnection,
    planned: BackupRestorePlan,
    *,
    yes: bool,
    as_json: bool,
) -> None:
    """Show the plan, ask (`_confirm`), then take the safety backup and write with progress
    and Ctrl-C: the one flow of `backup restore` and `backup restore-at` once planned."""
    plan = planned.plan
    state = planned.point_in_time
    if not as_json:
        click.echo(render_restore_plan(plan), nl=False)
        if state is not None:
            click.echo(
                f"from {state.base_backup} and {state.deltas_used} deltas "
                f"({state.changes_applied} changes replayed)",
                err=True,
            )
    if plan.empty:
        if as_json:
            emit_json(_json(planned, None, None))
        held = "the backup has it" if state is None else f"it was at revision {state.revision}"
        click.echo(f"nothing to restore: {show(planned.target)} is as {held}", err=True)
        return
    _confirm(context, planned, yes)
    show_progress = sys.stderr.isatty() and not as_json
    safety: list[BackupManifest] = []

    def took(manifest: BackupManifest) -> None:
        safety.append(manifest)
        click.echo(f"safety backup of {show(planned.target)}: {manifest.id}", err=True)

    def progress(done: int, total: int) -> None:
        if show_progress:
            click.echo(f"\rrestored {done} of {total} keys", err=True, nl=done == total)

    def work(cancel: threading.Event) -> RestoreReport:
        return restore_from_backup(
            conn, context.location, planned, progress=progress, cancel=cancel, on_safety_backup=took
        )

    try:
        report = run_interruptible(work)
    except RestoreConflict as exc:
        where = f" (safety backup {safety[0].id})" if safety else ""
        raise exits.Conflict(f"{exc}{where}") from None
    except RestoreInterrupted as exc:
        where = f" (safety backup {safety[0].id})" if safety else ""
        raise exits.EtcdFailure(f"{exc}{where}") from None
    if as_json:
        emit_json(_json(planned, report, safety[0] if safety else None))
    click.echo(report.describe(), err=True)
    if report.cancelled:
        where = f"; safety backup {safety[0].id}" if safety else ""
        raise exits.Interrupted(
            f"cancelled: {report.describe()}{where}; run the restore again to finish"
        )


def _confirm(context: BackupContext, planned: BackupRestorePlan, yes: bool) -> None:
    """Ask before writing: --yes answers, except on a production profile with a terminal to
    ask on (a restore rewrites a whole directory there); without a terminal, --yes is needed."""
    session = context.session
    terminal = sys.stdin.isatty()
    if yes and not (session.production and terminal):
        return
    if not terminal:
        raise exits.Refused(
            "no terminal to confirm the restore on: nothing was written; review the diff and "
            "pass --yes to write"
        )
    where = f"profile {session.profile.name}" if session.profile.name else "etcd"
    production = " (PRODUCTION)" if session.production else ""
    state = planned.point_in_time
    origin = (
        f"backup {planned.backup.id}"
        if state is None
        else f"revision {state.revision} (backup {state.base_backup} and "
        f"{state.deltas_used} deltas)"
    )
    question = (
        f"Restore {show(planned.target)} on {where}{production} from {origin} "
        f"({planned.plan.total} keys to write)?"
    )
    if not click.confirm(question, err=True):
        raise exits.Refused("nothing was written")


def _json(
    planned: BackupRestorePlan, report: RestoreReport | None, safety: BackupManifest | None
) -> dict[str, Any]:
    plan = planned.plan
    shape: dict[str, Any] = {
        "backup": planned.backup.id,
        "target": show(planned.target),
        "plan": {
            "revision": plan.revision,
            "backup_revision": plan.backup_revision,
            "add": [show(c.key) for c in plan.to_add],
            "change": [show(c.key) for c in plan.to_change],
            "delete": [show(c.key) for c in plan.to_delete],
            "unchanged": plan.unchanged,
        },
        "safety_backup": safety.id if safety is not None else None,
        "result": None
        if report is None
        else {
            "written_keys": report.written_keys,
            "total_keys": plan.total,
            "batches": report.batches,
            "revisions": list(report.result.revisions),
            "cancelled": report.cancelled,
        },
    }
    state = planned.point_in_time
    if state is not None:
        # the fields `restore-at --json` has always printed, next to the shared ones
        shape |= {
            "prefix": state.prefix,
            "revision": state.revision,
            "base_backup": state.base_backup,
            "deltas": state.deltas_used,
            "written": report.written_keys if report is not None else 0,
        }
    return shape


def _recover(
    context: BackupContext,
    backup_id: str,
    members: list[RestoredMember],
    identities: list[object] | None,
    as_json: bool,
) -> None:
    recovered = recover_from_backup(context.location, backup_id, members, identities=identities)
    if as_json:
        emit_json(
            {
                "backup": backup_id,
                "revision": recovered.snapshot.revision,
                "bumped_by": recovered.bumped_by,
                "members": [{**asdict(m), "data_dir": str(m.data_dir)} for m in recovered.members],
                "commands": [list(c) for c in recovered.commands],
                "steps": recovered.steps,
            }
        )
        return
    click.echo(recovered.steps, nl=False)


def restored_members(
    data_dir: Path, count: int, client_urls: tuple[str, ...], peer_urls: tuple[str, ...]
) -> list[RestoredMember]:
    """One member at `data_dir` itself, or three in `data_dir/member-N.etcd`."""
    for label, urls in (("--client-url", client_urls), ("--peer-url", peer_urls)):
        if urls and len(urls) != count:
            raise exits.Refused(
                f"give {label} once per member ({count}), in member order, or not at all"
            )
    defaults = (SINGLE_PORTS,) if count == 1 else LOCAL_PORTS[:count]
    members = []
    for i, (client_port, peer_port) in enumerate(defaults):
        name = "default" if count == 1 else f"member-{i + 1}"
        members.append(
            RestoredMember(
                name,
                peer_url=peer_urls[i] if peer_urls else f"http://127.0.0.1:{peer_port}",
                client_url=client_urls[i] if client_urls else f"http://127.0.0.1:{client_port}",
                data_dir=data_dir if count == 1 else data_dir / f"{name}.etcd",
            )
        )
    return members
