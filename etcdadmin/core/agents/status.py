"""What the watcher agents of a directory report, and whether they have caught up with it.

Each agent publishes a JSON `StatusRecord` (`etcdadmin.core.agents.record`, the one definition)
at `<status prefix><directory>/<agent id>` under a lease, so a dead agent's record disappears by
itself. The client reads those records next to the directory's latest modification revision: an
agent whose applied revision is older runs a config that is not the one in etcd (it is still
debouncing, it failed to render, or it rolled back). Records are written by another program,
possibly of another version, so a record that cannot be read is shown as such rather than
failing the whole view.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from etcdadmin.core.agents.record import StatusRecord
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.tree.directories import directory_prefix

log = logging.getLogger(__name__)

STATUS_PREFIX = b"/etcdadmin/agents/"


@dataclass(frozen=True)
class AgentStatus:
    """One agent's status record, as far as it could be read.

    `error` says why a record could not be read (then only `agent_id` and `key` are known).
    `behind` is true when the agent has applied an older revision than the directory's latest
    modification, or has applied nothing yet while the directory holds keys.
    """

    agent_id: str
    applied_revision: int | None
    last_result: str | None
    last_error: str | None
    updated_at: str | None
    config_sha256: str | None
    containers: tuple[str, ...]
    behind: bool
    raw: Mapping[str, Any] = field(hash=False)
    key: bytes = b""
    seen_revision: int | None = None
    started_at: str | None = None
    version: str | None = None
    error: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    # The gray releases the agent's running config includes (empty: the directory's config).
    releases: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentsView:
    """The agents of one directory, judged against the directory as read at `revision`.

    `latest_revision` is the highest mod_revision of the directory's keys (0 when it is empty).
    A deletion leaves no key to carry its revision, so an agent that has not yet applied a
    deletion is only seen as behind once a later write lands in the directory.
    """

    latest_revision: int
    agents: tuple[AgentStatus, ...]
    revision: int = 0


def status_prefix_for(directory: str | bytes, status_prefix: str | bytes = STATUS_PREFIX) -> bytes:
    """Where the agents of `directory` publish: the status prefix, then the directory's prefix.

    `hack` and `hack/` share `/etcdadmin/agents/hack/` (the key agents have always used);
    `/hack`, a different directory, gets `/etcdadmin/agents//hack/`.
    """
    return directory_prefix(_bytes(status_prefix)) + directory_prefix(_bytes(directory))


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def read_agents(
    conn: EtcdConnection, directory: bytes, status_prefix: bytes = STATUS_PREFIX
) -> AgentsView:
    """The status records of the agents watching `directory`, and whether each is behind.

    The directory is read keys-only (Range responses carry mod_revision even then, and values
    may be large or secret), and the status records at the same revision.
    """
    prefix = directory_prefix(directory)
    keys = conn.read_prefix(prefix, keys_only=True)
    latest = max((kv.mod_revision for kv in keys.items), default=0)
    records_prefix = status_prefix_for(directory, status_prefix)
    records = conn.read_prefix(records_prefix, revision=keys.revision)
    agents: list[AgentStatus] = []
    for kv in records.items:
        agent_id = kv.key[len(records_prefix) :]
        if not agent_id or b"/" in agent_id:
            # an agent of a directory nested below this one (`hack/sub`): not ours
            continue
        agents.append(_parse_record(kv, agent_id.decode("utf-8", errors="replace"), latest))
    agents.sort(key=lambda agent: agent.agent_id)
    return AgentsView(latest_revision=latest, agents=tuple(agents), revision=keys.revision)


def list_agent_directories(conn: EtcdConnection, status_prefix: bytes = STATUS_PREFIX) -> list[str]:
    """The directories that at least one live agent reports on, sorted.

    Names are without their trailing slash (`hack`, `team/registry`, `/hack`); the last segment
    of a status key is the agent id, everything before it the directory.
    """
    prefix = directory_prefix(status_prefix)
    snapshot = conn.read_prefix(prefix, keys_only=True)
    directories: set[str] = set()
    for kv in snapshot.items:
        directory, _, agent_id = kv.key[len(prefix) :].rpartition(b"/")
        if directory and agent_id:
            directories.add(directory.decode("utf-8", errors="replace"))
    return sorted(directories)


def _parse_record(kv: KeyValue, agent_id: str, latest: int) -> AgentStatus:
    try:
        raw = json.loads(kv.value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return _unreadable(kv, agent_id, f"the status record is not JSON ({type(exc).__name__})")
    if not isinstance(raw, dict):
        return _unreadable(kv, agent_id, "the status record is JSON but not an object")
    record = StatusRecord.from_json(raw, agent_id)
    return AgentStatus(
        agent_id=record.agent_id,
        applied_revision=record.applied_revision,
        last_result=record.last_result if isinstance(raw.get("last_result"), str) else None,
        last_error=record.last_error,
        updated_at=record.updated_at,
        config_sha256=record.config_sha256,
        containers=record.containers,
        behind=(record.applied_revision or 0) < latest,
        raw=raw,
        key=kv.key,
        seen_revision=record.seen_revision,
        started_at=record.started_at,
        version=record.version,
        labels=record.labels,
        releases=record.releases,
    )


def _unreadable(kv: KeyValue, agent_id: str, error: str) -> AgentStatus:
    log.warning("agent status record %r cannot be read: %s", agent_id, error)
    return AgentStatus(
        agent_id=agent_id,
        applied_revision=None,
        last_result=None,
        last_error=None,
        updated_at=None,
        config_sha256=None,
        containers=(),
        # Nothing is known about what it applied; `error` is what the view should show.
        behind=False,
        raw={},
        key=kv.key,
        error=error,
    )
