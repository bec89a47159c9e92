"""Roll a directory back to an earlier revision, as a new guarded publish.

The directory's keys are read as they were at that revision (etcd keeps every revision until
it is compacted) and the directory is made to hold exactly them, through the same plan and
batched, guarded apply as `etcdadmin apply -f --prune` (`etcdadmin.core.changes.desired`). The
rollback is a publish of its own: it is recorded in the history and can itself be rolled back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from etcdadmin.core.changes.desired import DesiredPlan, DesiredResult, apply_desired, plan_state
from etcdadmin.core.errors import RevisionCompacted
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.releases.gray import ReleaseError
from etcdadmin.core.releases.history import GRAY_ONLY, PublishNote, PublishRecord
from etcdadmin.core.tree.directories import directory_prefix

log = logging.getLogger(__name__)


class RollbackCompacted(ReleaseError):
    """The revision to roll back to was compacted away: etcd no longer holds it."""


def target_revision(history: list[PublishRecord], steps: int) -> int:
    """The revision of the `steps`-th latest publish that changed the directory itself
    (1: the latest, 2: the one before it, "the release before last"); gray releases created
    or abandoned changed only what some agents see, not the directory, and are not counted."""
    if steps < 1:
        raise ReleaseError("--steps counts publishes back from the latest: use 1 or more")
    published = [r for r in history if r.kind not in GRAY_ONLY]
    # A publish in batches is one release: count its last batch only.
    releases = [
        r for r in published if not r.batch or r.batch.split("/")[0] == r.batch.split("/")[-1]
    ]
    if len(releases) < steps:
        raise ReleaseError(
            f"the history holds {len(releases)} publishes of this directory, fewer than "
            f"{steps}: `etcdadmin release history DIR` lists them; roll back --to a revision"
        )
    return releases[-steps].revision


def plan_rollback(conn: EtcdConnection, directory: bytes, revision: int) -> DesiredPlan:
    """What it takes for `directory` to hold exactly its keys as of `revision`."""
    prefix = directory_prefix(directory)

    def wanted() -> dict[bytes, bytes]:
        try:
            return conn.read_prefix(prefix, revision=revision).as_dict()
        except RevisionCompacted:
            raise RollbackCompacted(
                f"revision {revision} was compacted: etcd no longer holds the directory as it "
                "was then. Restore it from a backup instead (`etcdadmin backup`), or roll back "
                "to a later revision"
            ) from None

    if revision > conn.header(prefix)[0]:
        raise ReleaseError(f"revision {revision} is in the future of this cluster")
    return plan_state(conn, prefix, wanted, prune=True)


def apply_rollback(
    conn: EtcdConnection,
    plan: DesiredPlan,
    revision: int,
    *,
    who: str,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> DesiredResult:
    """Write a rollback plan: batches guarded like any desired state, recorded as `rollback`."""
    note = PublishNote("rollback", who, directory=plan.directory, detail=f"to revision {revision}")
    result = apply_desired(conn, plan, progress=progress, cancel=cancel, exact=True, record=note)
    log.info("directory rolled back to revision %d: %s", revision, result.describe())
    return result
