"""A config file in the shape `etcdadmin export` writes it read as keys without PyYAML.

`read_block` returns exactly the keys `etcdadmin.core.config.mapping.flatten_text` makes of a
YAML text (full key -> value text), or None when the text holds anything outside a strict
line-based subset, so that `flatten_text` reads it the general way (and raises the error that
names the line). Hand-written because PyYAML parses, resolves, measures and builds a node per
key and per value, then `flatten` walks the document and formats every leaf again. For the
100,000 settings ``svcNNNN/keyNN: value-N`` of an exported directory (2.1 MB), CPU time on 2
shared cores (load 4-5), median of 7 runs side by side: 1.17 s (0.68-1.43) that way, 0.34 s
(0.20-0.46) here; a whole ``etcdadmin apply -f FILE --dir DIR --yes`` with nothing to change,
7 processes each way against a scratch etcd holding those keys: 1.84 s of CPU (1.83 s from
start to exit) before, 0.80 s (0.91 s) with this.

The subset is what `etcdadmin.core.config.block_writer` writes for mappings of plain text,
one line each, every line ending in ``\\n``:

* ``<indent><KEY>:`` opens a mapping; the next line must be more indented (else the key holds
  null, left to the general way), and every entry of that mapping sits at that indent;
* ``<indent><KEY>: <VALUE>`` is a leaf;
* KEY starts with a letter, then letters, digits, ``_``, ``-`` and ``.``, at most
  `_KEY_CHARS` characters (libyaml refuses simple keys past 1,024);
* VALUE starts with a letter and holds printable ASCII only, with no ``: `` or `` #``
  inside and no space or ``:`` at the end: a plain scalar;
* a KEY or VALUE starting with a letter that an implicit YAML type starts with (``y``, ``n``,
  ``t``, ``f``, ``o`` and their capitals: ``timeout``, ``notice``) reads back as that same text
  (`block_writer.reads_as_text`, PyYAML's own resolvers: not ``off``, ``null`` or ``True``),
  so `format_value` writes it unchanged.

Anything else gives None: blank or comment lines, ``---``, tabs, quotes, lists, tags, anchors
and aliases, flow collections, block scalars, a line continuing a value, a key twice in one
mapping, an indent that closes to no open mapping, a first line that is indented, keys nested
near `MAX_KEY_DEPTH` or `MAX_DEPTH`, a text that might be past the node or text budgets of
`etcdadmin.core.config.limits`, a text not ending in one line break. A spurious None only
costs time; a wrong key would change etcd, so `tests/core/test_block_reader.py` checks both
ways of reading against each other on random documents and near-misses of them.
"""

from __future__ import annotations

import re
from typing import Any, Final, overload

from etcdadmin.core.config.block_writer import UNTYPED_LETTERS, reads_as_text
from etcdadmin.core.config.limits import MAX_DEPTH, MAX_KEY_DEPTH, MAX_NODES, MAX_TEXT
from etcdadmin.core.config.values import SURELY_SHORT
from etcdadmin.core.tree.directories import directory_prefix

_FIRST: Final = "A-Za-z"
# Letters an implicit YAML type starts with (`yes`, `null`, `true`, `off`): a key or value
# starting with one is checked against PyYAML's resolvers, once per distinct text.
_TYPED: Final = "".join(
    sorted(set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") - UNTYPED_LETTERS)
)
_TYPED_FIRST: Final = frozenset(_TYPED) | frozenset(c.encode("ascii") for c in _TYPED)
_TYPED_START: Final = re.compile(f"^ *[{_TYPED}]|: [{_TYPED}]", re.MULTILINE)
_TYPED_START_BYTES: Final = re.compile(_TYPED_START.pattern.encode("ascii"), re.MULTILINE)
# libyaml refuses a simple key whose ``:`` is more than 1,024 characters past its start.
_KEY_CHARS: Final = 128

# One line of the subset: its indent, its key and, for a leaf, its value ("" for a line that
# opens a mapping). Printable ASCII only (``[ -~]``: no tab, carriage return or other break),
# so each match is one whole line; a line that does not match makes the count of matches
# fall short of the count of lines. ``: `` and `` #`` inside values are counted on the whole
# text, not per character here (see `read_block`).
_LINE: Final = re.compile(
    rf"^( *)([{_FIRST}][A-Za-z0-9_.\-]{{0,{_KEY_CHARS - 1}}}):"
    rf"(?: ([{_FIRST}][ -~]*(?<![ :])))?\n",
    re.MULTILINE,
)
_LINE_BYTES: Final = re.compile(_LINE.pattern.encode("ascii"), re.MULTILINE)

# Levels of mappings below the top one: the general way writes a mapping at MAX_KEY_DEPTH
# segments as one flow value and refuses documents nested past MAX_DEPTH; stopping two
# levels short of either leaves no doubt.
_MAX_LEVELS: Final = min(MAX_KEY_DEPTH, MAX_DEPTH) - 2


@overload
def read_block(text: str, directory: str) -> dict[str, str] | None: ...
@overload
def read_block(text: bytes, directory: bytes) -> dict[bytes, bytes] | None: ...
def read_block(text: Any, directory: Any) -> Any:
    """`flatten_text(text, directory)`'s keys when ``text`` is in the subset the module
    documents, None to let the general way read it. The same with ``secrets``: the subset
    has no ``!secret`` tag.

    Given ASCII bytes (and the directory as bytes), the keys and values come as the UTF-8
    bytes of those texts, for callers that send them to etcd: 100,000 keys and values read
    that way took 0.30 s of CPU, 0.37 s read as text and encoded afterwards (medians of 9).
    """
    syntax: tuple[Any, Any, Any, Any] = (
        ("\n", ": ", " #", _LINE) if isinstance(text, str) else (b"\n", b": ", b" #", _LINE_BYTES)
    )
    line, separator, comment, pattern = syntax
    if not directory or not text.endswith(line) or len(text) > MAX_TEXT:
        return None
    lines = pattern.findall(text)
    count = len(lines)
    if (
        count != text.count(line)
        or 2 * count + 1 > MAX_NODES  # a key and a value or mapping per line, and the top
        or comment in text
        # The separator of each leaf is its line's only ": " (keys hold neither character).
        or text.count(separator) != sum(1 for _indent, _key, value in lines if value)
        or (len(text) > SURELY_SHORT and max(len(value) for _i, _k, value in lines) > SURELY_SHORT)
    ):
        return None
    typed_start = _TYPED_START if isinstance(text, str) else _TYPED_START_BYTES
    if typed_start.search(text) and not _all_read_as_text(lines):
        return None
    return _keys(lines, directory_prefix(directory))


def _all_read_as_text(lines: list[tuple[Any, Any, Any]]) -> bool:
    """Whether every key and value starting with a letter an implicit type starts with reads
    back as that text (``timeout`` does, ``off`` is a boolean)."""
    pieces = {
        piece
        for _indent, key, value in lines
        for piece in (key, value)
        if piece[:1] in _TYPED_FIRST
    }
    return all(
        reads_as_text(piece if isinstance(piece, str) else piece.decode("ascii"))
        for piece in pieces
    )


def _keys(lines: list[tuple[Any, Any, Any]], prefix: Any) -> Any:
    """The keys of the matched lines, or None for an indent, a missing mapping body or a key
    twice in one mapping.

    Line by line: grouping the lines in runs of one indent and joining keys to their parents
    in one call was slower (100,000 lines: 0.066 s of CPU at best, 0.045 s this way).
    """
    out: dict[Any, Any] = {}
    opened: list[Any] = []  # the paths of the mappings opened, to find a key given twice
    indent = prefix[:0]
    slash = prefix[-1:]
    indents = [indent]  # the indent of the entries of each open mapping, innermost last
    paths = [prefix]  # the key prefix of the entries of each open mapping
    path = prefix
    opening = False  # the last line opened a mapping, whose entries `path` prefixes
    leaves = 0
    for line_indent, key, value in lines:
        if line_indent != indent:
            if opening:
                if len(line_indent) <= len(indent) or len(indents) > _MAX_LEVELS:
                    return None  # the opened key holds null, or nesting nears the limits
                indents.append(line_indent)
                paths.append(path)
            else:
                # Back out to the open mapping at exactly this indent; a deeper line after a
                # leaf would continue its value over several lines.
                while len(indents) > 1 and len(indents[-1]) > len(line_indent):
                    indents.pop()
                    paths.pop()
                if indents[-1] != line_indent:
                    return None
                path = paths[-1]
            indent = line_indent
        elif opening:
            return None  # the opened key holds null
        if value:
            out[path + key] = value
            leaves += 1
            opening = False
        else:
            opened.append(path + key)
            path = path + key + slash
            opening = True
    if opening or len(out) != leaves:
        return None  # the last key holds null; or a leaf's key came twice in its mapping
    distinct = set(opened)
    if len(distinct) != len(opened) or not distinct.isdisjoint(out):
        return None  # a mapping's key came twice in its mapping
    return out
