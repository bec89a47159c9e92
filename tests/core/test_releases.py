"""Gray releases and the release history against a real etcd, read back with etcdctl."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest

from etcdadmin.core.changes import ChangeConflict, SetValue, TooManyOperations, Workspace
from etcdadmin.core.changes.desired import apply_desired, plan_desired
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.releases.gray import (
    ReleaseError,
    ReleaseNotFound,
    find_release,
    overlay,
    parse_labels,
    read_releases,
)
from etcdadmin.core.releases.history import PublishNote, read_history
from etcdadmin.core.releases.publish import (
    abandon_release,
    create_release,
    draft_release,
    promote_release,
)
from etcdadmin.core.releases.rollback import (
    RollbackCompacted,
    apply_rollback,
    plan_rollback,
    target_revision,
)
from etcdadmin.core.secrets.envelope import open_envelope
from etcdadmin.core.secrets.identities import load_key_files, new_agent_key, write_key_pair
from etcdadmin.core.secrets.recipients import Recipient, add_recipient
from etcdadmin.core.secrets.sealer import SecretSealer

WHO = "tester@host"


@pytest.fixture
def conn(etcd_server) -> Iterator[EtcdConnection]:
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as connection:
        yield connection


@pytest.fixture
def directory() -> str:
    return f"gray-{uuid.uuid4().hex[:10]}"


def etcdctl_json(server, prefix: str) -> list[dict]:
    out = json.loads(server.etcdctl("get", prefix, "--prefix", "-w", "json").stdout)
    return [
        {
            "key": base64.b64decode(kv["key"]).decode(),
            "value": base64.b64decode(kv.get("value", "")).decode(),
            "create_revision": kv["create_revision"],
        }
        for kv in out.get("kvs") or []
    ]


def etcdctl_values(server, prefix: str) -> dict[str, str]:
    return {kv["key"]: kv["value"] for kv in etcdctl_json(server, prefix)}


def seed(server, directory: str) -> None:
    server.etcdctl("put", f"{directory}/log/level", "info")
    server.etcdctl("put", f"{directory}/http/addr", "127.0.0.1:5000")


def make_release(conn, directory: str, yaml_text: str, **targets):
    draft = draft_release(conn, directory.encode(), yaml_text, who=WHO, **targets)
    applied = create_release(conn, draft)
    return draft.release, applied


def test_a_release_is_stored_beside_the_directory_and_leaves_the_directory_alone(
    conn, etcd_server, directory
):
    seed(etcd_server, directory)
    release, applied = make_release(
        conn, directory, "log:\n  level: debug\n", labels={"region": "eu"}, deletes=[b"http/addr"]
    )
    assert etcdctl_values(etcd_server, f"{directory}/") == {
        f"{directory}/log/level": "info",
        f"{directory}/http/addr": "127.0.0.1:5000",
    }
    stored = etcdctl_values(etcd_server, f"/etcdadmin/gray/{directory}/{release.release_id}/")
    root = f"/etcdadmin/gray/{directory}/{release.release_id}/"
    assert stored[root + "keys/log/level"] == "debug"
    manifest = json.loads(stored[root + "manifest"])
    assert manifest["labels"] == {"region": "eu"}
    assert manifest["puts"] == ["log/level"] and manifest["deletes"] == ["http/addr"]
    assert manifest["who"] == WHO and manifest["base_revision"] < applied.revision
    # the history records the creation at the revision of the same transaction
    (record,) = etcdctl_json(etcd_server, f"/etcdadmin/releases/{directory}/")
    assert record["create_revision"] == applied.revision
    body = json.loads(record["value"])
    assert body["kind"] == "gray-create" and body["release"] == release.release_id
    assert body["keys"] == ["http/addr", "log/level"]


def test_only_targeted_agents_see_the_overlay(conn, etcd_server, directory):
    seed(etcd_server, directory)
    release, _ = make_release(conn, directory, "log:\n  level: debug\n", labels={"region": "eu"})
    (found,) = read_releases(conn, directory.encode())
    keys = {f"{directory}/log/level".encode(): b"info"}
    eu, applied = overlay(keys, [found], "new-eu-agent", {"region": "eu", "tier": "web"})
    us, none = overlay(keys, [found], "us-1", {"region": "us"})
    assert eu == {f"{directory}/log/level".encode(): b"debug"} and applied == (release.release_id,)
    assert us == keys and none == ()


def test_promote_writes_the_overlay_and_removes_the_release_in_one_transaction(
    conn, etcd_server, directory
):
    seed(etcd_server, directory)
    release, _ = make_release(
        conn, directory, "log:\n  level: debug\n", agents=["a1"], deletes=[b"http/addr"]
    )
    result = promote_release(conn, release.release_id, who=WHO)
    assert result.complete and len(result.revisions) == 1
    assert etcdctl_values(etcd_server, f"{directory}/") == {f"{directory}/log/level": "debug"}
    assert etcdctl_values(etcd_server, f"/etcdadmin/gray/{directory}/") == {}
    history = read_history(conn, directory.encode())
    assert [r.kind for r in history] == ["gray-create", "gray-promote"]
    assert history[-1].revision == result.revisions[0]
    with pytest.raises(ReleaseNotFound):
        find_release(conn, release.release_id)


def test_promote_refuses_when_a_touched_key_changed_since_the_release(conn, etcd_server, directory):
    seed(etcd_server, directory)
    release, _ = make_release(conn, directory, "log:\n  level: debug\n", agents=["a1"])
    etcd_server.etcdctl("put", f"{directory}/log/level", "warn")
    with pytest.raises(ChangeConflict, match="abandon the release and create it again"):
        promote_release(conn, release.release_id, who=WHO)
    assert etcdctl_values(etcd_server, f"{directory}/log/")[f"{directory}/log/level"] == "warn"
    assert find_release(conn, release.release_id).release_id == release.release_id


def test_a_release_too_large_for_one_transaction_is_promoted_in_batches(
    conn, etcd_server, directory
):
    text = "".join(f"k{i:03d}: v{i}\n" for i in range(150))
    draft = draft_release(conn, directory.encode(), text, who=WHO, agents=["a1"])
    with pytest.raises(TooManyOperations):
        create_release(conn, draft)
    small = "".join(f"k{i:03d}: v{i}\n" for i in range(100))
    release, _ = make_release(conn, directory, small, agents=["a1"])
    steps = []
    result = promote_release(
        conn, release.release_id, who=WHO, max_txn_ops=64, progress=lambda d, t: steps.append(d)
    )
    assert result.complete and len(result.revisions) == 4 and steps[-1] == result.total_steps
    assert len(etcdctl_values(etcd_server, f"{directory}/")) == 100
    assert etcdctl_values(etcd_server, f"/etcdadmin/gray/{directory}/") == {}


def test_abandon_removes_the_release_and_keeps_the_directory(conn, etcd_server, directory):
    seed(etcd_server, directory)
    release, _ = make_release(conn, directory, "log:\n  level: debug\n", labels={"region": "eu"})
    abandon_release(conn, release.release_id, who=WHO)
    assert etcdctl_values(etcd_server, f"/etcdadmin/gray/{directory}/") == {}
    assert etcdctl_values(etcd_server, f"{directory}/log/") == {f"{directory}/log/level": "info"}
    assert [r.kind for r in read_history(conn, directory.encode())] == [
        "gray-create",
        "gray-abandon",
    ]


def test_a_release_needs_targets_and_a_change(conn, etcd_server, directory):
    seed(etcd_server, directory)
    with pytest.raises(ReleaseError, match="needs targets"):
        draft_release(conn, directory.encode(), "log:\n  level: debug\n", who=WHO)
    draft = draft_release(conn, directory.encode(), "log:\n  level: info\n", who=WHO, agents=["x"])
    with pytest.raises(ReleaseError, match="changes nothing"):
        create_release(conn, draft)
    with pytest.raises(ReleaseError, match="not a label"):
        parse_labels("region")


def test_direct_applies_and_client_edits_are_recorded_with_their_revision(
    conn, etcd_server, directory
):
    plan = plan_desired(conn, directory.encode(), "log:\n  level: warn\n")
    result = apply_desired(conn, plan, record=PublishNote("apply", WHO, directory=plan.directory))
    workspace = Workspace(publisher=WHO)
    workspace.stage(SetValue(f"{directory}/http/addr".encode(), b"127.0.0.1:6000", 0))
    edited = workspace.apply(conn)
    assert edited is not None
    history = read_history(conn, directory.encode())
    assert [(r.kind, r.revision) for r in history] == [
        ("apply", result.revisions[0]),
        ("edit", edited.revision),
    ]
    assert history[0].keys == ("log/level",) and history[0].who == WHO
    # a client edit of one key is filed under the key's own directory, inside DIR
    assert history[1].directory == f"{directory}/http/" and history[1].keys == ("addr",)


def test_rollback_restores_the_keys_of_an_earlier_release_as_a_new_publish(
    conn, etcd_server, directory
):
    def publish(text: str) -> int:
        plan = plan_desired(conn, directory.encode(), text, prune=True)
        note = PublishNote("apply", WHO, directory=plan.directory)
        return apply_desired(conn, plan, record=note).revisions[0]

    first = publish("log:\n  level: info\nhttp:\n  addr: 127.0.0.1:5000\n")
    publish("log:\n  level: debug\n")
    history = read_history(conn, directory.encode())
    assert target_revision(history, 2) == first
    plan = plan_rollback(conn, directory.encode(), target_revision(history, 2))
    result = apply_rollback(conn, plan, first, who=WHO)
    assert etcdctl_values(etcd_server, f"{directory}/") == {
        f"{directory}/log/level": "info",
        f"{directory}/http/addr": "127.0.0.1:5000",
    }
    last = read_history(conn, directory.encode())[-1]
    assert (last.kind, last.revision, last.detail) == (
        "rollback",
        result.revisions[-1],
        f"to revision {first}",
    )


def test_rollback_to_a_compacted_revision_points_to_backups(private_etcd):
    with EtcdConnection(ConnectionSettings((private_etcd.endpoint,))) as conn:
        private_etcd.etcdctl("put", "rb/a", "1")
        old = conn.header(b"rb/")[0]
        private_etcd.etcdctl("put", "rb/a", "2")
        private_etcd.etcdctl("compact", str(conn.header(b"rb/")[0]))
        with pytest.raises(RollbackCompacted, match="backup"):
            plan_rollback(conn, b"rb", old)


def test_a_secret_in_a_release_is_sealed_for_its_directory_key_and_promoted_verbatim(
    conn, etcd_server, os_keyring, directory, tmp_path
):
    key = new_agent_key("ed25519", comment="agent")
    write_key_pair(tmp_path / "agent", key)
    add_recipient(conn, directory, Recipient("agent", key.public_key))
    draft = draft_release(
        conn,
        directory.encode(),
        "storage:\n  password: !secret hunter2\n",
        who=WHO,
        labels={"region": "eu"},
        secrets=SecretSealer(conn),
    )
    create_release(conn, draft)
    target = f"{directory}/storage/password".encode()
    root = f"/etcdadmin/gray/{directory}/{draft.release.release_id}/"
    stored = etcd_server.etcdctl(
        "get", "--print-value-only", root + "keys/storage/password"
    ).stdout.rstrip("\n")
    assert "hunter2" not in stored
    identity = load_key_files(str(tmp_path / "agent"))[0].identities[0]
    assert open_envelope(target, stored.encode(), [identity]) == b"hunter2"
    promote_release(conn, draft.release.release_id, who=WHO)
    promoted = etcd_server.etcdctl("get", "--print-value-only", target.decode()).stdout
    assert promoted.rstrip("\n") == stored
