"""The toolbar's connection picker: the stored profiles, then the local sandbox."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox

from etcdadmin.gui.connections.profiles import SANDBOX, ProfileStore


class ProfilePicker(QComboBox):
    """Profile names in order, `SANDBOX` last; the last used profile is preselected."""

    def __init__(self, store: ProfileStore) -> None:
        super().__init__()
        self.store = store
        self.setObjectName("profileCombo")
        self.setMinimumWidth(180)
        self.fill()
        last = store.last_used
        if last and self.findText(last) >= 0:
            self.setCurrentText(last)

    def fill(self) -> None:
        self.clear()
        for name in self.store.names():
            self.addItem(name)
        self.addItem(SANDBOX)

    def show_profile(self, name: str) -> None:
        """Select `name`, listing it first if it is new (a profile just saved, or ad hoc)."""
        if self.findText(name) < 0:
            self.fill()
        if self.findText(name) < 0:
            self.addItem(name)
        self.setCurrentText(name)
