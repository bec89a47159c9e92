"""The line-based reader of exported config files against the general way: the same keys, or
it steps aside.

`read_block` is only a faster way to the keys PyYAML and `flatten` make of a file; a wrong key
would change etcd on `etcdadmin apply -f`. Random documents, written by the block writer and
then damaged line by line (comments, tabs, duplicate keys, bad indents, continuation lines,
keyword values, keys left with nothing below), check both ways against each other.
"""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from etcdadmin.core.config.block_reader import read_block
from etcdadmin.core.config.block_writer import UNTYPED_LETTERS
from etcdadmin.core.config.documents import collector_paused, load_yaml
from etcdadmin.core.config.dumping import dump_block
from etcdadmin.core.config.mapping import flatten, flatten_text, render_listed
from etcdadmin.core.environments.compare import import_marked_entries
from etcdadmin.core.errors import MappingError
from tests.core.test_mapping_properties import CONFIGS, TEXT


def general(text: str, directory: str, *, secrets: bool = False) -> dict[str, str] | None:
    """`flatten_text` the general way (PyYAML, then `flatten`); None where it raises."""
    try:
        with collector_paused():
            document = load_yaml(text, "the config", secrets=secrets)
            return flatten({} if document is None else document, directory)
    except MappingError:
        return None


def encoded(keys: dict[str, str]) -> dict[bytes, bytes]:
    return {key.encode("utf-8"): value.encode("utf-8") for key, value in keys.items()}


_FIRST = sorted(UNTYPED_LETTERS)
# Keys and values mostly inside the subset, some just outside it (a first letter that starts
# `yes`, `null` or `true`, a digit, a space, a colon).
KEYS = st.builds(
    str.__add__,
    st.sampled_from([*_FIRST, *"yntfoON1_ "]),
    st.text(st.sampled_from(string.ascii_letters[:8] + string.digits[:3] + "_-.: /"), max_size=5),
)
PLAIN = st.builds(
    str.__add__,
    st.sampled_from([*_FIRST, *"yntfo~1'\"-!&*|>[{%@` "]),
    st.text(st.sampled_from(string.ascii_letters[:6] + "0123 .-_:#'\"!&*,[]{}|>~\\"), max_size=8),
)
KEYWORDS = st.sampled_from(
    ["yes", "no", "null", "Null", "~", "1e3", "true", "off", "e", "inf", ".inf", "0x1F", "=", "<<"]
)
LEAVES = st.one_of(PLAIN, PLAIN, PLAIN, KEYWORDS, TEXT, st.integers(-5, 5), st.none())
PLAIN_DOCUMENTS = st.dictionaries(
    KEYS,
    st.recursive(
        LEAVES,
        lambda children: st.one_of(
            st.dictionaries(KEYS, children, max_size=4),
            st.dictionaries(KEYS, children, max_size=4),
            st.lists(children, max_size=2),
        ),
        max_leaves=12,
    ),
    min_size=1,
    max_size=5,
)

# Documents the subset holds whole, unless the edits below take them out of it.
SUBSET_DOCUMENTS = st.dictionaries(
    st.builds(
        str.__add__, st.sampled_from(_FIRST), st.text(st.sampled_from("abz09_-."), max_size=3)
    ),
    st.recursive(
        st.builds(
            str.__add__,
            st.sampled_from(_FIRST),
            st.text(st.sampled_from("abcdefgh0123.-'\"[#"), max_size=6),
        ),
        lambda children: st.dictionaries(
            st.builds(
                str.__add__, st.sampled_from(_FIRST), st.text(st.sampled_from("ab.-"), max_size=2)
            ),
            children,
            min_size=1,
            max_size=4,
        ),
        max_leaves=15,
    ),
    min_size=1,
    max_size=5,
)

# Lines put into or over a written document.
FRAGMENTS = st.sampled_from(
    [
        "yes", "null", "~", "1e3", "'q'", '"q"', "- a", "&a x", "*a", "!tag x", "!secret x",
        "{a: b}", "[a]", "|", ">", "x: y", "x #y", "value", "e", "%x", "? x", "a\tb", "ü", "no",
        "2024-01-01", "<<", "=", "", " ", "\r", "#", "---", "...", "key:", "key: v", "k.e-y_1: v",
    ]
)  # fmt: skip
EDITS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "comment", "blank", "tab", "duplicate", "deeper", "shallower", "continue",
                "value", "nothing below", "append", "insert", "document start", "no end",
                "two ends", "crlf",
            ]
        ),
        st.integers(0, 1000),
        FRAGMENTS,
    ),
    min_size=1,
    max_size=3,
)  # fmt: skip


def edited(text: str, edits: list[tuple[str, int, str]]) -> str:
    """``text`` with each edit made at line ``index`` (modulo the line count)."""
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    end = "\n"
    for edit, index, fragment in edits:
        if not lines:
            break
        at = index % len(lines)
        line = lines[at]
        pad = line[: len(line) - len(line.lstrip(" "))]
        if edit == "comment":
            lines.insert(at, f"{pad}# {fragment}")
        elif edit == "blank":
            lines.insert(at, pad if index % 2 else "")
        elif edit == "tab":
            lines[at] = "\t" + line.lstrip(" ")
        elif edit == "duplicate":
            lines.insert(at, line)
        elif edit == "deeper":
            lines[at] = " " * (1 + index % 2) + line
        elif edit == "shallower":
            lines[at] = line[1 + index % 2 :]
        elif edit == "continue":
            lines.insert(at + 1, f"{pad}  {fragment or 'more'}")
        elif edit == "value":
            lines[at] = f"{line.partition(':')[0]}: {fragment}"
        elif edit == "nothing below":
            lines[at] = line.partition(":")[0] + ":"
        elif edit == "append":
            lines[at] = line + fragment
        elif edit == "insert":
            lines.insert(at, pad + fragment)
        elif edit == "document start":
            lines.insert(0, "---")
        elif edit == "no end":
            end = ""
        elif edit == "two ends":
            end = "\n\n"
        else:
            end = "\r\n"
    return "\n".join(lines) + end


# Half the documents in the subset, half of all documents left unedited: a sampled choice
# rather than `one_of`, which drew the simpler strategies far more often.
DOCUMENTS = st.tuples(
    st.sampled_from([0, 0, 1, 2]), SUBSET_DOCUMENTS, PLAIN_DOCUMENTS, CONFIGS
).map(lambda drawn: drawn[1 + drawn[0]])
EDITED = st.tuples(st.booleans(), EDITS).map(lambda drawn: drawn[1] if drawn[0] else [])


@given(DOCUMENTS, EDITED, st.booleans())
def test_a_text_is_read_as_the_general_way_reads_it_or_left_to_it(
    document: dict[str, Any], edits: list[tuple[str, int, str]], secrets: bool
) -> None:
    text = edited(dump_block(document), edits)
    fast = read_block(text, "hack")
    expected = general(text, "hack", secrets=secrets)
    event("read in one pass" if fast is not None else "left to the general way")
    if fast is not None:
        assert expected is not None
        assert list(fast.items()) == list(expected.items())
        assert all(type(value) is str for value in fast.values())
    if text.isascii():  # the same keys read as bytes, as `etcdadmin apply -f` reads them
        read = read_block(text.encode("ascii"), b"hack")
        if fast is None:
            assert read is None
        else:
            assert read is not None and list(read.items()) == list(encoded(fast).items())
    if expected is None:
        assert fast is None
        with pytest.raises(MappingError):
            flatten_text(text, "hack", secrets=secrets)
    else:
        assert list(flatten_text(text, "hack", secrets=secrets).items()) == list(expected.items())


def test_an_exported_directory_of_100000_keys_is_read_in_one_pass() -> None:
    keys = [f"bench/svc{i // 100:04d}/key{i % 100:02d}" for i in range(100_000)]
    values = [f"value-{i}" for i in range(100_000)]
    text = render_listed(keys, values, "bench").decode("utf-8")
    fast = read_block(text, "bench")
    assert fast is not None
    assert list(fast.items()) == list(zip(keys, values, strict=True))
    assert fast == general(text, "bench")
    entries, marked = import_marked_entries(text, b"bench")
    assert list(entries.items()) == list(encoded(fast).items()) and not marked


def test_nested_mappings_and_siblings_after_them_are_read_with_their_full_keys() -> None:
    text = "a:\n  b:\n    c: x y\n    d.e: z#1\n  g: g'h\nb-1:\n    deep: Value[0]\nlast: it\n"
    expected = {
        "hack/a/b/c": "x y",
        "hack/a/b/d.e": "z#1",
        "hack/a/g": "g'h",
        "hack/b-1/deep": "Value[0]",
        "hack/last": "it",
    }
    assert read_block(text, "hack/") == expected == general(text, "hack")


def test_keys_and_values_starting_as_a_boolean_or_null_would_are_read_when_they_are_text() -> None:
    text = "log:\n  level: notice\n  formatter: text\nnotifications:\n  timeout: Ten\n"
    expected = {
        "hack/log/level": "notice",
        "hack/log/formatter": "text",
        "hack/notifications/timeout": "Ten",
    }
    assert read_block(text, "hack") == expected == general(text, "hack")


@pytest.mark.parametrize(
    "text",
    [
        "",  # no keys: the general way says so
        "a: b",  # no line break at the end
        "a: b\n\n",  # a blank line
        "# note\na: b\n",  # a comment
        "a: b # note\n",  # a comment after a value
        "---\na: b\n",  # a document start
        "a:\tb\n",  # a tab
        "a: b\r\n",  # a carriage return
        "a: yes\n",  # a keyword
        "a: null\n",
        "a: ~\n",
        "a: 1e3\n",
        "a: 'b'\n",  # quotes
        "a:\n- b\n",  # a list
        "a: !x b\n",  # a tag
        "a: &x b\nc: *x\n",  # an anchor and an alias
        "a: {b: c}\n",  # a flow mapping
        "a: |\n  b\n",  # a block scalar
        "a: b\n  c\n",  # a value over two lines
        "a: b\na: c\n",  # a key twice
        "a:\n  b: c\na:\n  d: e\n",  # a mapping twice
        "a: b\na:\n  c: d\n",  # a key both a leaf and a mapping
        "a:\nb: c\n",  # a key with nothing below: null
        "a: b\nc:\n",  # the last key with nothing below
        "a:\n    b: c\n  d: e\n",  # an indent that closes to no open mapping
        "a:\n  b: c\n   d: e\n",  # deeper after a leaf
        "  a: b\n",  # an indented first line
        "yes: b\n",  # a key that reads as a boolean
        "a: off\n",  # a value that reads as a boolean
        "a:\n  b: x\n  c: No\n",  # the same, below
        "a b: c\n",  # a space in a key
        "a/b: c\n",  # a slash in a key
        "a: b: c\n",  # a colon and space inside a value
        "a: b \n",  # a space at the end of a value
        "a: b:\n",  # a colon at the end of a value
        "a: ü\n",  # not ASCII
        "a: b\n" + "x" * 200 + ": y\n",  # a key longer than simple keys may be
    ],
)
def test_texts_outside_the_subset_are_left_to_the_general_way(text: str) -> None:
    assert read_block(text, "hack") is None


def test_mappings_nested_near_the_depth_limits_are_left_to_the_general_way() -> None:
    def nested(levels: int) -> str:
        return "".join(f"{'  ' * level}k{level}:\n" for level in range(levels)) + (
            f"{'  ' * levels}leaf: v\n"
        )

    assert read_block(nested(60), "hack") == general(nested(60), "hack")
    assert read_block(nested(63), "hack") is None
    assert general(nested(63), "hack") is not None  # written as one flow value at the limit
