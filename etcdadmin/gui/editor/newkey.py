"""Creating a key (its name, value and, optionally, a lease with a TTL attached on creation,
or the value encrypted as a secret) and renaming one: both only stage a change."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QCheckBox,
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

from etcdadmin.core.changes import DeleteKey, PendingChange, RenameKey, SetValue
from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.secrets.envelope import is_envelope
from etcdadmin.core.tree.names import display_segment, parse_display_segment
from etcdadmin.gui.errors import show_error
from etcdadmin.gui.session import Session
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
        # A secret is typed blind, as into a password field: it never shows on screen.
        self.secret_value = QLineEdit()
        self.secret_value.setObjectName("newKeySecretValue")
        self.secret_value.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret_value.setPlaceholderText("the secret value")
        self.secret_value.hide()
        self.secret = QCheckBox("Secret: encrypted for the directory's recipients")
        self.secret.setObjectName("newKeySecret")
        self.secret.toggled.connect(self._secret_toggled)
        self.ttl = QSpinBox()
        self.ttl.setObjectName("newKeyTTL")
        self.ttl.setRange(0, 10 * 365 * 24 * 3600)
        self.ttl.setSpecialValueText("no lease")
        self.ttl.setSuffix(" s")
        form.addRow("Key", self.key)
        form.addRow("Value", self.value)
        form.addRow("", self.secret_value)
        form.addRow("", self.secret)
        form.addRow("Lease TTL", self.ttl)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _secret_toggled(self, on: bool) -> None:
        # what was typed moves across, so ticking the box after typing loses nothing
        if on:
            self.secret_value.setText(self.value.toPlainText())
            self.value.clear()
        else:
            self.value.setPlainText(self.secret_value.text())
            self.secret_value.clear()
        self.value.setVisible(not on)
        self.secret_value.setVisible(on)

    def typed_value(self) -> bytes:
        text = self.secret_value.text() if self.secret.isChecked() else self.value.toPlainText()
        return text.encode("utf-8")

    def _accept(self) -> None:
        if not self.key.text() or self.key.text().endswith("/"):
            QMessageBox.warning(self, "New key", "Give the key a name (not ending in /).")
            return
        self.accept()


def stage_new_key(parent: QWidget, session: Session, directory: bytes, stage: Stage) -> None:
    """Ask for a new key under `directory` and stage it (a lease is granted first for a TTL)."""
    dialog = NewKeyDialog(parent, directory)
    if not dialog.exec():
        return
    stage_from_dialog(parent, session, dialog, stage)


def stage_from_dialog(
    parent: QWidget, session: Session, dialog: NewKeyDialog, stage: Stage
) -> None:
    """Stage what an accepted new-key dialog holds; a secret is sealed on a worker first."""
    try:
        key = parse_display_segment(dialog.key.text())
    except EtcdAdminError as exc:
        show_error(parent, "New key", exc)
        return
    value = dialog.typed_value()
    ttl = dialog.ttl.value()
    secret = dialog.secret.isChecked()
    if not ttl and not secret:
        stage(SetValue(key, value, 0, 0))
        return
    conn, keeper = session.conn, session.secrets

    def prepare(task: object) -> SetValue:
        sealed = keeper.seal([(key, value)])[0] if secret else value
        lease = conn.grant_lease(ttl) if ttl else 0
        return SetValue(key, sealed, 0, lease)

    run_task(
        "seal secret" if secret else "grant lease",
        prepare,
        stage,
        lambda exc: show_error(
            parent, "The key was not staged" if secret else "Cannot grant a lease", exc
        ),
    )


def stage_rename(parent: QWidget, session: Session, current: KeyValue, stage: Stage) -> None:
    """Ask for a new name of `current` and stage the rename, guarded by the revision shown.

    A secret is bound to its key, so it is not moved as it is: it is sealed again for the new
    key (and that directory's recipients) on a worker, then staged as a create of the new key
    and a delete of the old one, each guarded."""
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
    if new == current.key:
        return
    if not is_envelope(current.value):
        stage(RenameKey(current.key, new, current.mod_revision))
        return
    keeper = session.secrets

    def staged(envelopes: list[bytes]) -> None:
        stage(SetValue(new, envelopes[0], 0, current.lease))
        stage(DeleteKey(current.key, current.mod_revision))

    run_task(
        "re-seal secret",
        lambda task: keeper.reseal([(current.key, current.value, new)]),
        staged,
        lambda exc: show_error(parent, "The rename was not staged", exc),
    )
