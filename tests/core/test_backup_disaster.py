"""Disaster recovery from a snapshot file, with etcd's own tool, against real etcd members.

The snapshot is taken with `etcdctl snapshot save`; the restored members are started from the
very command lines the restore prints, and their keys are read back with etcdctl. A follower
(the agent's read-then-watch loop) is shown to end with the restored values when its cluster
is replaced by the restored one at a lower revision.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from etcdadmin.core.backup.disaster import (
    DisasterRecoveryError,
    RestoredMember,
    RestoreTool,
    find_restore_tool,
    restore_snapshot,
)
from tests.core import test_follow
from tests.stack.etcd import EtcdCommand, EtcdServer, run_etcdctl
from tests.stack.procs import free_port, wait_until

# The follower fixture of the read-then-watch tests: followers on threads, stopped at the end.
follow = test_follow.follow


@pytest.fixture
def tool() -> RestoreTool:
    return find_restore_tool()


@pytest.fixture
def started() -> Iterator[ExitStack]:
    """Members started by a test, all stopped at its end."""
    with ExitStack() as stack:
        yield stack


def etcdctl(server: EtcdServer, endpoints: list[str], *args: str) -> str:
    return run_etcdctl(server.etcdctl_bin, endpoints, args).stdout


def values(server: EtcdServer, endpoints: list[str], prefix: str) -> dict[str, bytes]:
    out = json.loads(etcdctl(server, endpoints, "get", prefix, "--prefix", "-w", "json"))
    return {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
        for kv in out.get("kvs") or []
    }


def status(server: EtcdServer, endpoint: str) -> dict[str, int]:
    """The member's header: revision and cluster id."""
    out = json.loads(etcdctl(server, [endpoint], "endpoint", "status", "-w", "json"))
    return out[0]["Status"]["header"]


def save_snapshot(server: EtcdServer, path: Path) -> int:
    """`etcdctl snapshot save`; returns the revision the snapshot holds."""
    server.etcdctl("snapshot", "save", str(path))
    return int(status(server, server.client_url)["revision"])


def new_member(name: str, root: Path) -> RestoredMember:
    return RestoredMember(
        name,
        peer_url=f"http://127.0.0.1:{free_port()}",
        client_url=f"http://127.0.0.1:{free_port()}",
        data_dir=root / f"{name}.etcd",
    )


def start_as_printed(started: ExitStack, recovered, root: Path) -> None:
    """Start every member from the command line the restore printed, then wait for quorum."""
    members = []
    for member, command in zip(recovered.members, recovered.commands, strict=True):
        assert f"  {' '.join(command)}" in recovered.steps, "the steps print this command"
        process = EtcdCommand(command, member.client_url, root / f"{member.name}.log")
        started.callback(process.stop)
        process.start(wait=False)
        members.append(process)
    for process in members:
        process.wait_healthy()


def test_the_restore_tool_is_etcds_own_and_bumps_revisions_only_where_it_can(tool):
    if shutil.which("etcdutl") is None:
        assert tool.name == "etcdctl", "etcd 3.4 has no etcdutl: etcdctl restores"
    usage = subprocess.run(
        [tool.path, "snapshot", "restore", "--help"],
        capture_output=True,
        text=True,
        env=tool.env,
        check=False,
    )
    assert tool.can_bump == ("--bump-revision" in usage.stdout + usage.stderr)
    assert tool.version[0].isdigit()


def test_a_snapshot_restored_for_one_member_serves_its_keys_when_started_as_printed(
    private_etcd, tool, started, tmp_path
):
    private_etcd.etcdctl("put", "dr/a", "1")
    private_etcd.etcdctl("put", "dr/b", "2")
    revision = save_snapshot(private_etcd, tmp_path / "snap.db")
    private_etcd.etcdctl("del", "dr/a")
    private_etcd.etcdctl("put", "dr/after", "not in the snapshot")
    member = new_member("restored", tmp_path)

    recovered = restore_snapshot(tmp_path / "snap.db", [member], tool=tool)

    assert recovered.snapshot.revision == revision
    start_as_printed(started, recovered, tmp_path)
    assert values(private_etcd, [member.client_url], "dr/") == {"dr/a": b"1", "dr/b": b"2"}
    header = status(private_etcd, member.client_url)
    assert header["cluster_id"] != status(private_etcd, private_etcd.client_url)["cluster_id"], (
        "a new token gives the restored cluster an id of its own"
    )
    if tool.can_bump:
        assert int(header["revision"]) > revision + recovered.bumped_by - 1
        assert "bumped by" in recovered.steps
    else:
        assert int(header["revision"]) == revision, "without a bump it restarts at the snapshot"
        assert recovered.bumped_by == 0
        assert "cannot bump revisions" in recovered.steps
        assert "--bump-revision" not in " ".join(" ".join(c) for c in recovered.commands)


def test_three_members_restored_from_one_snapshot_form_one_cluster(
    private_etcd, tool, started, tmp_path
):
    for i in range(50):
        private_etcd.etcdctl("put", f"dr3/k{i:02d}", f"v{i}")
    save_snapshot(private_etcd, tmp_path / "snap.db")
    members = [new_member(f"m{i}", tmp_path) for i in range(3)]

    recovered = restore_snapshot(tmp_path / "snap.db", members, tool=tool)

    assert "start every member" in recovered.steps
    start_as_printed(started, recovered, tmp_path)
    endpoints = [m.client_url for m in members]
    listed = etcdctl(private_etcd, endpoints, "member", "list", "-w", "json")
    assert sorted(m["name"] for m in json.loads(listed)["members"]) == ["m0", "m1", "m2"]
    expected = {f"dr3/k{i:02d}": f"v{i}".encode() for i in range(50)}
    for endpoint in endpoints:
        assert values(private_etcd, [endpoint], "dr3/") == expected


def test_an_existing_data_dir_is_refused_and_a_bad_snapshot_fails_with_the_tools_words(
    tool, tmp_path
):
    taken = new_member("m0", tmp_path)
    taken.data_dir.mkdir()
    (tmp_path / "snap.db").write_bytes(b"not a snapshot")
    with pytest.raises(DisasterRecoveryError, match="already exists"):
        restore_snapshot(tmp_path / "snap.db", [taken], tool=tool)

    fresh = new_member("m1", tmp_path)
    with pytest.raises(DisasterRecoveryError, match="could not read the snapshot"):
        restore_snapshot(tmp_path / "snap.db", [fresh], tool=tool)
    assert not fresh.data_dir.exists()


@pytest.mark.parametrize("identity", ["same cluster id", "new cluster id"])
def test_a_follower_ends_with_the_restored_values_when_its_cluster_is_replaced(
    private_etcd, tool, follow, tmp_path, caplog, identity
):
    caplog.set_level("INFO", logger="etcdadmin.core.etcd.follow")
    for i in range(5):
        private_etcd.etcdctl("put", f"drf/k{i}", "as in the snapshot")
    revision = save_snapshot(private_etcd, tmp_path / "snap.db")
    recorder = follow(private_etcd.endpoint, "drf/")
    for i in range(3):
        private_etcd.etcdctl("put", f"drf/k{i}", "written after the snapshot")
    private_etcd.etcdctl("put", "drf/new", "added after the snapshot")
    private_etcd.etcdctl("del", "drf/k4")
    test_follow.wait_view(private_etcd, recorder, "drf/", "the changes after the snapshot")

    # The cluster is lost and replaced, on the same endpoint, by one restored from the snapshot.
    private_etcd.stop()
    shutil.rmtree(private_etcd.data_dir)
    same = identity == "same cluster id"
    member = RestoredMember(
        private_etcd.name, private_etcd.peer_url, private_etcd.client_url, private_etcd.data_dir
    )
    recovered = restore_snapshot(
        tmp_path / "snap.db",
        [member],
        cluster_token=private_etcd.cluster_token if same else None,
        tool=tool,
    )
    private_etcd.start()

    restored = {f"drf/k{i}".encode(): b"as in the snapshot" for i in range(5)}
    wait_until(lambda: recorder.keys == restored, 30, "the follower holding the restored keys")
    assert recorder.loads == 2, "it read everything again"
    assert test_follow.etcdctl_view(private_etcd, "drf/") == restored
    if recovered.bumped_by:
        return  # a bumped restore is noticed as compaction instead
    assert int(status(private_etcd, private_etcd.client_url)["revision"]) == revision
    assert ("went backwards" if same else "cluster id changed") in caplog.text
