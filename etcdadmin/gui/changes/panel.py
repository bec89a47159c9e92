"""Pending changes: the staged list, its diff, and applying it as one guarded transaction."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.access.permits import Permits
from etcdadmin.core.changes import (
    Applied,
    Batch,
    ChangeConflict,
    ChangeSet,
    PendingChange,
    Plan,
    SetValue,
    Workspace,
    read_current,
)
from etcdadmin.core.changes.commands import Conflict
from etcdadmin.core.changes.diff import diff_text
from etcdadmin.core.changes.recovery import Recovered, RecoveryError, StagedWork
from etcdadmin.core.errors import ReadOnlyConnection
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.releases.history import publisher
from etcdadmin.core.secrets.envelope import fingerprint, is_envelope
from etcdadmin.core.tree.names import display_segment
from etcdadmin.gui.changes.dialogs import ask_restore, confirm_plan, show_conflict
from etcdadmin.gui.errors import describe, not_written, show_error
from etcdadmin.gui.icons import icon
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import Task, run_task

# The mark of a row whose key changed in etcd since it was staged (the watch tells at once).
STALE_MARK = "⚠ "


class ChangesPanel(QWidget):
    """The staged changes of the connected session, their diff, apply and undo.

    The rules (read-only refuses, production asks before apply and undo, undo asks everywhere,
    one staged change per key, what an apply takes off the list) live in the core's
    `Workspace`; this panel shows it and runs its etcd calls on workers. The session's watch
    re-plans the diff when a staged key changes, so a row is flagged as soon as etcd moves
    under it, not at apply.

    Signals:
    applied(int): the revision the changes were applied at.
    failed(): an apply or undo wrote nothing (a conflict, an error, or the operator said no).
    discarded(object): the keys (set[bytes]) whose staged changes the operator dropped.
    message(str): a line for the status bar.
    """

    applied = Signal(int)
    failed = Signal()
    discarded = Signal(object)
    message = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("changesPanel")
        self.session: Session | None = None
        self.workspace = Workspace(confirm=self._confirm, ask_before_undo=True)
        # What the connection's user may write, once known: a change it may not write is
        # refused when staged, named by user and directory, rather than failing at apply.
        self.permits: Permits | None = None
        self._plan_task: Task | None = None
        self.stale: dict[bytes, Conflict] = {}
        # Where the staged list is kept for the next start; None until the operator answered
        # whether to restore what a previous run left (saving earlier would overwrite it).
        self.recovery: StagedWork | None = None
        layout = QVBoxLayout(self)
        self.header = QLabel("No pending changes")
        layout.addWidget(self.header)
        # Errors go here, never into the diff: the operator keeps what they were reviewing.
        self.problem = QLabel("")
        self.problem.setObjectName("pendingProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0392b")
        self.problem.hide()
        layout.addWidget(self.problem)
        split = QSplitter(Qt.Orientation.Vertical)
        self.list = QListWidget()
        self.list.setObjectName("pendingList")
        self.list.setIconSize(QSize(16, 16))  # the lock of a secret row, as small as the tree's
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

    def set_session(
        self,
        session: Session | None,
        production: bool,
        read_only: bool,
        recovery: StagedWork | None = None,
    ) -> None:
        """A new connection (None: disconnected) starts with nothing staged and nothing to undo;
        a plan still running for the old one is dropped, and so are its apply's results.

        With `recovery`, what a previous run of this profile left staged is offered back, and
        from then on the staged list is kept there."""
        if self._plan_task is not None:
            self._plan_task.cancel()
            self._plan_task = None
        self._replan.stop()
        self.session = session
        self.permits = None
        self.workspace = Workspace(
            read_only=read_only,
            production=production,
            confirm=self._confirm,
            ask_before_undo=True,
            # every apply and undo from the client is recorded in the release history
            publisher=publisher(session.settings) if session is not None else None,
        )
        self.stale = {}
        self.recovery = None
        self._refresh()
        if session is not None and recovery is not None and not read_only:
            self._offer_recovered(recovery)

    def _offer_recovered(self, recovery: StagedWork) -> None:
        try:
            recovered = recovery.load()
        except RecoveryError as exc:
            self._show_problem(describe(exc))
            recovered = None
        if recovered is None:
            self.recovery = recovery
            return
        workspace = self.workspace
        ask_restore(
            self,
            recovery.profile,
            recovered,
            lambda restore: self._recovered(workspace, recovery, recovered, restore),
        )

    def _recovered(
        self, workspace: Workspace, recovery: StagedWork, recovered: Recovered, restore: bool
    ) -> None:
        if self.workspace is not workspace:
            return  # answered after a reconnect: the question was about another connection
        if restore:
            for change in recovered.changes:
                workspace.stage(change)
            self.message.emit(f"restored {len(recovered.changes)} staged changes")
        self.recovery = recovery
        self._refresh()

    def set_permits(self, permits: Permits) -> None:
        self.permits = permits

    def stage(self, change: PendingChange, reread: bool = False) -> None:
        """Stage `change`, replacing a staged change of the same keys (see `Workspace.stage`);
        `reread`: the operator's view of the key was read again since it was first staged.
        A change the user may not write is refused, saying what the user lacks."""
        if self.permits is not None and self.session is not None:
            refusal = self.permits.refusal(self.session.settings, change.keys(), "stage a change")
            if refusal:
                self._show_problem(f"Not staged: {refusal}")
                self.message.emit(f"not staged: {refusal}")
                return
        try:
            self.workspace.stage(change, reread=reread)
        except ReadOnlyConnection as exc:
            self.message.emit(describe(exc))
            return
        self._refresh()

    def keys_changed(self, changed: set[bytes]) -> None:
        """The watch saw `changed` keys: re-plan now when a staged change depends on one."""
        if self.workspace.staged.rows_touching(changed):
            self._replan.stop()
            self._plan()

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            removed = self.workspace.remove(row)
            self._refresh()
            self.discarded.emit(set(removed.keys()))

    def discard(self) -> None:
        keys: set[bytes] = set()
        for change in self.workspace.staged:
            keys.update(change.keys())
        self.workspace.discard()
        self._refresh()
        self.discarded.emit(keys)

    def _refresh(self) -> None:
        workspace = self.workspace
        self.list.clear()
        stale_rows = {
            row: conflict
            for key, conflict in self.stale.items()
            for row in workspace.staged.rows_touching([key])
        }
        for row, change in enumerate(workspace.staged):
            item = QListWidgetItem(change.describe())
            item.setToolTip(change.describe())  # a long key name is cut in the row
            if isinstance(change, SetValue) and is_envelope(change.value):
                item.setIcon(icon("lock"))
                item.setToolTip(f"{change.describe()}: a secret, {fingerprint(change.value)}")
            conflict = stale_rows.get(row)
            if conflict is not None:
                item.setText(f"{STALE_MARK}{change.describe()} (changed in etcd)")
                item.setToolTip(
                    f"{conflict.describe()}. Applying will report a conflict: re-stage it from "
                    "the current value, or re-base after the conflict."
                )
            self.list.addItem(item)
        count = len(workspace.staged)
        self.header.setText(
            f"{count} pending change{'s' if count != 1 else ''}" if count else "No pending changes"
        )
        writable = self.session is not None and not workspace.read_only
        self.apply_button.setEnabled(count > 0 and writable)
        self.remove_button.setEnabled(count > 0)
        self.discard_button.setEnabled(count > 0)
        self.undo_button.setEnabled(bool(workspace.undo_stack) and writable)
        if self.recovery is not None:
            try:
                self.recovery.save(workspace.staged)
            except RecoveryError as exc:
                self._show_problem(describe(exc))
        if self._plan_task is not None:
            # planned on a list that no longer is: its flags would be wrong; the timer re-plans
            self._plan_task.cancel()
            self._plan_task = None
        if count:
            self._replan.start()
        else:
            self.diff.setPlainText("")
            self.stale = {}
            self._show_problem("")

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))

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
            lambda exc: self._show_problem(
                f"The diff could not be brought up to date: {describe(exc)}"
            ),
        )

    def _planned(self, plan: Plan) -> None:
        text = diff_text(plan)
        if plan.stale:
            keys = ", ".join(display_segment(c.key) for c in plan.stale)
            text = f"!! changed by someone else since staged: {keys}\n\n" + text
        self.diff.setPlainText(text)
        self._show_problem("")
        stale = {c.key: c for c in plan.stale}
        if stale != self.stale:
            self.stale = stale
            self._refresh_rows()

    def _refresh_rows(self) -> None:
        """Redraw the rows without re-planning (the plan that flagged them is current)."""
        running = self._replan.isActive()
        self._refresh()
        if not running:
            self._replan.stop()

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
                self.failed.emit()
                return
            self.message.emit(f"{what} …")
            run_task(
                what,
                lambda task: batch.write(conn, plan),
                lambda applied: self._finished(batch, applied) if current() else None,
                lambda exc: self._apply_failed(exc, what) if current() else None,
            )

        run_task(
            f"plan {what}",
            lambda task: batch.plan(conn),
            planned,
            lambda exc: self._apply_failed(exc, what) if current() else None,
        )

    def _finished(self, batch: Batch, applied: Applied) -> None:
        self.workspace.finish(batch, applied)
        self._refresh()
        done = "applied" if batch.source is None else "undone"
        self.message.emit(f"{done} at revision {applied.revision}")
        self.applied.emit(applied.revision)

    def _confirm(self, plan: Plan, what: str) -> bool:
        return confirm_plan(self, plan, what, production=self.workspace.production)

    def _apply_failed(self, exc: BaseException, what: str = "apply") -> None:
        self._refresh()
        self.failed.emit()
        if isinstance(exc, ChangeConflict):
            self._show_conflict(exc.conflicts)
            self.message.emit("conflict: nothing was written")
        else:
            text = not_written(exc, what)
            show_error(self, f"{what.capitalize()}: nothing was written", text)
            self.message.emit(text.split("\n", 1)[0])

    def _show_conflict(self, conflicts: tuple[Conflict, ...]) -> None:
        keys = [c.key for c in conflicts]
        show_conflict(self, conflicts, lambda: self.rebase(keys))

    def rebase(self, keys: list[bytes]) -> None:
        """Re-read `keys` on a worker and base their staged changes on what etcd holds now."""
        session, workspace = self.session, self.workspace
        if session is None:
            return
        conn = session.conn

        def done(current: dict[bytes, KeyValue | None]) -> None:
            if self.session is not session or self.workspace is not workspace:
                return
            rows = workspace.rebase(current)
            self.stale = {}
            self._refresh()
            self.message.emit(
                f"re-based {len(rows)} change{'s' if len(rows) != 1 else ''} on the current "
                "values: review the diff, then apply"
            )

        run_task(
            "re-read keys",
            lambda task: read_current(conn, keys),
            done,
            lambda exc: self._show_problem(f"Re-base failed: {describe(exc)}"),
        )
