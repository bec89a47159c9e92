"""Online restore of one prefix from a logical backup, against a real etcd.

The backup is what `etcdctl get --prefix` read at one revision (as a logical export is), and
what the restore leaves is read back with etcdctl.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from etcdadmin.core.backup.restore_online import (
    BackupNotRestorable,
    RestoreConflict,
    RestoreInterrupted,
    apply_restore,
    plan_restore,
    render_restore_plan,
)
from etcdadmin.core.changes import ChangeConflict
from etcdadmin.core.errors import EtcdUnavailable
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, TxnOp

MARKER = "MARKER-7d21"
ENVELOPE = (
    "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgy" + MARKER + "\n"
    "-----END AGE ENCRYPTED FILE-----\n"
)


class Record(NamedTuple):
    """A key of a backup as the backup engine hands it over: key and value bytes."""

    key: bytes
    value: bytes


@pytest.fixture
def conn(etcd_server) -> Iterator[EtcdConnection]:
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as connection:
        yield connection


@pytest.fixture
def prefix() -> str:
    """Every test restores a prefix of its own on the shared etcd."""
    return f"restore-{uuid.uuid4().hex[:10]}"


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


def take_backup(server, prefix: str) -> tuple[list[Record], int]:
    """The prefix's keys, sorted, and the revision they were read at: a logical export."""
    out = json.loads(server.etcdctl("get", prefix, "--prefix", "-w", "json").stdout)
    records = [
        Record(base64.b64decode(kv["key"]), base64.b64decode(kv.get("value", "")))
        for kv in out.get("kvs") or []
    ]
    return sorted(records), int(out["header"]["revision"])


def put_many(conn: EtcdConnection, items: dict[str, str]) -> None:
    """Write many keys quickly, 128 per transaction, to set the scene."""
    ops = [TxnOp("put", key.encode(), value.encode()) for key, value in items.items()]
    for start in range(0, len(ops), 128):
        assert conn.txn([], ops[start : start + 128]).succeeded


def numbered(prefix: str, count: int, value: str) -> dict[str, str]:
    return {f"{prefix}/items/k{n:05d}": f"{value}{n}" for n in range(count)}


def test_restore_brings_back_deleted_and_changed_keys_and_deletes_keys_added_since(
    etcd_server, conn, prefix
):
    put_many(
        conn,
        {
            f"{prefix}/http/addr": ":5000",
            f"{prefix}/log/level": "info",
            f"{prefix}/storage/swift/container": "registry",
            f"{prefix}/app/token": ENVELOPE,
            f"{prefix}-2/beside": "a sibling prefix",
            f"other-{prefix}/keep": "before",
        },
    )
    backup, revision = take_backup(etcd_server, f"{prefix}/")
    etcd_server.etcdctl("del", f"{prefix}/log/level")
    etcd_server.etcdctl("put", f"{prefix}/http/addr", ":6000")
    etcd_server.etcdctl("put", "--", f"{prefix}/app/token", ENVELOPE.replace("IFgy", "IGNh"))
    etcd_server.etcdctl("put", f"{prefix}/added/since", "new")
    etcd_server.etcdctl("put", f"{prefix}-2/beside", "changed too, not restored")
    etcd_server.etcdctl("put", f"other-{prefix}/keep", "after")

    plan = plan_restore(conn, prefix.encode(), backup, backup_revision=revision)

    assert [c.key for c in plan.to_add] == [f"{prefix}/log/level".encode()]
    assert [c.key for c in plan.to_change] == [
        f"{prefix}/app/token".encode(),
        f"{prefix}/http/addr".encode(),
    ]
    assert [c.key for c in plan.to_delete] == [f"{prefix}/added/since".encode()]
    assert (plan.unchanged, plan.total) == (1, 4)

    report = apply_restore(conn, plan)

    assert report.complete and report.written_keys == 4 and report.batches == 1
    assert etcdctl_values(etcd_server, f"{prefix}/") == {r.key.decode(): r.value for r in backup}, (
        "the prefix ends exactly as in the backup"
    )
    assert etcdctl_values(etcd_server, f"{prefix}/app/token")[f"{prefix}/app/token"] == (
        ENVELOPE.encode()
    ), "a secret comes back as stored, still encrypted"
    assert etcdctl_values(etcd_server, f"{prefix}-2/") == {
        f"{prefix}-2/beside": b"changed too, not restored"
    }
    assert etcdctl_values(etcd_server, f"other-{prefix}/") == {f"other-{prefix}/keep": b"after"}
    assert plan_restore(conn, prefix.encode(), backup, backup_revision=revision).empty


def test_the_plan_shows_values_but_never_those_of_secrets(etcd_server, conn, prefix):
    put_many(
        conn,
        {
            f"{prefix}/http/addr": ":5000",
            f"{prefix}/storage/swift/password": f"old-{MARKER}",
            f"{prefix}/app/token": ENVELOPE,
            f"{prefix}/app/signing": ENVELOPE,
            f"{prefix}/app/name": "registry",
        },
    )
    backup, revision = take_backup(etcd_server, f"{prefix}/")
    etcd_server.etcdctl("put", f"{prefix}/http/addr", ":6000")
    etcd_server.etcdctl("put", f"{prefix}/storage/swift/password", f"new-{MARKER}")
    # a value stored encrypted is a secret whatever its key is called
    etcd_server.etcdctl("put", "--", f"{prefix}/app/signing", ENVELOPE.replace("IFgy", "IGNh"))
    etcd_server.etcdctl("del", f"{prefix}/app/token")
    etcd_server.etcdctl("put", f"{prefix}/app/extra", f"added-{MARKER}")

    text = render_restore_plan(
        plan_restore(conn, prefix.encode(), backup, backup_revision=revision)
    )

    assert MARKER not in text and "IGNh" not in text and "IFgy" not in text
    lines = text.splitlines()
    assert lines[0].startswith(f"restore {prefix}/ from the backup at revision {revision}")
    assert "~ http/addr: :6000 -> :5000" in lines
    assert "~ storage/swift/password: (secret value changed)" in lines
    signing = next(line for line in lines if line.startswith("~ app/signing: "))
    # stored encrypted: each side by its fingerprint, never the armor or a value
    assert re.fullmatch(
        r"~ app/signing: secret \(sha256:\w{16}\) -> secret \(sha256:\w{16}\)", signing
    )
    assert any(re.fullmatch(r"\+ app/token = secret \(sha256:\w{16}\)", line) for line in lines)
    assert "- app/extra" in lines
    assert lines[-1] == "1 to add back, 3 to change back, 1 to delete (added since), 1 unchanged"


def test_ten_thousand_keys_restore_across_many_transactions_with_progress(
    etcd_server, conn, prefix
):
    put_many(conn, numbered(prefix, 10_000, "backup-"))
    backup, revision = take_backup(etcd_server, f"{prefix}/")
    put_many(conn, numbered(prefix, 10_000, "changed-"))
    plan = plan_restore(conn, prefix.encode(), backup, backup_revision=revision)
    assert len(plan.to_change) == 10_000
    calls: list[tuple[int, int]] = []

    report = apply_restore(conn, plan, progress=lambda done, total: calls.append((done, total)))

    # one compare per key and one for the batch's slice of the prefix: 127 keys a transaction
    assert report.complete and report.batches == 79
    assert calls == [(min(n * 127, 10_000), 10_000) for n in range(1, 80)]
    written = etcdctl_items(etcd_server, f"{prefix}/")
    assert {key: value for key, (value, _) in written.items()} == {
        r.key.decode(): r.value for r in backup
    }
    assert len({mod for _, mod in written.values()}) == 79, "each batch is its own transaction"
    assert "restored: 10000 of 10000 keys written in 79 batches" in report.describe()


def test_a_key_changed_after_the_plan_stops_the_restore_naming_it_and_what_was_written(
    etcd_server, conn, prefix
):
    put_many(conn, numbered(prefix, 400, "backup-"))
    backup, revision = take_backup(etcd_server, f"{prefix}/")
    put_many(conn, numbered(prefix, 400, "changed-"))
    plan = plan_restore(conn, prefix.encode(), backup, backup_revision=revision)
    # 127 keys a batch in key order: k00200 lies in the second batch
    etcd_server.etcdctl("put", f"{prefix}/items/k00200", "theirs")

    with pytest.raises(RestoreConflict) as info:
        apply_restore(conn, plan)

    assert isinstance(info.value, ChangeConflict)
    assert [c.key for c in info.value.conflicts] == [f"{prefix}/items/k00200".encode()]
    message = str(info.value)
    assert f"{prefix}/items/k00200 changed since revision" in message
    assert "theirs" not in message and "backup-200" not in message, "messages carry no values"
    report = info.value.report
    assert (report.written_keys, report.batches, report.complete) == (127, 1, False)
    assert "stopped with batch 2, which wrote nothing" in message
    assert "127 of 400 keys written in 1 batch" in message
    written = etcdctl_values(etcd_server, f"{prefix}/")
    assert written[f"{prefix}/items/k00126"] == b"backup-126"
    assert written[f"{prefix}/items/k00127"] == b"changed-127"
    assert written[f"{prefix}/items/k00200"] == b"theirs"

    # Planning again compares the prefix as it is now; applying that finishes the restore.
    again = plan_restore(conn, prefix.encode(), backup, backup_revision=revision)
    assert len(again.to_change) == 400 - 127
    assert apply_restore(conn, again).complete
    assert etcdctl_values(etcd_server, f"{prefix}/") == {r.key.decode(): r.value for r in backup}


def test_a_key_added_beside_the_planned_ones_stops_the_restore_too(etcd_server, conn, prefix):
    put_many(conn, numbered(prefix, 300, "backup-"))
    backup, revision = take_backup(etcd_server, f"{prefix}/")
    put_many(conn, numbered(prefix, 300, "changed-"))
    plan = plan_restore(conn, prefix.encode(), backup, backup_revision=revision)
    # not in the backup nor in the plan, but inside the second batch's slice of the prefix
    etcd_server.etcdctl("put", f"{prefix}/items/k00200-late", "theirs")

    with pytest.raises(RestoreConflict) as info:
        apply_restore(conn, plan)

    [conflict] = info.value.conflicts
    assert conflict.key == f"{prefix}/items/k00200-late".encode()
    assert "was created since revision" in str(info.value)
    assert info.value.report.written_keys == 127


def test_cancel_stops_the_restore_between_batches_and_reports_how_far_it_got(
    etcd_server, conn, prefix
):
    put_many(conn, numbered(prefix, 400, "backup-"))
    backup, revision = take_backup(etcd_server, f"{prefix}/")
    put_many(conn, numbered(prefix, 400, "changed-"))
    plan = plan_restore(conn, prefix.encode(), backup, backup_revision=revision)
    cancel = threading.Event()

    report = apply_restore(conn, plan, progress=lambda done, total: cancel.set(), cancel=cancel)

    assert report.cancelled and not report.complete
    assert (report.written_keys, report.batches) == (127, 1)
    assert "partly restored: 127 of 400 keys written in 1 batch" in report.describe()
    written = etcdctl_values(etcd_server, f"{prefix}/")
    assert sum(value.startswith(b"backup-") for value in written.values()) == 127


def test_etcd_failing_mid_restore_reports_what_was_written(private_etcd, prefix):
    with EtcdConnection(ConnectionSettings((private_etcd.endpoint,), timeout=2)) as conn:
        put_many(conn, numbered(prefix, 400, "backup-"))
        backup, revision = take_backup(private_etcd, f"{prefix}/")
        put_many(conn, numbered(prefix, 400, "changed-"))
        plan = plan_restore(conn, prefix.encode(), backup, backup_revision=revision)

        def lose_etcd_after_the_first_batch(done: int, total: int) -> None:
            if done == 127:
                private_etcd.stop()

        with pytest.raises(RestoreInterrupted) as info:
            apply_restore(conn, plan, progress=lose_etcd_after_the_first_batch)

    assert isinstance(info.value.__cause__, EtcdUnavailable)
    assert (info.value.written_keys, info.value.batches) == (127, 1)
    assert "127 of 400 keys were written in 1 batch" in str(info.value)
    private_etcd.start()
    written = etcdctl_values(private_etcd, f"{prefix}/")
    assert sum(value.startswith(b"backup-") for value in written.values()) == 127


def test_the_safety_backup_runs_once_before_anything_is_written(etcd_server, conn, prefix):
    put_many(conn, {f"{prefix}/a": "1", f"{prefix}/b": "2"})
    backup, revision = take_backup(etcd_server, f"{prefix}/")
    etcd_server.etcdctl("put", f"{prefix}/a", "changed")
    plan = plan_restore(conn, prefix.encode(), backup, backup_revision=revision)
    seen: list[dict[str, bytes]] = []

    def safety_backup() -> str:
        seen.append(etcdctl_values(etcd_server, f"{prefix}/"))
        return "safety-backup-id"

    report = apply_restore(conn, plan, before_write=safety_backup)

    assert seen == [{f"{prefix}/a": b"changed", f"{prefix}/b": b"2"}]
    assert report.safety_backup == "safety-backup-id" and report.complete


def test_a_failed_safety_backup_leaves_the_prefix_untouched(etcd_server, conn, prefix):
    put_many(conn, {f"{prefix}/a": "1"})
    backup, revision = take_backup(etcd_server, f"{prefix}/")
    etcd_server.etcdctl("put", f"{prefix}/a", "changed")
    plan = plan_restore(conn, prefix.encode(), backup, backup_revision=revision)

    def failing() -> None:
        raise OSError("backup storage is full")

    with pytest.raises(OSError, match="full"):
        apply_restore(conn, plan, before_write=failing)
    assert etcdctl_values(etcd_server, f"{prefix}/") == {f"{prefix}/a": b"changed"}


def test_a_prefix_already_as_in_the_backup_writes_nothing(etcd_server, conn, prefix):
    put_many(conn, {f"{prefix}/a": "1"})
    backup, revision = take_backup(etcd_server, f"{prefix}/")
    plan = plan_restore(conn, prefix.encode(), backup, backup_revision=revision)
    calls: list[object] = []

    report = apply_restore(conn, plan, before_write=lambda: calls.append(1))

    assert plan.empty and report.complete and report.batches == 0 and calls == []


@pytest.mark.parametrize(
    ("keys", "complaint"),
    [
        ([b"P/b", b"P/a"], "not sorted"),
        ([b"P/a", b"P/a"], "P/a comes twice"),
        ([b"P/a", b"P-2/x"], "outside P/"),
    ],
)
def test_keys_that_cannot_come_from_one_export_of_the_prefix_are_refused(
    etcd_server, conn, prefix, keys, complaint
):
    records = [Record(key.replace(b"P", prefix.encode()), b"v") for key in keys]
    with pytest.raises(BackupNotRestorable, match=complaint.replace("P", prefix)):
        plan_restore(conn, prefix.encode(), records, backup_revision=1)
    assert etcdctl_values(etcd_server, f"{prefix}") == {}
