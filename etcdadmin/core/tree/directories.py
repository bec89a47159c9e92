"""What a directory name means: the one rule every part of etcdadmin uses to turn a name into
the key prefix it covers.

- Trailing slashes collapse: `hack`, `hack/` and `hack//` are one directory, prefix `hack/`.
  Without the slash a prefix read of `hack` would also return `hack-2/...`.
- A leading slash is significant: etcd keys `/hack/x` and `hack/x` are different keys, so
  `/hack` (prefix `/hack/`) and `hack` (prefix `hack/`) are different directories.
- `/` alone (or `//`) is the directory of every key that starts with a slash, prefix `/`: the
  client's tree shows those keys under a top-level `/`.
- An empty name is refused (`MappingError`): it would mean the whole key space, which no
  directory operation (agent, copy, compare, import) is meant to cover by accident.

Names may be `str` (settings, the YAML mapping) or `bytes` (keys as etcd returns them); the
prefix comes back in the same type. Slashes inside a name (`a//b`) are left alone: an empty
segment is a real etcd key path.
"""

from __future__ import annotations

from typing import AnyStr

from etcdadmin.core.errors import MappingError

OWN_SPACE = b"/etcdadmin/"
"""etcdadmin's own keys (the release history, the agents' status records): never a config
directory, and no directory operation covers them."""


def holds_own_space(prefix: bytes) -> bool:
    """Whether the directory of `prefix` (a `directory_prefix`) holds etcdadmin's own keys, or
    lies inside them."""
    return OWN_SPACE.startswith(prefix) or prefix.startswith(OWN_SPACE)


def directory_prefix(directory: AnyStr) -> AnyStr:
    """The key prefix of a directory: its name with exactly one trailing slash."""
    if not directory:
        raise MappingError(
            "the etcd directory must not be empty; name one, such as `hack` (or `/` for the "
            "keys that start with a slash)"
        )
    slash = b"/" if isinstance(directory, bytes) else "/"
    return directory.rstrip(slash) + slash


def parent_directory(key: bytes) -> bytes | None:
    """The prefix of the directory `key` sits in (`/` for `/x`); None for a top-level key."""
    slash = key.rfind(b"/")
    return directory_prefix(key[: slash + 1]) if slash >= 0 else None
