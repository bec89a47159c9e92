"""The status record a watcher agent publishes, defined once for the agent that writes it and the
client and CLI that read it.

The record is JSON at `<status prefix><directory>/<agent id>`, under a lease. The agent builds
it with `StatusRecord` and `replace_fields` (a field this module does not define is refused at
once, so the two sides cannot drift apart), and readers parse it with `StatusRecord.from_json`,
which tolerates records of other versions: an unknown field is kept in `extra`, a field of the
wrong type reads as absent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Final

# What `last_result` says: the outcome of the agent's last apply (or that one is under way).
RESULTS: Final = (
    "starting",  # published at start, before the first apply
    "ok",  # the config of `applied_revision` is written and the service healthy
    "rendering",  # a render has been running for a while (`rendering_since`)
    "render_failed",  # a key or value cannot be rendered (`failed_key`, `last_error`)
    "render_timeout",  # the render took longer than RENDER_TIMEOUT and was stopped
    "secret_failed",  # a secret value cannot be opened (`failed_key`, `failed_reason`)
    "write_failed",  # the config file could not be written
    "docker_failed",  # the containers could not be restarted or found
    "preflight_failed",  # the new config failed its canary or PREFLIGHT_CMD; nothing touched
    "rolled_back",  # the new config failed its health check; the last good one is back
    "quarantined",  # these keys failed before; nothing is tried until they change
)


def now_text() -> str:
    """A timestamp as the record writes them (UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class StatusRecord:
    """One agent's status. Revisions are etcd revisions; times are `now_text()` strings."""

    agent_id: str
    directory: str = ""
    config: str = ""
    containers: tuple[str, ...] = ()
    version: str | None = None
    started_at: str | None = None
    updated_at: str | None = None
    last_result: str = "starting"
    last_error: str | None = None
    failed_key: str | None = None
    # Why `failed_key` failed, in one word: for a secret `no_matching_key`, `damaged` or
    # `moved` (the `reason` of etcdadmin.core.secrets.errors); None for other failures.
    failed_reason: str | None = None
    applied_revision: int | None = None
    seen_revision: int | None = None
    failed_revision: int | None = None
    config_sha256: str | None = None
    rendering_since: str | None = None
    etcd: str | None = None
    # The labels the agent declares (AGENT_LABELS), by which gray releases target it, and the
    # gray releases its running config includes, in the order they were applied.
    labels: Mapping[str, str] = field(default_factory=dict)
    releases: tuple[str, ...] = ()
    # Fields written by another version of the agent, kept as read.
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def replace_fields(self, **changes: Any) -> StatusRecord:
        """A copy with `changes` and a fresh `updated_at`; an unknown field raises TypeError,
        a `last_result` not in `RESULTS` ValueError."""
        if changes.get("last_result", "ok") not in RESULTS:
            raise ValueError(f"{changes['last_result']!r} is not a result listed in RESULTS")
        for name in ("containers", "releases"):
            if name in changes:
                changes[name] = tuple(changes[name])
        if "labels" in changes:
            changes["labels"] = dict(changes["labels"])
        return replace(self, **changes, updated_at=now_text())

    def to_json(self) -> str:
        data = asdict(self)
        extra = data.pop("extra")
        data["containers"] = list(self.containers)
        data["releases"] = list(self.releases)
        data["labels"] = dict(self.labels)
        return json.dumps({**extra, **data}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], agent_id: str) -> StatusRecord:
        """The record in `raw` (a decoded JSON object); `agent_id` is the one its key names."""
        values: dict[str, Any] = {}
        for name, kind in _FIELDS.items():
            if name in ("agent_id", "extra") or name not in raw:
                continue
            value = raw[name]
            if kind == "containers":
                values[name] = tuple(str(c) for c in value) if isinstance(value, list) else ()
            elif kind == "labels":
                ok = isinstance(value, dict)
                values[name] = {str(k): str(v) for k, v in value.items()} if ok else {}
            elif kind == "int":
                # bool is an int in Python, but `true` is no revision
                ok = isinstance(value, int) and not isinstance(value, bool)
                values[name] = value if ok else None
            elif kind == "str":
                values[name] = value if isinstance(value, str) else None
            elif isinstance(value, str):  # the text fields that have a default
                values[name] = value
        extra = {k: v for k, v in raw.items() if k not in _FIELDS}
        # The key names the agent; a record claiming another id would hide which key it is.
        return cls(agent_id=agent_id, extra=extra, **values)


# How `from_json` reads each field: by the type the dataclass declares.
_FIELDS: Final[dict[str, str]] = {
    "agent_id": "str",
    "directory": "text",
    "config": "text",
    "containers": "containers",
    "version": "str",
    "started_at": "str",
    "updated_at": "str",
    "last_result": "text",
    "last_error": "str",
    "failed_key": "str",
    "failed_reason": "str",
    "applied_revision": "int",
    "seen_revision": "int",
    "failed_revision": "int",
    "config_sha256": "str",
    "rendering_since": "str",
    "etcd": "str",
    "labels": "labels",
    "releases": "containers",
    "extra": "extra",
}
# A field added to the record without saying how it is read fails at import, not in the field.
assert set(_FIELDS) == {f.name for f in fields(StatusRecord)}, "describe every field in _FIELDS"
