"""A gray release: changes to a directory published to some of its agents first.

A release is an overlay of key changes (puts and deletes of the directory's keys) that the
agents it targets apply on top of the directory, while the others ignore it. It lives beside
the directory, never in it:

    /etcdadmin/gray/<directory prefix><release id>/manifest      JSON, see `GrayRelease`
    /etcdadmin/gray/<directory prefix><release id>/keys/<key>    one value per key put

Targets are agent ids and/or labels (`region=eu`): an agent is targeted when its id is listed
or it carries every label listed, so an agent replaced by a new one with the same labels keeps
the release. Several releases targeting one agent apply in the order they were created.
Values that are secrets are sealed for the DIRECTORY key they will land on, so promoting is a
plain copy and the agent opens them as any value of its directory.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.tree.directories import directory_prefix

log = logging.getLogger(__name__)

GRAY_PREFIX = b"/etcdadmin/gray/"
MANIFEST = b"manifest"
VALUES = b"keys/"

# A label is `name=value`; names as Kubernetes writes them, values without separators.
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}=[A-Za-z0-9_.\-]{0,63}$")
_RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")


class ReleaseError(EtcdAdminError):
    """A gray release cannot be made, found or read; the message says what to do."""


class ReleaseNotFound(ReleaseError):
    """No active gray release has that id (promoted, abandoned, or never made)."""


def parse_labels(text: str, name: str = "AGENT_LABELS") -> dict[str, str]:
    """`region=eu,tier=web` as a mapping; an empty text is no labels."""
    labels: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not _LABEL.match(item):
            raise ReleaseError(
                f"{name}: {item!r} is not a label; write name=value pairs separated by commas, "
                "such as region=eu,tier=web"
            )
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


def check_release_id(release_id: str) -> str:
    if not _RELEASE_ID.match(release_id):
        raise ReleaseError(
            f"{release_id!r} is not a release id: ids are letters, digits, '.', '_' and '-' "
            "(`etcdadmin release ls DIR` lists them)"
        )
    return release_id


def gray_prefix(directory: bytes) -> bytes:
    """Where the releases of `directory` live (and what its agents follow)."""
    return GRAY_PREFIX + directory_prefix(directory)


@dataclass(frozen=True)
class GrayRelease:
    """One active gray release, as stored.

    `directory` is the key prefix; `puts` maps full directory keys to the values the targeted
    agents see, `deletes` lists full keys they see absent. `base` is the mod revision each
    touched key had when the release was made (0: absent): promote refuses when one changed
    since, as the release was reviewed against those values.
    """

    release_id: str
    directory: bytes
    agents: tuple[str, ...]
    labels: Mapping[str, str]
    who: str
    created_at: str
    base_revision: int
    puts: Mapping[bytes, bytes]
    deletes: tuple[bytes, ...]
    base: Mapping[bytes, int] = field(default_factory=dict)
    # The release's own keys as read (manifest and values): promote and abandon guard on them.
    stored: tuple[KeyValue, ...] = ()

    @property
    def root(self) -> bytes:
        return gray_prefix(self.directory) + self.release_id.encode() + b"/"

    @property
    def keys(self) -> tuple[bytes, ...]:
        """Every directory key the release touches, sorted."""
        return tuple(sorted({*self.puts, *self.deletes}))

    def targets(self, agent_id: str, labels: Mapping[str, str]) -> bool:
        """Whether an agent with this id and these labels runs the release."""
        if agent_id in self.agents:
            return True
        return bool(self.labels) and all(labels.get(k) == v for k, v in self.labels.items())

    def describe_targets(self) -> str:
        parts = [f"agents {','.join(self.agents)}"] if self.agents else []
        if self.labels:
            parts.append("labels " + ",".join(f"{k}={v}" for k, v in self.labels.items()))
        return " or ".join(parts)

    def manifest_json(self) -> bytes:
        prefix = len(self.directory)
        body = {
            "id": self.release_id,
            "directory": self.directory.decode("utf-8", errors="replace"),
            "agents": list(self.agents),
            "labels": dict(self.labels),
            "who": self.who,
            "created_at": self.created_at,
            "base_revision": self.base_revision,
            "puts": sorted(_text(k[prefix:]) for k in self.puts),
            "deletes": sorted(_text(k[prefix:]) for k in self.deletes),
            "base": {_text(k[prefix:]): rev for k, rev in sorted(self.base.items())},
        }
        return json.dumps(body, sort_keys=True).encode()


def _text(key: bytes) -> str:
    # Keys of a directory are UTF-8 in practice; surrogateescape keeps any other byte exact.
    return key.decode("utf-8", errors="surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def releases_from_keys(items: Iterable[tuple[bytes, bytes]]) -> list[GrayRelease]:
    """The complete releases among keys read under `GRAY_PREFIX`, in creation order.

    A manifest that cannot be read, or that names a value its release does not hold, is
    skipped with a warning: an agent must not apply half a release.
    """
    values: dict[bytes, bytes] = dict(items)
    found = []
    for key, raw in values.items():
        if not key.endswith(b"/" + MANIFEST):
            continue
        root = key[: -len(MANIFEST)]
        release = _parse(root, raw, values)
        if release is not None:
            found.append(release)
    found.sort(key=lambda r: (r.created_at, r.release_id))
    return found


def _parse(root: bytes, raw: bytes, values: Mapping[bytes, bytes]) -> GrayRelease | None:
    try:
        body = json.loads(raw)
        directory = directory_prefix(_bytes(str(body["directory"])))
        release_id = str(body["id"])
        puts = {}
        for name in body.get("puts", []):
            value = values.get(root + VALUES + _bytes(name))
            if value is None:
                log.warning("a gray release names a value it does not hold; skipped")
                return None
            puts[directory + _bytes(name)] = value
        labels = body.get("labels") or {}
        if not isinstance(labels, dict):
            raise TypeError("labels")
        return GrayRelease(
            release_id=release_id,
            directory=directory,
            agents=tuple(str(a) for a in body.get("agents", [])),
            labels={str(k): str(v) for k, v in labels.items()},
            who=str(body.get("who", "")),
            created_at=str(body.get("created_at", "")),
            base_revision=int(body.get("base_revision", 0)),
            puts=puts,
            deletes=tuple(directory + _bytes(str(n)) for n in body.get("deletes", [])),
            base={directory + _bytes(k): int(v) for k, v in (body.get("base") or {}).items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError, EtcdAdminError):
        log.warning("a gray release manifest cannot be read; skipped")
        return None


def overlay(
    keys: Mapping[bytes, bytes],
    releases: Iterable[GrayRelease],
    agent_id: str,
    labels: Mapping[str, str],
) -> tuple[dict[bytes, bytes], tuple[str, ...]]:
    """The directory's keys as the agent `agent_id` with `labels` should see them, and the ids
    of the releases applied (in order). Releases of other directories are the caller's to
    filter out; a release's keys outside `keys`' directory still apply (a release of a
    directory inside the agent's)."""
    effective = dict(keys)
    applied = []
    for release in releases:
        if not release.targets(agent_id, labels):
            continue
        effective.update(release.puts)
        for key in release.deletes:
            effective.pop(key, None)
        applied.append(release.release_id)
    return effective, tuple(applied)


def read_releases(conn: EtcdConnection, directory: bytes | None = None) -> list[GrayRelease]:
    """The active releases of `directory` (and of directories inside it), or of every
    directory when None, each with its stored keys (for guards)."""
    prefix = gray_prefix(directory) if directory is not None else GRAY_PREFIX
    snapshot = conn.read_prefix(prefix)
    releases = releases_from_keys((kv.key, kv.value) for kv in snapshot.items)
    by_root: dict[bytes, list[KeyValue]] = {}
    for kv in snapshot.items:
        for release in releases:
            if kv.key.startswith(release.root):
                by_root.setdefault(release.root, []).append(kv)
    return [replace(r, stored=tuple(by_root.get(r.root, ()))) for r in releases]


def find_release(
    conn: EtcdConnection, release_id: str, directory: bytes | None = None
) -> GrayRelease:
    """The active release with this id, in `directory` or (None) whichever directory it is in.

    Naming the directory reads only its releases: a user granted some directories only may not
    read the whole gray prefix.
    """
    check_release_id(release_id)
    for release in read_releases(conn, directory):
        if release.release_id == release_id:
            return release
    raise ReleaseNotFound(
        f"no active gray release {release_id}: it was promoted, abandoned or never made "
        "(`etcdadmin release ls DIR` lists the active ones, `release history DIR` the past)"
    )
