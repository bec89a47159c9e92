"""The one way YAML text becomes Python objects: PyYAML's safe types, within the limits.

Every YAML document the project reads from an operator or from etcd goes through here: a
watcher agent's base config and the values under its directory, the client's Import YAML and
the editor's YAML check, the CLI's ``apply -f``. `load_yaml` composes the text into PyYAML's
node graph (where an alias is one more reference to a node), measures it against
`etcdadmin.core.config.limits` and only then builds Python objects; `read_quoted` reads one
quoted YAML scalar. Both use libyaml's parser where PyYAML was built with it.

Errors are `MappingError`s whose messages give a line and column and never quote the text:
PyYAML's own problem strings can quote input (a tag, a character), and the input may be a
secret.

A value tagged ``!secret`` (``password: !secret hunter2``) is read only where the caller asks
for it (``secrets=True``: the CLI's ``apply -f``, which encrypts such values before they reach
etcd); it comes back as a `SecretMark` around the value the untagged scalar would give. Nothing
else reads the tag: etcd holds envelopes, never the tag, so the agent never meets it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import yaml
from yaml.constructor import SafeConstructor

from etcdadmin.core.config.limits import (
    MAX_INT_DIGITS,
    Extent,
    LimitExceeded,
    int_too_long,
    measure,
)
from etcdadmin.core.errors import MappingError

# libyaml's parser through PyYAML (CSafeLoader: the same resolver and constructor as
# safe_load, so the same document) where PyYAML was built with it, the pure-Python one otherwise.
# Measured on a 100,000-leaf config (2.8 MB, 2 cores): safe_load 15.8 s, CSafeLoader 3.4 s;
# scanning one 1.4 MB double-quoted value: 1.6 s pure Python, 0.02 s libyaml.
_BASE_LOADER: Final[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR_TAG: Final = "tag:yaml.org,2002:str"
_MAP_TAG: Final = "tag:yaml.org,2002:map"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"
_INT_TAG: Final = "tag:yaml.org,2002:int"
SECRET_TAG: Final = "!secret"

# What can escape PyYAML's scanner, parser and constructors on hostile input besides YAMLError:
# out-of-range escapes (OverflowError, ValueError), explicit tags on scalars that are not of
# the tag's type (`!!bool x`: KeyError, `!!timestamp x`: AttributeError, `!!int x`: ValueError),
# and nesting past Python's stack in the pure-Python composer (RecursionError).
_PYYAML_FAILURES: Final = (
    yaml.YAMLError,
    ValueError,
    TypeError,
    OverflowError,
    KeyError,
    IndexError,
    AttributeError,
    RecursionError,
    UnicodeError,
)


@dataclass(frozen=True)
class SecretMark:
    """A value the config file marks ``!secret``: `value` is what it would be untagged."""

    value: Any

    def __repr__(self) -> str:
        return "SecretMark(...)"  # never the value: reprs end up in logs and tracebacks


class SecretText(str):
    """The etcd value text of a `SecretMark`, told apart from plain values by its type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SecretText(...)"


class FastScalarResolver:
    """PyYAML's `Resolver.resolve` for scalars, with the table of regular expressions by first
    character merged once per class instead of on every call.

    libyaml's parser and emitter call back into Python twice per scalar to resolve its implicit
    type; PyYAML concatenates two lists each time. Measured: the 400,000 calls made writing a
    100,000-key config took 0.51 s, 0.25 s this way. Same answers: the same expressions in
    the same order. Classes with path resolvers (this project registers none) keep PyYAML's.
    """

    _scalar_resolvers: dict[str, list[tuple[str, Any]]]
    _wildcard_resolvers: list[tuple[str, Any]]
    _scalars_fast: bool

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        implicit: dict[Any, list[tuple[str, Any]]] = cls.yaml_implicit_resolvers  # type: ignore[attr-defined]
        wildcard = list(implicit.get(None, []))
        cls._wildcard_resolvers = wildcard
        cls._scalar_resolvers = {
            first: [*resolvers, *wildcard]
            for first, resolvers in implicit.items()
            if first is not None
        }
        cls._scalars_fast = not cls.yaml_path_resolvers  # type: ignore[attr-defined]

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and self._scalars_fast:
            if implicit[0]:
                for tag, expression in self._scalar_resolvers.get(
                    value[:1], self._wildcard_resolvers
                ):
                    if expression.match(value):
                        return tag
            return self.DEFAULT_SCALAR_TAG  # type: ignore[attr-defined]
        return super().resolve(kind, value, implicit)  # type: ignore[misc]


class InvalidYAML(MappingError):
    """The text is not valid YAML, or a scalar is not of the type its tag names.

    ``line`` and ``column`` (1-based) say where when known; ``position`` is the same as
    `` (line L, column C)`` or empty. The message holds nothing else of the input; callers
    usually rephrase it in their own words.
    """

    def __init__(self, mark: Any, key: str | None = None) -> None:
        self.line: int | None = mark.line + 1 if mark is not None else None
        self.column: int | None = mark.column + 1 if mark is not None else None
        self.position = f" (line {self.line}, column {self.column})" if mark is not None else ""
        super().__init__(f"not valid YAML{self.position}", key=key)


def _int_within_limit(loader: SafeConstructor, node: yaml.ScalarNode) -> int:
    """YAML's int constructor, refusing integers past MAX_INT_DIGITS before and after."""
    if sum(char.isdigit() for char in node.value) > MAX_INT_DIGITS:
        raise _TooLongInteger(node)
    value = int(SafeConstructor.construct_yaml_int(loader, node))
    if int_too_long(value):
        raise _TooLongInteger(node)
    return value


class _TooLongInteger(Exception):
    def __init__(self, node: yaml.Node) -> None:
        super().__init__()
        self.node = node


class _DocumentLoader(FastScalarResolver, _BASE_LOADER):  # type: ignore[misc]
    """safe_load's loader, building plain text, mappings and lists without its generic machinery.

    PyYAML's constructor goes through a generator and several dispatches per node; for the
    nodes a config is made of (text, mappings with text keys, lists) this builds the same
    objects directly and hands every other node (numbers, booleans, merge keys, non-text keys,
    explicit tags) to PyYAML's own constructor. Hand-written because the generic path was a
    third of loading a 100,000-leaf config (measured: 1.6 s of CPU, 1.0 s with this). A node
    reached twice (an alias) gives the same object, as in PyYAML. The recursion is bounded:
    `measure` has refused documents nested deeper than MAX_DEPTH before this runs.
    """

    # Whether `!secret` is read (see `SecretMark`); refused with a message otherwise.
    secrets = False

    def construct_document(self, node: yaml.Node) -> Any:
        built: dict[int, Any] = {}
        try:
            return self._build(node, built)
        finally:
            self.constructed_objects: dict[Any, Any] = {}
            self.recursive_objects: dict[Any, Any] = {}
            self.deep_construct = False

    def _build(self, node: yaml.Node, built: dict[int, Any]) -> Any:
        kind, tag = type(node), node.tag
        if kind is yaml.ScalarNode and tag == _STR_TAG:
            return node.value
        if id(node) in built:
            return built[id(node)]
        if kind is yaml.MappingNode and tag == _MAP_TAG:
            pairs = node.value
            if all(type(k) is yaml.ScalarNode and k.tag == _STR_TAG for k, _ in pairs):
                mapping: dict[Any, Any] = {}
                built[id(node)] = mapping
                for key_node, value_node in pairs:
                    mapping[key_node.value] = self._build(value_node, built)
                return mapping
        elif kind is yaml.SequenceNode and tag == _SEQ_TAG:
            sequence: list[Any] = []
            built[id(node)] = sequence
            sequence.extend(self._build(item, built) for item in node.value)
            return sequence
        if tag == SECRET_TAG:
            return self._secret(node, built)
        try:
            value = self.construct_object(node, deep=True)
        except _PYYAML_FAILURES as exc:
            raise _NodeFailed(node) from exc
        built[id(node)] = value
        return value

    def _secret(self, node: yaml.Node, built: dict[int, Any]) -> SecretMark:
        """A `!secret` node: the value it would be without the tag, marked."""
        if not self.secrets:
            raise _SecretRefused(node)
        if type(node) is yaml.ScalarNode:
            # Untagged typing: `!secret 5000` is the number, `!secret "5000"` the text.
            plain = not node.style  # libyaml gives "" for plain, PyYAML None
            tag = self.resolve(yaml.ScalarNode, node.value, (True, False)) if plain else _STR_TAG
            inner: yaml.Node = yaml.ScalarNode(tag, node.value, node.start_mark, node.end_mark)
        elif type(node) is yaml.MappingNode:
            inner = yaml.MappingNode(_MAP_TAG, node.value, node.start_mark, node.end_mark)
        else:
            inner = yaml.SequenceNode(_SEQ_TAG, node.value, node.start_mark, node.end_mark)
        # `built` is keyed by id(): the stand-in node must outlive the document's construction
        # or a later one could reuse its id and be taken for it.
        built.setdefault(_KEPT, []).append(inner)
        value = self._build(inner, built)
        if _holds_mark(value):
            raise _NestedSecret(node)
        mark = SecretMark(value)
        built[id(node)] = mark
        return mark


# A key of `built` no id() can be: the stand-in nodes of `!secret` values, kept alive there.
_KEPT: Final = -1


def _holds_mark(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_mark(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_mark(item) for item in value)
    return isinstance(value, SecretMark)


class _SecretDocumentLoader(_DocumentLoader):
    secrets = True


_DocumentLoader.add_constructor(_INT_TAG, _int_within_limit)


class _SecretRefused(Exception):
    def __init__(self, node: yaml.Node) -> None:
        super().__init__()
        self.node = node


class _NestedSecret(_SecretRefused):
    pass


class _NodeFailed(Exception):
    """A node PyYAML's constructor refused; carries the node for its position."""

    def __init__(self, node: yaml.Node) -> None:
        super().__init__()
        self.node = node


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large acyclic structure is built.

    Each full pass walks every object made so far, so building 100,000+ objects triggers
    passes whose cost grows with the structure: measured on the 100,000-leaf config above,
    loading it took 3.4 s with the collector running and 1.4 s paused. Nested and concurrent
    pauses are safe: the collector is only re-enabled by whoever found it enabled.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_yaml(
    text: str, what: str = "the document", key: str | None = None, *, secrets: bool = False
) -> Any:
    """One YAML document as PyYAML's safe_load reads it (YAML 1.1 types, no Python objects).

    ``what`` names the document in messages (``etcd key `x`: the value``) and ``key`` is put on
    the errors. With ``secrets``, values tagged ``!secret`` come back as `SecretMark`s; without,
    the tag is refused. Raises `InvalidYAML`, `LimitExceeded` (see
    `etcdadmin.core.config.limits`) or `MappingError` (a recursive alias, a refused `!secret`);
    nothing else, whatever the text.
    """
    return load_yaml_measured(text, what, key, secrets=secrets)[0]


def load_yaml_measured(
    text: str, what: str = "the document", key: str | None = None, *, secrets: bool = False
) -> tuple[Any, Extent]:
    """`load_yaml`, with the document's expanded size (for budgets spanning several documents)."""
    with collector_paused():
        # Everything but the document is released before the collector runs again: objects
        # made while it was paused and still alive are all walked by its next pass.
        return _load(text, what, key, secrets)


def _load(text: str, what: str, key: str | None, secrets: bool) -> tuple[Any, Extent]:
    loader = (_SecretDocumentLoader if secrets else _DocumentLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, Extent(0, 0)
        extent = measure(node, what)
        return loader.construct_document(node), extent
    except LimitExceeded as exc:
        raise LimitExceeded(str(exc), key=key) from None
    except MappingError as exc:
        raise MappingError(str(exc), key=key) from None
    except _TooLongInteger as exc:
        raise LimitExceeded(
            f"{what} holds an integer of more than {MAX_INT_DIGITS:,} digits (the limit "
            f"MAX_INT_DIGITS){node_position(exc.node)}; quote it to keep it as text",
            key=key,
        ) from None
    except _NestedSecret as exc:
        raise MappingError(
            f"{what}: a `!secret` value holds another `!secret`{node_position(exc.node)}; mark "
            "either the whole value or the values inside it",
            key=key,
        ) from None
    except _SecretRefused as exc:
        raise MappingError(
            f"{what}: `!secret`{node_position(exc.node)} marks a value to encrypt, which only "
            "`etcdadmin apply -f` does; write the file with `etcdadmin apply` or drop the tag",
            key=key,
        ) from None
    except _NodeFailed as exc:
        raise InvalidYAML(exc.node.start_mark, key=key) from None
    except _PYYAML_FAILURES as exc:
        raise InvalidYAML(_mark(exc), key=key) from None
    finally:
        loader.dispose()


def read_quoted(text: str) -> str | None:
    """The string ``text`` stands for when it is exactly one quoted YAML scalar, else None.

    Raises `InvalidYAML` when the scanner refuses the text (an unknown or out-of-range
    escape, an unterminated quote).
    """
    loader = _BASE_LOADER(text)
    try:
        tokens: list[Any] = []
        while len(tokens) < 4 and loader.check_token():
            tokens.append(loader.get_token())
    except _PYYAML_FAILURES as exc:
        raise InvalidYAML(_mark(exc)) from None
    finally:
        loader.dispose()
    if (
        len(tokens) == 3
        and isinstance(tokens[1], yaml.ScalarToken)
        and not tokens[1].plain
        and tokens[1].start_mark.index == 0
        and tokens[1].end_mark.index == len(text)
    ):
        return str(tokens[1].value)
    return None


def _mark(exc: BaseException) -> Any:
    """Where a YAML error is (PyYAML's mark, never its problem text, which can quote input)."""
    return getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)


def node_position(node: yaml.Node) -> str:
    mark = node.start_mark
    if mark is None:
        return ""
    return f" (line {mark.line + 1}, column {mark.column + 1})"
