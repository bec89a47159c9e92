"""What a directory name means: the one rule every part of etcdadmin uses to turn a name into
the key prefix it covers."""

from __future__ import annotations

from etcdadmin.core.errors import MappingError


def directory_prefix(directory: bytes) -> bytes:
    """The key prefix of a directory: with exactly the one trailing slash its keys carry.

    `registry-test` and `registry-test/` name the same directory, as they do for the agent;
    without the slash a prefix read would also return `registry-test-2/...`.
    """
    stripped = directory.rstrip(b"/")
    if not stripped:
        raise MappingError("the etcd directory must not be empty; name one, such as `hack/`")
    return stripped + b"/"
