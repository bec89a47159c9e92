r"""A config document written as block YAML without PyYAML's per-node work, byte for byte.

`write_block` returns exactly the text `etcdadmin.core.config.dumping.dump_block` gets from
libyaml's emitter (PyYAML's CSafeDumper with the block options there), or None when the
document holds anything it does not write itself; the caller then asks PyYAML. Hand-written
because PyYAML builds a node per value, resolves each scalar's implicit type twice through
Python callbacks and lets libyaml call back into Python for every event: for a config of
100,000 values that was 1.0-1.2 s of the 3.0 s `etcdadmin export` took (2 cores, CPython 3.11);
measured again side by side on the same busy cores: 1.22 s of CPU through PyYAML, 0.23 s here.
The output must stay identical to libyaml's: an agent compares the rendered file with the one
on disk, so a different spelling of the same config would restart the service once after an
upgrade.

How libyaml writes each scalar (its `yaml_emitter_analyze_scalar` and `select_scalar_style`),
restricted to what is decided here:

* plain, when the text has no leading or trailing space, no indicator where YAML would read one
  (``- ``, ``: ``, `` #``, ``---`` ...), only characters libyaml writes raw, and reads back as
  text (not ``yes``, ``null``, ``1e3``, ``0x1F``): `_PLAIN` and PyYAML's own resolver table;
* single-quoted (``'yes'``, ``': '``, ``' lead'``) when it is one line of such characters;
* a literal block (``|``, ``|-``, ``|2-``) for multi-line text of such characters without a
  space before a line break or at the end;
* double-quoted otherwise (control characters, tabs, characters outside the BMP): rare, so that
  one scalar is written by libyaml itself and spliced in.

Anything else gives None: floats whose text would not read back as a float, keys libyaml would
not write as simple keys (multi-line, or over 128 bytes), text ending in two line breaks
(``|+``, after which libyaml may end the document with ``...``), values reached twice (PyYAML
writes anchors), types other than text, integers, booleans, null, mappings and lists, and the
characters libyaml writes raw but YAML readers take for line breaks (U+2028, U+2029; the BOM),
which `dump_block` escapes through PyYAML's pure-Python emitter.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any, Final

import yaml

_STR_TAG: Final = "tag:yaml.org,2002:str"
_FLOAT_TAG: Final = "tag:yaml.org,2002:float"

# Characters libyaml writes raw with allow_unicode (its IS_PRINTABLE), minus the ones it writes
# raw although YAML readers fold them (U+2028, U+2029) or drop them (U+FEFF): every character
# but the C0 controls (which each class below lists with the blank, break or tab it allows) and
# these. Negated classes because a class listing the allowed ranges up to U+FFFD took 20 ms to
# compile (a bitmap of the whole plane), a fifth of this module's import.
_NEVER_RAW: Final = "\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff\U00010000-\U0010ffff"
_RAW: Final = f"[^\x00-\x20{_NEVER_RAW}]"
_RAW_OR_SPACE: Final = f"[^\x00-\x1f{_NEVER_RAW}]"
_RAW_SPACE_OR_BREAK: Final = f"[^\x00-\x09\x0b-\x1f{_NEVER_RAW}]"

# Which texts libyaml's block context writes plain (if they also read back as text), as one
# compiled expression per scalar instead of its character-by-character analysis: only raw
# characters and inner spaces; a first character that is no indicator (``-``, ``?`` and ``:``
# are fine when a non-blank follows); ``:`` followed by a non-blank, ``#`` preceded by one; not
# ``---`` or ``...`` at the start. Written with no alternation per character, which made a
# 1 MB value take 0.7 s to check; these scan it in milliseconds.
_PLAIN: Final = re.compile(
    rf"(?!---|\.\.\.)(?:{_RAW}(?<![#,\[\]{{}}&*!|>'\"%@`?:\-])|[?:\-](?={_RAW}))"
    rf"{_RAW_OR_SPACE}*(?<![ :])"
)
_PLAIN_INSIDE: Final = re.compile(r": | #")
# One line libyaml writes single-quoted when it cannot be plain.
_QUOTABLE: Final = re.compile(f"{_RAW_OR_SPACE}*")
# Multi-line text libyaml writes as a literal block: no space right before a line break or at
# the very end (its `space_break` and `trailing_space`).
_LITERAL: Final = re.compile(f"{_RAW_SPACE_OR_BREAK}*(?<! )")
_SPACE_BREAK: Final = " \n"
_PADDED_EMPTY_LINE: Final = re.compile(r"^ +$", re.MULTILINE)

# What libyaml counts as line breaks (its IS_BREAK).
_BREAK: Final = re.compile("[\r\n\x85\u2028\u2029]")

# PyYAML's implicit types by first character (its resolver's table): plain text matching one
# of these would read back as something else (`yes`, `1_000`, `~`, `2024-01-01`, `<<`, `=`).
_IMPLICIT: Final[dict[str, list[Any]]] = {
    first: [expression for _tag, expression in resolvers]
    for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
    if first is not None
}
_IMPLICIT_ANY: Final[list[Any]] = [
    expression for _tag, expression in yaml.SafeDumper.yaml_implicit_resolvers.get(None, [])
]
# Letters that start no implicit type (`yes`, `null`, `true`, `on` start with others).
UNTYPED_LETTERS: Final = (
    frozenset() if _IMPLICIT_ANY else frozenset(string.ascii_letters) - _IMPLICIT.keys()
)
_FLOATS: Final = [
    expression
    for resolvers in yaml.SafeDumper.yaml_implicit_resolvers.values()
    for tag, expression in resolvers
    if tag == _FLOAT_TAG
]

# libyaml writes a key as a simple key (``key: value``) up to this many bytes.
_SIMPLE_KEY_BYTES: Final = 128

_INDENT: Final = 2


class NotMine(Exception):
    """The document holds something only PyYAML writes as `dump_block` does."""


def write_block(document: Any, double_quoted: Callable[[str], str]) -> str | None:
    """`dump_block(document)` when libyaml would write it, or None to let PyYAML write it.

    ``double_quoted`` is libyaml writing one text alone as a document (``"a\tb"`` and a line
    break), for the few texts that need escapes. Only mappings and lists at the top level; a
    scalar document is left to PyYAML.
    """
    if type(document) is not dict and type(document) is not list:
        return None
    if not document:
        return "{}\n" if type(document) is dict else "[]\n"
    writer = BlockWriter(double_quoted)
    try:
        writer.node(document, 0, "")
    except (NotMine, RecursionError):
        return None
    return "".join(writer.out)


def reads_as_text(text: str) -> bool:
    resolvers = _IMPLICIT.get(text[:1])
    if resolvers is not None and any(expression.match(text) for expression in resolvers):
        return False
    return not _IMPLICIT_ANY or not any(expression.match(text) for expression in _IMPLICIT_ANY)


def _plain_ascii(text: str) -> bool:
    """A sure "plain" for most config text, from string methods alone (100,000 values: 0.05 s,
    against 0.10 s through `_PLAIN` and the resolver table): printable ASCII starting with a
    letter no implicit type starts with, without ``: `` or `` #`` inside nor a space or ``:``
    at the end. False says nothing: the full rules decide then."""
    return (
        text[:1] in UNTYPED_LETTERS
        and text.isascii()
        and text.isprintable()
        and text[-1] not in " :"
        and ": " not in text
        and " #" not in text
    )


class BlockWriter:
    """The lines of one document, and what each distinct text was written as.

    A class rather than nested functions: a recursive closure is a reference cycle, kept until
    the next full collection, and these run with the collector paused.
    """

    def __init__(self, double_quoted: Callable[[str], str]) -> None:
        self.double_quoted = double_quoted
        self.out: list[str] = []
        self.seen: set[int] = set()
        # text -> its inline form, or a tuple (header, lines) for a literal block. Keys repeat
        # across the mappings of a large config (`key00` in each of 1,000 services).
        self.scalars: dict[str, str | tuple[str, str]] = {}
        self.keys: dict[str, str] = {}

    def node(self, value: Any, indent: int, lead: str) -> None:
        """Write a mapping or list at column ``indent``; its first line starts with ``lead``
        (``"- "`` items put their first entry on their own line) instead of the indent."""
        ident = id(value)
        if ident in self.seen:  # reached twice: PyYAML writes an anchor and an alias
            raise NotMine
        self.seen.add(ident)
        if type(value) is dict:
            self.mapping(value, indent, lead)
        else:
            self.sequence(value, indent, lead)

    def mapping(self, mapping: dict[Any, Any], indent: int, lead: str) -> None:
        out = self.out
        pad = " " * indent
        keys = self.keys
        scalars = self.scalars
        first_line = len(out)
        for key, item in mapping.items():
            name = keys.get(key) if type(key) is str else None
            if name is None:
                name = self.key(key)
            kind = type(item)
            if kind is str:  # most entries: one line `key: text`, its form seen before or plain
                written = scalars.get(item)
                if written is None:
                    written = self.text(item)
                if type(written) is str:
                    out.append(f"{pad}{name}: {written}\n")
                else:
                    self.scalar(f"{pad}{name}:", item, indent + _INDENT)
            elif kind is dict or kind is list:
                if item:
                    out.append(f"{pad}{name}:\n")
                    if kind is dict:
                        self.node(item, indent + _INDENT, " " * (indent + _INDENT))
                    else:  # lists in a mapping are not indented (libyaml's "indentless")
                        self.node(item, indent, pad)
                else:
                    self.node(item, indent, "")  # an empty one is still a node PyYAML tracks
                    out.append(f"{pad}{name}: {'{}' if kind is dict else '[]'}\n")
            else:
                self.scalar(f"{pad}{name}:", item, indent + _INDENT)
        if lead != pad and len(out) > first_line:
            out[first_line] = lead + out[first_line][indent:]

    def sequence(self, sequence: list[Any], indent: int, lead: str) -> None:
        out = self.out
        pad = " " * indent
        first = True
        for item in sequence:
            start = (lead if first else pad) + "-"
            first = False
            kind = type(item)
            if kind is dict or kind is list:
                if item:
                    self.node(item, indent + _INDENT, start + " ")
                else:
                    self.node(item, indent, "")
                    out.append(f"{start} {'{}' if kind is dict else '[]'}\n")
            else:
                self.scalar(start, item, indent + _INDENT)

    def scalar(self, start: str, value: Any, content_indent: int) -> None:
        """One line ``start value``, or ``start |`` and the lines of a literal block."""
        written = self.text(value) if type(value) is str else _plain_scalar(value)
        if isinstance(written, str):
            self.out.append(f"{start} {written}\n")
            return
        header, body = written
        pad = " " * content_indent
        block = pad + body.replace("\n", "\n" + pad)
        if "\n\n" in body or body[:1] == "\n":
            # empty lines stay empty; no line of a literal block is only spaces (see _LITERAL)
            block = _PADDED_EMPTY_LINE.sub("", block)
        self.out.append(f"{start} {header}\n{block}\n")

    def key(self, key: Any) -> str:
        """A mapping key as libyaml writes a simple key; remembered when it is text."""
        written = self.text(key) if type(key) is str else _plain_scalar(key)
        if not isinstance(written, str) or (written[:1] == '"' and _BREAK.search(key)):
            raise NotMine  # a key holding a line break is not a simple key
        source = key if type(key) is str else written
        if len(source) > _SIMPLE_KEY_BYTES // 4 and len(source.encode()) > _SIMPLE_KEY_BYTES:
            raise NotMine
        if type(key) is str:
            self.keys[key] = written
        return written

    def text(self, text: str) -> str | tuple[str, str]:
        """How a text is written: inline (plain or quoted), or a literal block's header and
        body; remembered, as keys repeat across the mappings of a large config."""
        known = self.scalars.get(text)
        if known is not None:
            return known
        if _plain_ascii(text):
            written: str | tuple[str, str] = text
        elif "\n" in text:
            written = self.literal(text)
        elif _PLAIN.fullmatch(text) and not _PLAIN_INSIDE.search(text) and reads_as_text(text):
            written = text
        elif _QUOTABLE.fullmatch(text):
            written = "'" + text.replace("'", "''") + "'"
        else:
            written = self.quoted(text)
        self.scalars[text] = written
        return written

    def literal(self, text: str) -> str | tuple[str, str]:
        """A multi-line text as libyaml writes it: a literal block when it can, else quoted."""
        if not _LITERAL.fullmatch(text) or _SPACE_BREAK in text:
            return self.quoted(text)
        if text.endswith("\n"):
            if text == "\n" or text.endswith("\n\n"):
                raise NotMine  # `|+`: libyaml may then end the document with `...`
            chomp, body = "", text[:-1]
        else:
            chomp, body = "-", text
        hint = str(_INDENT) if text[0] in " \n" else ""
        return f"|{hint}{chomp}", body

    def quoted(self, text: str) -> str:
        """libyaml's own double-quoted scalar (its escapes: ``\\0``, ``\\t``, ``\\x85``,
        ``\\U0001F600`` ...); written alone, as the style does not depend on the context."""
        written = self.double_quoted(text)
        if not (written.startswith('"') and written.endswith('"\n')) or "\n" in written[:-1]:
            raise NotMine
        return written[:-1]


def _plain_scalar(value: Any) -> str:
    """Integers, booleans, null and floats as PyYAML's SafeRepresenter writes them."""
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is float:
        text = _float_text(value)
        if any(expression.match(text) for expression in _FLOATS):
            return text
    raise NotMine


def _float_text(value: float) -> str:
    """SafeRepresenter.represent_float's text."""
    if value != value:
        return ".nan"
    if value == float("inf"):
        return ".inf"
    if value == float("-inf"):
        return "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text
