"""Retention and clean-up: the policy keeps exactly the expected backups, never the newest
verified one, and the leftovers of an interrupted upload go at the next prune."""

from __future__ import annotations

import json

import pytest

from etcdadmin.core.backup import (
    BackupOptions,
    Catalog,
    RetentionPolicy,
    create_backup,
    prune,
    remove_backup,
    verify_backup,
)
from etcdadmin.core.backup.errors import BackupAborted, BackupError, BackupNotFound
from etcdadmin.core.backup.location import CATALOG_NAME
from etcdadmin.core.backup.manifest import CatalogEntry, manifest_name
from etcdadmin.core.backup.retention import kept
from tests.core.backup_support import KINDS, MiB, connect, fill, new_location


def _entry(created: str, verified: bool = False, cluster: str = "c") -> CatalogEntry:
    return CatalogEntry(
        id=f"{cluster}/{created}",
        cluster_id=cluster,
        created=created,
        revision=1,
        size=1,
        key_count=0,
        prefix="",
        encrypted=False,
        verified_at="2026-01-01T00:00:00Z" if verified else None,
    )


# Two backups a day (00:00 and 12:00) from 2026-01-01 to 2026-03-31.
_DAYS = [
    f"2026-{m:02d}-{d:02d}"
    for m in (1, 2, 3)
    for d in range(1, 32)
    if (m, d) not in {(2, 29), (2, 30), (2, 31)}
]
_ENTRIES = [_entry(f"{day}T{hour}:00:00Z") for day in _DAYS for hour in ("00", "12")]


def _ids(*stamps: str) -> set[str]:
    return {f"c/{s}" for s in stamps}


def test_keep_last_keeps_the_newest_n():
    assert kept(_ENTRIES, RetentionPolicy(keep_last=3)) == _ids(
        "2026-03-31T12:00:00Z", "2026-03-31T00:00:00Z", "2026-03-30T12:00:00Z"
    )


def test_daily_weekly_monthly_keep_the_newest_of_each_period():
    got = kept(_ENTRIES, RetentionPolicy(keep_daily=2, keep_weekly=2, keep_monthly=3))
    assert got == _ids(
        # daily: 31 and 30 March
        "2026-03-31T12:00:00Z",
        "2026-03-30T12:00:00Z",
        # weekly: the week of 30 March (already kept), then the newest of the week before
        "2026-03-29T12:00:00Z",
        # monthly: March (kept), February, January
        "2026-02-28T12:00:00Z",
        "2026-01-31T12:00:00Z",
    )


def test_the_newest_verified_backup_is_always_kept():
    entries = [*_ENTRIES[:-5], _entry("2026-03-29T12:00:00Z", verified=True), *_ENTRIES[-4:]]
    assert "c/2026-03-29T12:00:00Z" in kept(entries, RetentionPolicy(keep_last=1))


def test_each_cluster_keeps_its_own_newest():
    entries = [_entry("2026-01-01T00:00:00Z", cluster="a"), _entry("2026-01-02T00:00:00Z")]
    assert kept(entries, RetentionPolicy(keep_last=1)) == {
        "a/2026-01-01T00:00:00Z",
        "c/2026-01-02T00:00:00Z",
    }


def test_prune_without_a_policy_refuses_and_says_which_options(tmp_path, request):
    with pytest.raises(BackupError, match="--keep-last"):
        prune(new_location("local", request, tmp_path), RetentionPolicy())


@pytest.mark.parametrize("kind", KINDS)
def test_prune_keeps_exactly_the_newest_and_the_newest_verified(
    kind, etcd_server, request, tmp_path
):
    location = new_location(kind, request, tmp_path)
    ids = []
    with connect(etcd_server) as conn:
        for i in range(4):
            conn.put(f"prune-{kind}/k", str(i))
            ids.append(create_backup(conn, location, BackupOptions(prefix=f"prune-{kind}/")).id)
    verify_backup(location, ids[0])
    dry = prune(location, RetentionPolicy(keep_last=2), dry_run=True)
    assert set(dry.removed) == {ids[1]} and set(dry.kept) == {ids[0], ids[2], ids[3]}
    assert [e.id for e in Catalog(location).entries()] == ids
    prune(location, RetentionPolicy(keep_last=2))
    assert [e.id for e in Catalog(location).entries(rebuild=True)] == [ids[0], ids[2], ids[3]]
    assert not [o for o in location.list_all() if o.name.startswith(ids[1])]


@pytest.mark.parametrize("kind", KINDS)
def test_an_interrupted_upload_is_never_listed_and_its_leftovers_go_at_the_next_prune(
    kind, private_etcd, request, tmp_path
):
    location = new_location(kind, request, tmp_path)
    with connect(private_etcd) as conn:
        fill(conn, "i/", 2500)
        kept_one = create_backup(conn, location, BackupOptions(prefix="i/", segment_size=MiB))
        conn.put("i/changed", "so the next backup has another id")
        with pytest.raises(BackupAborted):
            create_backup(conn, location, BackupOptions(segment_size=MiB, stop_after_segments=2))
    leftovers = [o for o in location.list_all() if not o.name.startswith(kept_one.id)]
    assert any(o.name != CATALOG_NAME for o in leftovers)
    assert [e.id for e in Catalog(location).entries(rebuild=True)] == [kept_one.id]

    # A fresh upload may still be running: leftovers younger than the age are kept.
    assert prune(location, RetentionPolicy(keep_last=5)).leftovers == ()
    result = prune(location, RetentionPolicy(keep_last=5), leftover_age=0)
    assert len(result.leftovers) == 1
    remaining = {o.name for o in location.list_all()}
    assert all(name.startswith(kept_one.id) or name == CATALOG_NAME for name in remaining)
    verify_backup(location, kept_one.id)


@pytest.mark.parametrize("kind", KINDS)
def test_the_catalog_is_rebuilt_when_missing_and_caught_up_when_stale(
    kind, etcd_server, request, tmp_path
):
    location = new_location(kind, request, tmp_path)
    with connect(etcd_server) as conn:
        first = create_backup(conn, location, BackupOptions(prefix="cat/"))
        conn.put("cat/x", "1")
        second = create_backup(conn, location, BackupOptions(prefix="cat/"))
    # as if the second backup's writer died between its manifest and the catalog
    stale = json.loads(location.read_small(CATALOG_NAME))
    stale["backups"] = [b for b in stale["backups"] if b["id"] == first.id]
    location.write_small(CATALOG_NAME, json.dumps(stale).encode())
    assert [e.id for e in Catalog(location).entries()] == [first.id, second.id]

    location.delete(next(o for o in location.list_all() if o.name == CATALOG_NAME))
    assert [e.id for e in Catalog(location).entries()] == [first.id, second.id]
    remove_backup(location, first.id)
    assert [e.id for e in Catalog(location).entries(rebuild=True)] == [second.id]


def _two_backups(conn, location, prefix: str):
    """Two export-only backups of `prefix`, a write apart (their ids differ by revision)."""
    first = create_backup(conn, location, BackupOptions(prefix=prefix, snapshot=False))
    conn.put(f"{prefix}x", "1")
    return first, create_backup(conn, location, BackupOptions(prefix=prefix, snapshot=False))


def _keep_in_catalog(location, backup: str) -> None:
    """The stored catalog rewritten to list `backup` alone, as a writer that lost the others'
    entries would leave it."""
    stored = json.loads(location.read_small(CATALOG_NAME))
    stored["backups"] = [b for b in stored["backups"] if b["id"] == backup]
    location.write_small(CATALOG_NAME, json.dumps(stored).encode())


def _stored_ids(location) -> list[str]:
    return [b["id"] for b in json.loads(location.read_small(CATALOG_NAME))["backups"]]


class _Recording:
    """A real location that records which small objects are read and written, and listings."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name not in ("read_small", "write_small", "children"):
            return attr

        def recorded(*args, **kwargs):
            self.calls.append((name, args[0]))
            return attr(*args, **kwargs)

        return recorded


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_backup_reads_and_writes_the_catalog_once_and_catches_up_with_others(
    kind, etcd_server, request, tmp_path
):
    location = new_location(kind, request, tmp_path)
    with connect(etcd_server) as conn:
        first, second = _two_backups(conn, location, "once/")
        # the second backup's writer died between its manifest and the catalog
        _keep_in_catalog(location, first.id)
        conn.put("once/x", "2")
        recording = _Recording(location)
        third = create_backup(conn, recording, BackupOptions(prefix="once/", snapshot=False))

    catalog = [call for call in recording.calls if call[1] == CATALOG_NAME]
    assert catalog == [("read_small", CATALOG_NAME), ("write_small", CATALOG_NAME)]
    # its own manifest: looked for once before the backup (an id taken already), never after
    assert recording.calls.count(("read_small", manifest_name(third.id))) == 1
    assert ("read_small", manifest_name(second.id)) in recording.calls
    assert [e.id for e in Catalog(location).entries()] == [first.id, second.id, third.id]


class _LaggingListing:
    """A real location whose listings do not show backups after `shown_until` yet, as a
    Swift container listing may not show an object just written."""

    def __init__(self, inner, shown_until: str):
        self.inner = inner
        self.shown_until = shown_until

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def children(self, prefix: str, after: str = "") -> list[str]:
        listed = self.inner.children(prefix, after)
        if not prefix:
            return listed  # the clusters
        return [stamp for stamp in listed if f"{prefix}{stamp}" <= self.shown_until]


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_backup_reaches_a_missing_catalog_before_listings_show_it(
    kind, etcd_server, request, tmp_path
):
    location = new_location(kind, request, tmp_path)
    with connect(etcd_server) as conn:
        first = create_backup(conn, location, BackupOptions(prefix="lag/", snapshot=False))
        location.delete(next(o for o in location.list_all() if o.name == CATALOG_NAME))
        conn.put("lag/x", "1")
        lagging = _LaggingListing(location, shown_until=first.id)
        second = create_backup(conn, lagging, BackupOptions(prefix="lag/", snapshot=False))
    assert _stored_ids(location) == [first.id, second.id]


@pytest.mark.parametrize("kind", KINDS)
def test_the_catalog_catches_up_a_backup_older_than_its_newest_entry(
    kind, etcd_server, request, tmp_path
):
    # The older backup's entry never reached the catalog while a later one's did: its writer
    # died after its manifest, or another writer's catalog replaced the one holding it.
    location = new_location(kind, request, tmp_path)
    with connect(etcd_server) as conn:
        first, second = _two_backups(conn, location, "older/")
    _keep_in_catalog(location, second.id)

    assert [e.id for e in Catalog(location).entries()] == [first.id, second.id]
    assert _stored_ids(location) == [first.id, second.id]


@pytest.mark.parametrize("kind", KINDS)
def test_a_removed_backup_that_a_late_catalog_write_lists_again_goes_at_the_next_prune(
    kind, etcd_server, request, tmp_path
):
    location = new_location(kind, request, tmp_path)
    with connect(etcd_server) as conn:
        gone, newest = _two_backups(conn, location, "ghost/")
    read_before = location.read_small(CATALOG_NAME)  # another writer reads the catalog,
    remove_backup(location, gone.id)
    location.write_small(CATALOG_NAME, read_before)  # and writes it after the removal
    assert [e.id for e in Catalog(location).entries()] == [gone.id, newest.id]

    result = prune(location, RetentionPolicy(keep_last=1))
    assert result.removed == (gone.id,)
    assert [e.id for e in Catalog(location).entries()] == [newest.id]
    with pytest.raises(BackupNotFound):
        remove_backup(location, gone.id)
    verify_backup(location, newest.id)
