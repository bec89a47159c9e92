"""The one place that turns exceptions into what the operator reads, and shows it."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

from etcdadmin.core.errors import EtcdAdminError, EtcdUnavailable

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


def not_written(exc: BaseException, what: str) -> str:
    """A failed apply or undo in the operator's words: what happened, then what to do.

    The connection's own message names the internal step ("while trying to read the current
    revision"); the operator needs to know that nothing changed and what keeps their work.
    """
    if what == "undo":
        done, keep = "Nothing was undone", "Undo again"
    else:
        done, keep = "Your changes were not written", "They are still staged: apply again"
    if isinstance(exc, EtcdUnavailable):
        return (
            f"{done}: etcd did not answer. {keep} once the status bar says connected "
            f"again.\n\nDetails: {exc}"
        )
    return f"{done}. {describe(exc)}"
