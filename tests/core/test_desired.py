"""A directory's desired state from a YAML file: plan, guarded batched apply, masked display.

Everything is checked against a real etcd, and what was written is read back with etcdctl.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator

import pytest
import yaml

from etcdadmin.core.changes import ChangeConflict
from etcdadmin.core.changes.desired import DesiredConflict, apply_desired, plan_desired
from etcdadmin.core.changes.desired_display import plan_json, render_plan
from etcdadmin.core.config.sensitive import holds_private_key, is_secret_key
from etcdadmin.core.errors import MappingError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection

MARKER = "MARKER-3f9c"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQ" + MARKER + "\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def conn(etcd_server) -> Iterator[EtcdConnection]:
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as connection:
        yield connection


@pytest.fixture
def directory() -> str:
    """Every test writes under a directory of its own on the shared etcd."""
    return f"desired-{uuid.uuid4().hex[:10]}"


def etcdctl_items(server, prefix: str) -> dict[str, tuple[bytes, int]]:
    """Every key under `prefix` as etcdctl reads it: key -> (value, mod revision)."""
    out = json.loads(server.etcdctl("get", prefix, "--prefix", "-w", "json").stdout)
    return {
        base64.b64decode(kv["key"]).decode(): (
            base64.b64decode(kv.get("value", "")),
            kv["mod_revision"],
        )
        for kv in out.get("kvs") or []
    }


def etcdctl_values(server, prefix: str) -> dict[str, bytes]:
    return {key: value for key, (value, _) in etcdctl_items(server, prefix).items()}


def etcdctl_revision(server) -> int:
    out = json.loads(server.etcdctl("endpoint", "status", "-w", "json").stdout)
    return int(out[0]["Status"]["header"]["revision"])


def items_config(count: int, value: str = "v") -> str:
    return yaml.safe_dump({"items": {f"k{n:04d}": f"{value}{n}" for n in range(count)}})


def test_plan_then_apply_writes_the_keys_of_the_file(etcd_server, conn, directory):
    etcd_server.etcdctl("put", f"{directory}/http/addr", ":5000")
    etcd_server.etcdctl("put", f"{directory}/log/level", "info")
    text = "http:\n  addr: ':6000'\nlog:\n  level: info\nstorage:\n  swift:\n    chunksize: 5\n"

    plan = plan_desired(conn, directory.encode(), text)

    assert [c.key for c in plan.added] == [f"{directory}/storage/swift/chunksize".encode()]
    assert [(c.key, c.before.value, c.after) for c in plan.changed] == [
        (f"{directory}/http/addr".encode(), b":5000", b":6000")
    ]
    assert plan.removed == () and plan.unchanged == 1
    result = apply_desired(conn, plan)
    assert result.complete and len(result.revisions) == 1
    assert etcdctl_values(etcd_server, f"{directory}/") == {
        f"{directory}/http/addr": b":6000",
        f"{directory}/log/level": b"info",
        f"{directory}/storage/swift/chunksize": b"5",
    }
    assert plan_desired(conn, directory.encode(), text).empty


def test_a_plan_without_changes_writes_nothing(etcd_server, conn, directory):
    text = items_config(20)
    apply_desired(conn, plan_desired(conn, directory.encode(), text))
    plan = plan_desired(conn, directory.encode(), text)
    assert plan.empty and plan.unchanged == 20
    before = etcdctl_revision(etcd_server)

    result = apply_desired(conn, plan)

    assert result.batches == () and result.complete
    assert etcdctl_revision(etcd_server) == before, "no transaction, the revision did not move"


def test_a_key_changed_between_plan_and_apply_stops_the_apply_at_its_batch(
    etcd_server, conn, directory
):
    plan = plan_desired(conn, directory.encode(), items_config(300))
    # keys are applied in key order, 128 per batch: k0200 lies in the second batch
    etcd_server.etcdctl("put", f"{directory}/items/k0200", "theirs")

    with pytest.raises(DesiredConflict) as info:
        apply_desired(conn, plan, max_txn_ops=128)

    assert isinstance(info.value, ChangeConflict)
    [conflict] = info.value.conflicts
    assert conflict.key == f"{directory}/items/k0200".encode()
    message = str(info.value)
    assert f"{directory}/items/k0200" in message
    assert "theirs" not in message and "v200" not in message, "messages never carry values"
    assert "Batch 2 of 3 wrote nothing" in message
    done = info.value.result
    assert done.applied_keys == 128 and len(done.revisions) == 1
    assert f"128 of 300 keys written in 1 batch at revision {done.revisions[0]}" in message
    written = etcdctl_values(etcd_server, f"{directory}/")
    assert sorted(written) == [f"{directory}/items/k{n:04d}" for n in range(128)] + [
        f"{directory}/items/k0200"
    ]
    assert written[f"{directory}/items/k0200"] == b"theirs"


def test_prune_removes_keys_the_file_does_not_name_and_only_with_prune(
    etcd_server, conn, directory
):
    for name in ("a", "b", "stray"):
        etcd_server.etcdctl("put", f"{directory}/{name}", name)
    text = "a: a\nb: b\n"

    kept = plan_desired(conn, directory.encode(), text)
    assert kept.empty and kept.kept == 1 and kept.removed == ()
    apply_desired(conn, kept)
    assert f"{directory}/stray" in etcdctl_values(etcd_server, f"{directory}/")
    assert "1 key not in the file is kept" in render_plan(kept)

    pruned = plan_desired(conn, directory.encode(), text, prune=True)
    assert [c.key for c in pruned.removed] == [f"{directory}/stray".encode()]
    assert "- stray" in render_plan(pruned).splitlines()
    apply_desired(conn, pruned)
    assert etcdctl_values(etcd_server, f"{directory}/") == {
        f"{directory}/a": b"a",
        f"{directory}/b": b"b",
    }


def test_a_thousand_keys_are_written_in_batches_of_128_each_at_its_own_revision(
    etcd_server, conn, directory
):
    plan = plan_desired(conn, directory.encode(), items_config(1000))
    calls: list[tuple[int, int]] = []

    result = apply_desired(conn, plan, progress=lambda done, total: calls.append((done, total)))

    assert calls == [(min(n * 128, 1000), 1000) for n in range(1, 9)]
    written = etcdctl_items(etcd_server, f"{directory}/")
    assert len(written) == 1000
    assert written[f"{directory}/items/k0999"][0] == b"v999"
    revisions = sorted({revision for _, revision in written.values()})
    assert revisions == sorted(result.revisions) and len(revisions) == 8


def test_cancel_stops_cleanly_between_batches(etcd_server, conn, directory):
    plan = plan_desired(conn, directory.encode(), items_config(400))
    cancel = threading.Event()

    result = apply_desired(conn, plan, progress=lambda done, total: cancel.set(), cancel=cancel)

    assert result.cancelled and not result.complete
    assert result.applied_keys == 128 and result.total_keys == 400
    assert result.describe().startswith("128 of 400 keys written in 1 batch")
    written = etcdctl_values(etcd_server, f"{directory}/")
    assert sorted(written) == [f"{directory}/items/k{n:04d}" for n in range(128)]


def test_secret_values_never_appear_in_the_plan_text_or_json(etcd_server, conn, directory):
    etcd_server.etcdctl("put", f"{directory}/storage/swift/password", f"old-{MARKER}")
    etcd_server.etcdctl("put", f"{directory}/http/addr", ":5000")
    config = {
        "storage": {"swift": {"password": f"new-{MARKER}", "username": "test:tester"}},
        "http": {"secret": f"s-{MARKER}", "addr": ":6000", "tls": {"keypem": PEM}},
        "auth": {"htpasswd": {"path": "/etc/registry/htpasswd"}},
    }
    plan = plan_desired(conn, directory.encode(), yaml.safe_dump(config))

    text = render_plan(plan)
    document = json.dumps(plan_json(plan))

    assert MARKER not in text and MARKER not in document
    lines = text.splitlines()
    assert "+ http/secret = (secret)" in lines
    assert "+ http/tls/keypem = (secret)" in lines, "PEM private key material is masked too"
    assert "~ storage/swift/password: (secret value changed)" in lines
    assert "+ storage/swift/username = test:tester" in lines
    assert "+ auth/htpasswd/path = /etc/registry/htpasswd" in lines
    assert "~ http/addr: :5000 -> :6000" in lines
    assert lines[-1] == "4 to add, 2 to change, 0 to remove, 0 unchanged"
    entries = {entry["path"]: entry for entry in plan_json(plan)["changes"]}
    assert entries["storage/swift/password"]["secret"] is True
    assert entries["storage/swift/password"]["before"] == "(secret)"
    assert entries["http/addr"] == {
        "action": "change",
        "key": f"{directory}/http/addr",
        "path": "http/addr",
        "secret": False,
        "mod_revision": etcdctl_items(etcd_server, f"{directory}/http/addr")[
            f"{directory}/http/addr"
        ][1],
        "before": ":5000",
        "after": ":6000",
    }
    assert plan_json(plan)["counts"] == {
        "add": 4,
        "change": 2,
        "remove": 0,
        "unchanged": 0,
        "kept": 0,
    }


def test_binary_and_long_values_are_shown_escaped_and_shortened(conn, directory):
    conn.put(f"{directory}/blob".encode(), b"\xff\x00binary")
    long_value = "x" * 500
    plan = plan_desired(conn, directory.encode(), f"blob: text\nlong: {long_value}\n")

    lines = render_plan(plan).splitlines()

    assert "~ blob: 0xff0062696e617279 -> text" in lines
    [long_line] = [line for line in lines if line.startswith("+ long = ")]
    assert len(long_line) < 120 and long_line.endswith("…")


def test_a_file_that_is_not_valid_yaml_raises_mapping_error(conn, directory):
    with pytest.raises(MappingError, match="not valid YAML"):
        plan_desired(conn, directory.encode(), "a: [unclosed\n")
    with pytest.raises(MappingError, match="must be a YAML mapping"):
        plan_desired(conn, directory.encode(), "- a list\n")


@pytest.mark.parametrize(
    ("relative_key", "secret"),
    [
        ("storage/swift/password", True),
        ("storage.swift.password", True),
        ("http/secret", True),
        ("http.secret", True),
        ("redis/password", True),
        ("proxy/password", True),
        ("storage/s3/accesskey", True),
        ("storage/s3/secretkey", True),
        ("storage/azure/accountkey", True),
        ("auth/silly/api_key", True),
        ("x/X-Api-Key", True),
        ("db/passwd", True),
        ("github/token", True),
        ("ssh/private_key", True),
        ("tls/privateKey", True),
        ("aws/credentials", True),
        ("credentials/aws/id", True),
        ("secrets/db/host", True),
        ("notifications/endpoints/0/headers/Authorization/0", True),
        ("auth/htpasswd/path", False),
        ("auth.htpasswd.path", False),
        ("auth/htpasswd/realm", False),
        ("auth/token/realm", False),
        ("storage/swift/username", False),
        ("http/addr", False),
        ("tokenurl", False),
        ("log/level", False),
        ("", False),
    ],
)
def test_which_paths_are_secret(relative_key, secret):
    assert is_secret_key(relative_key) is secret


def test_pem_private_key_material_is_secret_by_its_value():
    assert holds_private_key(PEM.encode())
    assert holds_private_key(b"-----BEGIN RSA PRIVATE KEY-----\n...")
    assert not holds_private_key(b"-----BEGIN CERTIFICATE-----\n...")
    assert not holds_private_key(None)
