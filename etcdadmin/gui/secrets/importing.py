"""Importing a YAML file: which of its values are staged as secrets (encrypted) and which not.

The operator ticks the keys to encrypt; a key whose path names a secret (`password`, `token`,
... as `etcdadmin.core.config.sensitive` says) is ticked to begin with. The chosen values are
sealed on a worker and only their envelopes are staged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.changes import SetValue
from etcdadmin.core.config.sensitive import is_secret_key
from etcdadmin.core.tree.names import display_segment
from etcdadmin.gui.icons import icon


class ImportSecretsDialog(QDialog):
    """One row per imported key, ticked when it is to be encrypted. Non-modal: `chosen` is
    called with the changes to seal when the operator presses OK."""

    def __init__(
        self,
        parent: QWidget,
        directory: bytes,
        changes: Sequence[SetValue],
        chosen: Callable[[list[SetValue]], None],
    ) -> None:
        super().__init__(parent)
        self.setObjectName("importSecretsDialog")
        self.setWindowTitle("Import: which values are secrets?")
        self.changes = list(changes)
        layout = QVBoxLayout(self)
        label = QLabel(
            "Ticked values are encrypted for the directory's recipients before they are "
            "staged; the others are staged as plain values. Keys named like secrets are "
            "ticked already."
        )
        label.setWordWrap(True)
        layout.addWidget(label)
        self.list = QListWidget()
        self.list.setObjectName("importSecretsList")
        lock = icon("lock")
        for change in self.changes:
            relative = change.key[len(directory) :] if change.key.startswith(directory) else b""
            name = display_segment(relative or change.key)
            item = QListWidgetItem(lock, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked = is_secret_key(name)
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        layout.addWidget(self.list, 1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self._chosen = chosen
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(520, 420)

    def _ok(self) -> None:
        self.accept()
        self._chosen(self.secret_changes())

    def secret_changes(self) -> list[SetValue]:
        return [
            change
            for row, change in enumerate(self.changes)
            if self.list.item(row).checkState() == Qt.CheckState.Checked
        ]
