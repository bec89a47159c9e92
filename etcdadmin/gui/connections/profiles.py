"""The client's view of the connection profiles kept by the core (`etcdadmin.core.profiles`).

The store itself is Qt-free and shared with the CLI; this adapter adds what only the window
needs: the last profile used (window state, in QSettings), and a one-time move of the profiles
older versions kept under QSettings' `profiles` key into `profiles.json`. Their passwords are
already in the keyring under the same names, so they need no move.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PySide6.QtCore import QSettings

from etcdadmin.core import profiles as core_profiles
from etcdadmin.core.profiles import SANDBOX, ConnectionProfile

log = logging.getLogger(__name__)

__all__ = ["SANDBOX", "ConnectionProfile", "ProfileStore"]


class ProfileStore(core_profiles.ProfileStore):
    """The core's profile store, plus the last profile used and the QSettings migration."""

    def __init__(self, path: Path | None = None, settings: QSettings | None = None) -> None:
        super().__init__(path)
        self.qsettings = settings or QSettings("etcdadmin", "etcdadmin")
        if not self.exists():
            self._migrate_from_qsettings()

    def _migrate_from_qsettings(self) -> None:
        raw = self.qsettings.value("profiles")
        if not raw:
            return
        try:
            entries = json.loads(str(raw))
            profiles = [
                ConnectionProfile.from_entry(str(name), dict(entry))
                for name, entry in entries.items()
            ]
        except (ValueError, TypeError, AttributeError):
            log.warning("the profiles kept by an older version cannot be read; not migrated")
            return
        self.save_all(profiles)
        log.info("moved %d connection profiles from QSettings to %s", len(profiles), self.path)

    @property
    def last_used(self) -> str | None:
        value = self.qsettings.value("last_profile")
        return str(value) if value else None

    @last_used.setter
    def last_used(self, name: str) -> None:
        self.qsettings.setValue("last_profile", name)
