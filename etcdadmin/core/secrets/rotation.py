"""Re-encrypting every secret of a directory to its current recipients (`keys rotate DIR`).

After a recipient is added, the secrets already written are not readable by it; after one is
removed, they still are. A rotation opens each secret with the operator's identity and seals
it again for the recipients that govern its key now. The writes are the desired-state apply's
(`etcdadmin.core.changes.desired.apply_desired`): batches under etcd's 128-operation limit,
each one transaction guarded by the mod revision the rotation read, so a secret changed by
someone else in between stops the rotation with nothing of that batch written, and the message
says which key and how far it got.

A secret the operator cannot open is not skipped silently: it is listed in `unreadable` (key
and reason) and stays as it is; the caller reports it.

A retired private key still opens every backup and snapshot taken before the rotation: keep it
as long as the oldest such backup is kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from etcdadmin.core.changes.changeset import MAX_TXN_OPS
from etcdadmin.core.changes.desired import (
    DesiredChange,
    DesiredPlan,
    DesiredResult,
    apply_desired,
)
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.secrets.envelope import is_envelope
from etcdadmin.core.secrets.errors import NoRecipients, SecretError
from etcdadmin.core.secrets.sealer import SecretSealer
from etcdadmin.core.tree.directories import directory_prefix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unreadable:
    """A secret the rotation could not re-encrypt: its key, the reason word and the message."""

    key: bytes
    reason: str
    message: str


@dataclass(frozen=True)
class RotationPlan:
    """The re-sealed envelopes of a directory's secrets, as of `plan.revision`.

    `plan` is a desired-state plan whose changes are all `secret` (new envelopes only);
    `unreadable` lists the secrets left as they are.
    """

    plan: DesiredPlan
    unreadable: tuple[Unreadable, ...]

    @property
    def count(self) -> int:
        return len(self.plan.changed)


def plan_rotation(conn: EtcdConnection, directory: bytes, sealer: SecretSealer) -> RotationPlan:
    """Read `directory` once and seal each of its secrets again for its current recipients.

    Raises `NoRecipients` when a secret's directory has no recipients left: sealing it for
    nobody would lose it. Nothing is written here.
    """
    prefix = directory_prefix(directory)
    sealer.refresh()
    snapshot = conn.read_prefix(prefix)
    changed: list[DesiredChange] = []
    unreadable: list[Unreadable] = []
    others = 0
    for kv in snapshot.items:
        if not is_envelope(kv.value):
            others += 1
            continue
        try:
            envelope = sealer.reseal(kv.key, kv.value, kv.key)
        except NoRecipients:
            raise
        except SecretError as exc:
            unreadable.append(Unreadable(kv.key, exc.reason, str(exc)))
            continue
        changed.append(DesiredChange(kv.key, kv, envelope, secret=True))
    plan = DesiredPlan(
        directory=prefix,
        revision=snapshot.revision,
        added=(),
        changed=tuple(changed),
        removed=(),
        unchanged=0,
        kept=others + len(unreadable),
        prune=False,
    )
    log.info(
        "planned a rotation at revision %d: %d secrets to re-encrypt, %d unreadable",
        snapshot.revision,
        len(changed),
        len(unreadable),
    )
    return RotationPlan(plan, tuple(unreadable))


def apply_rotation(
    conn: EtcdConnection,
    rotation: RotationPlan,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    max_txn_ops: int = MAX_TXN_OPS,
) -> DesiredResult:
    """Write the re-sealed envelopes in guarded batches (see `apply_desired`).

    Raises `DesiredConflict` naming the keys changed since the plan; the batches before it are
    written, that batch and the later ones are not.
    """
    return apply_desired(
        conn, rotation.plan, progress=progress, cancel=cancel, max_txn_ops=max_txn_ops
    )
