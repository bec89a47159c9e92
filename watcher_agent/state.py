"""What the agent remembers across restarts, kept in its state directory.

- `base.yml`: the pristine base config, captured the first time the agent saw the config file,
  so the agent never renders on top of its own output;
- `last-good.yml`: the last rendered config the served containers came up healthy with;
- `state.json`: applied revision and hashes, the etcd cluster id, quarantined config hashes;
- `history/`: the last few rendered configs, named by revision and hash.

Files holding rendered configs are 0600: once secrets are decrypted into them they are secret.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from etcdadmin.core.errors import EtcdAdminError
from watcher_agent.config_file import ConfigWriter, read_bytes, sha256

log = logging.getLogger(__name__)

QUARANTINE_KEEP = 20


class StateError(EtcdAdminError):
    """The state directory or the config file cannot be used."""


@dataclass
class AgentState:
    applied_revision: int = 0
    applied_sha: str | None = None
    written_sha: str | None = None
    cluster_id: int = 0
    # sha -> revision at which that rendered config failed its health check
    quarantined: dict[str, int] = field(default_factory=dict)


def load_state(directory: Path) -> AgentState | None:
    """The state recorded in `directory`, None when there is none or it is unreadable."""
    state_file = directory / "state.json"
    if not state_file.exists():
        return None
    try:
        return AgentState(**json.loads(state_file.read_text()))
    except (ValueError, TypeError) as exc:
        log.warning("state file %s unreadable (%s); starting afresh", state_file, exc)
        return None


def own_hashes(directory: Path, state: AgentState) -> set[str | None]:
    """Every config the agent itself may have left in the file, even if it died between writing
    the file and recording it (the intent is recorded before the write)."""
    own = {state.written_sha, state.applied_sha}
    own |= {sha256(p.read_bytes()) for p in sorted((directory / "history").glob("*.yml"))}
    for name in ("last-good.yml", "base.yml"):
        data = read_bytes(directory / name)
        if data is not None:
            own.add(sha256(data))
    return own


class StateStore:
    """Owns the state directory; every write goes through `ConfigWriter` (atomic)."""

    def __init__(self, directory: Path, config_path: Path, history_keep: int = 5) -> None:
        self.directory = directory
        self.config_path = config_path
        self.history_keep = history_keep
        self.history_dir = directory / "history"
        self.state = AgentState()
        self.base_text = ""
        self.last_good: bytes = b""

    def open(self) -> None:
        """Load or initialise the state; adopt a config file edited outside the agent."""
        try:
            self.history_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise StateError(
                f"cannot use state directory {self.directory}: {exc.strerror}; "
                "set STATE_DIR to a writable directory"
            ) from None
        current = read_bytes(self.config_path)
        if current is None:
            raise StateError(
                f"config file {self.config_path} does not exist: mount the service's "
                "config there (CONFIG names it)"
            )
        self.state = load_state(self.directory) or AgentState()
        base = read_bytes(self.directory / "base.yml")
        current_sha = sha256(current)
        own = own_hashes(self.directory, self.state)
        if base is None:
            log.info("first start: keeping %s as the base config", self.config_path)
            self._save_base(current)
            self._save_last_good(current)
            self.state = AgentState(applied_sha=current_sha, written_sha=current_sha)
            self.save()
        elif current_sha not in own:
            log.warning(
                "%s was changed outside the agent; adopting it as the new base config",
                self.config_path,
            )
            self._save_base(current)
            self._save_last_good(current)
            self.state.applied_sha = current_sha
            self.state.written_sha = current_sha
            self.state.quarantined.clear()
            self.save()
        else:
            self.base_text = base.decode("utf-8")
        self.last_good = read_bytes(self.directory / "last-good.yml") or current

    def _save_base(self, data: bytes) -> None:
        try:
            self.base_text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise StateError(f"config file {self.config_path} is not UTF-8 text") from None
        ConfigWriter(self.directory / "base.yml", private=True).write(data)

    def _save_last_good(self, data: bytes) -> None:
        self.last_good = data
        ConfigWriter(self.directory / "last-good.yml", private=True).write(data)

    def save(self) -> None:
        payload = json.dumps(asdict(self.state), indent=2, sort_keys=True).encode()
        ConfigWriter(self.directory / "state.json", private=True).write(payload)

    def note_writing(self, data: bytes) -> None:
        """Record the intent before the config file is written, so a crash in between is
        recognised as the agent's own write at the next start (not adopted as a new base)."""
        self.state.written_sha = sha256(data)
        self.save()

    def add_history(self, data: bytes, revision: int) -> None:
        sha = sha256(data)
        ConfigWriter(self.history_dir / f"{revision:012d}-{sha[:12]}.yml", private=True).write(data)
        entries = self.history()
        for old in entries[: max(0, len(entries) - self.history_keep)]:
            old.unlink(missing_ok=True)

    def record_applied(self, data: bytes, revision: int) -> None:
        # last-good first: a crash between the two leaves state.json one step behind, which
        # re-applies (harmless), instead of a last-good that is older than what ran.
        if data != self.last_good:
            self._save_last_good(data)
        self.state.applied_sha = sha256(data)
        self.state.applied_revision = revision
        self.save()

    def record_rollback(self, good: bytes, failed_sha: str, revision: int, healthy: bool) -> None:
        """Quarantine the config that failed; the last good one counts as running if healthy."""
        if healthy:
            self.state.applied_sha = sha256(good)
        self.state.quarantined[failed_sha] = revision
        while len(self.state.quarantined) > QUARANTINE_KEEP:
            self.state.quarantined.pop(next(iter(self.state.quarantined)))
        self.save()

    def history(self) -> list[Path]:
        return sorted(self.history_dir.glob("*.yml"))
