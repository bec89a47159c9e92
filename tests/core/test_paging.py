"""Where a read ahead's next page is guessed to end (`paging.next_bound`), and a key lying
exactly there, against a real etcd."""

from __future__ import annotations

import pytest

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, TxnOp, prefix_end
from etcdadmin.core.etcd.paging import next_bound

END = b"bench0"  # the end of the prefix bench/


def test_numbered_keys_are_guessed_as_numbers() -> None:
    # 25,000 keys from svc0000/key00 to svc0249/key99: the next 25,000 end at svc0499/key99
    # (the guess counts 249 numbers for them, from the first key's to the last's).
    bound = next_bound(
        b"bench/svc0000/key00",
        b"bench/svc0249/key99",
        25_000,
        25_000,
        b"bench/svc0249/key99\0",
        END,
    )
    assert bound is not None
    assert b"bench/svc0497/key99" < bound < b"bench/svc0500"


def test_a_guess_after_a_guess_goes_on_from_its_end() -> None:
    first = next_bound(b"k/n0000", b"k/n0039", 40, 40, b"k/n0039\0", b"k0")
    assert first is not None and b"k/n0077" < first < b"k/n0080"
    second = next_bound(b"k/n0000", first, 80, 40, first, b"k0")
    assert second is not None and b"k/n0116" < second < b"k/n0120"


def test_no_guess_when_the_keys_say_nothing_or_it_would_leave_the_range() -> None:
    assert next_bound(b"k/a", b"k/a", 1, 10, b"k/a\0", b"k0") is None  # one key
    assert next_bound(b"k/a", b"k/b", 0, 10, b"k/b\0", b"k0") is None  # nothing read
    # from k/\x00 to k/\xf0 in 10 keys: 10 more would pass the end of everything k/ holds
    assert next_bound(b"k/\x00", b"k/\xf0", 10, 10, b"k/\xf0\0", b"k0") is None
    # a guess past the range's own end (within what the keys share: k/a9 would do but for it)
    assert next_bound(b"k/a0", b"k/a5", 6, 3, b"k/a5\0", b"k/a7") is None
    assert next_bound(b"k/a0", b"k/a5", 6, 3, b"k/a5\0", b"k/b") is not None
    # whole keyspace (end b"\0"): any key past `after` will do
    assert next_bound(b"a00", b"a05", 6, 6, b"a05\0", b"\0") is not None


@pytest.mark.timeout(60)  # a page that never moves on would hang the read
def test_a_key_exactly_where_a_guessed_page_ends_is_read_once(etcd_server) -> None:
    prefix = b"c2b/"
    keys = [prefix + b"n%04d" % i for i in range(100)]
    # The first page is n0000 to n0015 (pages of 16); the second ends where this guess says
    # (the 15 keys of `_ahead`'s aim, a sixteenth short of a page): a key is put exactly there.
    edge = next_bound(keys[0], keys[15], 16, 15, keys[15] + b"\0", b"c2b0")
    assert edge is not None and edge not in keys
    keys = sorted([*keys, edge])
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        conn.txn([], [TxnOp("put", key, b"v") for key in keys])
        read = list(conn.iter_plain_pages(prefix, page_size=16, ahead=True))
    assert [key for page in read for key in page.keys] == keys
    assert [page.keys[0] for page in read].count(edge) == 1  # it starts a page


@pytest.mark.timeout(60)
def test_keys_far_apart_read_in_pages_of_one_take_a_page_a_key(etcd_server) -> None:
    # Guesses from keys close together fall short of the next key, far away: after one empty
    # page no more guesses are made (each empty guess grows only a little on the last).
    keys = [b"c2p/%08d" % n for n in (0, 2, 3, 71660187, 95841172)]
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        conn.txn([], [TxnOp("put", key, b"v") for key in keys])
        read = list(conn.iter_plain_pages(b"c2p/", page_size=1, ahead=True))
    assert [key for page in read for key in page.keys] == keys
    assert len(read) <= len(keys) + 2


def test_a_prefix_ends_where_etcdctl_ends_it() -> None:
    # etcd's clientv3.GetPrefixRangeEnd: the last byte below 0xff raised, the rest cut off.
    assert prefix_end(b"a/") == b"a0"
    assert prefix_end(b"x\xff") == b"y"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\0"  # every key from the prefix on
    assert prefix_end(b"") == b"\0"


def test_a_read_of_a_prefix_ending_in_0xff_holds_only_its_keys(etcd_server) -> None:
    inside, after = [b"q9x\xff", b"q9x\xff1"], [b"q9y", b"q9y\x00", b"q9y\xfe"]
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        conn.txn([], [TxnOp("put", key, b"v") for key in inside + after])
        assert [kv.key for kv in conn.read_prefix(b"q9x\xff").items] == inside
        read = list(conn.iter_plain_pages(b"q9x\xff", page_size=1, ahead=True))
    assert [key for page in read for key in page.keys] == inside
    listed = etcd_server.etcdctl("get", "--prefix", "q9", "--keys-only", "--hex").stdout.split()
    assert len(listed) == len(inside + after)  # all five are there to be read
