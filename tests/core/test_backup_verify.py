"""Verifying backups: every object downloaded again and checked against the manifest (and the
snapshot against etcd's own trailing hash); the verification time lands in the catalog."""

from __future__ import annotations

import pytest

from etcdadmin.core.backup import BackupOptions, Catalog, create_backup, verify_backup
from etcdadmin.core.backup.errors import BackupDamaged, BackupNotFound, LocationUnreachable
from etcdadmin.core.backup.manifest import SNAPSHOT
from tests.core.backup_support import KINDS, MiB, connect, fill, new_location


def _alter_one_segment(location, kind: str, manifest, request) -> None:
    """Flip bytes in the middle of the snapshot's second segment, keeping its size."""
    snapshot = manifest.object(SNAPSHOT)
    segment = snapshot.segments[1]
    if kind == "swift":
        connection = request.getfixturevalue("swift").connection()
        try:
            _, data = connection.get_object(location.segments_container, segment.name)
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            connection.put_object(location.segments_container, segment.name, bytes(data))
        finally:
            connection.close()
    else:
        path = location.root / snapshot.name
        with path.open("r+b") as handle:
            handle.seek(snapshot.segments[0].size + segment.size // 2)
            byte = handle.read(1)
            handle.seek(-1, 1)
            handle.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("kind", KINDS)
def test_verify_passes_then_an_altered_segment_fails_it_with_a_clear_message(
    kind, private_etcd, request, tmp_path
):
    location = new_location(kind, request, tmp_path)
    with connect(private_etcd) as conn:
        fill(conn, "v/", 2500)
        manifest = create_backup(conn, location, BackupOptions(segment_size=MiB))
    report = verify_backup(location, manifest.id)
    assert Catalog(location).find(manifest.id).verified_at == report.verified_at

    _alter_one_segment(location, kind, manifest, request)
    with pytest.raises((BackupDamaged, LocationUnreachable)) as caught:
        verify_backup(location, manifest.id)
    message = str(caught.value)
    assert manifest.object(SNAPSHOT).name in message
    assert "altered" in message and "\n" not in message


@pytest.mark.parametrize("kind", KINDS)
def test_deep_verify_reads_the_snapshot_with_etcdctl(kind, private_etcd, request, tmp_path):
    location = new_location(kind, request, tmp_path)
    with connect(private_etcd) as conn:
        fill(conn, "d/", 20, size=10)
        manifest = create_backup(conn, location, BackupOptions(prefix="d/"))
    report = verify_backup(location, manifest.id, deep=True)
    assert report.snapshot_status is not None
    assert report.snapshot_status["revision"] == manifest.revision


def test_verify_of_an_unknown_backup_says_how_to_list_them(tmp_path, request):
    location = new_location("local", request, tmp_path)
    with pytest.raises(BackupNotFound, match="backup ls"):
        verify_backup(location, "0000000000000001/20260101T000000Z-r1")
