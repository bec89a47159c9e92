"""EtcdConnection against real etcd servers, checked against etcdctl, the reference client."""

from __future__ import annotations

import threading

import pytest

from etcdadmin.core.errors import (
    ConnectionSettingsError,
    EtcdAuthFailed,
    EtcdError,
    EtcdTLSError,
    EtcdUnavailable,
    RevisionCompacted,
)
from etcdadmin.core.etcd import Compare, ConnectionSettings, EtcdConnection, TxnOp
from etcdadmin.core.etcd.settings import Endpoints, parse_endpoint_list
from etcdadmin.core.profiles import ConnectionProfile
from tests.stack.procs import ManagedProcess, free_port, require_binary, wait_until
from tests.stack.tls import make_tls_files


def connect(*endpoints: str, **kw) -> EtcdConnection:
    return EtcdConnection(ConnectionSettings(tuple(endpoints), **kw))


def test_keys_written_here_read_back_identically_with_etcdctl_and_back(etcd_server):
    with connect(etcd_server.endpoint) as conn:
        conn.put("c1/plain", "value with spaces: and colons")
        conn.put(b"c1/bin\xff", b"\x00\x01\xfe")
        assert etcd_server.etcdctl("get", "c1/plain", "--print-value-only").stdout == (
            "value with spaces: and colons\n"
        )
        etcd_server.etcdctl("put", "c1/from-etcdctl", "éclair")
        assert conn.get("c1/from-etcdctl").value == "éclair".encode()
        keys = [kv.key for kv in conn.read_prefix("c1/").items]
        assert keys == [b"c1/bin\xff", b"c1/from-etcdctl", b"c1/plain"]
        assert conn.get(b"c1/bin\xff").value == b"\x00\x01\xfe"


def test_a_paged_read_sees_one_revision_even_while_keys_change(etcd_server):
    with connect(etcd_server.endpoint) as conn:
        for i in range(300):
            conn.put(f"c2/k{i:04d}", "before")
        first_page_done = threading.Event()
        real_call = conn._call

        def slow_call(what, fn, *a, **k):
            result = real_call(what, fn, *a, **k)
            if not first_page_done.is_set():
                first_page_done.set()
                for i in range(300):
                    conn.put(f"c2/k{i:04d}", "after")
                conn.put("c2/new", "x")
            return result

        conn._call = slow_call  # type: ignore[method-assign]
        snap = conn.read_prefix("c2/", page_size=40)
        conn._call = real_call  # type: ignore[method-assign]
        assert len(snap.items) == 300
        assert {kv.value for kv in snap.items} == {b"before"}
        assert len(conn.read_prefix("c2/").items) == 301


def test_a_read_ahead_comes_in_order_at_one_revision_while_keys_change(etcd_server):
    # `etcdadmin export`'s read: the next page is asked for while the caller holds this one.
    with connect(etcd_server.endpoint) as conn:
        for i in range(300):
            conn.put(f"c2a/k{i:04d}", "before")
        pages = conn.iter_plain_pages("c2a/", keys_only=False, page_size=40, ahead=True)
        first = next(pages)
        for i in range(300):
            conn.put(f"c2a/k{i:04d}", "after")
        conn.put("c2a/new", "x")
        read = [first, *pages]
    assert max(len(page.keys) for page in read) <= 40
    assert {page.revision for page in read} == {first.revision}
    keys = [key for page in read for key in page.keys]
    assert keys == [f"c2a/k{i:04d}".encode() for i in range(300)]
    assert {value for page in read for value in page.values or ()} == {b"before"}
    now = etcd_server.etcdctl("get", "--prefix", "c2a/", "--keys-only").stdout.split()
    assert len(now) == 301


def test_plain_pages_keep_each_value_with_its_key_when_some_values_are_empty(etcd_server):
    # etcd leaves an empty value out of its answer: the columns read must not shift.
    written = {f"c2e/k{i:03d}".encode(): (b"" if i % 7 == 3 else b"v%d" % i) for i in range(100)}
    with connect(etcd_server.endpoint) as conn:
        for key, value in written.items():
            conn.put(key, value)
        for ahead in (False, True):
            read = list(conn.iter_plain_pages("c2e/", keys_only=False, page_size=30, ahead=ahead))
            assert max(len(page.keys) for page in read) <= 30 < len(written)
            pairs = {
                k: v for page in read for k, v in zip(page.keys, page.values or (), strict=True)
            }
            assert pairs == written
            keys_only = list(conn.iter_plain_pages("c2e/", page_size=30, ahead=ahead))
            assert [key for page in keys_only for key in page.keys] == list(written)
            assert {page.values for page in keys_only} == {None}
    shown = etcd_server.etcdctl("get", "c2e/k003", "--print-value-only").stdout
    assert shown == "\n"  # etcdctl too reads it as empty


@pytest.mark.parametrize(
    ("directory", "names"),
    [
        # numbered keys, then a gap, then keys of another shape: guesses too near and too far
        (
            "c2g1/",
            [f"n{i:04d}" for i in range(0, 600, 3)]
            + ["p", "q/r"]
            + [f"z{i:x}" for i in range(150)],
        ),
        # names that are not numbers, bytes that are not text, one key much longer
        (
            "c2g2/",
            [bytes([97 + i % 26, 97 + i // 26 % 26, 0xFF - i % 7]) for i in range(400)]
            + [b"\xff" * 300],
        ),
        # a few keys, then very many under one name
        ("c2g3/", ["a", "b"] + [f"m/{i:05d}" for i in range(350)]),
    ],
)
@pytest.mark.timeout(120)  # a page that never moves on would hang the read
def test_a_read_ahead_gives_every_key_once_in_order_however_the_keys_are_spread(
    etcd_server, directory, names
):
    # Pages after the first end where the keys read so far say the next page ends: however
    # wrong the guess, each key comes once, and the pages tile the directory.
    prefix = directory.encode()
    keys = sorted(prefix + (n if isinstance(n, bytes) else n.encode()) for n in names)
    with connect(etcd_server.endpoint) as conn:
        for start in range(0, len(keys), 100):
            conn.txn([], [TxnOp("put", key, b"v") for key in keys[start : start + 100]])
        for page_size in (16, 40, 1000):
            read = list(conn.iter_plain_pages(prefix, page_size=page_size, ahead=True))
            assert [key for page in read for key in page.keys] == keys
            assert max(len(page.keys) for page in read) <= page_size
    listed = etcd_server.etcdctl("get", "--prefix", prefix.decode(), "--keys-only", "--hex")
    assert len([line for line in listed.stdout.split() if line]) == len(keys)


def test_records_read_in_pages_match_each_key_read_alone_with_leases_and_empty_values(
    etcd_server,
):
    # Leases on some keys and empty values on others: fields etcd leaves out of its answer.
    with connect(etcd_server.endpoint) as conn:
        lease = conn.grant_lease(600)
        for i in range(60):
            value = b"" if i % 5 == 0 else b"v%d" % i
            conn.put(f"c2l/k{i:02d}", value, lease=lease if i % 7 == 0 else None)
        conn.put("c2l/k03", "again")  # a version 2
        for keys_only in (False, True):
            read = conn.read_prefix("c2l/", keys_only=keys_only, page_size=25)
            alone = [conn.get(f"c2l/k{i:02d}") for i in range(60)]
            expected = [kv._replace(value=b"") if keys_only else kv for kv in alone if kv]
            assert list(read.items) == expected
        assert {kv.lease for kv in read.items} == {0, lease}
        assert read.items[3].version == 2
    assert etcd_server.etcdctl("get", "c2l/k07", "--print-value-only").stdout == "v7\n"


def test_a_read_ahead_of_an_unreachable_etcd_fails_where_it_is_read():
    port = free_port()
    with connect(f"127.0.0.1:{port}") as conn:
        pages = conn.iter_plain_pages("x/", keys_only=False, ahead=True)
        with pytest.raises(EtcdUnavailable) as info:
            next(pages)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "check that etcd runs" in str(info.value)


def test_a_transaction_arrives_as_one_watch_batch_from_the_given_revision(etcd_server):
    with connect(etcd_server.endpoint) as conn:
        start = conn.put("c3/a", "1")
        etcd_server.etcdctl("txn", input="\nput c3/b 2\nput c3/c 3\ndel c3/a\n\n\n")
        stream = conn.watch_prefix("c3/", start)
        threading.Timer(10, stream.close).start()  # a missing event fails, never hangs
        batches = []
        for batch in stream:
            batches.append(batch)
            if sum(len(b.events) for b in batches) >= 4:
                break
        stream.close()
        events = [(e.kind, e.kv.key) for b in batches for e in b.events]
        assert events == [
            ("put", b"c3/a"),
            ("put", b"c3/b"),
            ("put", b"c3/c"),
            ("delete", b"c3/a"),
        ]
        txn = [(i, e.kv.mod_revision) for i, b in enumerate(batches) for e in b.events][1:]
        assert len(set(txn)) == 1, "the transaction's events share one batch and one revision"


def test_watching_or_reading_a_compacted_revision_raises_revision_compacted(private_etcd):
    with connect(private_etcd.endpoint) as conn:
        first = conn.put("c4/k", "1")
        last = conn.put("c4/k", "2")
        conn.compact(last)
        with pytest.raises(RevisionCompacted) as info:
            for _ in conn.watch_prefix("c4/", first):
                pass
        assert info.value.compact_revision == last
        with pytest.raises(RevisionCompacted):
            conn.read_prefix("c4/", revision=first)


def test_unreachable_endpoint_names_the_endpoint_and_what_to_do():
    port = free_port()
    with connect(f"127.0.0.1:{port}") as conn, pytest.raises(EtcdUnavailable) as info:
        conn.get("x")
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "check that etcd runs" in str(info.value)


def test_a_dead_endpoint_in_the_list_fails_over_to_a_live_one(etcd_server):
    dead = f"127.0.0.1:{free_port()}"
    with connect(dead, etcd_server.endpoint) as conn:
        for _ in range(6):
            conn.put("c5/k", "v")
            assert conn.get("c5/k").value == b"v"


def test_wrong_password_gives_an_auth_error_that_names_the_user(private_etcd):
    private_etcd.etcdctl("user", "add", "root:rootpw")
    private_etcd.etcdctl("auth", "enable")
    with pytest.raises(EtcdAuthFailed) as info:
        connect(private_etcd.endpoint, user="root", password="wrong").get("x")
    assert "'root'" in str(info.value)
    assert "wrong" not in str(info.value)
    with connect(private_etcd.endpoint, user="root", password="rootpw") as conn:
        conn.put("c6/k", "v")
        assert conn.get("c6/k").value == b"v"


def test_malformed_endpoint_is_refused_with_an_example():
    with pytest.raises(ConnectionSettingsError, match="host:port"):
        ConnectionSettings.parse_endpoints("localhost")
    assert ConnectionSettings.parse_endpoints("http://a:1, b:2/") == ("a:1", "b:2")


def test_endpoints_say_whether_tls_was_asked_for_and_refuse_what_cannot_work():
    assert parse_endpoint_list("a:1,HTTP://b:2") == Endpoints(("a:1", "b:2"), https=False)
    assert parse_endpoint_list("a:1, https://b:2/") == Endpoints(("a:1", "b:2"), https=True)
    for text, message in (
        ("", "no etcd endpoint given"),
        (" , ", "no etcd endpoint given"),
        ("ftp://127.0.0.1:1", r"scheme 'ftp': only http:// and https://"),
        ("unix://sock:1", "scheme 'unix'"),
        ("a:0", "ports run from 1 to 65535"),
    ):
        with pytest.raises(ConnectionSettingsError, match=message):
            parse_endpoint_list(text)


def test_an_https_endpoint_or_any_tls_file_means_tls_for_every_face():
    assert not ConnectionProfile("p", "http://a:1").settings().secure
    assert ConnectionProfile("p", "https://a:1").settings().secure  # the window's profiles
    assert ConnectionSettings(("a:1",), cert_file="c", key_file="k").secure


def test_a_members_status_is_read_with_the_connections_tls(etcd_server):
    # `cluster status` reads each member on a connection of its own: https:// must hold there
    # too, so against this plaintext etcd it fails rather than talk plaintext.
    settings = ConnectionSettings((etcd_server.endpoint,), tls=True, timeout=2)
    with EtcdConnection(settings) as conn, pytest.raises(EtcdTLSError, match="speak TLS"):
        conn.member_status(etcd_server.endpoint)


def test_a_certificate_without_its_key_never_reaches_grpc():
    # gRPC's C core aborts the process on it (exit 134): the settings cannot even be made.
    with pytest.raises(ConnectionSettingsError, match=r"--cert\) needs its private key"):
        ConnectionSettings(("a:1",), ca_file="ca", cert_file="c")
    with pytest.raises(ConnectionSettingsError, match=r"--key\) needs its client certificate"):
        ConnectionProfile("p", "a:1", key_file="k").settings()
    assert not issubclass(ConnectionSettingsError, EtcdError)  # bad input, not an etcd failure


@pytest.fixture
def tls_etcd(tmp_path):
    """An etcd that only speaks TLS and asks for client certificates."""
    files = make_tls_files(tmp_path / "pki")
    port, peer = free_port(), free_port()
    etcd = ManagedProcess(
        "etcd-tls",
        [
            require_binary("etcd", "etcd-server"),
            "--data-dir", str(tmp_path / "data"),
            "--listen-client-urls", f"https://127.0.0.1:{port}",
            "--advertise-client-urls", f"https://127.0.0.1:{port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer}",
            "--cert-file", str(files.server_cert),
            "--key-file", str(files.server_key),
            "--trusted-ca-file", str(files.ca),
            "--client-cert-auth",
        ],
        tmp_path / "etcd.log",
    )  # fmt: skip
    etcd.start()
    try:
        yield f"127.0.0.1:{port}", files
    finally:
        etcd.stop()


def test_tls_with_a_client_certificate_works_and_a_missing_ca_file_is_named(tls_etcd):
    endpoint, files = tls_etcd
    settings = ConnectionSettings(
        (endpoint,),
        ca_file=str(files.ca),
        cert_file=str(files.client_cert),
        key_file=str(files.client_key),
    )
    with EtcdConnection(settings) as conn:
        wait_until(lambda: conn.put("tls/k", "v") > 0, 30, "etcd serving TLS")
        assert conn.get("tls/k").value == b"v"
    missing = ConnectionSettings((endpoint,), ca_file=str(files.ca) + ".missing")
    with pytest.raises(EtcdTLSError, match=r"ca\.crt\.missing"):
        EtcdConnection(missing).get("tls/k")
    # Plaintext against a TLS-only etcd is refused, not hung, and told to use TLS.
    with pytest.raises(EtcdTLSError, match="only accepts TLS"):
        EtcdConnection(ConnectionSettings((endpoint,), timeout=3)).get("tls/k")


def test_a_prefix_larger_than_grpcs_default_message_limit_is_read_whole(private_etcd):
    value = b"v" * (1024 * 1024)
    with connect(private_etcd.endpoint) as conn:
        for i in range(6):
            conn.put(f"big/k{i}", value)
        snapshot = conn.read_prefix("big/")
        assert [len(kv.value) for kv in snapshot.items] == [len(value)] * 6


def test_a_guarded_transaction_writes_all_or_nothing_and_shows_what_won(etcd_server):
    with connect(etcd_server.endpoint) as conn:
        rev_a = conn.put("c7/a", "1")
        guard = [Compare(b"c7/a", "mod", "==", rev_a), Compare(b"c7/b", "version", "==", 0)]
        ops = [TxnOp("put", b"c7/a", b"2"), TxnOp("put", b"c7/b", b"new")]
        etcd_server.etcdctl("put", "c7/a", "from etcdctl")
        result = conn.txn(guard, ops, failure_reads=[b"c7/a", b"c7/b"])
        assert not result.succeeded
        assert result.current[b"c7/a"].value == b"from etcdctl"
        assert result.current[b"c7/b"] is None
        assert conn.get("c7/b") is None, "nothing of a failed transaction is written"
        fresh = conn.get("c7/a").mod_revision
        guard = [Compare(b"c7/a", "mod", "==", fresh), Compare(b"c7/b", "version", "==", 0)]
        assert conn.txn(guard, ops).succeeded
        assert etcd_server.etcdctl("get", "c7/b", "--print-value-only").stdout == "new\n"


def test_cluster_members_and_their_status_are_listed(etcd_cluster):
    with connect(*etcd_cluster.endpoints) as conn:
        members = conn.members()
        assert len(members) == 3
        statuses = [conn.member_status(ep) for ep in etcd_cluster.endpoints]
        assert len({s.leader for s in statuses}) == 1, "all members agree on the leader"
        assert statuses[0].version.startswith("3.")
        assert conn.alarms() == []


def test_a_key_history_is_replayed_by_watching_it_from_an_old_revision(etcd_server):
    with connect(etcd_server.endpoint) as conn:
        first = conn.put("c8/k", "v1")
        conn.put("c8/k", "v2")
        conn.delete("c8/k")
        conn.put("c8/k", "v3")
        assert conn.get("c8/k", revision=first).value == b"v1"
        stream = conn.watch_key("c8/k", first)
        threading.Timer(10, stream.close).start()
        seen = []
        for batch in stream:
            seen += [(e.kind, e.kv.value) for e in batch.events]
            if len(seen) >= 4:
                break
        stream.close()
        assert seen == [("put", b"v1"), ("put", b"v2"), ("delete", b""), ("put", b"v3")]


def test_alarms_are_named_as_etcd_names_them():
    from etcdadmin.core.etcd.cluster import _alarm_name

    assert [_alarm_name(n) for n in (0, 1)] == ["NONE", "NOSPACE"]
    assert _alarm_name(99) == "99"  # a newer etcd's alarm still shows
