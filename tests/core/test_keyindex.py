"""Behaviour of the in-memory key index behind the client's tree (etcdadmin.core.tree.index).

Most checks compare against a brute-force model: split every key on ``/`` and group.
"""

from __future__ import annotations

import random

import pytest

from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.tree.index import SMALL_BATCH, Child, KeyIndex
from etcdadmin.core.tree.names import SegmentSyntaxError, display_segment, parse_display_segment


def model_children(keys: set[bytes], prefix: bytes) -> list[Child]:
    """The children of the directory under ``prefix``, computed the slow, obvious way."""
    groups: dict[bytes, list[bytes]] = {}
    for key in keys:
        if key.startswith(prefix):
            segment = key[len(prefix) :].split(b"/", 1)[0]
            groups.setdefault(segment, []).append(key)
    children = []
    for segment in sorted(groups):
        path = prefix + segment
        members = groups[segment]
        children.append(
            Child(
                segment=segment,
                path=path,
                is_key=path in members,
                is_dir=any(key.startswith(path + b"/") for key in members),
                count=len(members),
            )
        )
    return children


def model_prefixes(keys: set[bytes]) -> set[bytes]:
    """Every directory prefix the keys imply, the root included."""
    prefixes = {b""}
    for key in keys:
        parts = key.split(b"/")
        for n in range(1, len(parts)):
            prefixes.add(b"/".join(parts[:n]) + b"/")
    return prefixes


def page_through(index: KeyIndex, prefix: bytes, size: int) -> list[Child]:
    """List a directory ``size`` children at a time, as Qt's fetchMore does."""
    listed: list[Child] = []
    while True:
        after = listed[-1].segment if listed else None
        page = index.children_under(prefix, after=after, limit=size)
        assert len(page) <= size
        listed += page
        if len(page) < size:
            return listed


# Alphabet chosen so segments collide on prefixes and on the bytes sorting around "/":
# "-" and "." sort before it, "0" right after it, and "" segments come from "//".
ALPHABET = [b"a", b"b", b"-", b".", b"0", b"/", b"\x00", b"\xff", b"A"]


def random_key(rng: random.Random) -> bytes:
    return b"".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 7)))


def assert_matches_model(index: KeyIndex, keys: set[bytes]) -> None:
    assert index.keys_under(b"") == sorted(keys)
    for prefix in model_prefixes(keys):
        expected = model_children(keys, prefix)
        assert index.children_under(prefix) == expected, prefix
        assert page_through(index, prefix, 3) == expected, prefix
        assert index.count(prefix) == sum(child.count for child in expected)


def test_root_lists_first_segments_of_all_keys() -> None:
    index = KeyIndex([b"team1/env/a", b"team1/env/b", b"team2/x", b"solo"])

    assert index.children(b"") == [
        Child(b"solo", b"solo", is_key=True, is_dir=False, count=1),
        Child(b"team1", b"team1", is_key=False, is_dir=True, count=2),
        Child(b"team2", b"team2", is_key=False, is_dir=True, count=1),
    ]


def test_nested_directory_lists_its_direct_children_only() -> None:
    index = KeyIndex([b"team1/env/a", b"team1/env/b/c", b"team1/top", b"team10/x"])

    assert index.children(b"team1") == [
        Child(b"env", b"team1/env", is_key=False, is_dir=True, count=2),
        Child(b"top", b"team1/top", is_key=True, is_dir=False, count=1),
    ]
    assert index.children(b"team1/env") == [
        Child(b"a", b"team1/env/a", is_key=True, is_dir=False, count=1),
        Child(b"b", b"team1/env/b", is_key=False, is_dir=True, count=1),
    ]


def test_leading_slash_keys_sit_under_an_empty_first_segment() -> None:
    index = KeyIndex([b"/hack/http/addr", b"/hack/log", b"hack/other"])

    root = index.children(b"")
    assert root == [
        Child(b"", b"", is_key=False, is_dir=True, count=2),
        Child(b"hack", b"hack", is_key=False, is_dir=True, count=1),
    ]
    assert index.children_under(root[0].prefix) == [
        Child(b"hack", b"/hack", is_key=False, is_dir=True, count=2)
    ]
    assert index.children(b"/hack") == [
        Child(b"http", b"/hack/http", is_key=False, is_dir=True, count=1),
        Child(b"log", b"/hack/log", is_key=True, is_dir=False, count=1),
    ]


def test_a_key_that_is_also_a_directory_is_one_child_with_both_flags() -> None:
    index = KeyIndex([b"a", b"a/b", b"a/c/d"])

    assert index.children(b"") == [Child(b"a", b"a", is_key=True, is_dir=True, count=3)]


def test_directory_keys_after_a_sibling_sorting_before_slash_still_join_their_child() -> None:
    # Key order is "svc", "svc-a/x", "svc.b", "svc/y": the subtree of "svc" comes last.
    index = KeyIndex([b"svc", b"svc-a/x", b"svc.b", b"svc/y", b"svc/z"])

    assert index.children(b"") == [
        Child(b"svc", b"svc", is_key=True, is_dir=True, count=3),
        Child(b"svc-a", b"svc-a", is_key=False, is_dir=True, count=1),
        Child(b"svc.b", b"svc.b", is_key=True, is_dir=False, count=1),
    ]
    assert index.children(b"", limit=1) == [index.children(b"")[0]]


def test_a_directory_without_its_own_key_is_listed_before_longer_siblings() -> None:
    index = KeyIndex([b"svc-a/x", b"svc.b", b"svc/y"])

    assert [child.segment for child in index.children(b"")] == [b"svc", b"svc-a", b"svc.b"]
    assert [child.segment for child in index.children(b"", limit=1)] == [b"svc"]
    assert [child.segment for child in index.children(b"", after=b"svc", limit=1)] == [b"svc-a"]


def test_empty_segments_are_children_like_any_other() -> None:
    index = KeyIndex([b"a//b", b"a/", b"a/c", b"a///"])

    assert index.children(b"a") == [
        Child(b"", b"a/", is_key=True, is_dir=True, count=3),
        Child(b"c", b"a/c", is_key=True, is_dir=False, count=1),
    ]
    assert index.children_under(b"a//") == [
        Child(b"", b"a//", is_key=False, is_dir=True, count=1),
        Child(b"b", b"a//b", is_key=True, is_dir=False, count=1),
    ]


def test_count_includes_the_key_itself_and_everything_below() -> None:
    index = KeyIndex([b"a", b"a/b", b"a/b/c", b"ab", b"b"])

    assert index.count(b"") == 5
    assert index.count(b"a") == 4
    assert index.count(b"a/") == 2
    assert index.count(b"zz") == 0
    assert index.keys_under(b"a/") == [b"a/b", b"a/b/c"]
    assert len(index) == 5
    assert b"a/b" in index
    assert b"a/" not in index


def test_paging_with_after_and_limit_equals_the_unpaged_list() -> None:
    keys = [f"big/item-{n:05d}".encode() for n in range(2500)] + [b"big/sub/x", b"big/sub/y"]
    index = KeyIndex(keys)

    unpaged = index.children(b"big")
    assert len(unpaged) == 2501
    for size in (1, 7, 1000):
        assert page_through(index, b"big/", size) == unpaged
    assert index.children(b"big", after=unpaged[-1].segment, limit=10) == []


def test_listings_and_paging_match_the_model_on_random_keys() -> None:
    rng = random.Random(1234)
    for _ in range(150):
        keys = {random_key(rng) for _ in range(rng.randint(1, 60))}
        assert_matches_model(KeyIndex(keys), keys)


def test_a_long_run_of_leaves_lists_after_its_late_directory() -> None:
    # Enough leaves for the walk to take them in blocks; "item/" keys sort after every
    # "item-NNN" and "item.cfg", yet "item" is the first child.
    keys = [f"d/item-{n:03d}".encode() for n in range(600)]
    keys += [b"d/item/x", b"d/item/y", b"d/item.cfg", b"d/item-007/sub", b"d/zeta"]
    index = KeyIndex(keys)

    listed = index.children(b"d")
    assert listed == model_children(set(keys), b"d/")
    assert listed[0] == Child(b"item", b"d/item", is_key=False, is_dir=True, count=2)
    assert listed[8] == Child(b"item-007", b"d/item-007", is_key=True, is_dir=True, count=2)
    assert index.children(b"d", limit=1) == listed[:1]
    for size in (1, 50, 1000):
        assert page_through(index, b"d/", size) == listed


def test_large_leafy_directories_match_the_model() -> None:
    rng = random.Random(42)
    alphabet = [b"a", b"b", b"-", b".", b"0", b"\x00", b"\xff"]
    for _ in range(25):
        keys = set()
        for _ in range(rng.randint(50, 400)):
            key = b"d/" + b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
            if rng.random() < 0.05:
                key += b"/" + rng.choice(alphabet)
            keys.add(key)
        index = KeyIndex(keys)
        expected = model_children(keys, b"d/")
        assert index.children_under(b"d/") == expected
        for size in (1, 9, 100):
            assert page_through(index, b"d/", size) == expected
        for _ in range(5):
            after = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
            later = [child for child in expected if child.segment > after]
            assert index.children_under(b"d/", after=after) == later
            assert index.children_under(b"d/", after=after, limit=20) == later[:20]


@pytest.mark.parametrize("batch", [5, SMALL_BATCH * 4])
def test_apply_batches_match_a_model_over_many_rounds(batch: int) -> None:
    rng = random.Random(batch)
    keys = {random_key(rng) for _ in range(200)}
    index = KeyIndex(keys)
    for _ in range(60):
        puts = [random_key(rng) for _ in range(rng.randint(0, batch))]
        deletes = rng.sample(sorted(keys), min(len(keys), rng.randint(0, batch)))
        deletes += [random_key(rng) for _ in range(3)]
        puts += rng.sample(sorted(keys), min(len(keys), 3))  # existing keys: no-ops
        index.apply(puts=puts, deletes=deletes)
        keys = (keys | set(puts)) - set(deletes)
        assert_matches_model(index, keys)


def test_a_key_both_put_and_deleted_in_one_batch_ends_deleted() -> None:
    for extra in (0, SMALL_BATCH):
        filler = [f"f{n}".encode() for n in range(extra)]
        index = KeyIndex([b"a"])
        index.apply(puts=[b"a", b"b", *filler], deletes=[b"a", b"b"])
        assert index.keys_under(b"") == sorted(filler)


def test_extend_sorted_appends_pages_in_order() -> None:
    index = KeyIndex()
    index.extend_sorted([b"a/1", b"a/2"])
    index.extend_sorted([])
    index.extend_sorted([b"b/1", b"c"])

    assert index.keys_under(b"") == [b"a/1", b"a/2", b"b/1", b"c"]


def test_extend_sorted_merges_a_page_that_does_not_follow_on() -> None:
    index = KeyIndex([b"a", b"m", b"z"])
    index.extend_sorted([b"b", b"m", b"y"])

    assert index.keys_under(b"") == [b"a", b"b", b"m", b"y", b"z"]


def test_search_in_chunks_equals_brute_force() -> None:
    rng = random.Random(7)
    keys = {random_key(rng) + rng.choice([b"Ab", b"aB", b"x"]) for _ in range(3000)}
    index = KeyIndex(keys)
    for needle, under in [(b"ab", b""), (b"AB", b"a"), (b"-", b"b/"), (b"\xff", b""), (b"zz", b"")]:
        expected = sorted(k for k in keys if k.startswith(under) and needle.lower() in k.lower())
        for limit, scan in [(500, 65_536), (7, 100), (1, 1)]:
            found: list[bytes] = []
            start = 0
            while start != -1:
                chunk, start = index.search(
                    needle, under=under, start=start, limit=limit, scan=scan
                )
                assert len(chunk) <= limit
                found += chunk
            assert found == expected, (needle, under, limit, scan)


def test_search_ignores_case_for_ascii_only() -> None:
    index = KeyIndex([b"Config/PASSWORD", b"\xc3\x89t\xc3\xa9", b"\xc3\xa9t\xc3\xa9"])

    assert index.search(b"password") == ([b"Config/PASSWORD"], -1)
    assert index.search("été".encode()) == ([b"\xc3\xa9t\xc3\xa9"], -1)


def test_binary_keys_with_ff_and_nul_bytes_are_listed_and_counted() -> None:
    keys = {b"\xff", b"\xff/\x00", b"\xff\xff/a", b"\x00/\xff", b"a\x00b/c"}
    index = KeyIndex(keys)

    assert_matches_model(index, keys)
    assert index.count(b"\xff") == 3
    assert index.count(b"\xff\xff") == 1
    assert index.children(b"\xff") == [Child(b"\x00", b"\xff/\x00", True, False, 1)]


def test_display_segment_shows_text_as_is_and_escapes_the_rest() -> None:
    assert display_segment(b"storage") == "storage"
    assert display_segment("été ü".encode()) == "été ü"
    assert display_segment(b"") == ""
    assert display_segment(b"a\\b") == "a\\\\b"
    assert display_segment(b"\x00\xff\n") == "\\x00\\xff\\x0a"
    assert display_segment("a\u202eb".encode()) == "a\\xe2\\x80\\xaeb"


def test_parse_display_segment_reads_escapes_and_refuses_a_lone_backslash() -> None:
    assert parse_display_segment("a\\x41\\\\") == b"aA\\"
    assert parse_display_segment("\\xFF") == b"\xff"
    for bad in ("\\", "a\\q", "\\x4"):
        with pytest.raises(SegmentSyntaxError) as caught:
            parse_display_segment(bad)
        assert isinstance(caught.value, EtcdAdminError)


def test_display_segment_round_trips_random_bytes() -> None:
    rng = random.Random(99)
    interesting = [b"\\", b"x", b"\\x41", "é".encode(), b"\xc3", b"\xed\xa0\x80", b"\x7f", b"/"]
    for _ in range(3000):
        if rng.random() < 0.5:
            segment = rng.randbytes(rng.randint(0, 12))
        else:
            segment = b"".join(rng.choice(interesting) for _ in range(rng.randint(0, 6)))
        shown = display_segment(segment)
        assert parse_display_segment(shown) == segment
        assert shown.isprintable()
