"""Creating a key: its name, value and, optionally, a lease with a TTL attached on creation."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from etcdadmin.core.tree.names import display_segment


class NewKeyDialog(QDialog):
    def __init__(self, parent: QWidget | None, directory: bytes = b"") -> None:
        super().__init__(parent)
        self.setObjectName("newKeyDialog")
        self.setWindowTitle("New key")
        form = QFormLayout(self)
        # the escaped display form (\xNN) keeps binary directory names exact
        self.key = QLineEdit(display_segment(directory))
        self.key.setObjectName("newKeyName")
        self.value = QPlainTextEdit()
        self.value.setObjectName("newKeyValue")
        self.ttl = QSpinBox()
        self.ttl.setObjectName("newKeyTTL")
        self.ttl.setRange(0, 10 * 365 * 24 * 3600)
        self.ttl.setSpecialValueText("no lease")
        self.ttl.setSuffix(" s")
        form.addRow("Key", self.key)
        form.addRow("Value", self.value)
        form.addRow("Lease TTL", self.ttl)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _accept(self) -> None:
        if not self.key.text() or self.key.text().endswith("/"):
            QMessageBox.warning(self, "New key", "Give the key a name (not ending in /).")
            return
        self.accept()
