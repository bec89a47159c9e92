"""Greying out the window's actions that would stage a write the connection's user may not
make: a new key or an import in a directory it may only read, renaming a key it may not
change. The editor greys its own buttons; the pending list still refuses what gets through."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtGui import QAction

from etcdadmin.core.access.permits import Permits
from etcdadmin.core.tree.directories import parent_directory

# Actions that write under the selected directory, and those that change the selected key.
DIRECTORY_ACTIONS = ("newKeyAction", "importAction")
KEY_ACTIONS = ("renameKeyAction",)


class WriteGate:
    """Signals: none; the window tells it the permits and the selection."""

    def __init__(self, actions: Mapping[str, QAction]) -> None:
        self.actions = actions
        self.permits: Permits | None = None
        self.directory = b""
        self.key: bytes | None = None

    def set_permits(self, permits: Permits | None) -> None:
        self.permits = permits
        self._update()

    def directory_selected(self, directory: bytes) -> None:
        self.directory, self.key = directory, None
        self._update()

    def key_selected(self, key: bytes) -> None:
        self.key = key
        self._update()

    def _update(self) -> None:
        permits = self.permits
        where = self.directory if self.key is None else parent_directory(self.key) or b""
        in_directory = permits is None or permits.may_write_under(where)
        on_key = permits is None or self.key is None or permits.may_write(self.key)
        for name in DIRECTORY_ACTIONS:
            self.actions[name].setEnabled(in_directory)
        for name in KEY_ACTIONS:
            self.actions[name].setEnabled(on_key)
