"""Staged changes kept on disk while they are staged, so a crash or a kill does not lose them.

One JSON file per connection profile under platformdirs' user data directory
(`ETCDADMIN_DATA_DIR` overrides it), rewritten whole (mode 0600) every time the staged list
changes and removed when it empties. The next start of that profile offers the changes back.

Secret values are never written there: a set of a key whose path is secret
(`etcdadmin.core.config.sensitive.is_secret`, which also catches private keys by their value)
is recorded by its key only, and `load` reports it as withheld so the operator is told which
changes to stage again. Keys and revision guards are kept as they were staged: a restored
change still conflicts if etcd moved under it meanwhile.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etcdadmin.core.changes.commands import (
    CopyDirectory,
    DeleteDirectory,
    DeleteKey,
    PendingChange,
    RenameKey,
    SetValue,
)
from etcdadmin.core.config.sensitive import is_secret
from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.private_file import write_private

log = logging.getLogger(__name__)

DATA_DIR_ENV = "ETCDADMIN_DATA_DIR"
_FORMAT = 1


class RecoveryError(EtcdAdminError):
    """The staged changes could not be kept on disk, or a kept file cannot be read."""


@dataclass(frozen=True)
class Recovered:
    """What a previous run left staged: `changes` to offer back, and the keys of secret values
    that were not kept (`withheld`), to be staged again by hand."""

    changes: tuple[PendingChange, ...]
    withheld: tuple[bytes, ...]


def default_data_dir() -> Path:
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("etcdadmin"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    return base64.b64decode(str(text), validate=True)


def _secret(change: SetValue) -> bool:
    return is_secret(change.key.decode("utf-8", "replace"), change.value)


def _entry(change: PendingChange) -> dict[str, Any]:
    if isinstance(change, SetValue):
        entry = {
            "kind": "set",
            "key": _b64(change.key),
            "expected": change.expected_mod_revision,
            "lease": change.lease,
        }
        if _secret(change):
            entry["withheld"] = True
        else:
            entry["value"] = _b64(change.value)
        return entry
    if isinstance(change, DeleteKey):
        return {"kind": "delete", "key": _b64(change.key), "expected": change.expected_mod_revision}
    if isinstance(change, RenameKey):
        return {
            "kind": "rename",
            "old": _b64(change.old),
            "new": _b64(change.new),
            "expected": change.expected_mod_revision,
        }
    if isinstance(change, CopyDirectory):
        return {"kind": "copy", "source": _b64(change.source), "target": _b64(change.target)}
    if isinstance(change, DeleteDirectory):
        return {"kind": "delete-directory", "prefix": _b64(change.prefix)}
    raise RecoveryError(f"a {type(change).__name__} cannot be kept for recovery")


def _change(entry: dict[str, Any]) -> PendingChange | bytes:
    """The change an entry records, or the key of a secret value that was withheld."""
    kind = entry["kind"]
    if kind == "set":
        key = _unb64(entry["key"])
        if entry.get("withheld"):
            return key
        return SetValue(key, _unb64(entry["value"]), entry["expected"], int(entry["lease"]))
    if kind == "delete":
        return DeleteKey(_unb64(entry["key"]), entry["expected"])
    if kind == "rename":
        return RenameKey(_unb64(entry["old"]), _unb64(entry["new"]), entry["expected"])
    if kind == "copy":
        return CopyDirectory(_unb64(entry["source"]), _unb64(entry["target"]))
    if kind == "delete-directory":
        return DeleteDirectory(_unb64(entry["prefix"]))
    raise ValueError(kind)


class StagedWork:
    """The kept staged changes of the profile `profile`."""

    def __init__(self, profile: str, data_dir: Path | None = None) -> None:
        # A file name from the profile's name whatever characters it holds.
        digest = hashlib.sha256(profile.encode("utf-8")).hexdigest()[:16]
        self.profile = profile
        self.path = (data_dir or default_data_dir()) / "staged" / f"{digest}.json"

    def save(self, changes: Iterable[PendingChange]) -> None:
        """Keep `changes` (nothing staged: forget the file). Raises `RecoveryError`."""
        entries = [_entry(change) for change in changes]
        try:
            if not entries:
                self.path.unlink(missing_ok=True)
                return
            text = json.dumps({"format": _FORMAT, "profile": self.profile, "changes": entries})
            write_private(self.path, text + "\n")
        except OSError as exc:
            raise RecoveryError(
                f"the staged changes cannot be kept in {self.path} ({exc.strerror}); they are "
                "still staged in this window, but would not survive a crash: apply them soon"
            ) from None
        log.info("kept %d staged changes for recovery", len(entries))

    def load(self) -> Recovered | None:
        """What a previous run left staged (None: nothing). Raises `RecoveryError`."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RecoveryError(
                f"the staged changes kept in {self.path} cannot be read ({exc.strerror})"
            ) from None
        try:
            found = [_change(dict(entry)) for entry in json.loads(text)["changes"]]
        except (ValueError, KeyError, TypeError, EtcdAdminError):
            raise RecoveryError(
                f"the staged changes kept in {self.path} are not readable; remove the file to "
                "stop this message (nothing in etcd depends on it)"
            ) from None
        changes = tuple(c for c in found if isinstance(c, PendingChange))
        withheld = tuple(c for c in found if isinstance(c, bytes))
        log.info("found %d kept staged changes, %d withheld", len(changes), len(withheld))
        return Recovered(changes, withheld) if found else None

    def clear(self) -> None:
        self.save(())
