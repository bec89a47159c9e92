"""Directories as environments, against real etcd: comparison, export and import."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import yaml

from etcdadmin.core.config import mapping
from etcdadmin.core.environments.compare import (
    compare_directories,
    export_directory,
    import_entries,
)
from etcdadmin.core.errors import MappingError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.core.test_mapping import REGISTRY_CONFIG, same


@pytest.fixture
def conn(etcd_server) -> Iterator[EtcdConnection]:
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as connection:
        yield connection


@pytest.fixture
def unique() -> str:
    """A prefix of the test's own, so tests sharing the session's etcd never see each other."""
    return f"env-{uuid.uuid4().hex[:10]}"


def put_all(conn: EtcdConnection, keys: dict[str, str]) -> None:
    for key, value in keys.items():
        conn.put(key, value)


def test_compare_lists_only_the_differences_with_their_status(etcd_server, conn, unique):
    left, right = f"{unique}/registry-test", f"{unique}/registry-production-1.0"
    for key, value in {
        f"{left}/http/addr": ":5000",
        f"{left}/log/level": "debug",
        f"{left}/storage/delete/enabled": "true",
        f"{left}/same/nested/deep": "x",
        f"{right}/http/addr": ":5000",
        f"{right}/log/level": "info",
        f"{right}/redis/addr": "redis:6379",
        f"{right}/same/nested/deep": "x",
        # a sibling whose name starts like the left directory is not part of it
        f"{left}-2/log/level": "warn",
    }.items():
        etcd_server.etcdctl("put", key, value)

    diff = compare_directories(conn, left.encode(), (right + "/").encode())

    assert diff.left == f"{left}/".encode()
    assert diff.right == f"{right}/".encode()
    assert [(e.relative, e.status) for e in diff.entries] == [
        (b"log/level", "different"),
        (b"redis/addr", "only_right"),
        (b"storage/delete/enabled", "only_left"),
    ]
    assert diff.identical == 2
    assert not diff.same
    level = diff.entries[0]
    assert level.left is not None and level.left.value == b"debug"
    assert level.right is not None and level.right.value == b"info"
    assert diff.entries[1].left is None
    assert diff.entries[2].right is None


def test_identical_directories_compare_as_the_same(conn, unique):
    keys = {"a": "1", "b/c": "[x, y]"}
    put_all(conn, {f"{unique}/one/{k}": v for k, v in keys.items()})
    put_all(conn, {f"{unique}/two/{k}": v for k, v in keys.items()})
    diff = compare_directories(conn, f"{unique}/one".encode(), f"{unique}/two".encode())
    assert diff.same
    assert diff.entries == ()
    assert diff.identical == 2


def test_compare_reads_both_directories_at_one_revision(conn, unique):
    left, right = f"{unique}/left/", f"{unique}/right/"
    conn.put(left + "k", "v1")
    conn.put(right + "k", "v1")
    real_read = conn.read_prefix
    writes_after_left_read: list[int] = []

    def read_then_write(prefix, **kwargs):
        snapshot = real_read(prefix, **kwargs)
        if not writes_after_left_read:
            # lands between the two reads: a torn comparison would show both changes
            writes_after_left_read.append(conn.put(right + "k", "v2"))
            writes_after_left_read.append(conn.put(right + "new", "x"))
        return snapshot

    conn.read_prefix = read_then_write  # type: ignore[method-assign]
    try:
        diff = compare_directories(conn, left.encode(), right.encode())
    finally:
        conn.read_prefix = real_read  # type: ignore[method-assign]

    assert diff.revision < writes_after_left_read[0]
    assert diff.same and diff.identical == 1
    later = compare_directories(conn, left.encode(), right.encode())
    assert later.revision >= writes_after_left_read[-1]
    assert [(e.relative, e.status) for e in later.entries] == [
        (b"k", "different"),
        (b"new", "only_right"),
    ]


def test_export_then_import_gives_the_same_keys_back(etcd_server, unique):
    directory = f"{unique}/registry-test/"
    keys = {
        f"{directory}http/addr": ":5000",
        f"{directory}http/headers/X-Content-Type-Options/0": "nosniff",
        f"{directory}storage/swift/password": "p@ss: w*rd&!",
        f"{directory}storage/swift/chunksize": "5242880",
        f"{directory}storage/swift/secretkey": "0755",
        f"{directory}redis/password": '"5000"',
        f"{directory}log/accesslog/disabled": "false",
        f"{directory}health/http/0/uri": "http://server.to.check/must/return/200",
        f"{directory}health/http/0/statuscode": "200",
        f"{directory}empty": "{}",
    }
    for key, value in keys.items():
        etcd_server.etcdctl("put", key, value)

    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        exported = export_directory(conn, directory.rstrip("/").encode())

    document = yaml.safe_load(exported)
    assert document["http"]["addr"] == ":5000"
    assert document["redis"]["password"] == "5000"
    assert document["storage"]["swift"]["chunksize"] == 5242880
    assert document["health"]["http"] == [
        {"uri": "http://server.to.check/must/return/200", "statuscode": 200}
    ]
    expected = {key.encode(): value.encode() for key, value in keys.items()}
    assert import_entries(exported, directory.encode()) == expected


def test_a_registry_config_round_trips_through_etcd(conn, unique):
    directory = f"{unique}/registry-production-1.0/"
    staged = import_entries(REGISTRY_CONFIG, directory.encode())
    assert staged == {
        key.encode(): value.encode()
        for key, value in mapping.flatten_text(REGISTRY_CONFIG, directory).items()
    }
    # lists (of mappings, of strings) and nested maps are all there
    assert staged[f"{directory}notifications/endpoints/1/name".encode()] == b"audit"
    assert staged[f"{directory}http/tls/clientcas/1".encode()] == b"/path/to/another/ca.pem"
    assert staged[f"{directory}storage/maintenance/uploadpurging/age".encode()] == b"168h"
    for key, value in staged.items():
        conn.put(key, value)

    exported = export_directory(conn, directory.encode())

    assert same(yaml.safe_load(exported), yaml.safe_load(REGISTRY_CONFIG))
    assert import_entries(exported, directory.encode()) == staged


def test_an_empty_directory_exports_an_empty_document(conn, unique):
    conn.put(f"{unique}/elsewhere/key", "x")
    exported = export_directory(conn, f"{unique}/nothing-here".encode())
    assert exported == ""
    assert import_entries(exported, f"{unique}/nothing-here".encode()) == {}


def test_export_names_the_key_an_agent_could_not_render(conn, unique):
    directory = f"{unique}/broken/"
    conn.put(directory + "http/addr", ":5000")
    conn.put(directory + "http/addr/port", "5000")
    with pytest.raises(MappingError) as caught:
        export_directory(conn, directory.encode())
    assert caught.value.key == directory + "http/addr"


@pytest.mark.parametrize(
    "text",
    ["- a list\n- at the top\n", "http: [unclosed\n", "a/b: 1\n"],
    ids=["top-level-list", "invalid-yaml", "key-with-slash"],
)
def test_a_config_that_cannot_become_keys_raises_mapping_error(text):
    with pytest.raises(MappingError):
        import_entries(text, b"registry-test/")
