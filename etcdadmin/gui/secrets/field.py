"""The editor's view of a secret: masked, a new value typed blind, reveal and copy on request.

Nothing of the value is shown until the operator asks (Reveal); it is opened on a worker with
the operator's identity and hidden again after `REVEAL_SECONDS`. A copied value is cleared
from the clipboard after `CLIPBOARD_SECONDS`, unless the clipboard holds something else by
then (the operator copied something of their own since).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.secrets.envelope import summary
from etcdadmin.core.tree.valueformat import preview
from etcdadmin.gui.errors import describe
from etcdadmin.gui.icons import icon
from etcdadmin.gui.secrets.keeper import SecretKeeper
from etcdadmin.gui.workers import Task, run_task

log = logging.getLogger(__name__)

# Long enough to read or compare a value, short enough that a walk away does not leave it up.
REVEAL_SECONDS = 30.0
CLIPBOARD_SECONDS = 30.0


class SecretField(QWidget):
    """A secret in the editor.

    Signals:
        message(str): a line for the status bar (never the value).
        edited(): the operator typed in the new-value field.
    """

    message = Signal(str)
    edited = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("secretField")
        self.keeper: SecretKeeper | None = None
        self.key: bytes | None = None
        self.envelope: bytes | None = None
        self._task: Task | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        lock = QLabel()
        lock.setPixmap(icon("lock").pixmap(16, 16))
        head.addWidget(lock)
        self.summary = QLabel("")
        self.summary.setObjectName("secretSummary")
        self.summary.setWordWrap(True)
        head.addWidget(self.summary, 1)
        layout.addLayout(head)
        self.new_value = QLineEdit()
        self.new_value.setObjectName("secretNewValue")
        self.new_value.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_value.setPlaceholderText("••••• secret: type a new value to replace it")
        self.new_value.textEdited.connect(lambda _: self.edited.emit())
        layout.addWidget(self.new_value)
        row = QHBoxLayout()
        self.reveal_button = QPushButton("Reveal")
        self.reveal_button.setObjectName("revealButton")
        self.reveal_button.setToolTip(
            f"Decrypt with your identity and show the value for {REVEAL_SECONDS:.0f} s"
        )
        self.reveal_button.clicked.connect(self.reveal)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setObjectName("copySecretButton")
        self.copy_button.setToolTip(
            f"Copy the value; the clipboard is cleared after {CLIPBOARD_SECONDS:.0f} s"
        )
        self.copy_button.clicked.connect(self.copy)
        row.addWidget(self.reveal_button)
        row.addWidget(self.copy_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.revealed = QLineEdit()
        self.revealed.setObjectName("revealedValue")
        self.revealed.setReadOnly(True)
        self.revealed.hide()
        layout.addWidget(self.revealed)
        layout.addStretch(1)
        self._hide_timer = QTimer(self)
        self._hide_timer.setSingleShot(True)
        self._hide_timer.timeout.connect(self.hide_value)

    def show_envelope(self, keeper: SecretKeeper, key: bytes, envelope: bytes) -> None:
        """Show that `key` holds a secret: its fingerprint and recipients, nothing of its value."""
        self.hide_value()
        self.keeper, self.key, self.envelope = keeper, key, envelope
        info = summary(envelope)
        recipients = ", ".join(info.recipients) or "unknown recipients"
        self.summary.setText(f"secret {info.fingerprint}, encrypted to {recipients}")
        self.new_value.clear()

    def clear(self) -> None:
        self.hide_value()
        self.key = self.envelope = None
        self.summary.setText("")
        self.new_value.clear()

    def typed(self) -> bytes:
        """The new value typed (empty: none)."""
        return self.new_value.text().encode("utf-8")

    def has_input(self) -> bool:
        return bool(self.new_value.text())

    # -- reveal and copy: opened on a worker, on request only -------------------------------

    def _open(self, then: str) -> None:
        if self.keeper is None or self.key is None or self.envelope is None:
            return
        if self._task is not None:
            self._task.cancel()
        keeper, key, envelope = self.keeper, self.key, self.envelope

        def opened(value: bytes) -> None:
            if key != self.key:
                return  # another key was opened meanwhile
            if then == "reveal":
                self._show_value(value)
            else:
                self._copy_value(value)

        self._task = run_task(
            "open secret",
            lambda task: keeper.open(key, envelope),
            opened,
            lambda exc: self.message.emit(f"Cannot open the secret: {describe(exc)}"),
            owner=self,
        )

    def reveal(self) -> None:
        self._open("reveal")

    def copy(self) -> None:
        self._open("copy")

    def _show_value(self, value: bytes) -> None:
        self.revealed.setText(preview(value))
        self.revealed.show()
        self._hide_timer.start(int(REVEAL_SECONDS * 1000))
        log.info("a secret was revealed")
        self.message.emit(f"revealed for {REVEAL_SECONDS:.0f} s")

    def hide_value(self) -> None:
        self._hide_timer.stop()
        self.revealed.clear()
        self.revealed.hide()

    def _copy_value(self, value: bytes) -> None:
        text = preview(value)
        clipboard = QGuiApplication.clipboard()
        clipboard.setText(text)
        log.info("a secret was copied to the clipboard")
        self.message.emit(f"copied; the clipboard is cleared in {CLIPBOARD_SECONDS:.0f} s")

        def forget() -> None:
            # only our own copy: something the operator copied since is theirs to keep
            if clipboard.text() == text:
                clipboard.clear()

        # not parented to this widget: the clipboard is cleared even after the window closed
        QTimer.singleShot(int(CLIPBOARD_SECONDS * 1000), forget)
