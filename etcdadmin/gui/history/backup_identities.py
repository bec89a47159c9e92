"""An encrypted backup that the operator's keyring identity does not open: the offer to open
an identity file (an age identity file or an OpenSSH private key, as `age -d -i` takes it),
read into memory for the History tab's restores in this window, never written anywhere.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from etcdadmin.core.backup.errors import BackupLocked


def ask_identity_file(parent: QWidget, title: str, locked: BackupLocked) -> Path | None:
    """The backup is encrypted and no identity at hand opens it: say to whom it is encrypted
    and offer to open a file holding one of their private keys. None: the operator closed."""
    shown = ", ".join(locked.recipients) or "unknown recipients"
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        title,
        f"Backup {locked.backup} is encrypted to {shown}; {locked.why}.\n\nOpen an identity "
        "file with the private key of one of them (an age identity file, as age-keygen "
        "writes it, or an OpenSSH private key such as id_ed25519) to restore from it. It is "
        "read into memory for this window only. Nothing was written.",
        QMessageBox.StandardButton.Close,
        parent,
    )
    box.setObjectName("backupLockedDialog")
    chosen = box.addButton("Open identity file…", QMessageBox.ButtonRole.AcceptRole)
    box.exec()
    if box.clickedButton() is not chosen:
        return None
    path, _ = QFileDialog.getOpenFileName(parent, "Identity that opens the backup")
    return Path(path) if path else None
