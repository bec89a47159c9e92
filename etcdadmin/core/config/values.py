r"""How one etcd value becomes a typed config value, and back (the "Values" rules).

The rules are documented for operators in `etcdadmin.core.config.mapping`'s module docstring
(section "Values"); this module implements them: `parse_value` and its exact inverse
`format_value`, and the YAML dumpers both modules write with.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import yaml

from etcdadmin.core.config.documents import load_yaml
from etcdadmin.core.errors import MappingError

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


_QUOTES: Final = "\"'"


# Wide enough that PyYAML never folds a long value over several lines.
YAML_WIDTH: Final = 1 << 30


_LINE_BREAKS: Final = "\n\r\x85\u2028\u2029"


_UNSAFE_RAW: Final = "\x85\u2028\u2029\ufeff"


_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def parse_value(text: str | bytes, key: str | None = None) -> Any:
    """Type one etcd value by the rules in the module documentation.

    ``key`` is only used to name the key in error messages. Bytes are decoded as UTF-8.
    """
    if isinstance(text, bytes | bytearray):
        text = _decode(bytes(text), key)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in _QUOTES:
        return _parse_quoted(text, key)
    if text[:1] in ("{", "["):
        return _parse_yaml_collection(text, key, block=False)
    if "\n" in text:
        if _looks_like_block_yaml(text):
            return _parse_yaml_collection(text, key, block=True)
        return text
    if _INT_RE.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # more digits than Python converts: keep the text
            return text
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    if text in _BOOLEANS:
        return _BOOLEANS[text]
    if text in _NULLS:
        return None
    return text


def format_value(value: Any, key: str | None = None) -> str:
    """Write ``value`` as etcd value text such that :func:`parse_value` reads it back equal.

    ``key`` is only used to name the key in error messages.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value, key)
    if isinstance(value, str):
        # Most config text starts with a letter and is one line: no rule of parse_value applies
        # to it but the keywords, so it reads back as itself without parsing it (a tenth of the
        # flatten of a 100,000-leaf config).
        if value[:1].isalpha() and "\n" not in value and value not in _KEYWORDS:
            return value
        return value if _reads_back_as(value) else _double_quoted(value)
    if isinstance(value, dict | list):
        return _flow_yaml(value, key)
    raise MappingError(
        f"{describe_key(key)}: a value of type {type(value).__name__} cannot be written as an etcd "
        "value; use text, a number, true/false, null, a mapping or a list",
        key=key,
    )


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
        tokens = list(yaml.scan(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise _bad_quoting(key, yaml_position(exc)) from None
    if (
        len(tokens) == 3
        and isinstance(tokens[1], yaml.ScalarToken)
        and not tokens[1].plain
        and tokens[1].start_mark.index == 0
        and tokens[1].end_mark.index == len(text)
    ):
        return str(tokens[1].value)
    raise _bad_quoting(key, "")


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


def _parse_yaml_collection(text: str, key: str | None, *, block: bool) -> Any:
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
        value = load_yaml(text)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise MappingError(
            f"{describe_key(key)}: {what} but is not valid YAML{yaml_position(exc)}; {fix}", key=key
        ) from None
    if not isinstance(value, dict | list):
        raise MappingError(
            f"{describe_key(key)}: {what} but is not a YAML mapping or list; {fix}", key=key
        )
    return value


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
        text = yaml.dump(
            copy_document(value),
            Dumper=_FlowDumper,
            default_flow_style=True,
            width=YAML_WIDTH,
            allow_unicode=True,
            sort_keys=False,
        )
    except yaml.YAMLError:
        raise MappingError(
            f"{describe_key(key)}: the mapping or list holds something YAML cannot write; use only "
            "text, numbers, true/false, null, mappings and lists",
            key=key,
        ) from None
    return str(text).strip()


class _SafeTextDumper(yaml.SafeDumper):
    """SafeDumper that escapes the characters PyYAML would write raw and then misread.

    With ``allow_unicode`` PyYAML writes NEL, U+2028, U+2029 and the BOM unescaped, and its own
    reader takes the first three for line breaks (folding them away). A string holding one of
    them is therefore analysed and written as if ``allow_unicode`` were off: double-quoted, with
    escapes. Other text keeps its readable non-ASCII characters.
    """

    def analyze_scalar(self, scalar: str) -> Any:
        with self._escaped_if_unsafe(scalar):
            return super().analyze_scalar(scalar)

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        with self._escaped_if_unsafe(text):
            super().write_double_quoted(text, split)

    @contextmanager
    def _escaped_if_unsafe(self, text: str) -> Iterator[None]:
        if not any(char in _UNSAFE_RAW for char in text):
            yield
            return
        saved: bool = bool(getattr(self, "allow_unicode", False))
        self.allow_unicode = False
        try:
            yield
        finally:
            self.allow_unicode = saved


class BlockDumper(_SafeTextDumper):
    """Writes config files: multi-line strings as ``|`` blocks (readable certificates)."""


class _FlowDumper(_SafeTextDumper):
    """Writes flow values: multi-line strings double-quoted with ``\\n``, so on one line."""


def _represent_block_str(dumper: yaml.SafeDumper, data: str) -> Any:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_flow_str(dumper: yaml.SafeDumper, data: str) -> Any:
    style = '"' if any(char in _LINE_BREAKS for char in data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


BlockDumper.add_representer(str, _represent_block_str)


# libyaml's emitter, when PyYAML was built with it: a 100,000-key config took 12.6 s to write
# with the pure-Python one against 0.64 s for `etcdctl get --prefix -w json` of the same keys.
# (Reading goes through `etcdadmin.core.config.documents`.)
_C_DUMPER_BASE: Final = getattr(yaml, "CSafeDumper", None)
if _C_DUMPER_BASE is not None:

    class _CBlockDumper(_C_DUMPER_BASE):  # type: ignore[valid-type,misc]
        """BlockDumper's output through libyaml, for documents without unsafe raw text."""

    _CBlockDumper.add_representer(str, _represent_block_str)


def dump_block(document: Any) -> str:
    """A config document as block YAML, as `BlockDumper` writes it.

    libyaml's emitter cannot be taught `BlockDumper`'s escaping of NEL, U+2028, U+2029 and the
    BOM (it writes them raw, and YAML readers then take the first three for line breaks), so a
    document whose libyaml output holds one of them is written again by the pure-Python emitter.
    Checking the output costs a scan of one string; walking the document cost 0.3 s per
    100,000 values.
    """
    options: dict[str, Any] = {
        "sort_keys": False,
        "default_flow_style": False,
        "allow_unicode": True,
        "width": YAML_WIDTH,
    }
    if _C_DUMPER_BASE is not None:
        text = str(yaml.dump(document, Dumper=_CBlockDumper, **options))
        if not any(char in text for char in _UNSAFE_RAW):
            return text
    return str(yaml.dump(document, Dumper=BlockDumper, **options))


_FlowDumper.add_representer(str, _represent_flow_str)


def copy_document(value: Any) -> Any:
    """Copy mappings and lists; a node reached twice through YAML aliases becomes two copies."""
    return _copy(value, set())


def _copy(value: Any, active: set[int]) -> Any:
    if not isinstance(value, dict | list):
        return value
    ident = id(value)
    if ident in active:
        raise MappingError(
            "the document contains a recursive YAML alias (an anchor used inside its own "
            "node); remove the recursion"
        )
    active.add(ident)
    try:
        if isinstance(value, dict):
            return {key: _copy(item, active) for key, item in value.items()}
        return [_copy(item, active) for item in value]
    finally:
        active.discard(ident)


def describe_key(key: str | None) -> str:
    return f"etcd key `{key}`" if key is not None else "value"


def yaml_position(exc: BaseException) -> str:
    """Where a YAML error is, without the snippet of text PyYAML would quote."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return ""
    return f" (line {mark.line + 1}, column {mark.column + 1})"
