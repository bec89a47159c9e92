"""The changes an operator stages, as commands: set, delete, rename, copy or delete a directory.

Each `PendingChange` knows which keys it reads and how to fold itself into a plan (`_stage`);
`etcdadmin.core.changes.changeset` collects them, plans them at one revision and applies them as
one guarded transaction. Messages name keys, never values (values may be secrets).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

from etcdadmin.core.errors import EtcdAdminError, RevisionCompacted
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.tree.names import display_segment

log = logging.getLogger(__name__)


class InvalidChange(EtcdAdminError):
    """A change that cannot mean anything (a rename onto itself, a copy into its own source)."""


@dataclass(frozen=True)
class Conflict:
    """A key that is not as a change expects.

    `expected` is what the plan (or the operator's editor) saw, `actual` what etcd holds now;
    None means absent. `reason` says what differs in words and revisions, never values.
    """

    key: bytes
    expected: KeyValue | None
    actual: KeyValue | None
    reason: str = ""

    def describe(self) -> str:
        return f"{display_segment(self.key)} {self.reason}".rstrip()


# -- the changes --------------------------------------------------------------------------


class Staging:
    """The state a plan is folded in: etcd as read at one revision, overlaid by staged writes.

    Expectations are checked against etcd at the plan's revision (what the operator saw), not
    against earlier staged changes: two edits of one key both based on revision 7 are both
    valid, and the later one wins.
    """

    def __init__(
        self, conn: EtcdConnection, revision: int, known: dict[bytes, KeyValue | None]
    ) -> None:
        self.conn = conn
        self.revision = revision
        self.known = known
        self.staged: dict[bytes, tuple[bytes, int] | None] = {}
        self.touched: set[bytes] = set()
        self.stale: list[Conflict] = []
        self.directories: list[bytes] = []

    def current(self, key: bytes) -> tuple[bytes, int] | None:
        """(value, lease) of `key` after the changes staged so far; None when absent."""
        if key in self.staged:
            return self.staged[key]
        kv = self.known.get(key)
        return (kv.value, kv.lease) if kv is not None else None

    def keys_under(self, prefix: bytes) -> list[bytes]:
        candidates = {k for k in self.known if k.startswith(prefix)}
        candidates.update(k for k in self.staged if k.startswith(prefix))
        return sorted(k for k in candidates if self.current(k) is not None)

    def read(self, key: bytes) -> None:
        """The change depends on `key` as the plan saw it: guard it."""
        self.touched.add(key)

    def write(self, key: bytes, after: tuple[bytes, int] | None) -> None:
        self.touched.add(key)
        self.staged[key] = after

    def _report(self, conflict: Conflict) -> None:
        if all(c.key != conflict.key for c in self.stale):
            self.stale.append(conflict)

    def expect(self, key: bytes, expected_mod_revision: int | None) -> None:
        """Report `key` as stale when etcd no longer holds the revision the edit was based on."""
        kv = self.known.get(key)
        actual = kv.mod_revision if kv is not None else 0
        if expected_mod_revision is None or expected_mod_revision == actual:
            return
        if expected_mod_revision == 0:
            reason = f"exists already (revision {actual})"
        elif kv is None:
            reason = f"was deleted after revision {expected_mod_revision}"
        else:
            reason = f"changed since revision {expected_mod_revision} (now revision {actual})"
        self._report(Conflict(key, self._version_at(key, expected_mod_revision), kv, reason))

    def expect_absent(self, key: bytes) -> None:
        kv = self.known.get(key)
        if kv is not None:
            self._report(Conflict(key, None, kv, f"exists already (revision {kv.mod_revision})"))

    def report_missing(self, key: bytes, reason: str) -> None:
        self._report(Conflict(key, None, None, reason))

    def _version_at(self, key: bytes, revision: int) -> KeyValue | None:
        """The key as the operator's editor showed it, so a conflict can show both values."""
        if revision <= 0 or revision > self.revision:
            return None
        try:
            return self.conn.get(key, revision=revision)
        except RevisionCompacted:
            return None


class PendingChange(ABC):
    """A staged change to etcd. Subclasses are frozen dataclasses."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the pending-changes list: key names only, never values."""

    @abstractmethod
    def keys(self) -> tuple[bytes, ...]:
        """The keys (or, for directory changes, the directory prefixes) the change names."""

    def _reads(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """(single keys, whole prefixes) the plan must read before folding this change."""
        return self.keys(), ()

    @abstractmethod
    def _stage(self, staging: Staging) -> None:
        """Fold this change into `staging`."""


@dataclass(frozen=True)
class SetValue(PendingChange):
    """Create or modify one key.

    `expected_mod_revision` is the revision the edit is based on: 0 means the key must not
    exist, None means no expectation (whatever the plan finds is overwritten). `lease` is
    attached as given (0: none), so pass the key's current lease to keep it.
    """

    key: bytes
    value: bytes
    expected_mod_revision: int | None
    lease: int = 0

    def describe(self) -> str:
        verb = "create" if self.expected_mod_revision == 0 else "set"
        return f"{verb} {display_segment(self.key)}"

    def keys(self) -> tuple[bytes, ...]:
        return (self.key,)

    def _stage(self, staging: Staging) -> None:
        staging.expect(self.key, self.expected_mod_revision)
        staging.write(self.key, (self.value, self.lease))


@dataclass(frozen=True)
class DeleteKey(PendingChange):
    key: bytes
    expected_mod_revision: int | None

    def describe(self) -> str:
        return f"delete {display_segment(self.key)}"

    def keys(self) -> tuple[bytes, ...]:
        return (self.key,)

    def _stage(self, staging: Staging) -> None:
        staging.expect(self.key, self.expected_mod_revision)
        staging.write(self.key, None)


@dataclass(frozen=True)
class RenameKey(PendingChange):
    """Move a key's value and lease to a new name that must not exist yet."""

    old: bytes
    new: bytes
    expected_mod_revision: int | None

    def __post_init__(self) -> None:
        if self.old == self.new:
            raise InvalidChange(f"renaming {display_segment(self.old)} onto itself changes nothing")

    def describe(self) -> str:
        return f"rename {display_segment(self.old)} to {display_segment(self.new)}"

    def keys(self) -> tuple[bytes, ...]:
        return (self.old, self.new)

    def _stage(self, staging: Staging) -> None:
        staging.expect(self.old, self.expected_mod_revision)
        staging.expect_absent(self.new)
        carried = staging.current(self.old)
        if carried is None:
            staging.report_missing(self.old, "does not exist, so it cannot be renamed")
            staging.read(self.old)
            staging.read(self.new)
            return
        staging.write(self.new, carried)
        staging.write(self.old, None)


def _check_directory(prefix: bytes, what: str) -> None:
    if not prefix.endswith(b"/"):
        raise InvalidChange(f"{what} {display_segment(prefix)!r} must end with '/'")


@dataclass(frozen=True)
class CopyDirectory(PendingChange):
    """Copy every key under `source` to `target` + the rest of its name (values and leases).

    Both are prefixes with their trailing slash (`registry-test/`). None of the target names
    may exist: an existing one is a conflict, never silently overwritten.
    """

    source: bytes
    target: bytes

    def __post_init__(self) -> None:
        _check_directory(self.source, "the directory to copy")
        _check_directory(self.target, "the directory to copy to")
        if self.source.startswith(self.target) or self.target.startswith(self.source):
            raise InvalidChange(
                f"cannot copy {display_segment(self.source)} to {display_segment(self.target)}: "
                "one contains the other"
            )

    def describe(self) -> str:
        return f"copy directory {display_segment(self.source)} to {display_segment(self.target)}"

    def keys(self) -> tuple[bytes, ...]:
        return (self.source, self.target)

    def _reads(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        return (), (self.source, self.target)

    def _stage(self, staging: Staging) -> None:
        sources = staging.keys_under(self.source)
        if not sources:
            staging.report_missing(self.source, "has no keys to copy")
        for key in sources:
            target = self.target + key[len(self.source) :]
            staging.expect_absent(target)
            staging.read(key)
            staging.write(target, staging.current(key))


@dataclass(frozen=True)
class DeleteDirectory(PendingChange):
    """Delete the keys under `prefix` that the plan saw, each guarded by its mod revision.

    Not a blind delete of the prefix: a key someone adds after the plan was shown would be
    deleted without anyone having reviewed it. Such a key makes the apply conflict instead.
    """

    prefix: bytes

    def __post_init__(self) -> None:
        if not self.prefix:
            raise InvalidChange("deleting the whole key space is not a directory delete")

    def describe(self) -> str:
        return f"delete directory {display_segment(self.prefix)}"

    def keys(self) -> tuple[bytes, ...]:
        return (self.prefix,)

    def _reads(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        return (), (self.prefix,)

    def _stage(self, staging: Staging) -> None:
        staging.directories.append(self.prefix)
        for key in staging.keys_under(self.prefix):
            staging.write(key, None)
