"""Creating a key (its name, value and, optionally, a lease with a TTL attached on creation)
and renaming one: both only stage a change."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from etcdadmin.core.changes import PendingChange, RenameKey, SetValue
from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.tree.names import display_segment, parse_display_segment
from etcdadmin.gui.errors import show_error
from etcdadmin.gui.workers import run_task

Stage = Callable[[PendingChange], None]


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


def stage_new_key(parent: QWidget, conn: EtcdConnection, directory: bytes, stage: Stage) -> None:
    """Ask for a new key under `directory` and stage it (a lease is granted first for a TTL)."""
    dialog = NewKeyDialog(parent, directory)
    if not dialog.exec():
        return
    try:
        key = parse_display_segment(dialog.key.text())
    except EtcdAdminError as exc:
        show_error(parent, "New key", exc)
        return
    value = dialog.value.toPlainText().encode("utf-8")
    ttl = dialog.ttl.value()
    if not ttl:
        stage(SetValue(key, value, 0, 0))
        return
    run_task(
        "grant lease",
        lambda task: conn.grant_lease(ttl),
        lambda lease: stage(SetValue(key, value, 0, lease)),
        lambda exc: show_error(parent, "Cannot grant a lease", exc),
    )


def stage_rename(parent: QWidget, current: KeyValue, stage: Stage) -> None:
    """Ask for a new name of `current` and stage the rename, guarded by the revision shown."""
    name, ok = QInputDialog.getText(
        parent,
        "Rename key",
        "New name (\\xNN for a raw byte):",
        text=display_segment(current.key),
    )
    if not ok or not name:
        return
    try:
        new = parse_display_segment(name)
    except EtcdAdminError as exc:
        show_error(parent, "Rename key", exc)
        return
    if new != current.key:
        stage(RenameKey(current.key, new, current.mod_revision))
