"""The questions the pending-changes panel asks: confirm a plan, a conflict with re-base, and
restoring what a previous run left staged."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.changes import Plan
from etcdadmin.core.changes.commands import Conflict
from etcdadmin.core.changes.diff import diff_text
from etcdadmin.core.changes.recovery import Recovered
from etcdadmin.core.config.sensitive import is_secret
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.secrets.envelope import is_envelope
from etcdadmin.core.tree.names import display_segment
from etcdadmin.core.tree.valueformat import preview


def _show_value(kv: KeyValue | None, secret: bool = False) -> str:
    if kv is None:
        return "(absent)"
    if secret:
        # a conflict dialog ends up in screenshots and screen shares: secrets stay masked
        return f"(secret) (revision {kv.mod_revision})"
    return f"{preview(kv.value)!r} (revision {kv.mod_revision})"


def _secret(conflict: Conflict) -> bool:
    values = [kv.value for kv in (conflict.expected, conflict.actual) if kv is not None]
    return is_secret(display_segment(conflict.key), *values) or any(map(is_envelope, values))


def confirm_plan(parent: QWidget, plan: Plan, what: str, *, production: bool) -> bool:
    """Show the diff `plan` would write and ask (modal: the apply waits on the answer)."""
    dialog = QDialog(parent)
    dialog.setObjectName("confirmDialog")
    layout = QVBoxLayout(dialog)
    if production:
        dialog.setWindowTitle(f"{what.capitalize()} on PRODUCTION?")
        question = f"This connection is marked production. {what.capitalize()}?"
    else:
        dialog.setWindowTitle("Undo the last apply?")
        question = "Undo writes the values from before your last apply. Write this?"
    label = QLabel(question)
    label.setObjectName("confirmQuestion")
    layout.addWidget(label)
    view = QPlainTextEdit(diff_text(plan))
    view.setObjectName("confirmDiff")
    view.setReadOnly(True)
    view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    layout.addWidget(view)
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Cancel
    )
    buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.resize(640, 420)
    return dialog.exec() == QDialog.DialogCode.Accepted


def show_conflict(
    parent: QWidget, conflicts: tuple[Conflict, ...], rebase: Callable[[], None]
) -> None:
    """Say what changed and offer to re-base on it (non-modal; `rebase` runs on that button)."""
    lines = [
        f"{display_segment(c.key)}\n    you saw:  {_show_value(c.expected, _secret(c))}\n"
        f"    now:      {_show_value(c.actual, _secret(c))}"
        for c in conflicts
    ]
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        "Conflict: nothing was written",
        "These keys changed in etcd since you staged your changes, so nothing was "
        "written. Re-base keeps your new values and takes what etcd holds now as their "
        "basis; the pending diff then shows your change against the current values. "
        "Review it and apply again.\n\n" + "\n".join(lines),
        QMessageBox.StandardButton.Close,
        parent,
    )
    box.setObjectName("conflictDialog")
    button = box.addButton("Re-base on the current values", QMessageBox.ButtonRole.AcceptRole)
    button.setObjectName("rebaseButton")
    box.setDefaultButton(button)
    button.clicked.connect(rebase)
    # back to the window, whose Ctrl+Return applies: without a window manager to hand the
    # focus back, X would leave it nowhere
    box.finished.connect(lambda _: parent.window().activateWindow())
    box.open()


def ask_restore(
    parent: QWidget, profile: str, recovered: Recovered, answered: Callable[[bool], None]
) -> None:
    """Offer back what a previous run left staged (non-modal); `answered(restore)`."""
    count = len(recovered.changes)
    text = (
        f"{count} staged change{'s' if count != 1 else ''} of {profile!r} were not applied "
        "when etcdadmin last stopped (it was closed without asking, crashed or was killed). "
        "Restore them to the pending list? They keep the revisions they were staged at: a key "
        "changed since then is flagged, and applying reports the conflict."
    )
    if recovered.withheld:
        names = ", ".join(display_segment(key) for key in recovered.withheld)
        text += (
            f"\n\nNot kept, stage them again: {names}. Secret values are never written to "
            "disk, so these changes were recorded by their key only."
        )
    box = QMessageBox(QMessageBox.Icon.Question, "Restore staged changes?", text, parent=parent)
    box.setObjectName("restoreQuestion")
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Discard them", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(restore)
    box.buttonClicked.connect(lambda button: answered(button is restore))
    box.open()
