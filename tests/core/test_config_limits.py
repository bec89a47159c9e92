"""Hostile and oversized YAML against the mapping: refused early, by the project's own error.

Every value under a watched directory is untrusted input. These cases were each seen to escape
as a bare Python exception, to echo part of a value, or to exhaust memory or time.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
import yaml

from etcdadmin.core.config.documents import load_yaml
from etcdadmin.core.config.limits import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    MAX_KEY_DEPTH,
    MAX_NODES,
    MAX_VALUE_BYTES,
    LimitExceeded,
)
from etcdadmin.core.config.mapping import flatten, flatten_text, format_value, parse_value, render
from etcdadmin.core.errors import MappingError
from etcdadmin.core.tree.valueformat import ValueFormat, ValueFormatError, from_text

MARK = "S3CR3TMARK"


def billion_laughs(levels: int = 9, marker: str = "lol") -> str:
    """The classic alias bomb as one flow value: 9 levels of 9 aliases each, under 400 bytes."""
    parts = [f"&a0 [{','.join([marker] * 9)}]"]
    for level in range(1, levels):
        parts.append(f"&a{level} [{','.join([f'*a{level - 1}'] * 9)}]")
    return "[" + ",".join(parts) + "]"


def refused(entries: dict[Any, Any], base: str = "") -> MappingError:
    with pytest.raises(MappingError) as caught:
        render(base, entries, "hack")
    return caught.value


def test_an_alias_bomb_value_is_refused_quickly_without_allocating_much() -> None:
    assert len(billion_laughs()) < 400
    bomb = billion_laughs(marker=MARK)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        error = refused({"hack/bomb": bomb})
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, LimitExceeded)
    assert "hack/bomb" in str(error) and "MAX_NODES" in str(error)
    assert MARK not in str(error) and error.key == "hack/bomb"
    assert elapsed < 0.5
    assert peak < 5 * 1024 * 1024


def test_an_alias_bomb_in_the_base_config_is_refused() -> None:
    error = refused({"hack/x": "1"}, base=f"bomb: {billion_laughs()}\n")
    assert "base config" in str(error) and "MAX_NODES" in str(error)


def test_aliases_within_the_limit_are_expanded() -> None:
    rendered = render("", {"hack/x": billion_laughs(levels=3)}, "hack")
    assert rendered.count(b"lol") == 9 + 9**2 + 9**3


def test_many_values_share_one_budget_of_nodes() -> None:
    per_value = billion_laughs(levels=6)  # 9**6 = 531,441 leaves: within the limit alone
    assert isinstance(parse_value(per_value), list)
    error = refused({"hack/a": per_value, "hack/b": per_value})
    assert "hack/b" in str(error) and "MAX_NODES" in str(error)
    assert MAX_NODES < 2 * 9**6


def test_a_recursive_alias_names_the_key() -> None:
    error = refused({"hack/loop": "[&a [*a]]"})
    assert "hack/loop" in str(error) and "recursive" in str(error)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 5000])
def test_deeply_nested_flow_values_are_refused_naming_the_key(depth: int) -> None:
    error = refused({"hack/deep": "[" * depth + MARK + "]" * depth})
    assert "hack/deep" in str(error) and MARK not in str(error)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    value = parse_value("[" * MAX_DEPTH + "x" + "]" * MAX_DEPTH)
    for _ in range(MAX_DEPTH):
        (value,) = value
    assert value == "x"


def test_a_deeply_nested_base_config_is_refused() -> None:
    error = refused({"hack/x": "1"}, base="a: " + "[" * 200 + "]" * 200 + "\n")
    assert "MAX_DEPTH" in str(error)


def test_a_key_past_the_key_depth_is_refused_naming_the_limit() -> None:
    deep = "hack/" + "/".join(["a"] * (MAX_KEY_DEPTH + 1))
    error = refused({deep: "1"})
    assert "MAX_KEY_DEPTH" in str(error) and error.key == deep
    fine = "hack/" + "/".join(["a"] * MAX_KEY_DEPTH)
    assert render("", {fine: "1"}, "hack").count(b"a:") == MAX_KEY_DEPTH
    thousands = "hack/" + "/".join(["a"] * 3000)
    assert "MAX_KEY_DEPTH" in str(refused({thousands: "1"}))


@pytest.mark.parametrize(
    "value",
    [
        "1" * (MAX_INT_DIGITS + 1),
        "[" + "1" * (MAX_INT_DIGITS + 1) + "]",
        "[0x" + "f" * 4000 + "]",
        "[!!int " + "1" * 5000 + "]",
    ],
)
def test_integers_past_the_digit_limit_are_refused(value: str) -> None:
    error = refused({"hack/n": value})
    assert isinstance(error, LimitExceeded) and "MAX_INT_DIGITS" in str(error)
    assert "hack/n" in str(error)


def test_an_integer_at_the_digit_limit_is_accepted_and_written_back() -> None:
    digits = "9" * MAX_INT_DIGITS
    assert format_value(parse_value(digits)) == digits
    with pytest.raises(LimitExceeded, match="MAX_INT_DIGITS"):
        format_value(int(digits) + 1)


def test_a_quoted_long_number_stays_text() -> None:
    digits = "1" * (MAX_INT_DIGITS + 10)
    assert format_value(digits) == f'"{digits}"'
    assert parse_value(format_value(digits)) == digits


def test_a_value_past_the_size_limit_is_refused_without_parsing_it() -> None:
    huge = "[" + "x," * (MAX_VALUE_BYTES // 2) + "]"
    error = refused({"hack/big": huge})
    assert "MAX_VALUE_BYTES" in str(error) and "hack/big" in str(error)
    assert "MAX_VALUE_BYTES" in str(refused({"hack/big": b"y" * (MAX_VALUE_BYTES + 1)}))


def test_a_one_megabyte_value_renders_in_well_under_a_second() -> None:
    for value in ["x" * 1_000_000, '"' + "ab\\n" * 330_000 + '"']:
        started = time.perf_counter()
        out = render("", {"hack/big": value}, "hack")
        assert time.perf_counter() - started < 1.0
        assert len(out) > 990_000


@pytest.mark.parametrize(
    "value",
    [
        '"\\UFFFFFFFF"',
        '"\\U0011FFFF"',
        '"\\ud800"',
        f"[!!bool {MARK}]",
        f"[!!int {MARK}]",
        f"[!!float {MARK}]",
        f"[!!timestamp {MARK}]",
        "[!!timestamp 2020-13-45]",
        f"[!!binary {MARK}%]",
        f"[!{MARK} x]",
        f"[!!python/object:os.system {MARK}]",
        f"{{<<: {MARK}}}",
        f"[!!omap [{MARK}]]",
        f"[!!pairs {MARK}]",
        f"{{[{MARK}]: 1}}",
        f"[*{MARK}]",
        f"- a\n- &{MARK} b\n- *other\n",
        f"a: 1\n{MARK}: [\n",
        f"[{MARK}\x00]",
    ],
)
def test_bad_values_are_project_errors_naming_the_key_never_the_value(value: str) -> None:
    error = refused({"hack/x": value})
    assert "hack/x" in str(error) and error.key == "hack/x"
    assert MARK not in str(error) and "2020-13-45" not in str(error)


def test_a_key_that_is_not_utf8_is_named_with_escapes() -> None:
    error = refused({b"hack/caf\xe9": b"1", b"other/\xff": b"2"})
    assert "hack/caf\\xe9" in str(error) and error.key == "hack/caf\\xe9"


def test_bytes_keys_outside_the_directory_are_ignored_even_when_not_utf8() -> None:
    assert render("", {b"hack/a": b"1", b"other/\xff": b"2"}, "hack") == b"a: 1\n"


def test_a_key_with_control_characters_is_named_escaped() -> None:
    error = refused({"hack/a\nINJECTED": "[unclosed"})
    assert "hack/a\\x0aINJECTED" in str(error) and "\n" not in str(error)


def test_the_base_config_errors_hide_its_text() -> None:
    for base in [f"a: !{MARK} x\n", f"a: [{MARK}\n", f'a: "\\U{MARK}"\n', f"a: !!int {MARK}\n"]:
        error = refused({"hack/x": "1"}, base=base)
        assert "base config" in str(error) and MARK not in str(error)


@pytest.mark.parametrize(
    "config",
    [
        {"a": "\ud800"},
        {"a": {"b": 10**5000}},
        {"a": 10**5000},
        {"a": {"b": object()}},
        {"a": [float("nan"), {1, 2}, object()]},
    ],
)
def test_flatten_of_unwritable_python_values_is_a_project_error(config: dict[str, Any]) -> None:
    with pytest.raises(MappingError):
        flatten(config, "hack")


def test_flatten_of_a_structure_deeper_than_python_s_stack_is_a_project_error() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(MappingError):
        flatten({"a": deep}, "hack")
    with pytest.raises(MappingError):
        format_value(deep)


def test_flatten_writes_levels_past_the_key_depth_as_one_value() -> None:
    deep: Any = "x"
    for _ in range(MAX_KEY_DEPTH + 5):
        deep = {"k": deep}
    keys = flatten({"a": deep}, "hack")
    assert max(key.count("/") for key in keys) == MAX_KEY_DEPTH
    assert yaml.safe_load(render("", keys, "hack")) == {"a": deep}


def test_flatten_text_refuses_a_bomb() -> None:
    with pytest.raises(LimitExceeded, match="MAX_NODES"):
        flatten_text(f"a: {billion_laughs()}\n", "hack")


def test_the_editor_s_yaml_check_refuses_a_bomb_with_the_limit() -> None:
    with pytest.raises(ValueFormatError, match="MAX_NODES"):
        from_text(f"a: {billion_laughs()}\n", ValueFormat.YAML)


def test_load_yaml_refuses_with_project_errors_only() -> None:
    for text in ['"\\UFFFFFFFF"', "!!bool x", "[" * 2000, "&a [*a]", "a: 1\n---\nb: 2\n"]:
        with pytest.raises(MappingError):
            load_yaml(text)


def test_twenty_thousand_keys_in_one_mapping_render_in_linear_time() -> None:
    def seconds(count: int) -> float:
        entries = {f"hack/k{n:06d}": f"v{n}" for n in range(count)}
        base = "".join(f"k{n:06d}: old\n" for n in range(0, count, 2))
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            render(base, entries, "hack")
            best = min(best, time.perf_counter() - started)
        return best

    small, large = seconds(2_000), seconds(20_000)
    assert large < 2.0
    assert large < 30 * small  # quadratic would be about 100x
