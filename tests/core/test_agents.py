"""The agents view against real etcd, with status records written as the agent writes them."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from etcdadmin.core.agents.status import list_agent_directories, read_agents
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection


@pytest.fixture
def conn(etcd_server) -> Iterator[EtcdConnection]:
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as connection:
        yield connection


@pytest.fixture
def status_prefix() -> str:
    """A status prefix of the test's own, so directory listings never see another test's."""
    return f"/etcdadmin-test-{uuid.uuid4().hex[:10]}/agents/"


def agent_record(agent_id: str, directory: str, applied: int | None, **extra: Any) -> str:
    """A status body shaped like watcher_agent's (`json.dumps(..., sort_keys=True)`)."""
    record: dict[str, Any] = {
        "agent_id": agent_id,
        "directory": directory,
        "config": "/etc/docker/registry/config.yml",
        "containers": ["registry"],
        "version": "0.1.0",
        "started_at": "2026-11-24T10:00:00Z",
        "updated_at": "2026-11-24T10:00:05Z",
        "applied_revision": applied,
        "seen_revision": applied,
        "config_sha256": "ab" * 32 if applied else None,
        "last_result": "ok" if applied else "starting",
        "last_error": None,
        "etcd": "ok",
    }
    record.update(extra)
    return json.dumps(record, sort_keys=True)


def publish(etcd_server, key: str, body: str) -> None:
    """Put a status record under a lease, as the agent's StatusPublisher does."""
    granted = etcd_server.etcdctl("lease", "grant", "60").stdout
    match = re.search(r"lease ([0-9a-f]+) granted", granted)
    assert match, granted
    etcd_server.etcdctl("put", f"--lease={match.group(1)}", key, body)


def test_agents_that_applied_an_older_revision_are_marked_behind(etcd_server, conn, status_prefix):
    directory = f"agents-{uuid.uuid4().hex[:8]}"
    conn.put(f"{directory}/http/addr", ":5000")
    applied = conn.put(f"{directory}/log/level", "info")
    publish(
        etcd_server,
        f"{status_prefix}{directory}/current",
        agent_record("current", directory, applied),
    )
    latest = conn.put(f"{directory}/log/level", "debug")
    publish(
        etcd_server,
        f"{status_prefix}{directory}/lagging",
        agent_record("lagging", directory, applied),
    )
    publish(
        etcd_server,
        f"{status_prefix}{directory}/up-to-date",
        agent_record("up-to-date", directory, latest),
    )
    publish(
        etcd_server,
        f"{status_prefix}{directory}/fresh",
        agent_record("fresh", directory, None),
    )
    # status records written after the last config change do not count as changes to it
    assert conn.put(f"{directory}-other/x", "1") > latest

    view = read_agents(conn, f"{directory}/".encode(), status_prefix.encode())

    assert view.latest_revision == latest
    by_id = {agent.agent_id: agent for agent in view.agents}
    assert [agent.agent_id for agent in view.agents] == [
        "current",
        "fresh",
        "lagging",
        "up-to-date",
    ]
    assert by_id["current"].behind and by_id["lagging"].behind
    assert not by_id["up-to-date"].behind
    assert by_id["fresh"].behind and by_id["fresh"].applied_revision is None
    agent = by_id["up-to-date"]
    assert agent.applied_revision == latest
    assert agent.last_result == "ok"
    assert agent.last_error is None
    assert agent.config_sha256 == "ab" * 32
    assert agent.containers == ("registry",)
    assert agent.updated_at == "2026-11-24T10:00:05Z"
    assert agent.raw["etcd"] == "ok"
    assert agent.error is None


def test_a_malformed_status_record_is_shown_with_a_note_not_an_exception(
    etcd_server, conn, status_prefix
):
    directory = f"agents-{uuid.uuid4().hex[:8]}"
    revision = conn.put(f"{directory}/http/addr", ":5000")
    base = f"{status_prefix}{directory}"
    etcd_server.etcdctl("put", f"{base}/not-json", "{truncated")
    etcd_server.etcdctl("put", f"{base}/a-list", "[1, 2]")
    conn.put(f"{base}/binary", b"\xff\xfe")
    publish(
        etcd_server,
        f"{base}/odd-types",
        agent_record("odd-types", directory, revision, containers="registry", last_result=3),
    )
    publish(etcd_server, f"{base}/good", agent_record("good", directory, revision))

    view = read_agents(conn, directory.encode(), status_prefix.encode())

    by_id = {agent.agent_id: agent for agent in view.agents}
    assert set(by_id) == {"not-json", "a-list", "binary", "odd-types", "good"}
    for broken in ("not-json", "a-list", "binary"):
        assert by_id[broken].error is not None
        assert by_id[broken].applied_revision is None
        assert not by_id[broken].behind
    assert "not JSON" in (by_id["not-json"].error or "")
    odd = by_id["odd-types"]
    assert odd.error is None and odd.containers == () and odd.last_result is None
    assert odd.applied_revision == revision and not odd.behind
    assert by_id["good"].error is None and not by_id["good"].behind


def test_agents_of_nested_and_sibling_directories_are_kept_apart(etcd_server, conn, status_prefix):
    root = f"agents-{uuid.uuid4().hex[:8]}"
    revision = conn.put(f"{root}/hack/key", "1")
    publish(
        etcd_server, f"{status_prefix}{root}/hack/a1", agent_record("a1", f"{root}/hack/", revision)
    )
    publish(etcd_server, f"{status_prefix}{root}/hack/sub/a2", agent_record("a2", "sub", revision))
    publish(
        etcd_server, f"{status_prefix}{root}/hackers/a3", agent_record("a3", "hackers", revision)
    )

    view = read_agents(conn, f"{root}/hack/".encode(), status_prefix.encode())

    assert [agent.agent_id for agent in view.agents] == ["a1"]
    assert view.latest_revision == revision
    assert list_agent_directories(conn, status_prefix.encode()) == [
        f"{root}/hack",
        f"{root}/hack/sub",
        f"{root}/hackers",
    ]


def test_an_empty_directory_has_no_latest_revision_and_nobody_is_behind(
    etcd_server, conn, status_prefix
):
    directory = f"agents-{uuid.uuid4().hex[:8]}"
    publish(etcd_server, f"{status_prefix}{directory}/idle", agent_record("idle", directory, None))
    view = read_agents(conn, directory.encode(), status_prefix.encode())
    assert view.latest_revision == 0
    assert [(agent.agent_id, agent.behind) for agent in view.agents] == [("idle", False)]


def test_the_default_status_prefix_is_the_agents_default(etcd_server, conn):
    directory = f"agents-{uuid.uuid4().hex[:8]}"
    revision = conn.put(f"{directory}/k", "v")
    publish(
        etcd_server,
        f"/etcdadmin/agents/{directory}/host1",
        agent_record("host1", directory, revision),
    )
    view = read_agents(conn, directory.encode())
    assert [(agent.agent_id, agent.behind) for agent in view.agents] == [("host1", False)]
    assert directory in list_agent_directories(conn)
