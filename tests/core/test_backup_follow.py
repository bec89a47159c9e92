"""`backup follow` against a real etcd, into a real Swift and a local directory: deltas between
full backups, its recovery point, and what it does when etcd compacted past its watch."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from etcdadmin.core.backup import BackupOptions, Catalog, RetentionPolicy, create_backup, prune
from etcdadmin.core.backup.continuous import FollowOptions, follow_backup
from etcdadmin.core.backup.deltas import DeltaIndex, FollowStatus, read_delta
from etcdadmin.core.backup.errors import BackupAborted, BackupDamaged
from etcdadmin.core.backup.location import Location
from etcdadmin.core.backup.point_in_time import (
    PointInTimeUnavailable,
    key_history_from_backups,
    state_at,
)
from tests.core.backup_support import KINDS, connect, new_location
from tests.stack.procs import wait_until


@dataclass
class Running:
    """A `follow_backup` on a thread of the test's own, and what it reported."""

    reports: list[FollowStatus] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)

    def stored(self, revision: int, timeout: float = 20) -> None:
        wait_until(
            lambda: bool(self.reports) and self.reports[-1].revision >= revision,
            timeout,
            f"the recovery point to reach revision {revision}",
        )


@contextmanager
def following(server, location: Location, options: FollowOptions) -> Iterator[Running]:
    running = Running()

    def run() -> None:
        try:
            with connect(server) as conn:
                follow_backup(
                    conn, location, options, report=running.reports.append, stop=running.stop
                )
        except BaseException as exc:
            running.errors.append(exc)

    thread = threading.Thread(target=run, name="follow", daemon=True)
    thread.start()
    try:
        wait_until(lambda: bool(running.reports) or bool(running.errors), 60, "follow to start")
        assert not running.errors, running.errors
        yield running
    finally:
        running.stop.set()
        thread.join(60)
        assert not thread.is_alive(), "follow did not stop"
    assert not running.errors, running.errors


def _prefix() -> str:
    return f"follow-{uuid.uuid4().hex[:8]}/"


@pytest.mark.parametrize("kind", KINDS)
def test_state_between_t2_and_t3_is_exactly_the_state_at_t2(kind, etcd_server, request, tmp_path):
    location = new_location(kind, request, tmp_path)
    prefix = _prefix()
    options = FollowOptions(prefix, flush_seconds=0.2)
    with connect(etcd_server) as conn, following(etcd_server, location, options) as running:
        conn.put(prefix + "a", "a1")
        conn.put(prefix + "b", "b1")
        running.stored(conn.put(prefix + "c", "c1"))
        conn.put(prefix + "a", "a2")
        conn.delete(prefix + "b")
        running.stored(conn.put(prefix + "e", "e2"))
        between = datetime.now(UTC)
        conn.put(prefix + "a", "a3")
        conn.put(prefix + "b", "b3")
        running.stored(conn.put(prefix + "d", "d3"))
    state = state_at(location, prefix, at_time=between)
    assert {r.key.decode(): r.value for r in state.records} == {
        prefix + "a": b"a2",
        prefix + "c": b"c1",
        prefix + "e": b"e2",
    }
    assert state.deltas_used >= 2


def test_a_moment_after_the_follower_stopped_is_refused(etcd_server, tmp_path):
    location = new_location("local", None, tmp_path)
    prefix = _prefix()
    with (
        connect(etcd_server) as conn,
        following(etcd_server, location, FollowOptions(prefix, flush_seconds=0.2)) as running,
    ):
        running.stored(conn.put(prefix + "a", "1"))
        stopped = running
    with connect(etcd_server) as conn:
        conn.put(prefix + "a", "unrecorded")
    later = datetime.fromisoformat("2099-01-01T00:00:00+00:00")
    with pytest.raises(PointInTimeUnavailable, match="backup follow"):
        state_at(location, prefix, at_time=later)
    assert stopped.reports[-1].event == "stopped"


def test_follow_takes_a_new_full_backup_when_etcd_compacted_past_its_start(private_etcd, tmp_path):
    location = new_location("local", None, tmp_path)
    with connect(private_etcd) as conn:
        old = create_backup(conn, location, BackupOptions())
        for i in range(20):
            conn.put("app/k", f"v{i}")
        private_etcd.etcdctl("compaction", str(conn.put("app/k", "last")))
        with following(private_etcd, location, FollowOptions(flush_seconds=0.2)) as running:
            wait_until(
                lambda: any(r.event == "new-full-backup" for r in running.reports),
                60,
                "a new full backup after the compaction",
            )
            running.stored(conn.put("app/after", "recorded"))
    backups = Catalog(location).entries()
    assert len(backups) == 2 and backups[0].id == old.id
    assert backups[1].revision > old.revision
    state = state_at(location, "app/", at_revision=running.reports[-1].revision)
    assert {r.key: r.value for r in state.records} == {b"app/k": b"last", b"app/after": b"recorded"}


def test_recovery_point_stays_within_seconds_under_steady_puts(etcd_server, tmp_path):
    location = new_location("local", None, tmp_path)
    prefix = _prefix()
    with (
        connect(etcd_server) as conn,
        following(etcd_server, location, FollowOptions(prefix, flush_seconds=0.5)) as running,
    ):
        deadline = time.monotonic() + 5
        i = 0
        while time.monotonic() < deadline:
            last = conn.put(f"{prefix}k{i % 50}", str(i))
            i += 1
        running.stored(last, timeout=5)
    flushed = [r for r in running.reports if r.event == "flushed"]
    assert len(flushed) >= 5
    # each delta is stored within the flush interval plus its upload: never seconds behind
    assert max(r.lag_seconds for r in running.reports) < 3.0


def test_history_from_backups_reaches_past_etcds_compaction(private_etcd, tmp_path):
    location = new_location("local", None, tmp_path)
    with connect(private_etcd) as conn:
        first = conn.put("app/key", "first")
        with following(private_etcd, location, FollowOptions(flush_seconds=0.2)) as running:
            second = conn.put("app/key", "second")
            conn.delete("app/key")
            running.stored(conn.put("app/key", "third"))
        private_etcd.etcdctl("compaction", str(conn.put("app/other", "x")))
    versions = key_history_from_backups(location, b"app/key").versions
    assert [v.revision for v in versions] == sorted((v.revision for v in versions), reverse=True)
    by_revision = {v.revision: v.value for v in versions}
    assert by_revision[first] == b"first" and by_revision[second] == b"second"
    assert by_revision[second + 1] is None
    # the client's "Include backups" unchecked: the search stops before its next download
    stopped = threading.Event()
    stopped.set()
    with pytest.raises(BackupAborted, match="stopped"):
        key_history_from_backups(location, b"app/key", cancel=stopped)


def test_a_damaged_export_gives_no_state_and_no_history_only_its_name(etcd_server, tmp_path):
    # The export streams by record by record: nothing read from it counts until its last
    # byte matched the manifest.
    location = new_location("local", None, tmp_path)
    top = f"pit-{uuid.uuid4().hex[:8]}/"
    with connect(etcd_server) as conn:
        conn.put(f"{top}a", "1")
        conn.put(f"{top}b", "2")
        manifest = create_backup(conn, location, BackupOptions(prefix=top))
    whole = state_at(location, top, at_revision=manifest.revision)
    assert [(r.key, r.value) for r in whole.records] == [
        (f"{top}a".encode(), b"1"),
        (f"{top}b".encode(), b"2"),
    ]
    found = key_history_from_backups(location, f"{top}a".encode())
    assert [v.value for v in found.versions] == [b"1"]
    export = tmp_path / "backups" / manifest.id / "keys.jsonl.gz"
    damaged = bytearray(export.read_bytes())
    damaged[-9] ^= 0xFF  # inside the gzip trailer's CRC: the records read, the bytes differ
    export.write_bytes(bytes(damaged))
    for look in (
        lambda: state_at(location, top, at_revision=manifest.revision),
        lambda: key_history_from_backups(location, f"{top}a".encode()),
    ):
        with pytest.raises(BackupDamaged, match=r"keys\.jsonl\.gz .*use another backup"):
            look()


def test_history_in_backups_skips_those_the_identities_given_do_not_open(etcd_server, tmp_path):
    import pyrage

    location = new_location("local", None, tmp_path)
    mine, theirs = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    key = f"pit-{uuid.uuid4().hex[:8]}/a"
    with connect(etcd_server) as conn:
        conn.put(key, "mine")
        own = create_backup(
            conn, location, BackupOptions(prefix=key, recipients=(str(mine.to_public()),))
        )
        conn.put(key, "theirs")
        other = create_backup(
            conn, location, BackupOptions(prefix=key, recipients=(str(theirs.to_public()),))
        )
        # no key export: nothing to search with any identity, so not named either
        conn.put(key, "later")  # a backup id is its time and revision: another revision
        snapshot_only = BackupOptions(
            prefix=key, export=False, recipients=(str(theirs.to_public()),)
        )
        create_backup(conn, location, snapshot_only)
    found = key_history_from_backups(location, key.encode(), identities=[mine])
    assert [(v.value, v.source) for v in found.versions] == [(b"mine", own.id)]
    assert found.unsearched == (other.id,), "the backup it could not open is named"
    # without any identity neither is opened, and both are named
    unopened = key_history_from_backups(location, key.encode())
    assert (unopened.versions, set(unopened.unsearched)) == ([], {own.id, other.id})


def test_deltas_hold_every_change_once_in_revision_order(etcd_server, tmp_path):
    location = new_location("local", None, tmp_path)
    prefix = _prefix()
    with (
        connect(etcd_server) as conn,
        following(
            etcd_server, location, FollowOptions(prefix, flush_seconds=0.1, flush_events=7)
        ) as running,
    ):
        revisions = []
        # in groups, each stored before the next: several deltas whatever the timing (40 puts
        # at once can reach a lagging follower in one watch response, stored as one delta)
        for group in range(5):
            revisions += [conn.put(f"{prefix}k{group}-{i}", str(i)) for i in range(8)]
            running.stored(revisions[-1])
    cluster = running.reports[-1].cluster_id
    entries = DeltaIndex(location, cluster).entries()
    changes = [c for e in entries for c in read_delta(location, e)]
    assert [c.mod_revision for c in changes] == revisions
    assert len(entries) >= 3
    for before, after in itertools.pairwise(entries):
        assert after.from_revision == before.to_revision


def test_prune_keeps_deltas_after_the_oldest_kept_backup_and_removes_older_ones(
    etcd_server, tmp_path
):
    location = new_location("local", None, tmp_path)
    prefix = _prefix()
    options = FollowOptions(prefix, flush_seconds=0.1)
    with connect(etcd_server) as conn:
        with following(etcd_server, location, options) as running:
            running.stored(conn.put(prefix + "a", "before"))
        newer = create_backup(conn, location, BackupOptions(prefix=prefix))
        with following(etcd_server, location, options) as running:
            after = conn.put(prefix + "a", "after")
            running.stored(after)
    cluster = running.reports[-1].cluster_id
    assert len(DeltaIndex(location, cluster).entries()) == 2
    # leftover_age 0: the deltas folder, which has no manifest, must not pass for leftovers
    result = prune(location, RetentionPolicy(keep_last=1), leftover_age=0)
    assert result.kept == (newer.id,) and not result.leftovers
    remaining = DeltaIndex(location, cluster).entries()
    assert [e.to_revision for e in remaining] == [after]
    state = state_at(location, prefix, at_revision=after)
    assert {r.key: r.value for r in state.records} == {(prefix + "a").encode(): b"after"}
