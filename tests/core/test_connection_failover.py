"""One connection to three TLS members with auth on: when the member it talks to stops, every
kind of call (reads, transactions, cluster calls, watches) goes on with the other two."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from etcdadmin.core.errors import EtcdError
from etcdadmin.core.etcd import EtcdConnection, TxnOp, pump
from tests.stack.secure import DIRECTORY, OPERATOR, SecureCluster


@pytest.fixture
def operator(secure_cluster: SecureCluster) -> Iterator[EtcdConnection]:
    with secure_cluster.connect(OPERATOR, with_password=True) as conn:
        yield conn


def _stop_member_in_use(secure_cluster: SecureCluster, conn: EtcdConnection) -> int:
    in_use = conn.endpoint_in_use
    assert in_use is not None, "the connection has made a call"
    index = secure_cluster.cluster.endpoints.index(in_use)
    secure_cluster.cluster.stop_member(index)
    return index


def test_transactions_and_cluster_calls_go_to_another_member_when_theirs_stops(
    secure_cluster, operator
):
    operator.put(f"{DIRECTORY}/failover/before", "1")
    with secure_cluster.connect("root") as root:
        root.members()
        stopped = _stop_member_in_use(secure_cluster, root)
        try:
            assert len(root.members()) == 3, "a cluster call after the stop"
            written = operator.txn([], [TxnOp("put", f"{DIRECTORY}/failover/txn".encode(), b"2")])
            assert written.succeeded
            assert root.get(f"{DIRECTORY}/failover/before") is not None
        finally:
            secure_cluster.cluster.start_member(stopped)
    assert secure_cluster.etcdctl_as(
        OPERATOR, "get", f"{DIRECTORY}/failover/txn", "--print-value-only"
    ) == ("2\n")


def test_a_watch_cut_by_its_member_stopping_resumes_on_another_from_the_next_revision(
    secure_cluster, operator
):
    key = f"{DIRECTORY}/failover/watched"
    revision = operator.put(key, "before")
    stream = operator.watch_prefix(f"{DIRECTORY}/failover/", revision + 1)
    inbox = pump(stream)
    stopped = _stop_member_in_use(secure_cluster, operator)
    try:
        cut = inbox.get(timeout=30)
        # usually EtcdUnavailable; a member on its way down may first cancel the watch
        assert isinstance(cut, EtcdError), cut
        secure_cluster.etcdctl("put", key, "after the stop")
        resumed = pump(operator.watch_prefix(f"{DIRECTORY}/failover/", revision + 1))
        try:
            batch = resumed.get(timeout=30)
        except queue.Empty:
            pytest.fail("no event from the resumed watch")
        assert not isinstance(batch, BaseException), (cut, batch)
        assert [e.kv.value for e in batch.events] == [b"after the stop"]
        assert operator.endpoint_in_use != secure_cluster.cluster.endpoints[stopped]
    finally:
        stream.close()
        secure_cluster.cluster.start_member(stopped)
