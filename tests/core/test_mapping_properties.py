"""Properties of the key <-> config mapping over generated documents, keys and values.

The budget is Hypothesis's ``max_examples`` per property: 200 by default (the suite's run),
``ETCDADMIN_FUZZ_EXAMPLES`` to change it; ``python -m benchmarks.fuzz_mapping`` runs these same
properties with a large budget.
"""

from __future__ import annotations

import os
import re
import string
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from etcdadmin.core.config.documents import load_yaml
from etcdadmin.core.config.mapping import (
    flatten,
    flatten_text,
    format_value,
    parse_value,
    render,
)
from etcdadmin.core.config.values import display_key
from etcdadmin.core.errors import MappingError
from tests.core.test_mapping import same

settings.register_profile(
    "etcdadmin",
    max_examples=int(os.environ.get("ETCDADMIN_FUZZ_EXAMPLES", "200")),
    deadline=None,  # a shared 2-core machine: timing is not the property
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("etcdadmin")

MARK = "S3CR3TMARK"

# Text as configs hold it: any Unicode scalar value (no lone surrogates, which neither UTF-8
# nor YAML can carry), with the characters the value rules and YAML treat specially made common.
TEXT = st.text(
    st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from(list("\"'{}[]:#-&*!|>%@`,? \n\t\r\\~.0123456789eE+\x85\u2028\ufeff")),
    ),
    max_size=30,
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
SEGMENT = st.text(
    st.sampled_from(string.ascii_letters + string.digits + "-_.: ü"), min_size=1, max_size=8
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(SEGMENT, children, max_size=4)
    ),
    max_leaves=20,
)
CONFIGS = st.dictionaries(SEGMENT, VALUES, min_size=1, max_size=6)

# Fragments of YAML syntax, so generated values reach the parser's every path: tags, anchors,
# aliases, merge keys, flow and block collections, escapes, and the marker a leak would show.
YAML_BITS = st.sampled_from(
    [
        "[", "]", "{", "}", ",", ": ", "- ", "\n", "  ", "&a ", "*a", "&b ", "*b", "<<: ",
        "!!int ", "!!bool ", "!!float ", "!!timestamp ", "!!binary ", "!!set ", "!!omap ",
        "!!python/name:os.system ", "!x ", '"', "'", "\\U", "\\x", "\\u", "FFFFFFFF", "d800",
        "0x", "1" * 40, "2020-13-45", "~", "null", "true", "? ", "|", ">", "#", "%YAML 1.1\n",
        "---\n", "...\n", "\t", "\x00", "\ufeff", MARK,
    ]
)  # fmt: skip
YAMLISH = st.lists(YAML_BITS, max_size=25).map("".join)
RAW_VALUES = st.one_of(YAMLISH, TEXT, st.binary(max_size=40))
RAW_KEYS = st.one_of(
    st.text(st.sampled_from("ab/\x00é\n\\"), max_size=10).map(lambda s: "hack/" + s),
    st.binary(max_size=10).map(lambda b: b"hack/" + b),
    TEXT,
)


@given(VALUES)
def test_a_written_value_reads_back_equal(value: Any) -> None:
    assert same(parse_value(format_value(value)), value)


@given(CONFIGS)
def test_a_config_flattened_then_rendered_gives_the_config_back(config: dict[str, Any]) -> None:
    keys = flatten(config, "hack")
    assert same(yaml.safe_load(render("", keys, "hack")), config)
    assert same(load_yaml(render("", keys, "hack").decode()), config)


@given(CONFIGS)
def test_a_config_flattened_then_rendered_onto_itself_is_unchanged(
    config: dict[str, Any],
) -> None:
    text = render("", flatten(config, "hack"), "hack").decode()
    assert same(yaml.safe_load(render(text, flatten_text(text, "hack"), "hack")), config)


@given(st.dictionaries(RAW_KEYS, RAW_VALUES, max_size=6))
@settings(suppress_health_check=list(HealthCheck))
def test_any_keys_and_values_give_a_config_or_a_project_error(
    entries: dict[Any, Any],
) -> None:
    try:
        rendered = render("base: 1\n", entries, "hack")
    except MappingError as exc:
        assert MARK not in str(exc)
        return
    assert isinstance(yaml.safe_load(rendered), dict)


@given(RAW_VALUES)
def test_any_value_is_typed_or_refused_by_a_project_error(value: str | bytes) -> None:
    try:
        typed = parse_value(value, "hack/x")
    except MappingError as exc:
        assert MARK not in str(exc) and "hack/x" in str(exc)
        return
    try:
        format_value(typed)
    except MappingError as exc:  # values YAML can express but a plain value cannot (dates)
        assert MARK not in str(exc)


def _top_level_keys(text: str) -> list[str]:
    """The text keys at the top of ``text`` as YAML, none when it is no mapping."""
    try:
        document = load_yaml(text)
    except MappingError:
        return []
    return [key for key in document if isinstance(key, str)] if isinstance(document, dict) else []


def _names_a_key(shown: str, keys: list[str]) -> bool:
    """Whether ``shown`` is one of ``keys`` as messages name it (a long one by its start)."""
    return any(
        shown == display_key(key)
        or (shown.endswith("…") and display_key(key).startswith(shown[:-1]))
        for key in keys
    )


def assert_names_no_value(message: str, text: str) -> None:
    """MARK stands for a secret value, which a one-line message never shows; a key is named,
    so the operator can fix it, even when MARK is part of it."""
    keys = _top_level_keys(text)
    outside_keys = re.sub(r"`([^`]*)`", lambda m: "" if _names_a_key(m[1], keys) else m[0], message)
    assert MARK not in outside_keys and "\n" not in message


@given(YAMLISH)
# A top-level key holding the marker is named in the message: the first was found (shrunk)
# past 2,000 examples, the second is the same for a value no etcd value can express.
@example("? S3CR3TMARK!!python/name:os.system ")
@example("S3CR3TMARK: !!binary FFFFFFFF")
def test_any_document_is_flattened_or_refused_by_a_project_error(text: str) -> None:
    try:
        flatten_text(text, "hack")
    except MappingError as exc:
        assert_names_no_value(str(exc), text)
    try:
        render(text, {"hack/x": "1"}, "hack")
    except MappingError as exc:
        assert_names_no_value(str(exc), text)


INT_KEYED = st.recursive(
    SCALARS, lambda c: st.lists(c) | st.dictionaries(st.integers(), c), max_leaves=30
)


@given(INT_KEYED)
def test_any_python_structure_round_trips_or_is_refused_by_a_project_error(value: Any) -> None:
    try:
        keys = flatten({"top": value}, "hack")
    except MappingError:
        return
    assert same(yaml.safe_load(render("", keys, "hack")), {"top": value})


@given(st.integers(min_value=6, max_value=12), st.integers(min_value=2, max_value=12))
def test_alias_bombs_of_any_shape_are_refused(levels: int, width: int) -> None:
    parts = [f"&a0 [{','.join(['x'] * width)}]"]
    parts += [f"&a{n} [{','.join([f'*a{n - 1}'] * width)}]" for n in range(1, levels)]
    bomb = "[" + ",".join(parts) + "]"
    if width**levels <= 1_000_000:
        return
    try:
        render("", {"hack/bomb": bomb}, "hack")
    except MappingError as exc:
        assert "MAX_NODES" in str(exc) or "MAX_TEXT" in str(exc)
    else:
        raise AssertionError("an alias bomb was expanded")


@given(st.integers(min_value=65, max_value=3000), st.booleans())
def test_nesting_past_the_limit_is_refused(depth: int, as_mappings: bool) -> None:
    opening, closing = ("{k: ", "}") if as_mappings else ("[", "]")
    try:
        parse_value(opening * depth + "x" + closing * depth, "hack/deep")
    except MappingError as exc:
        assert "hack/deep" in str(exc)
    else:
        raise AssertionError("a value nested past the limit was read")
