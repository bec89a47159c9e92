r"""How the keys under an etcd directory become a service's YAML config file, and back.

A watcher agent watches one etcd *directory* (a key prefix such as ``hack/``) and renders the
service's config file from two parts: a *base* YAML document (the config shipped with the
service) overlaid by the keys found under the directory. The rules follow the environment
overrides of the Docker registry (``REGISTRY_STORAGE_SWIFT_PASSWORD=...`` sets
``storage.swift.password``): one level per path segment, list elements by index, and a value set
on a node replaces everything the base had below that node.

Keys and paths
==============

The part of a key after the directory is split on ``/``; each piece is one level of the config::

    directory hack/
    hack/storage/swift/password          ->  storage: {swift: {password: ...}}
    hack/http/headers/X-Frame-Options/0  ->  http: {headers: {X-Frame-Options: [...]}}, index 0

* The directory may be written with or without its trailing slash: ``hack`` and ``hack/`` are
  the same directory. Its keys are ``hack/...``; ``hackers/x`` is *not* inside ``hack``.
* A leading slash is part of the name. Directory ``hack`` holds ``hack/...`` only, directory
  ``/hack`` holds ``/hack/...`` only.
* Keys outside the directory, and a key named exactly like the directory (``hack`` or
  ``hack/``), are ignored.
* Every segment must be non-empty: ``hack/a//b`` and ``hack/a/`` are errors (rename the key).
* A key cannot hold a value and also have keys below it: ``hack/http/addr`` together with
  ``hack/http/addr/x`` is an error naming both keys; delete one of them.

Examples (directory ``hack/``)::

    etcdctl put hack/http/addr :5000                    # text ":5000"
    etcdctl put hack/storage/swift/chunksize 5242880    # integer
    etcdctl put hack/storage/swift/password 'p@ss: w*rd&!'   # text, exactly as written
    etcdctl put hack/redis/password '"5000"'            # text "5000", not a number
    etcdctl put hack/http/headers/X-Content-Type-Options '[nosniff]'   # list
    etcdctl put hack/notifications/endpoints/0/url https://hooks.example.com/registry
    etcdctl put hack/http/tls/clientcas/1 /etc/registry/ca2.pem   # replace or append element 1

Values
======

A value is the etcd value decoded as UTF-8 (bytes that are not UTF-8 are an error naming the
key). Its type is decided by these rules, the first that applies wins:

1. **Quoted.** A value whose very first and very last characters are the same quote character
   (``"..."`` or ``'...'``, at least two characters, no spaces around) is a YAML quoted string
   and always a *string*. This is
   how to force a string: ``"5000"`` is the text 5000, not a number; ``'true'`` is the text
   true. Inside double quotes YAML escapes work (``\n``, ``\t``, ``\"``, ``\\``,
   ``\u00e9``); inside single quotes write a quote twice (``'it''s'``). A raw line break inside
   quotes is folded into a space, as YAML does: use ``\n``. A value that starts and ends with a
   quote but is not one valid quoted string (``"a" and "b"``) is an error. So a password that
   itself begins and ends with ``"`` must be wrapped once more: ``'"pw"'`` is the text ``"pw"``.
2. **Flow YAML.** A value whose first character is ``{`` or ``[`` is parsed as YAML and must be
   a mapping or a list: ``{user: admin, port: 22}``, ``[nosniff]``, ``[1, 2]``. Invalid YAML is
   an error. To store a text starting with ``{`` or ``[``, quote it.
3. **Multi-line.** A value containing a line break is parsed as a YAML block document only if its
   first non-blank line looks like a block mapping entry (``name:`` or ``name: value``; regular
   expression ``^[^\s#:][^:]*:(\s|$)``) or a block list item (``- item`` or a lone ``-``); it
   must then be valid YAML and give a mapping or a list. Any other multi-line value, such as a
   PEM certificate, is kept as a string byte for byte.
4. **Single-line scalars** (the whole value must match; digits are ASCII ``0-9``):

   * ``-?(0|[1-9][0-9]*)`` is an integer: ``5000``, ``-1``, ``0`` (at most 4,300 digits, the
     limit MAX_INT_DIGITS; a longer one is an error: quote it to store it as text);
   * ``-?(0|[1-9][0-9]*)\.[0-9]+([eE][-+]?[0-9]+)?`` is a float: ``1.5``, ``0.1``, ``2.0e-3``;
   * ``true``, ``false``, ``True``, ``False``, ``TRUE``, ``FALSE`` are booleans;
   * ``null`` and ``~`` are null (no value).

5. **Everything else is the text exactly as written**, with no YAML interpretation at all:
   ``p@ss: w*rd&!``, ``:5000``, ``0755``, ``yes``, ``on``, ``1e3``, ``0x10``, ``.inf``,
   ``NULL``, a number with a leading or trailing space, and the empty value all stay strings.
   Passwords may contain any character; only the forms listed above are ever changed.

Writing values (:func:`format_value`) is the exact inverse: numbers, booleans and null are
written canonically (``5000``, ``1.5``, ``true``, ``null``); a string is written as it is unless
these rules would read it back as something else (``5000``, ``true``, ``{x``, ``"q"``, a
multi-line text starting with ``name: ...``), in which case it is written as a YAML
double-quoted string on one line (escapes such as ``\n`` and ``\"``; other non-ASCII characters
are kept readable); a mapping or list is written as one flow YAML value (``{}``, ``[]``,
``{a: 1}``). ``parse_value(format_value(v)) == v`` holds for every value the rules can express.
Floats that are infinite or NaN cannot be expressed as a plain value (``.inf`` reads back as
text); put them inside a flow mapping or list.

Merging onto the base config
============================

The keys are first collected into a tree, then merged onto a copy of the base (the base is
never modified). Walking down a key's path, at each level:

* **Mapping in the base:** the segment names a key of that mapping (base keys that are not
  strings match their YAML text: ``1``, ``2.5``, ``true``, ``null``; a string key wins over a
  non-string key with the same text). A missing key is created; new keys
  are added after the existing ones, in sorted order.
* **List in the base:** the segment must be an index. ``0`` to ``n-1`` replace (or descend into)
  an element, ``n`` appends one, and ``n+1`` and so on append further elements as long as
  there is no gap. Any other segment is an error that names the key and the list's length.
* **Nothing there (missing or null):** a new mapping is created, except when the keys below this
  point are exactly ``0``, ``1``, ... ``n-1``: then a new list is created.
* **Scalar in the base** (text, number, boolean) where the key needs to go further down: error
  ("path goes through a scalar value"); set the parent key instead or remove the scalar from the
  base.

The value of a key **replaces** whatever the base holds at that path, including a whole
subtree: ``hack/storage`` = ``{filesystem: {rootdirectory: /var/lib/registry}}`` drops every
other ``storage`` setting of the base. A mapping value is not merged into the base mapping; to
change one setting, set the key of that one setting. Deleting a key brings the base value
back. Paths where the base uses a YAML alias are copied, so a key changes only the place it
names.

The result does not depend on the order in which keys were read: keys are processed in sorted
order. :func:`render` writes the result as YAML (UTF-8, keys in document order, no line
folding, multi-line strings as ``|`` blocks). When no key lies below the directory, it returns
the base text unchanged, comments and formatting included.

The reverse mapping
===================

:func:`flatten` turns an existing config into keys: every leaf becomes
``directory/seg/seg`` = ``format_value(leaf)``, list elements use their index, empty mappings
and lists become ``{}`` and ``[]``. A mapping whose keys cannot be path segments (a key that
contains ``/``, an empty key, a key that is not a string, or keys exactly ``"0"`` ... ``"n-1"``
which would come back as a list), or that directly holds a value no plain etcd value can express
(an infinite float, a date), is written as one flow YAML value at its own path; likewise a list
directly holding such a value. The top level itself must be a mapping whose keys are non-empty
text without ``/`` and whose values are plain values, mappings or lists (it cannot be written as
one value: a key named like the directory is ignored). Rendering the keys of :func:`flatten`
onto an empty base gives the original config back, and writing them over that same config
changes nothing.

Errors
======

Every problem raises :class:`~etcdadmin.core.errors.MappingError`, whatever the keys, values and
base config; its ``key`` attribute is the etcd key at fault (``None`` for problems of the base
config). Messages name keys and config paths, never values: values may be secrets. Parser
errors are reported by line and column only. Keys are shown as the client's tree shows them:
bytes that are not UTF-8, control characters and backslashes as ``\xNN`` / ``\\`` escapes. A
top-level config key :func:`flatten` refuses is named by its first 80 characters and ``…``
when longer, and by its YAML spelling (``null``, ``true``, ``1.5``) when it is a null, boolean
or number.

Limits
======

YAML is read by :mod:`etcdadmin.core.config.documents`, which measures every document and
value before building it. Past a limit the error (:class:`~etcdadmin.core.config.limits.
LimitExceeded`) names the key and the limit (see :mod:`etcdadmin.core.config.limits`):
1,000,000 YAML nodes and 64 Mi characters after alias expansion (summed over the base config
and all the values of a render), 64 levels of nesting, 64 path segments per key, integers of
4,300 digits and values of 1.5 MiB.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any, Final

from etcdadmin.core.config.block_reader import read_block
from etcdadmin.core.config.documents import (
    InvalidYAML,
    SecretMark,
    SecretText,
    collector_paused,
    load_yaml_measured,
)
from etcdadmin.core.config.dumping import dump_block
from etcdadmin.core.config.limits import MAX_KEY_DEPTH
from etcdadmin.core.config.overlay import (
    build_tree,
    empty_segment,
    is_index_run,
    merge,
    overlay,
    too_many_segments,
)
from etcdadmin.core.config.single_pass import render_keys
from etcdadmin.core.config.values import copy_document, display_key, format_value, parse_value
from etcdadmin.core.errors import MappingError
from etcdadmin.core.tree.directories import directory_prefix

__all__ = [
    "flatten",
    "flatten_text",
    "format_value",
    "overlay",
    "parse_value",
    "render",
    "render_listed",
    "split_key",
]


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def split_key(key: str, directory: str) -> tuple[str, ...]:
    """The path segments of ``key`` below ``directory``; ``()`` for the directory key itself.

    Raises :class:`MappingError` for a key outside the directory, with an empty segment or
    with more than MAX_KEY_DEPTH segments.
    """
    prefix = directory_prefix(directory)
    if key in (prefix, prefix[:-1]):
        return ()
    if not key.startswith(prefix):
        name = display_key(key)
        raise MappingError(
            f"etcd key `{name}` is not inside the directory `{directory}`; keys of this "
            f"directory start with `{prefix}`",
            key=name,
        )
    segments = tuple(key[len(prefix) :].split("/"))
    if "" in segments:
        raise empty_segment(display_key(key))
    if len(segments) > MAX_KEY_DEPTH:
        raise too_many_segments(display_key(key))
    return segments


# --------------------------------------------------------------------------------------------
# Render
# --------------------------------------------------------------------------------------------


def render(base_text: str, entries: Mapping[Any, str | bytes], directory: str) -> bytes:
    """The config file: ``base_text`` (YAML) overlaid by ``entries``, as UTF-8 YAML bytes.

    With no key below ``directory``, ``base_text`` is returned unchanged (encoded as UTF-8).
    Keys may be text or bytes (a key below the directory that is not UTF-8 is an error naming
    it with ``\\xNN`` escapes).
    """
    # The collector is paused for the whole render and everything but the result is released
    # by reference counting before it runs again (see collector_paused).
    with collector_paused():
        return _render(base_text, entries, directory)


def render_listed(keys: list[Any], values: list[Any], directory: str) -> bytes:
    """`render` of the keys ``keys`` holding ``values`` onto an empty base, for keys read as
    lists (`etcdadmin export`): no mapping of 100,000 keys made for the common case."""
    with collector_paused():
        written = render_keys(keys, values, directory)
        if written is not None:
            return written.encode("utf-8")
        return _render_general("", dict(zip(keys, values, strict=True)), directory)


def _render(base_text: str, entries: Mapping[Any, str | bytes], directory: str) -> bytes:
    if not base_text:
        # Onto an empty base (`etcdadmin export`, a new service's first config) the keys are
        # written as they come, without the tree below, for the shapes almost every directory
        # has; None leaves the rest to the general way, byte for byte the same document.
        written = render_keys(list(entries), list(entries.values()), directory)
        if written is not None:
            return written.encode("utf-8")
    return _render_general(base_text, entries, directory)


def _render_general(base_text: str, entries: Mapping[Any, str | bytes], directory: str) -> bytes:
    base, spent = _load_mapping(base_text, "base config")
    tree = build_tree(entries, directory, spent)
    if tree is None:
        return base_text.encode("utf-8")
    return dump_block(merge(copy_document(base), tree)).encode("utf-8")


def _load_mapping(text: str, what: str, secrets: bool = False) -> tuple[dict[Any, Any], Any]:
    try:
        document, extent = load_yaml_measured(text, f"the {what}", secrets=secrets)
    except InvalidYAML as exc:
        raise MappingError(f"the {what} is not valid YAML{exc.position}; fix it") from None
    if document is None:
        return {}, extent
    if not isinstance(document, dict):
        raise MappingError(
            f"the {what} must be a YAML mapping (`name: value` lines) at the top level, not a "
            f"{_type_name(document)}; fix it"
        )
    return document, extent


# --------------------------------------------------------------------------------------------
# Reverse mapping
# --------------------------------------------------------------------------------------------


def flatten(config: Any, directory: str) -> dict[str, str]:
    """The etcd keys (full key -> value text) that reproduce ``config`` on an empty base.

    A value marked ``!secret`` (a `SecretMark`) becomes one key whose value text is a
    `SecretText`: the caller encrypts it (`etcdadmin.core.changes.desired`).
    """
    if not isinstance(config, dict):
        raise MappingError(
            f"a config must be a YAML mapping at the top level, not a {_type_name(config)}; fix it"
        )
    prefix = directory_prefix(directory)
    for name, value in config.items():
        if not _is_segment(name):
            raise MappingError(
                f"the top-level config key `{_shown(name)}` cannot be written as an etcd key (it "
                "must be non-empty text without `/`); rename it in the config"
            )
        if not _expressible_child(value):
            raise MappingError(
                f"the top-level config key `{_shown(name)}` holds a {_type_name(value)} that no "
                "plain etcd value can express; move it into a mapping or list"
            )
    out: dict[str, str] = {}
    for name, value in config.items():
        _flatten_into(out, prefix + name, value, 1)
    return out


def flatten_text(yaml_text: str, directory: str, *, secrets: bool = False) -> dict[str, str]:
    """:func:`flatten` of a YAML document given as text (empty text gives no keys).

    ``secrets`` reads values tagged ``!secret`` (refused otherwise): their keys' value texts
    are `SecretText`s.
    """
    # A file as `etcdadmin export` writes it is read line by line; None leaves anything else
    # (and every error) to PyYAML and `flatten`, with the same keys (see block_reader).
    keys = read_block(yaml_text, directory)
    if keys is not None:
        return keys
    with collector_paused():
        return flatten(_load_mapping(yaml_text, "config", secrets)[0], directory)


def _flatten_into(out: dict[str, str], key: str, value: Any, depth: int) -> None:
    # Levels past MAX_KEY_DEPTH are written as one value (which format_value refuses past
    # MAX_DEPTH), so no key is longer than render accepts and no depth exhausts the stack.
    if isinstance(value, SecretMark):
        out[key] = SecretText(format_value(value.value, key))
    elif depth >= MAX_KEY_DEPTH:
        out[key] = format_value(value, key)
    elif isinstance(value, dict) and value and _segmentable_mapping(value):
        below = depth + 1
        for name, item in value.items():
            child = f"{key}/{name}"
            # Text, the commonest leaf, is written here rather than by a call that finds it is
            # text (with the checks below: 100,000 leaves flattened in 0.18 s of CPU, 0.32 s).
            if type(item) is str and below < MAX_KEY_DEPTH:
                out[child] = format_value(item, child)
            else:
                _flatten_into(out, child, item, below)
    elif isinstance(value, list) and value and all(_expressible_child(item) for item in value):
        for index, item in enumerate(value):
            _flatten_into(out, f"{key}/{index}", item, depth + 1)
    else:  # a scalar, an empty container, or a container written as one flow value
        out[key] = format_value(value, key)


def _is_segment(name: Any) -> bool:
    return isinstance(name, str) and name != "" and "/" not in name


def _segmentable_mapping(mapping: dict[Any, Any]) -> bool:
    # `_is_segment` and `_expressible_child` written out: a call per entry was a third of
    # flattening a config of 100,000 settings.
    return (
        all(isinstance(name, str) and name and "/" not in name for name in mapping)
        and not is_index_run(mapping)
        and all(
            type(item) in _PLAIN_CHILD_TYPES or _expressible_child(item)
            for item in mapping.values()
        )
    )


# The types `_expressible_child` accepts without looking at the value.
_PLAIN_CHILD_TYPES: Final = frozenset({str, dict, list, int, bool, type(None)})


def _expressible_child(value: Any) -> bool:
    """True for values that can sit at their own path: containers and plain scalars."""
    if value is None or isinstance(value, bool | int | str | dict | list | SecretMark):
        return True
    return isinstance(value, float) and math.isfinite(value)


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


# A config key is named by its start past this many characters: a YAML key has no length
# limit (`? ` keys, quoted keys), and a message a megabyte long names nothing usefully.
_SHOWN_KEY_CHARS: Final = 80


def _shown(name: Any) -> str:
    """A config key as messages show it: its escaped text (its start and ``…`` when long), its
    YAML spelling when it is a null, boolean or number, or what it is when it is binary."""
    if isinstance(name, int) and not isinstance(name, bool) and name.bit_length() > 64:
        return "(a very long integer)"
    if (
        name is None
        or isinstance(name, bool | int)
        or (isinstance(name, float) and math.isfinite(name))
    ):
        # As the file spells it (`null`, `true`), not as Python prints it (`None`, `True`).
        return format_value(name)
    if isinstance(name, float):
        return ".nan" if math.isnan(name) else ".inf" if name > 0 else "-.inf"
    if isinstance(name, bytes):
        return "(a !!binary value)"  # Python's b'...' with its escapes escaped again misleads
    text = str(name)
    if len(text) > _SHOWN_KEY_CHARS:  # cut before escaping, so no escape is cut in half
        return display_key(text[:_SHOWN_KEY_CHARS]) + "…"
    return display_key(text)


def _type_name(value: Any) -> str:
    """What a value is, in the words of the YAML file the operator wrote (not Python's type
    names: "holds a bytes" or "not a int" told them nothing)."""
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, float) and not math.isfinite(value):
        return "non-finite number (.inf or .nan)"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, bytes):
        return "binary value (!!binary)"
    if isinstance(value, set | frozenset):
        return "set (!!set)"
    if isinstance(value, datetime.date):
        return "timestamp"
    return f"value of type {type(value).__name__}"
