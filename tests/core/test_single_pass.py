"""The one-pass export writer against the general render: the same file, or it steps aside.

`render_keys` is only a faster way to the document the general render (tree, merge onto an
empty base, `dump_block`) writes; an agent compares rendered files byte for byte, so any
difference would restart a service for nothing. Random directories check both ways against
each other, including the shapes the one pass must leave to the general way (errors, lists).
"""

from __future__ import annotations

import string
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcdadmin.core.config.dumping import dump_block
from etcdadmin.core.config.limits import MAX_KEY_DEPTH, Extent
from etcdadmin.core.config.mapping import render
from etcdadmin.core.config.overlay import build_tree, overlay
from etcdadmin.core.config.single_pass import PagedRender, render_keys
from etcdadmin.core.errors import MappingError
from tests.core.test_mapping_properties import RAW_VALUES, TEXT


def general(entries: dict[Any, Any], directory: str) -> str | None:
    """The general render of ``entries`` onto an empty base ("" without a key below the
    directory, as `render` returns the base then); None where it refuses them."""
    try:
        if build_tree(entries, directory, Extent(0, 0)) is None:
            return ""
        return dump_block(overlay({}, entries, directory))
    except MappingError:
        return None


# Mostly keys the one pass writes (segments of letters, and of the characters that make a key
# quoted), some it must leave to the general render (empty segments, line breaks, indices).
def one_pass(entries: dict[Any, Any], directory: str) -> str | None:
    return render_keys(list(entries), list(entries.values()), directory)


SEGMENTS = st.one_of(
    st.text(st.sampled_from("abcXY-_ .:ü#'"), min_size=1, max_size=4),
    st.text(st.sampled_from(string.ascii_letters[:6] + "019 :-_ü\n#'"), max_size=4),
)
KEYS = st.lists(SEGMENTS, min_size=1, max_size=4).map(lambda parts: "hack/" + "/".join(parts))
VALUES = st.one_of(
    TEXT,
    RAW_VALUES,
    st.sampled_from(["true", "null", "~", "12", "-3", "1.5", "'quoted'", "a\nb", "[1, 2]"]),
    st.text(st.sampled_from("abcxyz -"), min_size=1, max_size=12),
)


@given(st.dictionaries(KEYS, VALUES, max_size=12))
@settings(suppress_health_check=list(HealthCheck))
def test_any_directory_is_written_as_the_general_render_writes_it_or_left_to_it(
    entries: dict[str, Any],
) -> None:
    expected = general(entries, "hack")
    written = one_pass(entries, "hack")
    if written is not None:
        assert written == expected
    if expected is None:
        with pytest.raises(MappingError):
            render("", entries, "hack")
    else:
        assert render("", entries, "hack").decode("utf-8") == expected


def test_a_directory_of_many_kinds_of_value_is_written_in_one_pass() -> None:
    values = ["plain text", "true", "null", "12", "-3.5", "'quoted: yes'", "a\nb\n", "[1, 2]"]
    values += ["{a: 1, b: [x]}", "x: 1\ny: 2", "tab\there", "ünïcode", "yes", "", "- a\n- b"]
    entries = {
        f"hack/svc{n % 7}/{'deep/' * (n % 3)}key{n:03d}": values[n % len(values)]
        for n in range(300)
    }
    entries["hack/top"] = "level"
    written = one_pass(entries, "hack")
    assert written is not None
    assert written == general(entries, "hack")


def test_keys_in_any_order_are_written_in_the_order_of_their_segments() -> None:
    # etcd's byte order puts `a-b` before `a/x` ('-' < '/'); the mapping's order is `a`, `a-b`.
    entries = {"hack/a-b": "1", "hack/a/x": "2", "hack/a/y/z": "3", "hack/a.c": "4"}
    written = one_pass(dict(reversed(list(entries.items()))), "hack")
    assert written == general(entries, "hack")
    assert written == "a:\n  x: 2\n  y:\n    z: 3\na-b: 1\na.c: 4\n"


def test_a_directory_named_with_a_dash_is_written_in_one_pass_in_the_order_of_segments() -> None:
    # Keys as etcd sorts them (bytes): `log.format` before `log/level` ('.' < '/').
    entries = {
        "registry-test/http/addr": ":5000",
        "registry-test/log.format": "text",
        "registry-test/log/level": "info",
        "registry-test/storage/swift/authurl": "http://127.0.0.1:8080/auth/v1.0",
    }
    written = one_pass(entries, "registry-test")
    assert written is not None
    assert written == general(entries, "registry-test")
    assert written.index("level: info") < written.index("log.format: text")


@pytest.mark.parametrize(
    "entries",
    [
        {"hack/a": "1", "hack/a/b": "2"},  # a key with keys below it: the error names them
        {"hack/a//b": "1"},  # an empty segment
        {"hack/list/0": "x", "hack/list/1": "y"},  # indices from 0 make a list
        {"hack/a": "\u2028"},  # written by PyYAML's pure-Python emitter
        {b"hack/bytes": "1"},  # keys as bytes
        {"elsewhere/a": "1"},  # nothing below the directory
        {"hack/" + "/".join(["s"] * (MAX_KEY_DEPTH + 1)): "1"},  # more segments than allowed
    ],
)
def test_shapes_only_the_general_render_decides_are_left_to_it(entries: dict[Any, Any]) -> None:
    assert one_pass(entries, "hack") is None


def test_a_key_of_as_many_segments_as_allowed_is_written_in_one_pass() -> None:
    entries = {"hack/" + "/".join(["s"] * MAX_KEY_DEPTH): "deep", "hack/t": "top"}
    written = one_pass(entries, "hack")
    assert written is not None
    assert written == general(entries, "hack")


def test_a_directory_of_100000_keys_is_written_in_one_pass() -> None:
    entries = {f"bench/svc{i // 100:04d}/key{i % 100:02d}": f"value-{i}" for i in range(100_000)}
    written = one_pass(entries, "bench")
    assert written is not None
    assert written == general(entries, "bench")
    assert written.count("\n") == 101_000


# -- a page at a time (`PagedRender`, what `etcdadmin export` writes as etcd's pages arrive) --


def paged(entries: dict[Any, Any], directory: str, cuts: list[int]) -> str | None:
    """`PagedRender` of ``entries`` in etcd's order (bytes), cut into pages at ``cuts``."""
    keys = sorted(entries, key=lambda key: key.encode("utf-8"))
    writer = PagedRender(directory)
    bounds = [0, *sorted({cut % (len(keys) + 1) for cut in cuts}), len(keys)]
    for start, end in pairwise(bounds):
        writer.add(keys[start:end], [entries[key] for key in keys[start:end]])
    return writer.result()


@given(st.dictionaries(KEYS, VALUES, max_size=12), st.lists(st.integers(0, 12), max_size=4))
@settings(suppress_health_check=list(HealthCheck))
def test_a_directory_written_a_page_at_a_time_is_the_one_pass_document_or_left_to_it(
    entries: dict[str, Any], cuts: list[int]
) -> None:
    written = paged(entries, "hack", cuts)
    if written is not None:
        assert written == one_pass(entries, "hack") == general(entries, "hack")


def test_100000_keys_in_pages_of_25000_give_the_one_pass_document() -> None:
    entries = {f"bench/svc{i // 100:04d}/key{i % 100:02d}": f"value-{i}" for i in range(100_000)}
    # a run of one parent's keys cut between pages too (25,050 is inside svc0250)
    written = paged(entries, "bench", [25_000, 25_050, 50_000, 75_000])
    assert written is not None
    assert written == one_pass(entries, "bench")


def test_pages_of_many_kinds_of_value_and_a_dashed_directory_give_the_one_pass_document() -> None:
    values = ["plain text", "true", "null", "12", "'quoted: yes'", "a\nb\n", "[1, 2]", "ünï"]
    entries = {
        f"registry-test/svc{n % 7}/{'deep/' * (n % 3)}key{n:03d}": values[n % len(values)]
        for n in range(300)
    }
    entries["registry-test/top"] = "level"
    for cuts in ([1], [7, 150], list(range(0, 300, 13))):
        written = paged(entries, "registry-test", cuts)
        assert written is not None
        assert written == one_pass(entries, "registry-test")


@pytest.mark.parametrize(
    ("entries", "cuts"),
    [
        # etcd's byte order puts `a-b/x` before `a/x`; the mapping's order is `a` first, so
        # only a sort of all the keys (the usual render) writes them
        ({"hack/a-b/x": "1", "hack/a/x": "2"}, [1]),
        ({"hack/a": "1", "hack/a/b": "2"}, [1]),  # a key with keys below it, across pages
        ({"hack/list/0": "x", "hack/list/1": "y"}, [1]),  # a list
    ],
)
def test_pages_that_only_the_whole_directory_decides_are_left_to_it(
    entries: dict[str, Any], cuts: list[int]
) -> None:
    assert paged(entries, "hack", cuts) is None
