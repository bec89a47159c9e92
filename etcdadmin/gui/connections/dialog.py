"""Editing a connection profile: endpoints, TLS files, user and password, production, read-only."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QMessageBox,
    QWidget,
)

from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.gui.connections.profiles import ConnectionProfile


class ProfileDialog(QDialog):
    def __init__(self, parent: QWidget | None, profile: ConnectionProfile | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connection")
        self.setObjectName("profileDialog")
        form = QFormLayout(self)
        self.name = QLineEdit(profile.name if profile else "")
        self.endpoints = QLineEdit(profile.endpoints if profile else "127.0.0.1:2379")
        self.endpoints.setPlaceholderText("host:port, or a comma list of them")
        self.user = QLineEdit(profile.user if profile else "")
        self.password = QLineEdit(profile.password if profile else "")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("kept in the system keyring")
        self.ca_file = QLineEdit(profile.ca_file if profile else "")
        self.cert_file = QLineEdit(profile.cert_file if profile else "")
        self.key_file = QLineEdit(profile.key_file if profile else "")
        self.production = QCheckBox("Production: banner, and every write asks for confirmation")
        self.production.setChecked(bool(profile and profile.production))
        self.read_only = QCheckBox("Read-only: never write")
        self.read_only.setChecked(bool(profile and profile.read_only))
        for label, widget in (
            ("Name", self.name),
            ("Endpoints", self.endpoints),
            ("User", self.user),
            ("Password", self.password),
            ("CA file (TLS)", self.ca_file),
            ("Client certificate", self.cert_file),
            ("Client key", self.key_file),
            ("", self.production),
            ("", self.read_only),
        ):
            form.addRow(label, widget)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def profile(self) -> ConnectionProfile:
        return ConnectionProfile(
            name=self.name.text().strip(),
            endpoints=self.endpoints.text().strip(),
            user=self.user.text().strip(),
            password=self.password.text(),
            ca_file=self.ca_file.text().strip(),
            cert_file=self.cert_file.text().strip(),
            key_file=self.key_file.text().strip(),
            production=self.production.isChecked(),
            read_only=self.read_only.isChecked(),
        )

    def _accept(self) -> None:
        profile = self.profile()
        try:
            if not profile.name:
                raise EtcdAdminError("give the connection a name")
            profile.settings()
        except EtcdAdminError as exc:
            QMessageBox.warning(self, "Connection", str(exc))
            return
        self.accept()
