"""get, put, del against a real etcd, read back with etcdctl."""

from __future__ import annotations

import base64
import json

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection


def test_put_from_an_option_and_from_stdin_reads_back_with_etcdctl(at, etcd_server, top):
    assert at("put", f"{top}/a", "--value", "plain: text").exit_code == 0
    done = at("put", f"{top}/b", input="line one\nline two\n")
    assert done.exit_code == 0, done.stderr
    assert "wrote 1 key at revision" in done.stdout
    assert etcd_server.etcdctl("get", f"{top}/a", "--print-value-only").stdout == "plain: text\n"
    assert etcd_server.etcdctl("get", f"{top}/b", "--print-value-only").stdout == (
        "line one\nline two\n\n"
    )


def test_get_prints_the_value_byte_for_byte_and_json_carries_metadata(at, etcd_server, top):
    etcd_server.etcdctl("put", f"{top}/text", "héllo")
    done = at("get", f"{top}/text")
    assert done.exit_code == 0
    assert done.stdout_bytes == "héllo".encode()
    record = json.loads(at("get", f"{top}/text", "--json").stdout)
    assert record["key"] == f"{top}/text"
    assert (record["value"], record["encoding"]) == ("héllo", "utf-8")
    assert record["version"] == 1 and record["mod_revision"] == record["create_revision"]


def test_a_binary_key_is_listed_escaped_and_read_back_by_that_name(at, etcd_server, top):
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        conn.put(f"{top}/bin\xff".encode("latin-1"), b"\x00\x01\xfe")
    listed = at("ls", top).stdout.splitlines()
    assert listed == [f"{top}/bin\\xff"]
    assert at("get", listed[0]).stdout_bytes == b"\x00\x01\xfe"
    record = json.loads(at("get", listed[0], "--json").stdout)
    assert record["encoding"] == "base64"
    assert base64.b64decode(record["value"]) == b"\x00\x01\xfe"


def test_get_of_a_missing_key_exits_1_with_one_line(at, top):
    done = at("get", f"{top}/absent")
    assert done.exit_code == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"Error: key {top}/absent not found"]


def test_put_keeps_the_keys_lease(at, etcd_server, top):
    lease = etcd_server.etcdctl("lease", "grant", "300").stdout.split()[1]
    etcd_server.etcdctl("put", f"{top}/leased", "old", f"--lease={lease}")
    assert at("put", f"{top}/leased", "--value", "new").exit_code == 0
    out = json.loads(etcd_server.etcdctl("get", f"{top}/leased", "-w", "json").stdout)
    assert int(out["kvs"][0]["lease"]) == int(lease, 16)
    assert base64.b64decode(out["kvs"][0]["value"]) == b"new"


def test_a_put_based_on_a_stale_revision_conflicts_and_writes_nothing(at, etcd_server, top):
    etcd_server.etcdctl("put", f"{top}/k", "first")
    seen = json.loads(at("get", f"{top}/k", "--json").stdout)["mod_revision"]
    etcd_server.etcdctl("put", f"{top}/k", "someone else")
    done = at("put", f"{top}/k", "--value", "mine", "--expect-revision", str(seen))
    assert done.exit_code == 1
    assert "Nothing was written" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert etcd_server.etcdctl("get", f"{top}/k", "--print-value-only").stdout == "someone else\n"


def test_del_removes_a_key_and_del_prefix_a_directory(at, etcd_server, top):
    for key in ("keep", "gone", "dir/a", "dir/b/c", "dir-2/x"):
        etcd_server.etcdctl("put", f"{top}/{key}", "v")
    assert at("del", f"{top}/gone").exit_code == 0
    done = at("del", "--prefix", f"{top}/dir")
    assert done.exit_code == 0, done.stderr
    assert "deleted 2 keys at revision" in done.stdout
    left = etcd_server.etcdctl("get", "--prefix", f"{top}/", "--keys-only").stdout.split()
    assert left == [f"{top}/dir-2/x", f"{top}/keep"]
    again = at("del", f"{top}/gone")
    assert again.exit_code == 0
    assert "nothing to change" in again.stderr
