"""The hand-written block YAML writer: the same bytes as PyYAML's, and the same document back.

`dump_block` writes configs (the agent's rendered file, `etcdadmin export`) through
`block_writer.write_block`, falling back to PyYAML for what the writer leaves alone. Whatever it
writes must be exactly what PyYAML (libyaml) writes, since an agent compares the rendered file
with the one on disk, and must read back as the same document with PyYAML's safe_load and with
the agent's own loader. The budget is the one of test_mapping_properties
(ETCDADMIN_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from etcdadmin.core.config.block_writer import write_block
from etcdadmin.core.config.documents import load_yaml
from etcdadmin.core.config.dumping import dump_block, dump_block_by_pyyaml, libyaml_scalar
from tests.core.test_mapping_properties import SCALARS, SEGMENT, TEXT

pytestmark = pytest.mark.skipif(
    not getattr(yaml, "__with_libyaml__", False), reason="the writer mirrors libyaml's output"
)

KEYS = st.one_of(SEGMENT, TEXT, st.integers(), st.booleans(), st.none())
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=30,
)
DOCUMENTS = st.one_of(
    st.dictionaries(KEYS, TREES, max_size=6), st.lists(TREES, min_size=1, max_size=4)
)
# What the agent renders from most directories: text keys and one-line values.
PLAIN_TEXT = st.text(st.sampled_from("abcxyz019-_./:@ "), min_size=1, max_size=12)
PLAIN_DOCUMENTS = st.dictionaries(
    SEGMENT,
    st.recursive(
        st.one_of(PLAIN_TEXT, st.integers(), st.booleans(), st.none()),
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(SEGMENT, children, max_size=3)
        ),
        max_leaves=20,
    ),
    min_size=1,
    max_size=6,
)

TRICKY = [
    "yes", "no", "on", "off", "y", "n", "true", "False", "null", "Null", "~", "", " ",
    "0x1F", "0o17", "0b101", "017", "1_000", "1e3", "1.0e+3", ".inf", "-.inf", ".nan", ".NaN",
    "1:20", "12:30:45", "2024-01-01", "2024-01-01 10:00:00", "<<", "=", "- a", "-", "--", "---",
    "---x", "...", "..", "-1x", ":5000", "a: b", "a:b", "a:", ": ", ":", "#", "a #b", "a#b",
    "?", "? x", "?x", "&a", "*a", "!tag", "|", ">", "%YAML", "@x", "`x", "'", '"', "it's",
    '"q"', "'q'", "{x", "[x", "x}", "x, y", "  lead", "trail  ", " both ", "a  b", "é", "日本",
    "\U0001f600", "\x00", "\x07", "\t", "a\tb", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff",
    "\ufffe", "\r", "a\rb", "a\nb", "a\n", "a\n\n", "\n", "\n\n", "\na", " a\nb", "a \nb",
    "a\n b", "a\n\nb", "a\nb ", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "x" * 5000, "y " * 3000, "p@ss: w*rd&!", "\\", "a\\nb", "100%", "50 %",
]  # fmt: skip


def same(left: Any, right: Any) -> bool:
    """Equal documents, with NaN equal to itself and booleans told apart from 0 and 1."""
    if isinstance(left, float) and isinstance(right, float):
        return (math.isnan(left) and math.isnan(right)) or left == right
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    return bool(left == right)


def assert_written_as_pyyaml_and_read_back(document: Any) -> None:
    written = dump_block(document)
    assert written == dump_block_by_pyyaml(document)
    assert same(yaml.safe_load(written), document)
    assert same(load_yaml(written), document)


@given(DOCUMENTS)
def test_any_document_is_written_as_pyyaml_writes_it_and_reads_back_the_same(
    document: Any,
) -> None:
    assert_written_as_pyyaml_and_read_back(document)


@given(PLAIN_DOCUMENTS)
def test_configs_of_text_numbers_and_nesting_are_written_without_pyyaml(document: Any) -> None:
    written = write_block(document, libyaml_scalar)
    assert written is not None
    assert written == dump_block_by_pyyaml(document)
    assert same(load_yaml(written), document)


@pytest.mark.parametrize("text", TRICKY, ids=repr)
def test_a_tricky_text_is_written_as_pyyaml_writes_it_as_a_value_a_key_and_an_item(
    text: str,
) -> None:
    assert_written_as_pyyaml_and_read_back({"key": text})
    assert_written_as_pyyaml_and_read_back({"a": {"b": [text, {"c": text}], "d": [[text]]}})
    assert_written_as_pyyaml_and_read_back([text, [text], {"k": text}])
    if "\n" not in text:
        assert_written_as_pyyaml_and_read_back({text: 1, "x": {text: [text]}})


@pytest.mark.parametrize("length", [120, 127, 128, 129, 130])
def test_long_keys_are_written_as_pyyaml_writes_them(length: int) -> None:
    assert_written_as_pyyaml_and_read_back({"k" * length: 1})
    assert_written_as_pyyaml_and_read_back({"é" * (length // 2): 1, "x" * length: {"y": 2}})


def test_a_value_reached_twice_is_left_to_pyyaml_which_writes_an_alias() -> None:
    shared = {"a": 1}
    document = {"x": shared, "y": shared}
    assert write_block(document, libyaml_scalar) is None
    assert "&id001" in dump_block(document)
    assert_written_as_pyyaml_and_read_back(document)


def test_a_directory_of_100000_keys_is_written_without_pyyaml() -> None:
    document = {
        f"svc{s:04d}": {f"key{k:02d}": f"value-{s * 100 + k}" for k in range(100)}
        for s in range(1000)
    }
    written = write_block(document, libyaml_scalar)
    assert written is not None
    assert written == dump_block_by_pyyaml(document)
