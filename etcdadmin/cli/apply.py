"""`etcdadmin apply -f config.yml --dir DIR`: a directory made to hold exactly what a file says.

Like `terraform plan` then `apply`: the plan (keys to add, change and, with `--prune`, remove;
values of secret paths never shown; values tagged `!secret` encrypted and shown as "secret
(added/changed/unchanged)") is printed first, then written only after `--yes` or a "yes"
on the terminal. The writing is the core's (`etcdadmin.core.changes.desired`): batches that
each fit one etcd transaction, each guarded by the revisions the plan read and by the range of
the directory it covers, so a key of DIR written by someone else since the plan, one the plan
changes or one it leaves alone (like terraform's stale plan), stops the apply with nothing of
that batch written, and the message says which keys and how far it got. Ctrl-C stops between
two batches, never inside one.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import click

from etcdadmin.cli import exits
from etcdadmin.cli.arguments import DIR
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option
from etcdadmin.cli.secrets import OperatorSealer
from etcdadmin.cli.writes import refuse_if_read_only
from etcdadmin.core.changes.desired import (
    DesiredPlan,
    DesiredResult,
    apply_desired,
    plan_desired,
)
from etcdadmin.core.changes.desired_display import plan_json, render_plan
from etcdadmin.core.config.documents import SECRET_TAG
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.releases.history import PublishNote, publisher

log = logging.getLogger(__name__)

T = TypeVar("T")


@click.command()
@click.option(
    "-f",
    "--file",
    "source",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="the config file (YAML) the directory must hold; - reads stdin",
)
@click.option("--dir", "directory", required=True, type=DIR, help="the etcd directory")
@click.option("--prune", is_flag=True, help="also remove the keys of DIR the file does not name")
@click.option(
    "--dry-run",
    is_flag=True,
    help="print the plan and write nothing; exit 1 when there is something to change",
)
@click.option("--yes", "-y", is_flag=True, help="write without asking")
@json_option
@click.pass_obj
def apply(
    session: CliSession,
    source: Any,
    directory: bytes,
    prune: bool,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Make DIR hold exactly the keys the config file maps to (the agent's mapping).

    Values tagged `!secret` (password: !secret hunter2) are encrypted for DIR's recipients and
    shown only as "secret (added/changed/unchanged)"; `!secret sha256:...` (what `export`
    prints) keeps the secret etcd holds.

    Prints the plan, then writes it in guarded transactions after --yes or a "yes" on the
    terminal. Exit 0 done (or nothing to change), 1 a key of DIR written by someone else
    since the plan (that batch wrote nothing), 2 bad input or refused, 130 stopped by Ctrl-C
    between two batches.
    """
    try:
        text = source.read()
    except UnicodeDecodeError:
        raise exits.Refused(f"{source.name} is not UTF-8 text: save it as UTF-8") from None
    if not dry_run:
        refuse_if_read_only(session)
    conn = session.connect()
    # Values marked `!secret` are sealed while planning (the plan holds envelopes only); your
    # identity joins the directory's recipients then, except for a dry run.
    sealer = OperatorSealer(conn, join=not dry_run) if SECRET_TAG in text else None
    plan = plan_desired(conn, directory, text, prune=prune, secrets=sealer)
    if not as_json:
        click.echo(render_plan(plan), nl=False)
    if plan.empty or dry_run:
        if as_json:
            emit_json({"plan": plan_json(plan), "result": None})
        if not plan.empty:
            raise click.exceptions.Exit(exits.DIFFERENT)
        return
    _confirm(session, plan, yes)
    note = PublishNote("apply", publisher(session.settings()), directory=plan.directory)
    result = _apply(conn, plan, note, show_progress=sys.stderr.isatty() and not as_json)
    if as_json:
        emit_json({"plan": plan_json(plan), "result": _result_json(result)})
    click.echo(result.describe(), err=True)
    if result.cancelled:
        raise exits.Interrupted(f"cancelled: {result.describe()}; plan and apply again to finish")


def _confirm(session: CliSession, plan: DesiredPlan, yes: bool) -> None:
    if yes:
        return
    where = f"profile {session.profile.name}" if session.profile.name else "etcd"
    if not sys.stdin.isatty():
        raise exits.Refused(
            "no terminal to confirm the plan on: nothing was written; review the plan "
            "(--dry-run) and pass --yes to write"
        )
    production = " (PRODUCTION)" if session.production else ""
    if not click.confirm(f"Write these changes to {where}{production}?", err=True):
        raise exits.Refused("nothing was written")


def _apply(
    conn: EtcdConnection, plan: DesiredPlan, note: PublishNote, *, show_progress: bool
) -> DesiredResult:
    def progress(done: int, total: int) -> None:
        if show_progress:
            click.echo(f"\rwritten {done} of {total} keys", err=True, nl=done == total)

    return run_interruptible(
        # exact: every batch also guards its part of the directory, so that a key the plan
        # leaves alone, or one created since, cannot change under the plan unseen.
        lambda cancel: apply_desired(
            conn, plan, progress=progress, cancel=cancel, exact=True, record=note
        )
    )


def run_interruptible(work: Callable[[threading.Event], T]) -> T:
    """Run batched writes on a worker thread so Ctrl-C here asks it to stop between batches
    instead of breaking a transaction in flight (whose outcome would then be unknown).

    While the worker runs, SIGINT only sets its cancel event (a handler of this process's
    own), so no Ctrl-C, a second one included, can raise in the middle of this function: a
    KeyboardInterrupt that landed inside CPython 3.11's `Thread.join` left the thread reported
    dead while it still ran, and the outcome was read before the worker had written it.
    """
    cancel, finished = threading.Event(), threading.Event()
    outcome: list[T | BaseException] = []

    def run() -> None:
        try:
            outcome.append(work(cancel))
        except BaseException as exc:  # handed to the main thread, which raises it
            outcome.append(exc)
        finally:
            finished.set()

    def stop(signum: int, frame: object) -> None:
        if not cancel.is_set():
            click.echo("\nstopping after the batch in flight ...", err=True)
            cancel.set()

    try:
        previous: Any = signal.signal(signal.SIGINT, stop)
        taken = True
    except ValueError:  # not the main thread (a program calling the CLI): no signal to take
        taken = False
    try:
        threading.Thread(target=run, name="apply", daemon=True).start()
        while not finished.wait(0.2):
            pass
    finally:
        if taken:  # None: a handler not set from Python, which this one stood in for
            signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _result_json(result: DesiredResult) -> dict[str, Any]:
    return {
        "written_keys": result.applied_keys,
        "total_keys": result.total_keys,
        "revisions": list(result.revisions),
        "cancelled": result.cancelled,
    }


COMMANDS = (apply,)
