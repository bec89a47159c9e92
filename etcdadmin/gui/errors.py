"""The one place that turns exceptions into what the operator reads, and shows it."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

from etcdadmin.core.errors import EtcdAdminError

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """Our own errors already say what to do; anything else is a bug and says so."""
    if isinstance(exc, EtcdAdminError):
        return str(exc)
    log.error("unexpected error", exc_info=exc)
    return f"Unexpected error ({type(exc).__name__}). Details are in the log."


def show_error(parent: QWidget | None, title: str, exc: BaseException | str) -> None:
    text = exc if isinstance(exc, str) else describe(exc)
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.open()
