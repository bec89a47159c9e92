"""Taking backups against real etcd and a real Swift (and a local directory): what an operator
gets back with the stock tools, `swift download`, `etcdctl snapshot restore` and `age -d`."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pyrage
import pytest
from swiftclient.exceptions import ClientException

from etcdadmin.core.backup import BackupOptions, Catalog, create_backup
from etcdadmin.core.backup.errors import LocationAuthFailed, LocationUnreachable
from etcdadmin.core.backup.export import read_export
from etcdadmin.core.backup.manifest import EXPORT, SNAPSHOT, BackupManifest
from etcdadmin.core.backup.swift import SwiftCredentials, SwiftLocation
from tests.core.backup_support import (
    KINDS,
    MiB,
    connect,
    credentials,
    fill,
    new_location,
    swift_cli,
)
from tests.stack.etcd import EtcdServer
from tests.stack.procs import free_port


def _download(location, kind: str, name: str, target: Path, request) -> Path:
    """The object as an operator fetches it: `swift download`, or the file itself."""
    if kind == "swift":
        swift = request.getfixturevalue("swift")
        swift_cli(swift, "download", location.container, name, "-o", str(target))
    else:
        shutil.copy(location.root / name, target)
    return target


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_restores_with_etcdctl_into_an_etcd_serving_the_same_keys(
    kind, private_etcd, request, tmp_path
):
    location = new_location(kind, request, tmp_path)
    with connect(private_etcd) as conn:
        written = fill(conn, "app/", 2500)
        manifest = create_backup(conn, location, BackupOptions(segment_size=MiB, workers=3))
        conn.put("app/after-backup", "not in the backup")
    snapshot = manifest.object(SNAPSHOT)
    assert snapshot is not None and len(snapshot.segments) >= 2
    db = _download(location, kind, snapshot.name, tmp_path / "snap.db", request)
    assert db.stat().st_size == snapshot.size

    restored = tmp_path / "restored"
    subprocess.run(
        ["etcdctl", "snapshot", "restore", str(db), "--data-dir", str(restored / "etcd0.data")],
        env={**os.environ, "ETCDCTL_API": "3"},
        capture_output=True,
        check=True,
        timeout=120,
    )
    server = EtcdServer(restored)
    server.start()
    try:
        got = server.etcdctl("get", "app/", "--prefix", "-w", "json").stdout
        kvs = json.loads(got)["kvs"]
        back = {base64.b64decode(kv["key"]): base64.b64decode(kv["value"]) for kv in kvs}
        assert back == written
        assert json.loads(got)["header"]["revision"] == manifest.revision
    finally:
        server.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_export_holds_every_key_of_the_prefix_as_of_the_backup_revision(
    kind, etcd_server, request, tmp_path
):
    location = new_location(kind, request, tmp_path)
    top = f"exp-{kind}-{os.getpid()}/"
    with connect(etcd_server) as conn:
        fill(conn, top, 50, size=40)
        conn.put(f"{top}k00001", b"\x00\xffbinary")
        conn.put("elsewhere/key", "not exported")
        manifest = create_backup(conn, location, BackupOptions(prefix=top, segment_size=MiB))
    export = manifest.object(EXPORT)
    assert export is not None and manifest.key_count == 50
    data = _download(location, kind, export.name, tmp_path / "keys.jsonl.gz", request).read_bytes()
    records = read_export(data)
    at_revision = json.loads(
        etcd_server.etcdctl(
            "get", top, "--prefix", "-w", "json", f"--rev={manifest.revision}"
        ).stdout
    )["kvs"]
    assert [r["key"] for r in records] == [base64.b64decode(kv["key"]) for kv in at_revision]
    assert {r["key"]: r["mod_revision"] for r in records}[f"{top}k00001".encode()] == max(
        r["mod_revision"] for r in records
    )
    assert records[1]["value"] == b"\x00\xffbinary"
    # readable without etcdadmin: zcat | jq would do the same
    first = json.loads(gzip.decompress(data).splitlines()[0])
    assert set(first) == {"k", "v", "c", "m", "ver", "l"}


def test_manifest_is_written_last_and_lists_our_sha256_of_each_object(
    etcd_server, tmp_path, request
):
    location = new_location("local", request, tmp_path)
    with connect(etcd_server) as conn:
        manifest = create_backup(conn, location, BackupOptions(prefix="nothing-here/"))
    stored = BackupManifest.from_json((location.root / manifest.id / "manifest.json").read_bytes())
    assert stored == manifest
    assert manifest.cluster_id == manifest.id.split("/")[0]
    assert manifest.id.endswith(f"-r{manifest.revision}")
    assert manifest.etcd_version.startswith("3.")
    for obj in manifest.objects:
        assert hashlib.sha256((location.root / obj.name).read_bytes()).hexdigest() == obj.sha256
    assert [e.id for e in Catalog(location).entries()] == [manifest.id]


def test_encrypted_backup_opens_with_the_age_command_and_etcdctl(private_etcd, tmp_path, request):
    if shutil.which("age") is None:
        pytest.skip("needs age: apt-get install age")
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "key.txt"
    key_file.write_text(str(identity) + "\n")
    location = new_location("local", request, tmp_path)
    with connect(private_etcd) as conn:
        fill(conn, "sec/", 300)
        manifest = create_backup(
            conn,
            location,
            BackupOptions(recipients=(str(identity.to_public()),), segment_size=MiB),
        )
    snapshot = manifest.object(SNAPSHOT)
    assert snapshot is not None and snapshot.encrypted and snapshot.name.endswith(".age")
    plain = tmp_path / "snap.db"
    subprocess.run(
        ["age", "-d", "-i", str(key_file), "-o", str(plain), str(location.root / snapshot.name)],
        check=True,
        timeout=60,
    )
    status = subprocess.run(
        ["etcdctl", "snapshot", "status", "-w", "json", str(plain)],
        env={**os.environ, "ETCDCTL_API": "3"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(status.stdout)["totalKey"] >= 300
    export = manifest.object(EXPORT)
    assert export is not None
    opened = pyrage.decrypt((location.root / export.name).read_bytes(), [identity])
    assert len(read_export(opened)) == 300


def test_a_missing_container_is_created(swift, etcd_server):
    location = SwiftLocation(credentials(swift), "created-by-backup")
    connection = swift.connection()
    try:
        with pytest.raises(ClientException):
            connection.head_container("created-by-backup")
        with connect(etcd_server) as conn:
            manifest = create_backup(conn, location, BackupOptions(prefix="none/"))
        _, objects = connection.get_container("created-by-backup")
        assert f"{manifest.id}/manifest.json" in {o["name"] for o in objects}
    finally:
        connection.close()
        location.close()


def test_wrong_swift_credentials_fail_with_a_message_naming_what_to_check(swift, etcd_server):
    location = SwiftLocation(SwiftCredentials(swift.auth_url, swift.user, "wrong"), "x")
    with connect(etcd_server) as conn, pytest.raises(LocationAuthFailed) as caught:
        create_backup(conn, location)
    message = str(caught.value)
    assert "ST_USER / ST_KEY" in message and "wrong" not in message and "\n" not in message


def test_an_unreachable_swift_fails_with_a_message_saying_so(etcd_server):
    url = f"http://127.0.0.1:{free_port()}/auth/v1.0"
    location = SwiftLocation(SwiftCredentials(url, "test:tester", "testing"), "x")
    with connect(etcd_server) as conn, pytest.raises(LocationUnreachable) as caught:
        create_backup(conn, location)
    assert "cannot reach Swift" in str(caught.value) and url in str(caught.value)


def test_a_segment_goes_to_swift_from_its_buffer_as_given_and_leaves_the_buffer_free(swift):
    """Segments are sent as views of a buffer the writer reuses (`swift._ViewReader`): what
    Swift stores is every byte of it, and once the PUT returns nothing holds the buffer."""
    from etcdadmin.core.backup.swift import UPLOAD_BLOCK

    location = SwiftLocation(credentials(swift), f"backups-{uuid.uuid4().hex[:10]}")
    location.prepare()
    buffer = bytearray(os.urandom(3 * UPLOAD_BLOCK + 12_345))  # several blocks and a rest
    upload = location.open_upload("object")
    segment = upload.put_segment(0, 0, memoryview(buffer))
    sent = bytes(buffer)
    buffer.extend(b"reused")  # BufferError while any view of it is alive
    upload.commit([segment])
    assert segment.size == len(sent)
    assert b"".join(location.read("object")) == sent
    location.close()
