"""`etcdadmin release ...`: gray releases to chosen agents, promote, abandon, and the release
history of a directory with rollback.

    release create DIR --labels region=eu -f changes.yml [--delete KEY ...]
    release ls DIR [--json]          release show ID [--json]
    release promote ID [--yes]       release abandon ID [--yes]
    release history DIR [--json]     release rollback DIR --to REV | --steps N [--yes]

The writing is the core's (`etcdadmin.core.releases`): guarded transactions, each recorded in
the history by the same transaction. Production profiles show what will happen and ask
(`writes.confirm_production`); a rollback always shows its plan and asks unless --yes, like
`etcdadmin apply`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from etcdadmin.cli import exits
from etcdadmin.cli.apply import run_interruptible
from etcdadmin.cli.arguments import DIR, KEY
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option, show
from etcdadmin.cli.secrets import OperatorSealer
from etcdadmin.cli.writes import confirm_production, refuse_if_read_only, yes_option
from etcdadmin.core.changes.desired_display import plan_json, render_plan
from etcdadmin.core.config.documents import SECRET_TAG
from etcdadmin.core.releases.gray import (
    GrayRelease,
    ReleaseError,
    find_release,
    parse_labels,
    read_releases,
)
from etcdadmin.core.releases.history import PublishRecord, publisher, read_history
from etcdadmin.core.releases.publish import (
    abandon_release,
    create_release,
    draft_release,
    promote_release,
)
from etcdadmin.core.releases.rollback import apply_rollback, plan_rollback, target_revision

log = logging.getLogger(__name__)


@click.group()
def release() -> None:
    """Gray releases to chosen agents, and the release history of a directory."""


def _who(session: CliSession) -> str:
    return publisher(session.settings())


def _release_json(r: GrayRelease) -> dict[str, Any]:
    return {
        "id": r.release_id,
        "directory": show(r.directory),
        "agents": list(r.agents),
        "labels": dict(r.labels),
        "who": r.who,
        "created_at": r.created_at,
        "base_revision": r.base_revision,
        "puts": [show(k[len(r.directory) :]) for k in sorted(r.puts)],
        "deletes": [show(k[len(r.directory) :]) for k in r.deletes],
    }


@release.command()
@click.argument("directory", metavar="DIR", type=DIR)
@click.option("--agents", default="", help="comma list of agent ids the release goes to")
@click.option("--labels", default="", help="labels the agents must all carry: region=eu,tier=web")
@click.option(
    "-f",
    "--file",
    "source",
    type=click.File("r", encoding="utf-8"),
    help="YAML of the keys to change (the agent's mapping; !secret seals a value)",
)
@click.option("--delete", "deletes", multiple=True, type=KEY, help="a key to remove (repeatable)")
@yes_option
@json_option
@click.pass_obj
def create(
    session: CliSession,
    directory: bytes,
    agents: str,
    labels: str,
    source: Any,
    deletes: tuple[bytes, ...],
    yes: bool,
    as_json: bool,
) -> None:
    """Publish changes to DIR to the agents named by --agents or --labels only.

    The others keep the directory's config. Promote writes the changes into DIR; abandon
    returns the chosen agents to DIR's config. Exit 0 created, 1 a key changed meanwhile,
    2 bad input or refused.
    """
    ids = [a.strip() for a in agents.split(",") if a.strip()]
    try:
        wanted = parse_labels(labels, "--labels")
    except ReleaseError as exc:
        raise exits.Refused(str(exc)) from None
    if source is None and not deletes:
        raise exits.Refused("name the changes: -f changes.yml and/or --delete KEY")
    text = source.read() if source is not None else ""
    refuse_if_read_only(session)
    conn = session.connect()
    sealer = OperatorSealer(conn) if SECRET_TAG in text else None
    draft = draft_release(
        conn,
        directory,
        text,
        agents=ids,
        labels=wanted,
        deletes=deletes,
        who=_who(session),
        secrets=sealer,
    )
    if not as_json:
        click.echo(render_plan(draft.plan), nl=False, err=True)
        for key in draft.release.deletes:
            click.echo(f"  {show(key[len(directory) :])}: delete", err=True)
    if draft.empty:
        raise exits.Refused("the release changes nothing: every key already holds that value")
    confirm_production(
        session,
        [f"gray release of {show(directory)} to {draft.release.describe_targets()}"],
        yes=yes,
    )
    applied = create_release(conn, draft)
    if as_json:
        emit_json({**_release_json(draft.release), "revision": applied.revision})
        return
    click.echo(draft.release.release_id)
    click.echo(
        f"gray release {draft.release.release_id} created at revision {applied.revision} for "
        f"{draft.release.describe_targets()}",
        err=True,
    )


@release.command(name="ls")
@click.argument("directory", metavar="DIR", type=DIR)
@json_option
@click.pass_obj
def list_releases(session: CliSession, directory: bytes, as_json: bool) -> None:
    """The active gray releases of DIR."""
    found = read_releases(session.connect(), directory)
    if as_json:
        emit_json([_release_json(r) for r in found])
        return
    if not found:
        click.echo(f"no active gray release in {show(directory)}", err=True)
    for r in found:
        click.echo(
            f"{r.release_id}\t{r.describe_targets()}\t{len(r.keys)} keys\t{r.who}\t{r.created_at}"
        )


def dir_option(f: Any) -> Any:
    return click.option(
        "--dir",
        "directory",
        type=DIR,
        help="the release's directory (a user granted some directories only must name it)",
    )(f)


@release.command(name="show")
@click.argument("release_id", metavar="ID")
@dir_option
@json_option
@click.pass_obj
def show_release(
    session: CliSession, release_id: str, directory: bytes | None, as_json: bool
) -> None:
    """One gray release: its targets and the keys it changes (secret values masked)."""
    r = find_release(session.connect(), release_id, directory)
    data = _release_json(r)
    if as_json:
        emit_json(data)
        return
    click.echo(f"release {r.release_id} of {show(r.directory)}")
    click.echo(f"  to {r.describe_targets()}")
    click.echo(f"  by {r.who} at {r.created_at}, based on revision {r.base_revision}")
    for name in data["puts"]:
        click.echo(f"  set {name}")
    for name in data["deletes"]:
        click.echo(f"  delete {name}")


@release.command()
@click.argument("release_id", metavar="ID")
@dir_option
@yes_option
@click.pass_obj
def promote(session: CliSession, release_id: str, directory: bytes | None, yes: bool) -> None:
    """Write the release into its directory for every agent, and remove it.

    One guarded transaction (batches past etcd's 128 operations, saying how far they got).
    Exit 1 when a key it changes was changed in the directory since the release was made.
    """
    refuse_if_read_only(session)
    conn = session.connect()
    r = find_release(conn, release_id, directory)
    confirm_production(
        session, [f"promote {release_id}: {len(r.keys)} keys of {show(r.directory)}"], yes=yes
    )
    result = promote_release(conn, release_id, who=_who(session), directory=r.directory)
    click.echo(f"promoted {release_id}: {result.describe()}")


@release.command()
@click.argument("release_id", metavar="ID")
@dir_option
@yes_option
@click.pass_obj
def abandon(session: CliSession, release_id: str, directory: bytes | None, yes: bool) -> None:
    """Remove the release: its agents return to the directory's config."""
    refuse_if_read_only(session)
    conn = session.connect()
    r = find_release(conn, release_id, directory)
    confirm_production(
        session, [f"abandon {release_id} ({r.describe_targets()} of {show(r.directory)})"], yes=yes
    )
    result = abandon_release(conn, release_id, who=_who(session), directory=r.directory)
    click.echo(f"abandoned {release_id}: {result.describe()}")


def _record_json(r: PublishRecord) -> dict[str, Any]:
    return {
        "revision": r.revision,
        "directory": r.directory,
        "kind": r.kind,
        "who": r.who,
        "when": r.when,
        "keys": list(r.keys),
        "key_count": r.key_count,
        "release": r.release,
        "detail": r.detail,
        "batch": r.batch,
    }


@release.command()
@click.argument("directory", metavar="DIR", type=DIR)
@json_option
@click.pass_obj
def history(session: CliSession, directory: bytes, as_json: bool) -> None:
    """Every publish to DIR recorded, newest first: revision, kind, who, when, keys."""
    records = read_history(session.connect(), directory)
    if as_json:
        emit_json([_record_json(r) for r in reversed(records)])
        return
    if not records:
        click.echo(f"no publish recorded for {show(directory)}", err=True)
    for r in reversed(records):
        keys = ", ".join(r.keys[:5]) + (f" and {r.key_count - 5} more" if r.key_count > 5 else "")
        click.echo(f"{r.revision}\t{r.title}\t{r.who}\t{r.when}\t{keys}")


@release.command()
@click.argument("directory", metavar="DIR", type=DIR)
@click.option("--to", "revision", type=click.IntRange(min=1), help="the revision to restore")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    help="the N-th latest publish to go back to (2: the release before last)",
)
@click.option("--yes", "-y", is_flag=True, help="write without asking")
@json_option
@click.pass_obj
def rollback(
    session: CliSession,
    directory: bytes,
    revision: int | None,
    steps: int | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Make DIR hold exactly its keys as of an earlier revision, as a new guarded publish.

    The keys are read at that revision from etcd; a compacted revision is refused (restore a
    backup then). Prints the plan, then writes after --yes or a "yes" on the terminal.
    """
    if (revision is None) == (steps is None):
        raise exits.Refused("name the revision to go back to: --to REV or --steps N")
    refuse_if_read_only(session)
    conn = session.connect()
    if steps is not None:
        revision = target_revision(read_history(conn, directory), steps)
    assert revision is not None
    plan = plan_rollback(conn, directory, revision)
    if not as_json:
        click.echo(f"rolling {show(directory)} back to revision {revision}", err=True)
        click.echo(render_plan(plan), nl=False)
    if plan.empty:
        if as_json:
            emit_json({"revision": revision, "plan": plan_json(plan), "result": None})
        return
    _confirm(session, yes, revision)
    who = _who(session)
    result = run_interruptible(
        lambda cancel: apply_rollback(conn, plan, revision, who=who, cancel=cancel)
    )
    if as_json:
        emit_json(
            {
                "revision": revision,
                "plan": plan_json(plan),
                "result": {
                    "written_keys": result.applied_keys,
                    "revisions": list(result.revisions),
                },
            }
        )
    click.echo(result.describe(), err=True)
    if result.cancelled:
        raise exits.Interrupted(f"cancelled: {result.describe()}; roll back again to finish")


def _confirm(session: CliSession, yes: bool, revision: int) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise exits.Refused(
            "no terminal to confirm the rollback on: nothing was written; review the plan and "
            "pass --yes to write"
        )
    production = " (PRODUCTION)" if session.production else ""
    where = f"profile {session.profile.name}" if session.profile.name else "etcd"
    if not click.confirm(f"Roll back to revision {revision} on {where}{production}?", err=True):
        raise exits.Refused("nothing was written")


COMMANDS = (release,)
