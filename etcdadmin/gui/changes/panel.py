"""Pending changes: the staged list, its diff, and applying it as one guarded transaction."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.changes import (
    Applied,
    Batch,
    ChangeConflict,
    ChangeSet,
    PendingChange,
    Plan,
    Workspace,
)
from etcdadmin.core.changes.diff import diff_text
from etcdadmin.core.errors import ReadOnlyConnection
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.tree.names import display_segment
from etcdadmin.core.tree.valueformat import preview
from etcdadmin.gui.errors import describe, show_error
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import Task, run_task


def _show_value(kv: KeyValue | None) -> str:
    if kv is None:
        return "(absent)"
    return f"{preview(kv.value)!r} (revision {kv.mod_revision})"


class ChangesPanel(QWidget):
    """The staged changes of the connected session, their diff, apply and undo.

    The rules (read-only refuses, production asks before apply and undo, what an apply takes
    off the list) live in the core's `Workspace`; this panel shows it and runs its etcd calls
    on workers.

    Signals:
    applied(int): the revision the changes were applied at.
    message(str): a line for the status bar.
    """

    applied = Signal(int)
    message = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("changesPanel")
        self.session: Session | None = None
        self.workspace = Workspace(confirm=self._confirm)
        self._plan_task: Task | None = None
        layout = QVBoxLayout(self)
        self.header = QLabel("No pending changes")
        layout.addWidget(self.header)
        split = QSplitter(Qt.Orientation.Vertical)
        self.list = QListWidget()
        self.list.setObjectName("pendingList")
        split.addWidget(self.list)
        self.diff = QPlainTextEdit()
        self.diff.setObjectName("pendingDiff")
        self.diff.setReadOnly(True)
        self.diff.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        split.addWidget(self.diff)
        layout.addWidget(split, 1)
        buttons = QHBoxLayout()
        self.apply_button = QPushButton("Apply all")
        self.apply_button.setObjectName("applyButton")
        self.apply_button.setToolTip("Apply every pending change as one transaction (Ctrl+Return)")
        self.apply_button.clicked.connect(self.apply)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.discard_button = QPushButton("Discard all")
        self.discard_button.clicked.connect(self.discard)
        self.undo_button = QPushButton("Undo last apply")
        self.undo_button.setObjectName("undoButton")
        self.undo_button.setToolTip("Apply the inverse of the last applied change (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo)
        for b in (self.apply_button, self.remove_button, self.discard_button, self.undo_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self._replan = QTimer(self)
        self._replan.setSingleShot(True)
        self._replan.setInterval(150)
        self._replan.timeout.connect(self._plan)
        self._refresh()

    @property
    def changes(self) -> ChangeSet:
        """What is staged now."""
        return self.workspace.staged

    def set_session(self, session: Session | None, production: bool, read_only: bool) -> None:
        """A new connection (None: disconnected) starts with nothing staged and nothing to undo;
        a plan still running for the old one is dropped, and so are its apply's results."""
        if self._plan_task is not None:
            self._plan_task.cancel()
            self._plan_task = None
        self._replan.stop()
        self.session = session
        self.workspace = Workspace(
            read_only=read_only, production=production, confirm=self._confirm
        )
        self._refresh()

    def stage(self, change: PendingChange) -> None:
        try:
            self.workspace.stage(change)
        except ReadOnlyConnection as exc:
            self.message.emit(describe(exc))
            return
        self._refresh()

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.workspace.remove(row)
            self._refresh()

    def discard(self) -> None:
        self.workspace.discard()
        self._refresh()

    def _refresh(self) -> None:
        workspace = self.workspace
        self.list.clear()
        for change in workspace.staged:
            self.list.addItem(change.describe())
        count = len(workspace.staged)
        self.header.setText(
            f"{count} pending change{'s' if count != 1 else ''}" if count else "No pending changes"
        )
        writable = self.session is not None and not workspace.read_only
        self.apply_button.setEnabled(count > 0 and writable)
        self.remove_button.setEnabled(count > 0)
        self.discard_button.setEnabled(count > 0)
        self.undo_button.setEnabled(bool(workspace.undo_stack) and writable)
        if count:
            self._replan.start()
        else:
            self.diff.setPlainText("")

    def _plan(self) -> None:
        if self.session is None or not len(self.workspace.staged):
            return
        conn = self.session.conn
        snapshot = self.workspace.snapshot()
        if self._plan_task is not None:
            self._plan_task.cancel()
        self._plan_task = run_task(
            "plan changes",
            lambda task: snapshot.plan(conn),
            self._planned,
            lambda exc: self.diff.setPlainText(describe(exc)),
        )

    def _planned(self, plan: Plan) -> None:
        text = diff_text(plan)
        if plan.stale:
            keys = ", ".join(display_segment(c.key) for c in plan.stale)
            text = f"!! changed by someone else since staged: {keys}\n\n" + text
        self.diff.setPlainText(text)

    def apply(self) -> None:
        """Plan on a worker, confirm on production, apply on a worker: one transaction.

        Works on a snapshot of the list and of the session taken now: changes staged while
        it runs stay pending, and a result that arrives after a reconnect is dropped.
        """
        workspace = self.workspace
        if self.session is None or not len(workspace.staged) or workspace.read_only:
            return
        self._run(workspace.begin_apply())

    def undo(self) -> None:
        workspace = self.workspace
        if self.session is None or not workspace.undo_stack or workspace.read_only:
            return
        self._run(workspace.begin_undo())

    def _run(self, batch: Batch) -> None:
        session, workspace = self.session, self.workspace
        assert session is not None
        conn = session.conn
        what = batch.what
        self.apply_button.setEnabled(False)
        self.undo_button.setEnabled(False)

        def current() -> bool:
            # a reconnect replaced the session (and its workspace): drop this result
            return self.session is session and self.workspace is workspace

        def planned(plan: Plan) -> None:
            if not current():
                return
            if not workspace.approve(batch, plan):
                self.message.emit(f"{what} cancelled")
                self._refresh()
                return
            self.message.emit(f"{what} …")
            run_task(
                what,
                lambda task: batch.write(conn, plan),
                lambda applied: self._finished(batch, applied) if current() else None,
                lambda exc: self._apply_failed(exc) if current() else None,
            )

        run_task(
            f"plan {what}",
            lambda task: batch.plan(conn),
            planned,
            lambda exc: self._apply_failed(exc) if current() else None,
        )

    def _finished(self, batch: Batch, applied: Applied) -> None:
        self.workspace.finish(batch, applied)
        self._refresh()
        done = "applied" if batch.source is None else "undone"
        self.message.emit(f"{done} at revision {applied.revision}")
        self.applied.emit(applied.revision)

    def _confirm(self, plan: Plan, what: str) -> bool:
        dialog = QDialog(self)
        dialog.setWindowTitle(f"{what.capitalize()} on PRODUCTION?")
        dialog.setObjectName("confirmDialog")
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel(f"This connection is marked production. {what.capitalize()}?"))
        view = QPlainTextEdit(diff_text(plan))
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

    def _apply_failed(self, exc: BaseException) -> None:
        self._refresh()
        if isinstance(exc, ChangeConflict):
            lines = [
                f"{display_segment(c.key)}\n    you saw:  {_show_value(c.expected)}\n"
                f"    now:      {_show_value(c.actual)}"
                for c in exc.conflicts
            ]
            show_error(
                self,
                "Conflict: nothing was written",
                "Someone else changed these keys since you staged your changes. Nothing was "
                "written; review, re-stage and apply again.\n\n" + "\n".join(lines),
            )
            self.message.emit("conflict: nothing was written")
        else:
            show_error(self, "Apply failed", exc)
            self.message.emit(describe(exc))
