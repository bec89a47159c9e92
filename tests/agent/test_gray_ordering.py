"""A promote seen by the agent's two watches in the unlucky order.

A promote is ONE etcd transaction: the release's keys land in the directory and the release
leaves the gray prefix at the same revision. The agent follows the two prefixes on two watch
streams, which deliver that revision independently. Here the loop is fed the real events of
a real promote (read back from etcd's own watches), the gray prefix's first, with the
directory's still in flight past the debounce: the targeted agent must not render the
directory without the release's values (a restart onto the old config, then another back).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace

from etcdadmin.core.agents.record import StatusRecord
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, WatchEvent
from etcdadmin.core.etcd.follow import FollowConsumer
from etcdadmin.core.releases.gray import gray_prefix
from etcdadmin.core.releases.publish import create_release, draft_release, promote_release
from watcher_agent.apply import ApplyResult
from watcher_agent.loop import SyncLoop
from watcher_agent.metrics import Metrics
from watcher_agent.status import StatusPublisher

DEBOUNCE = 0.1


@dataclass
class RenderedLevels:
    """Stands in for the agent's Applier (its file and container steps have their own tests):
    records the `log/level` each apply would render."""

    level_key: bytes
    levels: list[str | None] = field(default_factory=list)
    # The loop records the cluster id in the applier's state store.
    store: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(state=SimpleNamespace(cluster_id=0))
    )

    def apply(self, entries: Mapping[bytes, bytes], revision: int) -> ApplyResult:
        value = entries.get(self.level_key)
        self.levels.append(value.decode() if value is not None else None)
        return ApplyResult("ok")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def load(conn: EtcdConnection, consumer: FollowConsumer, prefix: str) -> int:
    """What a follower's first read reports, from a real read."""
    consumer.load_started()
    revision = 0
    for page in conn.iter_plain_pages(prefix, keys_only=False):
        consumer.page_loaded(page)
        revision = page.revision
    consumer.loaded(revision, 0)
    return revision


def events_at(conn: EtcdConnection, prefix: str, revision: int) -> list[WatchEvent]:
    """The events etcd's watch delivers for `prefix` at `revision` exactly."""
    stream = conn.watch_prefix(prefix, revision)
    try:
        for batch in stream:
            if batch.events:
                return [e for e in batch.events if e.kv.mod_revision == revision]
    finally:
        stream.close()
    return []


def test_a_promote_whose_gray_events_arrive_first_never_renders_the_old_config(etcd_server):
    directory = f"order-{uuid.uuid4().hex[:8]}"
    prefix = f"{directory}/"
    level_key = f"{prefix}log/level".encode()
    etcd_server.etcdctl("put", level_key.decode(), "warn")
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        draft = draft_release(
            conn, directory.encode(), "log:\n  level: debug\n", who="t", labels={"region": "eu"}
        )
        create_release(conn, draft)
        applied = RenderedLevels(level_key)
        clock = Clock()
        status = StatusPublisher(conn, "/unused", 5, StatusRecord(agent_id="eu-1"))
        loop = SyncLoop(
            conn=conn,
            prefix=prefix,
            applier=applied,  # type: ignore[arg-type]
            status=status,
            metrics=Metrics(),
            debounce=DEBOUNCE,
            debounce_max=5.0,
            resync_interval=3600,
            clock=clock,
            gray_prefix=gray_prefix(directory.encode()).decode(),
            agent_id="eu-1",
            labels={"region": "eu"},
        )
        assert loop.gray is not None
        load(conn, loop, prefix)
        load(conn, loop.gray, loop.gray_prefix or "")
        clock.now += DEBOUNCE
        loop.tick()
        assert applied.levels == ["debug"], "the eu agent starts on its release"

        revision = promote_release(conn, draft.release.release_id, who="t").revisions[-1]
        gray_events = events_at(conn, loop.gray_prefix or "", revision)
        directory_events = events_at(conn, prefix, revision)
        assert gray_events and directory_events, "the promote touched both prefixes at once"

        # The gray watch delivers first; the directory's stays in flight past the debounce.
        loop.gray.changed(gray_events, revision)
        for _ in range(5):
            clock.now += DEBOUNCE
            loop.tick()
        loop.changed(directory_events, revision)
        clock.now += DEBOUNCE
        loop.tick()

    assert None not in applied.levels and "warn" not in applied.levels, applied.levels
    assert applied.levels[-1] == "debug"
    assert loop.releases == ()
