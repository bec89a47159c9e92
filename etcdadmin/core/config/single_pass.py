"""A directory's keys written as its config file in one pass over the sorted keys.

`etcdadmin export` of 100,000 keys spent 0.55-0.75 s of its 1.7 s (2 quiet cores, CPython
3.11) building the general render's tree of branches and leaves, merging it onto an empty base
document, copying that and walking it again to write it. Onto an empty base, the sorted keys
already are the document in writing order: each key's path says which mapping lines open
before its own line, so the lines are written as the keys come, with no tree in between
(the same 100,000 keys: 0.15-0.2 s of CPU, same machine).

`render_keys` does that for the shapes almost every directory has, and returns None for anything
else, so that `etcdadmin.core.config.mapping.render` decides it the general way (and raises the
error that names the first bad key): a key with an empty segment or too many, a key that
also has keys below it, a segment that is a list index (a run of them makes a list), a value over
the budget of `etcdadmin.core.config.limits`, a value the typing rules refuse, or a text the
block writer leaves to PyYAML. The output is the general render's, byte for byte: the agent
compares the file it renders with the one on disk, and `tests/core/test_single_pass.py` checks
both ways of writing against each other on random directories.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from itertools import groupby, islice, repeat
from operator import itemgetter
from typing import Any, Final

from etcdadmin.core.config.block_writer import UNTYPED_LETTERS, BlockWriter, NotMine
from etcdadmin.core.config.documents import collector_paused
from etcdadmin.core.config.dumping import HAS_LIBYAML, UNSAFE_RAW, libyaml_scalar
from etcdadmin.core.config.limits import MAX_KEY_DEPTH, MAX_NODES, MAX_TEXT
from etcdadmin.core.config.overlay import INDEX_RE
from etcdadmin.core.config.values import (
    SURELY_SHORT,
    copy_document,
    decoded_together,
    typed_value,
)
from etcdadmin.core.errors import MappingError
from etcdadmin.core.tree.directories import directory_prefix

_DIGITS: Final = frozenset("0123456789")
_INDENT: Final = 2


def render_keys(keys: list[Any], texts: list[Any], directory: str) -> str | None:
    """The config file of ``keys`` (full keys, as text) holding ``texts`` (their raw values)
    on an empty base, or None when the general render must decide (see the module
    documentation). Keys outside ``directory`` are left out.

    Keys must be text; bytes keys give None. With no key below the directory, None as well
    (the general render then returns the base text).
    """
    if not HAS_LIBYAML:
        return None  # the general render writes through PyYAML's pure-Python emitter then
    prefix = directory_prefix(directory)
    start = len(prefix)
    try:
        # Keys read from etcd come sorted; then all lie below the directory when the first and
        # the last do (checking each key took 0.01 s per 100,000).
        in_order = all(map(operator.lt, keys, islice(keys, 1, None)))
        if not (
            in_order
            and keys
            and keys[0].startswith(prefix)
            and keys[-1].startswith(prefix)
            and keys[0] != prefix
        ):
            inside = [
                i for i, key in enumerate(keys) if key.startswith(prefix) and len(key) > start
            ]
            keys = [keys[i] for i in inside]
            texts = [texts[i] for i in inside]
    except TypeError:  # keys given as bytes
        return None
    if not keys:
        return None
    joined = "\n".join(keys)
    if not _plain_keys(joined):
        return None
    below = joined if not _below_slash(prefix) else "\n".join([k[start:] for k in keys])
    if _below_slash(below) or below.count("\n") != len(keys) - 1:
        # The general render orders keys by their tuples of segments. With the slashes read
        # as NUL (lower than any other character) the keys sort as those tuples do, as
        # strings, with no tuple per key. Without a character below the slash, etcd's byte
        # order already is that order.
        ordered = [key.replace("/", "\0") for key in keys]
        in_order = all(map(operator.lt, ordered, islice(ordered, 1, None)))
    else:
        ordered = keys
    if not in_order:
        order = sorted(range(len(ordered)), key=ordered.__getitem__)
        keys = [keys[i] for i in order]
        texts = [texts[i] for i in order]
    try:
        with collector_paused():
            document = _Document(start)
            document.write(keys, decoded_together(texts))
            return document.finish()
    except (_General, NotMine, MappingError, RecursionError):
        return None


class PagedRender:
    """`render_keys` of a directory read page by page in etcd's order, each page written as
    it arrives, so that the writing of one page overlaps etcd's reading of the next
    (`EtcdConnection.iter_plain_pages(ahead=True)`).

    `result` is the document `render_keys` writes of all the pages' keys, byte for byte, or
    None when the pages hold something it would have to reorder, leave out or leave to the
    general render; the caller then renders all the keys the usual way
    (`etcdadmin.core.config.mapping.render_listed`), which decides it and names any error.
    """

    def __init__(self, directory: str) -> None:
        self._prefix = directory_prefix(directory)
        self._document: _Document | None = _Document(len(self._prefix)) if HAS_LIBYAML else None
        self._last = ""  # the last key written, "" before the first

    def add(self, keys: Sequence[Any], texts: Sequence[Any]) -> None:
        """Writes one page: ``keys`` (full keys, as text, in etcd's order) holding ``texts``
        (their raw values)."""
        if self._document is None or not keys:
            return
        try:
            with collector_paused():
                self._add(self._document, keys, texts)
        except (_General, NotMine, MappingError, RecursionError, TypeError):
            self.abandon()

    def abandon(self) -> None:
        """Writes no more: `result` is None (the caller met a page this writer cannot take)."""
        self._document = None

    def result(self) -> str | None:
        if self._document is None or not self._last:
            return None
        try:
            return self._document.finish()
        except _General:
            return None

    def _add(self, document: _Document, keys: Sequence[Any], texts: Sequence[Any]) -> None:
        prefix, last = self._prefix, self._last
        # The checks `render_keys` makes on all the keys, made on this page and on the pair
        # it forms with the page before: order (by segments as well, see `render_keys`),
        # every key below the directory, no shape only the general render writes.
        in_order = all(map(operator.lt, keys, islice(keys, 1, None)))
        joined = "\n".join(keys)
        if not (
            in_order
            and last.replace("/", "\0") < keys[0].replace("/", "\0")
            and keys[0].startswith(prefix)
            and keys[-1].startswith(prefix)
            and keys[0] != prefix
            and _plain_keys(joined)
        ):
            raise _General
        start = len(prefix)
        below = joined if not _below_slash(prefix) else "\n".join([k[start:] for k in keys])
        if _below_slash(below) or below.count("\n") != len(keys) - 1:
            ordered = [key.replace("/", "\0") for key in keys]
            if not all(map(operator.lt, ordered, islice(ordered, 1, None))):
                raise _General  # only a sort of all the keys puts them in order
        document.write(list(keys), decoded_together(texts))
        self._last = keys[-1]
        # The page's lines as one text now, while etcd reads the next page, rather than all
        # the pages' lines at the end (100,000 lines: 5-7 ms after the last page otherwise).
        lines = document.lines.out
        lines[:] = ["".join(lines)]


def _plain_keys(joined: str) -> bool:
    """False when the keys (joined by line breaks) hold a shape the one pass leaves to the
    general render: a NUL (see `render_keys`), an empty segment (which the general render
    refuses), a key that starts or ends with a slash, an empty key.

    With the line breaks read as slashes, each of these but the NUL is a double slash: one
    search of a copy rather than three of the keys (0.3 ms less a page of 25,000 keys)."""
    return not (
        "\0" in joined
        or "//" in joined.replace("\n", "/")
        or joined[:1] == "/"
        or joined[-1:] == "/"
    )


# Characters that sort below the slash (`-`, `.`, space ...): with one in a key, byte order and
# the order of segments may differ (`a.b` < `a/c` but `a` < `a.b`). The line break, which
# joins the keys, is counted apart.
_BELOW_SLASH: Final = bytes(range(0x0A)) + bytes(range(0x0B, 0x2F))


def _below_slash(text: str) -> bool:
    """True when ``text`` holds a character that sorts below the slash, other than the line
    break. Deleted from its UTF-8 bytes, whose every byte below 0x80 is the character it
    encodes: 25,000 keys in 0.8 ms, where a regular expression's search of one character
    class took 4.8 ms (CPython 3.11, 2 cores)."""
    encoded = text.encode("utf-8", "surrogatepass")
    return len(encoded.translate(None, _BELOW_SLASH)) != len(encoded)


class _General(Exception):
    """The keys hold something only the general render decides."""


class _Document:
    """The document written so far, a run of sorted keys at a time (`write`), and its
    totals, checked against the budget when it is done (`finish`)."""

    def __init__(self, cut: int) -> None:
        self.lines = _Lines()
        self.cut = cut  # the length of the directory's prefix
        self.nodes = self.chars = 0
        self.previous = "\0"  # the last key of the last run written

    def write(self, keys: list[str], texts: Any) -> None:
        """The lines of ``keys`` (in segment order, after those written before, their
        segments checked not to be empty) holding their values' ``texts``, as `dump_block`
        writes the general render's document.

        Per run of keys under one parent rather than per key, and the checks on all keys and
        all values at once where string methods can make them (100,000 keys: 0.25 s of CPU
        one key at a time, through the same rules).
        """
        lines = self.lines
        plain = _all_plain(texts)
        if plain:
            self.nodes += len(texts)
            self.chars += sum(map(len, texts))
        name = lines.name
        names = lines.names
        start = 0
        previous = self.previous
        # Each key split where its leaf starts, a run of one parent at a time: no list of
        # 100,000 parents and leaves kept whole (0.01-0.02 s of CPU less, and fewer pages
        # touched).
        for parent, run in groupby(map(str.rpartition, keys, repeat("/")), key=itemgetter(0)):
            parts = list(run)
            end = start + len(parts)
            if parent == previous or parent.startswith(previous + "/"):
                # In the order of segments a key's first descendant comes right after it.
                raise _General  # a key holds a value and has keys below it
            pad = lines.open(parent[self.cut :])
            if plain:  # most directories: every line is `name: text`
                lines.out.extend(
                    [
                        f"{pad}{names.get(leaf) or name(leaf)}: {text}\n"
                        for (_parent, _slash, leaf), text in zip(
                            parts, texts[start:end], strict=True
                        )
                    ]
                )
            else:
                for index, (_parent, _slash, leaf) in enumerate(parts, start):
                    value_nodes, value_chars = lines.entry(pad, leaf, texts[index], keys[index])
                    self.nodes += value_nodes
                    self.chars += value_chars
            previous = keys[end - 1]
            start = end
        self.previous = previous

    def finish(self) -> str:
        if self.nodes > MAX_NODES or self.chars > MAX_TEXT:
            raise _General
        written = "".join(self.lines.out)
        if any(char in written for char in UNSAFE_RAW):
            raise _General  # written by PyYAML's pure-Python emitter (see `dump_block`)
        return written


# A value after the first that does not start with a letter no implicit type starts with (one
# search for a literal line break and a class: 3 ms for 100,000 values, where an alternation of
# "start or line break" took 40 ms).
_TYPED_START: Final = re.compile(f"\n[^{''.join(sorted(UNTYPED_LETTERS))}]")


def _all_plain(texts: Any) -> bool:
    """True when every value is one line of text that the typing rules keep as text and the
    block writer writes plain, unchanged: `BlockWriter._plain_ascii`'s rules checked on all the
    texts joined (100,000 values: a few ms, against 0.08 s value by value)."""
    if not texts or not all(texts):
        return False
    try:
        joined = "\n".join(texts)
    except TypeError:  # bytes that are not UTF-8 text (`decoded_together` left them)
        return False
    return (
        joined.count("\n") == len(texts) - 1
        and (len(joined) <= SURELY_SHORT or max(map(len, texts)) <= SURELY_SHORT)
        and joined.isascii()
        and "".join(texts).isprintable()
        # A search for one character is a scan of memory (memchr); one for two, slower: the
        # pairs are looked for only where their first character is found at all.
        and (":" not in joined or (": " not in joined and ":\n" not in joined))
        and (" " not in joined or (" #" not in joined and " \n" not in joined))
        and texts[0][0] in UNTYPED_LETTERS
        and _TYPED_START.search(joined) is None
        and joined[-1] not in " :"
    )


class _Lines:
    """The lines written so far, the mappings open, and how each name and text is written."""

    def __init__(self) -> None:
        self.writer = BlockWriter(libyaml_scalar)
        self.out = self.writer.out
        self.names: dict[str, str] = {}
        self.kept: list[Any] = []
        self.opened: list[str] = []  # the segments of the mapping the last key sits in
        self.pads = [" " * (_INDENT * depth) for depth in range(MAX_KEY_DEPTH + 1)]

    def open(self, parent: str) -> str:
        """Writes the lines of the mappings between the last key's and ``parent``; returns the
        indent of ``parent``'s entries."""
        segments = parent.split("/") if parent else []
        if len(segments) >= MAX_KEY_DEPTH:
            raise _General  # the key has more segments than the general render accepts
        same = 0
        for mine, theirs in zip(segments, self.opened, strict=False):
            if mine != theirs:
                break
            same += 1
        for level in range(same, len(segments)):
            self.out.append(f"{self.pads[level]}{self.name(segments[level])}:\n")
        self.opened = segments
        return self.pads[len(segments)]

    def name(self, segment: str) -> str:
        """A path segment as the key of its mapping line; remembered."""
        if segment[:1] in _DIGITS and INDEX_RE.fullmatch(segment):
            raise _General  # an index: a run of them from 0 makes a list
        written = self.names[segment] = self.writer.key(segment)
        return written

    def entry(self, pad: str, leaf: str, text: Any, key: str) -> tuple[int, int]:
        """Writes one key's line (or lines); returns its value's nodes and characters."""
        name = self.names.get(leaf) or self.name(leaf)
        value, nodes, chars = typed_value(text, key)
        if type(value) is str:
            written = self.writer.scalars.get(value) or self.writer.text(value)
            if type(written) is str:
                self.out.append(f"{pad}{name}: {written}\n")
                return nodes, chars
        elif type(value) is dict or type(value) is list:
            value = copy_document(value)  # aliases inside one value are written out, not anchored
            # Kept alive until the end: the writer tells a value reached twice by its id, and
            # a freed value's id may be given to the next one.
            self.kept.append(value)
        self.writer.mapping({leaf: value}, len(pad), pad)
        return nodes, chars
