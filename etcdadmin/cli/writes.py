"""The one way the CLI writes: the core's guarded changes, with the profile's write policy.

Read-only profiles refuse before touching etcd. Production profiles show what will change and
ask; `--yes` skips the question, and without a terminal to ask on, the write is refused. The
changes are planned at one revision and applied as one transaction guarded by every key the
plan read (`etcdadmin.core.changes`), so a key changed meanwhile makes the whole write
conflict and nothing is written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

import click

from etcdadmin.cli import exits
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import show
from etcdadmin.core.changes import Applied, PendingChange, Plan
from etcdadmin.core.changes.changeset import name_conflicts
from etcdadmin.core.changes.diff import diff_text
from etcdadmin.core.changes.workspace import Workspace
from etcdadmin.core.releases.history import publisher

log = logging.getLogger(__name__)


def yes_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--yes", "-y", is_flag=True, help="write to a production profile without asking"
    )(f)


def _describe(plan: Plan) -> list[str]:
    lines = []
    for step in plan.steps:
        if step.after is None:
            verb = "delete"
        elif step.before is None:
            verb = "create"
        else:
            verb = "set"
        lines.append(f"  {verb} {show(step.key)}")
    return lines


def refuse_if_read_only(session: CliSession) -> None:
    """Refuse before anything is read: the core's `Workspace` refuses too, but only once the
    command has connected."""
    if session.read_only:
        name = session.profile.name or "this connection"
        raise exits.Refused(
            f"{name} is read-only: nothing was written; use a profile that may write"
        )


def apply_changes(
    session: CliSession,
    changes: Iterable[PendingChange],
    *,
    yes: bool,
    if_stale: str = "read the keys again and retry",
) -> None:
    """Plan, confirm where the profile asks for it, and apply as one guarded transaction.

    The policy (read-only refuses, production asks) is the core's `Workspace`, the same one the
    desktop client's changes panel uses; only the question is asked here, on the terminal.
    A change already stale when planned (a copy onto names that exist) is a conflict, exit 1,
    nothing written, and `if_stale` says what to do.
    """
    refuse_if_read_only(session)
    conn = session.connect()
    workspace = Workspace(
        read_only=session.read_only,
        production=session.production,
        confirm=lambda plan, what: _confirm(session, plan, yes),
        publisher=publisher(session.settings()),
    )
    for change in changes:
        workspace.stage(change)
    batch = workspace.begin_apply()
    plan = batch.plan(conn)
    if not plan.steps and not plan.stale:
        click.echo("nothing to change: etcd already holds this", err=True)
        return
    if plan.stale:  # not worth a question: nothing of it would be written
        raise exits.Conflict(f"{name_conflicts(plan.stale)}. Nothing was written; {if_stale}")
    if not workspace.approve(batch, plan):
        raise exits.Refused("nothing was written")
    applied: Applied = batch.write(conn, plan)
    workspace.finish(batch, applied)
    deleted = sum(1 for step in plan.steps if step.after is None)
    written = len(plan.steps) - deleted
    done = [
        f"{verb} {n} key{'s' if n != 1 else ''}"
        for verb, n in (("wrote", written), ("deleted", deleted))
        if n
    ]
    click.echo(f"{', '.join(done)} at revision {applied.revision}")


def confirm_production(session: CliSession, lines: list[str], *, yes: bool) -> None:
    """The production policy for writes that are not staged changes (recipients, a rotation):
    read-only refuses; production shows `lines` and asks unless --yes; no terminal refuses."""
    refuse_if_read_only(session)
    if not session.production:
        return
    name = session.profile.name
    click.echo(f"production profile {name}:", err=True)
    for line in lines:
        click.echo(f"  {line}", err=True)
    if yes:
        return
    if not sys.stdin.isatty():
        raise exits.Refused(
            f"{name} is a production profile and there is no terminal to confirm on: nothing "
            "was written; pass --yes to write"
        )
    if not click.confirm(f"Write this to {name}?", err=True):
        raise exits.Refused("nothing was written")


def _confirm(session: CliSession, plan: Plan, yes: bool) -> bool:
    name = session.profile.name
    count = len(plan.steps)
    click.echo(
        f"production profile {name}: {count} change(s) at revision {plan.revision}", err=True
    )
    for line in _describe(plan):
        click.echo(line, err=True)
    if yes:
        return True
    if not sys.stdin.isatty():
        raise exits.Refused(
            f"{name} is a production profile and there is no terminal to confirm on: nothing "
            "was written; pass --yes to write"
        )
    # The values, for the operator's own screen only: never logged. Secrets are masked there
    # (an envelope by its fingerprint, a secret-named value as "(secret)").
    click.echo(diff_text(plan), err=True, nl=False)
    return bool(click.confirm(f"Write these changes to {name}?", err=True))
