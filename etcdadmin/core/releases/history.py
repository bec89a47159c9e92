"""The release history: every publish to a directory leaves a record, written in the SAME
transaction as the publish, so the history cannot list a write that did not happen or miss one
that did.

A record is JSON at `/etcdadmin/releases/<directory prefix><id>`: who, when, what kind of
publish, the keys it touched (relative to the directory, names only: values may be secrets)
and, for a gray release, its id. The revision of the publish is not in the key: a
transaction's revision is only known once etcd has committed it, so the id is a sortable time
stamp and the revision is the record key's own create revision, which is exactly the revision
of the transaction that wrote it (`etcdctl get -w json` shows it).

History reads the directory's records and those of directories inside it (a client edit of
`hack/http/addr` alone is filed under `hack/http/`); a publish whose keys span several
top-level directories leaves one record in each.
"""

from __future__ import annotations

import getpass
import json
import logging
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from etcdadmin.core.agents.record import now_text
from etcdadmin.core.etcd import EtcdConnection, TxnOp
from etcdadmin.core.etcd.settings import ConnectionSettings
from etcdadmin.core.tree.directories import OWN_SPACE, directory_prefix

log = logging.getLogger(__name__)

RELEASES_PREFIX = b"/etcdadmin/releases/"

# What `kind` says about a publish.
KINDS = (
    "apply",  # `etcdadmin apply -f`: a directory made to hold a config file
    "edit",  # staged changes applied from the client or `etcdadmin set/rm/...`
    "undo",  # an apply undone from the client
    "gray-create",  # a gray release created (the directory itself is unchanged)
    "gray-promote",  # a gray release written into the directory and removed
    "gray-abandon",  # a gray release removed; its agents return to the directory
    "rollback",  # the directory restored as of an earlier revision
    "restore",  # a backup restored into the directory
)

# A gray release is published to agents, not to the directory: the directory's own keys are
# the same before and after, so a rollback to it is a rollback to the revision before.
GRAY_ONLY = ("gray-create", "gray-abandon")


def publisher(settings: ConnectionSettings | None = None) -> str:
    """Who publishes, as the record names them: `user@host`, and the etcd user if any."""
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    if settings is not None and settings.user and settings.user != getpass.getuser():
        who += f" (etcd user {settings.user})"
    return who


@dataclass(frozen=True)
class PublishNote:
    """What the publisher says about a publish, for the record written with it.

    `directory` None: the record goes to the directory of the keys written (see
    `record_ops`). `keys` None: the keys are the plan's steps inside the directory.
    """

    kind: str
    who: str
    directory: bytes | None = None
    keys: tuple[bytes, ...] | None = None
    release: str | None = None
    detail: str | None = None
    batch: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.kind!r} is not a publish kind listed in KINDS")

    def in_batch(self, number: int, count: int) -> PublishNote:
        return self if count == 1 else replace(self, batch=f"{number}/{count}")


@dataclass(frozen=True)
class PublishRecord:
    """One publish as the history lists it; `revision` is the revision it was written at."""

    directory: str
    revision: int
    kind: str
    who: str
    when: str
    keys: tuple[str, ...]
    key_count: int
    release: str | None = None
    detail: str | None = None
    batch: str | None = None
    key: bytes = field(default=b"", compare=False)

    @property
    def title(self) -> str:
        """What was published, in a few words: `gray-create 2026...-3fa2 (to labels region=eu)`."""
        what = self.kind + (f" {self.release}" if self.release else "")
        if self.detail:
            what += f" ({self.detail})"
        if self.batch:
            what += f" [batch {self.batch}]"
        return what


def records_prefix(directory: bytes) -> bytes:
    return RELEASES_PREFIX + directory_prefix(directory)


def _record_id() -> str:
    # Sortable by time; the random tail keeps two publishers in the same nanosecond apart.
    return f"{time.time_ns():020d}-{secrets.token_hex(2)}"


def _common_directory(keys: Sequence[bytes]) -> bytes:
    """The deepest directory holding every key (`hack/http/` for `hack/http/addr` alone)."""
    first, last = min(keys), max(keys)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    shared = first[:size]
    slash = shared.rfind(b"/")
    return shared[: slash + 1]


def _top_level(key: bytes) -> bytes:
    """The first segment of a key, with its slash (`/hack/` for `/hack/x`); b"" for none."""
    start = 1 if key.startswith(b"/") else 0
    slash = key.find(b"/", start)
    return key[: slash + 1] if slash >= 0 else b""


def record_ops(note: PublishNote, written: Iterable[bytes]) -> list[TxnOp]:
    """The record puts for a publish that writes the keys `written`: one record, or one per
    top-level directory when the note names none. Keys of etcdadmin's own (`/etcdadmin/...`)
    and top-level keys outside any directory are not recorded."""
    groups: dict[bytes, list[bytes]] = {}
    if note.directory is not None:
        prefix = directory_prefix(note.directory)
        named = note.keys if note.keys is not None else tuple(written)
        groups[prefix] = [k for k in named if k.startswith(prefix)]
    else:
        for key in written:
            top = _top_level(key)
            if top and top != OWN_SPACE:
                groups.setdefault(top, []).append(key)
        groups = {_common_directory(found) or top: found for top, found in groups.items()}
    ops = []
    for prefix, keys in groups.items():
        relative = sorted(k[len(prefix) :].decode("utf-8", errors="replace") for k in keys)
        body = {
            "directory": prefix.decode("utf-8", errors="replace"),
            "kind": note.kind,
            "who": note.who,
            "when": now_text(),
            "keys": relative,
            "key_count": len(relative),
            "release": note.release,
            "detail": note.detail,
            "batch": note.batch,
        }
        key = records_prefix(prefix) + _record_id().encode()
        ops.append(TxnOp("put", key, json.dumps(body, sort_keys=True).encode()))
    return ops


def read_history(conn: EtcdConnection, directory: bytes) -> list[PublishRecord]:
    """The publishes recorded for `directory` and the directories inside it, oldest first."""
    prefix = records_prefix(directory)
    found = []
    for kv in conn.read_prefix(prefix).items:
        try:
            raw = json.loads(kv.value)
        except ValueError:
            log.warning("a release record is not JSON; skipped")
            continue
        if not isinstance(raw, dict):
            continue
        keys = raw.get("keys")
        found.append(
            PublishRecord(
                directory=str(raw.get("directory", "")),
                revision=kv.create_revision,
                kind=str(raw.get("kind", "")),
                who=str(raw.get("who", "")),
                when=str(raw.get("when", "")),
                keys=tuple(str(k) for k in keys) if isinstance(keys, list) else (),
                key_count=int(raw.get("key_count") or 0),
                release=raw.get("release") if isinstance(raw.get("release"), str) else None,
                detail=raw.get("detail") if isinstance(raw.get("detail"), str) else None,
                batch=raw.get("batch") if isinstance(raw.get("batch"), str) else None,
                key=kv.key,
            )
        )
    found.sort(key=lambda record: record.revision)
    return found
