r"""How one etcd value becomes a typed config value, and back (the "Values" rules).

The rules are documented for operators in `etcdadmin.core.config.mapping`'s module docstring
(section "Values"); this module implements them: `parse_value` and its exact inverse
`format_value`. YAML is read by `etcdadmin.core.config.documents` and written by
`etcdadmin.core.config.dumping`; the limits are those of `etcdadmin.core.config.limits`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Final

from etcdadmin.core.config.documents import InvalidYAML, load_yaml_measured, read_quoted
from etcdadmin.core.config.dumping import dump_flow
from etcdadmin.core.config.limits import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    MAX_KEY_DEPTH,
    MAX_VALUE_BYTES,
    LimitExceeded,
    int_too_long,
    too_deep,
)
from etcdadmin.core.errors import MappingError
from etcdadmin.core.tree.names import display_segment

_INT_RE: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")


_FLOAT_RE: Final = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+]?[0-9]+)?")


_BLOCK_MAPPING_RE: Final = re.compile(r"[^\s#:][^:]*:(?:\s|$)")


_BLOCK_LIST_RE: Final = re.compile(r"-(?: |$)")


_BOOLEANS: Final = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}


_NULLS: Final = frozenset({"null", "~"})


_KEYWORDS: Final = _NULLS | _BOOLEANS.keys()


_KEYWORD_VALUES: Final[dict[str, bool | None]] = {**_BOOLEANS, **dict.fromkeys(_NULLS)}


_QUOTES: Final = "\"'"


_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def parse_value(text: str | bytes, key: str | None = None) -> Any:
    """Type one etcd value by the rules in the module documentation.

    ``key`` is only used to name the key in error messages. Bytes are decoded as UTF-8.
    """
    return typed_value(text, key)[0]


def typed_value(text: str | bytes, key: str | None = None) -> tuple[Any, int, int]:
    """`parse_value` with the value's expanded nodes and characters, for render's budget.

    A tuple because this runs once per key of a directory: a frozen dataclass per value added
    0.08 s to the 0.14 s of typing 100,000 values.
    """
    if len(text) > MAX_VALUE_BYTES // 4 and _utf8_length(text) > MAX_VALUE_BYTES:
        raise LimitExceeded(
            f"{describe_key(key)}: the value is longer than {MAX_VALUE_BYTES:,} bytes (the limit "
            "MAX_VALUE_BYTES); store a smaller value",
            key=key,
        )
    if isinstance(text, bytes | bytearray):
        text = _decode(bytes(text), key)
    first = text[:1]
    # Most values are one line of text starting with a letter: none of the rules below but the
    # keywords applies to them (typing 100,000 such values: 0.16 s through every rule, 0.14 s).
    if first.isalpha() and "\n" not in text:
        return _KEYWORD_VALUES.get(text, text), 1, len(text)
    if len(text) >= 2 and first == text[-1] and first in _QUOTES:
        quoted = _parse_quoted(text, key)
        return quoted, 1, len(quoted)
    if first in ("{", "["):
        return _parse_yaml_collection(text, key, block=False)
    if "\n" in text:
        if _looks_like_block_yaml(text):
            return _parse_yaml_collection(text, key, block=True)
        return text, 1, len(text)
    if _INT_RE.fullmatch(text):
        return _integer(text, key), 1, len(text)
    if _FLOAT_RE.fullmatch(text):
        return float(text), 1, len(text)
    if text in _KEYWORD_VALUES:
        return _KEYWORD_VALUES[text], 1, len(text)
    return text, 1, len(text)


def typed_values(
    texts: Sequence[str | bytes], keys: Sequence[str | None]
) -> list[tuple[Any, int, int]]:
    """`typed_value` of each text, in order (``keys[i]`` names ``texts[i]`` in errors).

    For a directory's worth of values: the texts are decoded in one call and the commonest
    kind, one line of text starting with a letter, typed as `typed_value` types it but without
    a call per value (100,000 values: 0.09 s against 0.16 s one by one, CPU on 2 busy cores).
    """
    decoded = decoded_together(texts)
    typed: list[Any] = [
        (_KEYWORD_VALUES.get(text, text), 1, len(text))  # type: ignore[arg-type]
        if type(text) is str
        and text[:1].isalpha()
        and "\n" not in text
        and len(text) <= SURELY_SHORT
        else None
        for text in decoded
    ]
    for index, known in enumerate(typed):
        if known is None:
            typed[index] = typed_value(decoded[index], keys[index])
    return typed


# Characters in a text whose UTF-8 form surely fits MAX_VALUE_BYTES (4 bytes a character).
SURELY_SHORT: Final = MAX_VALUE_BYTES // 4


def decoded_together(texts: Sequence[str | bytes]) -> Sequence[str | bytes]:
    """The texts decoded from UTF-8 in one call when they all are valid UTF-8 bytes without a
    NUL (which separates them); otherwise as given, for `typed_value` to decode one by one."""
    try:
        joined = b"\0".join(texts)  # type: ignore[arg-type]
        parts = joined.decode("utf-8").split("\0")
    except (TypeError, UnicodeDecodeError):
        return texts
    return parts if len(parts) == len(texts) else texts


def _integer(text: str, key: str | None) -> int:
    try:
        if len(text.lstrip("-")) <= MAX_INT_DIGITS:
            return int(text)
    except ValueError:  # the process lowered Python's int-to-text limit below ours
        pass
    raise LimitExceeded(
        f"{describe_key(key)}: the value is an integer of more than {MAX_INT_DIGITS:,} digits "
        "(the limit MAX_INT_DIGITS); quote it to store it as text",
        key=key,
    )


def _utf8_length(text: str | bytes) -> int:
    if isinstance(text, bytes | bytearray):
        return len(text)
    return len(text.encode("utf-8", errors="surrogatepass"))


def format_value(value: Any, key: str | None = None) -> str:
    """Write ``value`` as etcd value text such that :func:`parse_value` reads it back equal.

    ``key`` is only used to name the key in error messages.
    """
    text = _format(value, key)
    if len(text) > MAX_VALUE_BYTES // 4 and _utf8_length(text) > MAX_VALUE_BYTES:
        raise LimitExceeded(
            f"{describe_key(key)}: the value would be longer than {MAX_VALUE_BYTES:,} bytes (the "
            "limit MAX_VALUE_BYTES); split it over several keys",
            key=key,
        )
    return text


def _format(value: Any, key: str | None) -> str:
    # Most config text starts with a letter and is one line of ASCII: no rule of parse_value
    # applies to it but the keywords, so it reads back as itself without parsing it (a tenth of
    # the flatten of a 100,000-leaf config); tested first, being most of the values.
    if (
        type(value) is str
        and value[:1].isalpha()
        and value.isascii()
        and "\n" not in value
        and value not in _KEYWORDS
    ):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if int_too_long(value):
            raise LimitExceeded(
                f"{describe_key(key)}: an integer of more than {MAX_INT_DIGITS:,} digits (the "
                "limit MAX_INT_DIGITS) cannot be written; store it as text",
                key=key,
            )
        return str(value)
    if isinstance(value, float):
        return _format_float(value, key)
    if isinstance(value, str):
        if not value.isascii():
            _check_unicode(value, key)
        if value[:1].isalpha() and "\n" not in value and value not in _KEYWORDS:
            return value  # non-ASCII text starting with a letter, as above
        return value if _reads_back_as(value) else _double_quoted(value)
    if isinstance(value, dict | list):
        return _flow_yaml(value, key)
    raise MappingError(
        f"{describe_key(key)}: a value of type {type(value).__name__} cannot be written as an etcd "
        "value; use text, a number, true/false, null, a mapping or a list",
        key=key,
    )


def _check_unicode(text: str, key: str | None) -> None:
    """Refuse lone surrogates: no UTF-8 etcd value (and no YAML file) can hold them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MappingError(
            f"{describe_key(key)}: the text holds a lone surrogate code point, which UTF-8 "
            "cannot encode; fix the text",
            key=key,
        ) from None


def _decode(raw: bytes, key: str | None) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MappingError(
            f"{describe_key(key)}: the value is not valid UTF-8 text; write it again as UTF-8",
            key=key,
        ) from None


def _parse_quoted(text: str, key: str | None) -> str:
    try:
        value = read_quoted(text)
    except InvalidYAML as exc:
        raise _bad_quoting(key, exc.position) from None
    if value is None:
        raise _bad_quoting(key, "")
    return value


def _bad_quoting(key: str | None, where: str) -> MappingError:
    return MappingError(
        f"{describe_key(key)}: the value starts and ends with a quote but is not one valid YAML "
        f'quoted string{where}; fix the quoting (inside double quotes escape \\" and \\\\, '
        "inside single quotes double the quote) or wrap the whole value in the other kind of "
        "quotes",
        key=key,
    )


def _looks_like_block_yaml(text: str) -> bool:
    for line in text.split("\n"):
        if not line.strip():
            continue
        line = line.rstrip("\r")
        return bool(_BLOCK_MAPPING_RE.match(line) or _BLOCK_LIST_RE.match(line))
    return False


def _parse_yaml_collection(text: str, key: str | None, *, block: bool) -> tuple[Any, int, int]:
    if block:
        what = (
            "the value has several lines and its first line looks like YAML (`name: ...` or "
            "`- item`)"
        )
        fix = (
            "fix the YAML, or store the text as one double-quoted string with \\n for the line "
            "breaks"
        )
    else:
        what = "the value starts with `{` or `[`"
        fix = "fix the YAML, or wrap the whole value in quotes to store it as text"
    try:
        value, extent = load_yaml_measured(text, f"{describe_key(key)}: the value", key)
    except InvalidYAML as exc:
        raise MappingError(
            f"{describe_key(key)}: {what} but is not valid YAML{exc.position}; {fix}", key=key
        ) from None
    if not isinstance(value, dict | list):
        raise MappingError(
            f"{describe_key(key)}: {what} but is not a YAML mapping or list; {fix}", key=key
        )
    return value, extent.nodes, extent.text


def _reads_back_as(text: str) -> bool:
    """True when ``text`` written verbatim is read back by :func:`parse_value` as ``text``."""
    try:
        parsed = parse_value(text)
    except MappingError:
        return False
    return isinstance(parsed, str) and parsed == text


def _format_float(value: float, key: str | None) -> str:
    if not math.isfinite(value):
        raise MappingError(
            f"{describe_key(key)}: an infinite or NaN number cannot be written as a plain etcd "
            "value; put it inside a flow mapping or list (for example `{x: .inf}`)",
            key=key,
        )
    text = repr(value)
    if "e" in text and "." not in text:  # 1e+20 -> 1.0e+20, the form rule 4 reads as a float
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _is_printable(char: str) -> bool:
    """Characters written as they are inside a double-quoted value (no escape needed)."""
    return (
        " " <= char <= "~"
        or ("\xa0" <= char <= "\ud7ff" and char not in "\u2028\u2029")
        or ("\ue000" <= char <= "\ufffd" and char != "\ufeff")
        or char >= "\U00010000"
    )


def _double_quoted(text: str) -> str:
    """A YAML double-quoted scalar on one line, like ``json.dumps`` but readable non-ASCII.

    Characters YAML would fold or reject (line breaks, control characters, U+2028/9, the BOM)
    are escaped; characters outside the Basic Multilingual Plane are kept as they are (JSON's
    surrogate pair escapes would not read back as one character in YAML).
    """
    parts = ['"']
    for char in text:
        escape = _ESCAPES.get(char)
        if escape is not None:
            parts.append(escape)
        elif _is_printable(char):
            parts.append(char)
        elif ord(char) <= 0xFFFF:
            parts.append(f"\\u{ord(char):04x}")
        else:
            parts.append(f"\\U{ord(char):08x}")
    parts.append('"')
    return "".join(parts)


def _flow_yaml(value: dict[Any, Any] | list[Any], key: str | None) -> str:
    try:
        return dump_flow(copy_document(value, MAX_DEPTH))
    except LimitExceeded as exc:
        raise LimitExceeded(f"{describe_key(key)}: {exc}", key=key) from None
    except MappingError:
        raise MappingError(
            f"{describe_key(key)}: the mapping or list holds something YAML cannot write; use only "
            "text, numbers, true/false, null, mappings and lists",
            key=key,
        ) from None


def copy_document(value: Any, max_depth: int = MAX_DEPTH + MAX_KEY_DEPTH) -> Any:
    """Copy mappings and lists; a node reached twice through YAML aliases becomes two copies.

    Documents read by this package nest at most MAX_DEPTH levels, and a key adds at most
    MAX_KEY_DEPTH; deeper structures (handed in by a caller) are refused before Python's stack
    runs out.
    """
    return _copy(value, set(), max_depth)


def _copy(value: Any, active: set[int], max_depth: int) -> Any:
    if not isinstance(value, dict | list):
        return value
    if len(active) >= max_depth:
        raise too_deep("the document")
    ident = id(value)
    if ident in active:
        raise MappingError(
            "the document contains a recursive YAML alias (an anchor used inside its own "
            "node); remove the recursion"
        )
    active.add(ident)
    try:
        if isinstance(value, dict):
            return {key: _copy(item, active, max_depth) for key, item in value.items()}
        return [_copy(item, active, max_depth) for item in value]
    finally:
        active.discard(ident)


def describe_key(key: str | None) -> str:
    return f"etcd key `{display_key(key)}`" if key is not None else "value"


def display_key(key: str | bytes) -> str:
    r"""An etcd key as messages name it: its text, or ``\xNN`` escapes where it is not
    printable UTF-8 (as the client's tree shows it, so the operator can find and fix it)."""
    if isinstance(key, str):
        if key.isprintable() and "\\" not in key:
            return key
        key = key.encode("utf-8", errors="surrogateescape")
    return display_segment(bytes(key))
