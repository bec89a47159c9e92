"""How config documents and flow values are written as YAML text.

`dump_block` writes a whole config file (block style, multi-line text as ``|`` blocks) and
`dump_flow` one flow value (``{a: 1}``, on one line). Both produce exactly what PyYAML's
SafeDumper writes with the options below, apart from the characters PyYAML would write raw
and then misread, which are escaped (`_SafeTextDumper`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import yaml

from etcdadmin.core.config.block_writer import write_block
from etcdadmin.core.config.documents import FastScalarResolver, collector_paused
from etcdadmin.core.errors import MappingError

# Wide enough that PyYAML never folds a long value over several lines.
YAML_WIDTH: Final = 1 << 30

_LINE_BREAKS: Final = "\n\r\x85\u2028\u2029"

UNSAFE_RAW: Final = "\x85\u2028\u2029\ufeff"

_STR_TAG: Final = "tag:yaml.org,2002:str"
_INT_TAG: Final = "tag:yaml.org,2002:int"
_BOOL_TAG: Final = "tag:yaml.org,2002:bool"
_NULL_TAG: Final = "tag:yaml.org,2002:null"
_MAP_TAG: Final = "tag:yaml.org,2002:map"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"

_DUMP_OPTIONS: Final[dict[str, Any]] = {
    "sort_keys": False,
    "allow_unicode": True,
    "width": YAML_WIDTH,
}


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
        if not any(char in UNSAFE_RAW for char in text):
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


def _block_str_style(data: str) -> str | None:
    return "|" if "\n" in data else None


def _flow_str_style(data: str) -> str | None:
    return '"' if any(char in _LINE_BREAKS for char in data) else None


def _represent_block_str(dumper: yaml.SafeDumper, data: str) -> Any:
    return dumper.represent_scalar(_STR_TAG, data, style=_block_str_style(data))


def _represent_flow_str(dumper: yaml.SafeDumper, data: str) -> Any:
    return dumper.represent_scalar(_STR_TAG, data, style=_flow_str_style(data))


BlockDumper.add_representer(str, _represent_block_str)
_FlowDumper.add_representer(str, _represent_flow_str)

# libyaml's emitter, when PyYAML was built with it: a 100,000-key config took 12.6 s to write
# with the pure-Python one against 0.64 s for `etcdctl get --prefix -w json` of the same keys.
_C_DUMPER_BASE: Final = getattr(yaml, "CSafeDumper", None)
# Whether `dump_block` writes through `write_block` (and libyaml for the odd scalar).
HAS_LIBYAML: Final = _C_DUMPER_BASE is not None
if _C_DUMPER_BASE is not None:

    class _CBlockDumper(FastScalarResolver, _C_DUMPER_BASE):  # type: ignore[valid-type,misc]
        """BlockDumper's output through libyaml, for documents without unsafe raw text."""

    _CBlockDumper.add_representer(str, _represent_block_str)


def dump_block(document: Any) -> str:
    """A config document as block YAML, as `BlockDumper` writes it.

    Mappings, lists, text, numbers, booleans and null are written directly, as libyaml would
    write them (`etcdadmin.core.config.block_writer`: 0.23 s of CPU for a 100,000-value config
    against 1.22 s through PyYAML); anything else by `dump_block_by_pyyaml`.
    """
    with collector_paused():
        if _C_DUMPER_BASE is not None:
            text = write_block(document, libyaml_scalar)
            if text is not None and not any(char in text for char in UNSAFE_RAW):
                return text
        return dump_block_by_pyyaml(document)


def dump_block_by_pyyaml(document: Any) -> str:
    """`dump_block` through PyYAML: libyaml's emitter when PyYAML was built with it.

    libyaml's emitter cannot be taught `BlockDumper`'s escaping of NEL, U+2028, U+2029 and the
    BOM (it writes them raw, and YAML readers then take the first three for line breaks), so a
    document whose libyaml output holds one of them is written again by the pure-Python emitter.
    Checking the output costs a scan of one string; walking the document cost 0.3 s per
    100,000 values.
    """
    with collector_paused():
        if _C_DUMPER_BASE is not None:
            text = _dump(document, _CBlockDumper, _block_str_style, flow=False)
            if not any(char in text for char in UNSAFE_RAW):
                return text
        return _dump(document, BlockDumper, _block_str_style, flow=False)


def libyaml_scalar(text: str) -> str:
    """One text as the only content of a document, as `dump_block` writes it through libyaml."""
    return _dump(text, _CBlockDumper, _block_str_style, flow=False)


def dump_flow(value: dict[Any, Any] | list[Any]) -> str:
    """A mapping or list as one flow YAML value on one line (``{a: 1}``, ``[x, y]``)."""
    return _dump(value, _FlowDumper, _flow_str_style, flow=True).strip()


def _dump(
    document: Any, dumper_class: Any, str_style: Callable[[str], str | None], *, flow: bool
) -> str:
    """What ``yaml.dump(document, Dumper=dumper_class, ...)`` writes, built more directly.

    PyYAML's representer was most of writing a 100,000-key config (a dispatch on the type's
    MRO, an alias check and a bookkeeping entry for every scalar, with the collector walking
    the growing graph): 1.8-2.9 s of CPU, 1.0-1.5 s this way (best of 5, 2 shared cores).
    The node graph of the plain types a config is made of (text, integers, booleans, null,
    mappings, lists) is built here as the representer would build it; any other value (floats,
    dates, sets, subclasses) is handed to the representer itself, which shares its table of
    nodes already made, so aliases come out as PyYAML writes them. libyaml then serializes.
    """
    stream = io.StringIO()
    dumper = dumper_class(stream, default_flow_style=flow, **_DUMP_OPTIONS)
    try:
        dumper.open()
        dumper.serialize(_NodeBuilder(dumper, str_style, flow).build(document))
        dumper.close()
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):
        raise MappingError(
            "the config holds something YAML cannot write; use only text, numbers, "
            "true/false, null, mappings and lists"
        ) from None
    finally:
        dumper.dispose()
    return stream.getvalue()


class _NodeBuilder:
    """Builds the node graph `_dump` describes; a class rather than a closure because a
    recursive closure is a reference cycle, which kept every node alive until the next full
    collection (seen under the profiler: 0.9 s of collection after writing a 100,000-key
    config)."""

    def __init__(self, dumper: Any, str_style: Callable[[str], str | None], flow: bool) -> None:
        self.dumper = dumper
        self.represented: dict[int, Any] = dumper.represented_objects
        self.keeper: list[Any] = dumper.object_keeper
        self.str_style = str_style
        self.flow = flow

    def build(self, data: Any) -> Any:
        kind = type(data)
        if kind is str:
            return yaml.ScalarNode(_STR_TAG, data, style=self.str_style(data))
        if kind is dict or kind is list:
            node = self.represented.get(id(data))
            if node is not None:
                return node
            self.keeper.append(data)
            build = self.build
            if kind is dict:
                pairs: list[tuple[Any, Any]] = []
                node = yaml.MappingNode(_MAP_TAG, pairs, flow_style=self.flow)
                self.represented[id(data)] = node
                pairs.extend([(build(key), build(item)) for key, item in data.items()])
            else:
                items: list[Any] = []
                node = yaml.SequenceNode(_SEQ_TAG, items, flow_style=self.flow)
                self.represented[id(data)] = node
                items.extend([build(item) for item in data])
            return node
        if kind is bool:
            return yaml.ScalarNode(_BOOL_TAG, "true" if data else "false")
        if kind is int:
            return yaml.ScalarNode(_INT_TAG, str(data))
        if data is None:
            return yaml.ScalarNode(_NULL_TAG, "null")
        return self.dumper.represent_data(data)
