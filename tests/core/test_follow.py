"""The one read-then-watch loop (etcdadmin.core.etcd.follow) against real etcd servers.

The follower's view is checked against `etcdctl`, the reference client, after each trouble:
compaction, a restart, a cluster rebuilt at a lower revision, a different cluster.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from etcdadmin.core.errors import EtcdUnavailable
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, Page, WatchEvent
from etcdadmin.core.etcd.follow import Backoff, FollowConsumer, Follower
from tests.stack.etcd import EtcdServer
from tests.stack.procs import wait_until


class Recorder(FollowConsumer):
    """Holds what the follower delivered, like the agent does; `hold` blocks in `failed`."""

    def __init__(self) -> None:
        self.keys: dict[bytes, bytes] = {}
        self.pages: list[Page] = []
        self.loads = 0
        self.failures: list[Exception] = []
        self.recoveries = 0
        self.hold: threading.Event | None = None
        self._reading: dict[bytes, bytes] = {}

    def load_started(self) -> None:
        self._reading = {}

    def page_loaded(self, page: Page) -> None:
        self.pages.append(page)
        values = page.values if page.values is not None else [b""] * len(page.keys)
        self._reading.update(zip(page.keys, values, strict=True))

    def loaded(self, revision: int, cluster_id: int) -> None:
        self.keys, self._reading = self._reading, {}
        self.loads += 1

    def changed(self, events: Sequence[WatchEvent], revision: int) -> None:
        for event in events:
            if event.kind == "put":
                self.keys[event.kv.key] = event.kv.value
            else:
                self.keys.pop(event.kv.key, None)

    def failed(self, error: Exception) -> None:
        self.failures.append(error)
        if self.hold is not None:
            self.hold.wait(60)

    def recovered(self) -> None:
        self.recoveries += 1


def etcdctl_view(server, prefix: str) -> dict[bytes, bytes]:
    out = server.etcdctl("get", "--prefix", prefix, "-w", "json").stdout
    kvs = json.loads(out).get("kvs", [])
    return {base64.b64decode(kv["key"]): base64.b64decode(kv.get("value", "")) for kv in kvs}


@pytest.fixture
def follow():
    """Start followers on threads; every one is stopped and joined at the end."""
    started: list[tuple[Follower, threading.Thread, EtcdConnection]] = []

    def start(endpoint: str, prefix: str, **kw) -> Recorder:
        conn = EtcdConnection(ConnectionSettings((endpoint,), timeout=5))
        recorder = Recorder()
        follower = Follower(conn, prefix, recorder, backoff=Backoff(0.05, 0.5), **kw)
        thread = threading.Thread(target=follower.run, daemon=True)
        thread.start()
        started.append((follower, thread, conn))
        return recorder

    yield start
    for follower, thread, conn in started:
        follower.stop()
        thread.join(30)
        conn.close()
        assert not thread.is_alive(), "the follower stops when asked"


def wait_view(server, recorder: Recorder, prefix: str, what: str) -> None:
    wait_until(lambda: recorder.keys == etcdctl_view(server, prefix), 30, what)


@pytest.mark.parametrize(
    ("first", "cap", "delays"),
    [
        (0.5, 30.0, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]),
        (0.5, 10.0, [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]),
        (1.0, 30.0, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]),
    ],
)
def test_the_backoff_doubles_from_its_first_delay_up_to_its_cap_and_starts_over_on_reset(
    first, cap, delays
):
    backoff = Backoff(first, cap)
    assert [backoff.next() for _ in delays] == delays
    backoff.reset()
    assert backoff.next() == first


def test_the_default_backoff_is_half_a_second_doubling_to_thirty():
    backoff = Backoff()
    assert [backoff.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_a_keys_only_read_comes_in_pages_at_one_revision_then_changes_follow(etcd_server, follow):
    for i in range(5):
        etcd_server.etcdctl("put", f"f1/k{i}", f"v{i}")
    recorder = follow(etcd_server.endpoint, "f1/", keys_only=True, page_size=2)
    wait_until(lambda: recorder.loads == 1, 30, "the first read")
    assert [len(p.keys) for p in recorder.pages] == [2, 2, 1]
    assert len({p.revision for p in recorder.pages}) == 1
    assert all(p.values is None for p in recorder.pages)
    etcd_server.etcdctl("put", "f1/new", "x")
    etcd_server.etcdctl("del", "f1/k0")
    wait_until(
        lambda: sorted(recorder.keys) == [b"f1/k1", b"f1/k2", b"f1/k3", b"f1/k4", b"f1/new"],
        30,
        "the put and the delete",
    )
    assert recorder.loads == 1


def test_compaction_past_the_follower_makes_it_read_everything_again(private_etcd, follow):
    private_etcd.etcdctl("put", "f2/gone", "soon deleted")
    recorder = follow(private_etcd.endpoint, "f2/")
    wait_view(private_etcd, recorder, "f2/", "the first read")

    # The follower is held while etcd is away; meanwhile a key goes and history is compacted.
    recorder.hold = threading.Event()
    private_etcd.stop()
    wait_until(lambda: recorder.failures, 30, "the follower noticing etcd is gone")
    private_etcd.start()
    private_etcd.etcdctl("del", "f2/gone")
    out = private_etcd.etcdctl("put", "f2/after", "compaction", "-w", "json").stdout
    private_etcd.etcdctl("compaction", str(json.loads(out)["header"]["revision"]))
    recorder.hold.set()

    wait_view(private_etcd, recorder, "f2/", "the re-read after compaction")
    assert recorder.keys == {b"f2/after": b"compaction"}
    assert recorder.loads == 2
    assert recorder.recoveries >= 1


def test_a_put_made_while_its_member_was_down_arrives_by_resuming_not_re_reading(
    etcd_cluster, follow
):
    etcd_cluster.etcdctl("put", "f3/before", "1")
    member = etcd_cluster.members[0]
    recorder = follow(member.endpoint, "f3/")
    wait_view(member, recorder, "f3/", "the first read")

    etcd_cluster.stop_member(0)
    wait_until(lambda: recorder.failures, 30, "the follower noticing its member is gone")
    assert isinstance(recorder.failures[0], EtcdUnavailable)
    etcd_cluster.etcdctl("put", "f3/while-down", "2")
    etcd_cluster.start_member(0)

    wait_until(lambda: b"f3/while-down" in recorder.keys, 60, "the put made while down")
    assert recorder.keys == {b"f3/before": b"1", b"f3/while-down": b"2"}
    assert recorder.loads == 1, "the watch resumed from the last revision received"
    wait_until(lambda: recorder.recoveries == 1, 30, "recovered reported")


def test_a_cluster_whose_revision_went_backwards_is_read_again_from_scratch(
    private_etcd, follow, caplog
):
    for i in range(20):
        private_etcd.etcdctl("put", f"f4/old/k{i}", "x")
    recorder = follow(private_etcd.endpoint, "f4/")
    wait_view(private_etcd, recorder, "f4/", "the first read")

    # Rebuilt on the same endpoint (as a restore from an older snapshot would be): same
    # cluster id, lower revision.
    private_etcd.stop()
    shutil.rmtree(private_etcd.data_dir)
    private_etcd.start()
    private_etcd.etcdctl("put", "f4/new", "1")

    wait_until(lambda: recorder.keys == {b"f4/new": b"1"}, 30, "only the new key")
    assert recorder.loads == 2
    assert "went backwards" in caplog.text


def test_a_different_cluster_on_the_same_endpoint_is_read_again_from_scratch(
    private_etcd, follow, tmp_path: Path, caplog
):
    private_etcd.etcdctl("put", "f5/mine", "old cluster")
    recorder = follow(private_etcd.endpoint, "f5/")
    wait_view(private_etcd, recorder, "f5/", "the first read")

    # Another cluster, already past the held revision, then moved onto the same endpoint.
    other = EtcdServer(tmp_path / "other", "other")
    other.start()
    try:
        for i in range(30):
            other.etcdctl("put", f"f5/theirs/k{i}", "other cluster")
    finally:
        other.stop()
    moved = EtcdServer(
        tmp_path / "other",
        "other",
        client_port=private_etcd.client_port,
        peer_port=other.peer_port,
        cluster_token=other.cluster_token,
    )
    private_etcd.stop()
    moved.start()
    try:
        wait_view(moved, recorder, "f5/", "the other cluster's keys")
        assert b"f5/mine" not in recorder.keys and len(recorder.keys) == 30
        assert recorder.loads == 2
        assert "cluster id changed" in caplog.text
    finally:
        moved.stop()


def test_a_periodic_re_read_runs_when_asked(etcd_server, follow):
    etcd_server.etcdctl("put", "f6/k", "v")
    recorder = follow(etcd_server.endpoint, "f6/", resync_interval=0.2)
    wait_until(lambda: recorder.loads >= 3, 30, "periodic re-reads")
    assert recorder.keys == {b"f6/k": b"v"}


@pytest.fixture(autouse=True)
def _follower_logs(caplog) -> Iterator[None]:
    caplog.set_level("INFO", logger="etcdadmin.core.etcd.follow")
    yield
