from __future__ import annotations

import random

import pytest

from etcdadmin.core.tree.valueformat import (
    ValueFormat,
    ValueFormatError,
    detect,
    from_text,
    to_text,
)


def test_binary_values_open_as_hex_and_survive_a_round_trip_byte_for_byte():
    rng = random.Random(7)
    for _ in range(200):
        value = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        fmt = detect(value)
        assert from_text(to_text(value, fmt), fmt) == value


def test_json_values_are_detected_and_invalid_json_is_refused():
    assert detect(b'{"a": 1}') is ValueFormat.JSON
    assert detect(b"plain text") is ValueFormat.TEXT
    assert detect(b"\xff\xfe") is ValueFormat.HEX
    with pytest.raises(ValueFormatError, match="not valid JSON"):
        from_text('{"a": ', ValueFormat.JSON)


def test_invalid_yaml_is_refused_with_its_position():
    with pytest.raises(ValueFormatError, match=r"at line 3, column 1"):
        from_text("a: 1\nb: [unclosed\n", ValueFormat.YAML)
    assert from_text("a: 1\n", ValueFormat.YAML) == b"a: 1\n"


def test_binary_cannot_be_edited_as_text_and_bad_hex_is_refused():
    with pytest.raises(ValueFormatError, match="binary"):
        to_text(b"\x00\x01", ValueFormat.TEXT)
    with pytest.raises(ValueFormatError, match="not valid hex"):
        from_text("0g", ValueFormat.HEX)


@pytest.mark.parametrize(
    "value",
    [b"a\r\nb", b"a\rb", "no\u00a0break".encode(), "line\u2028sep".encode()],
)
def test_text_an_editor_would_alter_opens_as_hex_so_it_survives(value):
    assert detect(value) is ValueFormat.HEX
    assert from_text(to_text(value, ValueFormat.HEX), ValueFormat.HEX) == value
