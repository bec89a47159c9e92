"""Answering the client's modal questions from a test, as the operator would click them."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QPlainTextEdit, QWidget

# How often a scheduled answer looks for the dialog it is waiting for (a modal dialog's exec()
# runs its own event loop, so the test's code can only act from a timer inside it).
POLL_MS = 20


def dialog_text(dialog: QWidget) -> str:
    """Everything a dialog shows in words: its labels and text views."""
    parts = [label.text() for label in dialog.findChildren(QLabel)]
    parts += [view.toPlainText() for view in dialog.findChildren(QPlainTextEdit)]
    return "\n".join(parts)


def answer_next_dialog(button: str, seen: list[str]) -> None:
    """When the next modal dialog opens, note what it shows in `seen` and click the button
    whose text contains `button` (the `&` of mnemonics ignored)."""

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(POLL_MS, answer)
            return
        seen.append(f"{dialog.windowTitle()}\n{dialog_text(dialog)}")
        for candidate in dialog.findChildren(QAbstractButton):
            if button.lower() in candidate.text().replace("&", "").lower():
                candidate.click()
                return
        raise AssertionError(f"no button {button!r} in the dialog {dialog.windowTitle()!r}")

    QTimer.singleShot(0, answer)
