"""The gray releases of a directory and its release history, under the agents table.

Views only: every read and write is the core's (`etcdadmin.core.releases`), run off the UI
thread with `run_task`; results come back to the UI thread as callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.changes.desired import DesiredPlan
from etcdadmin.core.changes.desired_display import render_plan
from etcdadmin.core.releases.gray import GrayRelease, read_releases
from etcdadmin.core.releases.history import PublishRecord, publisher, read_history
from etcdadmin.core.releases.publish import abandon_release, promote_release
from etcdadmin.core.releases.rollback import apply_rollback, plan_rollback
from etcdadmin.gui.errors import describe, show_error
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import run_task

RELEASE_COLUMNS = ("Gray release", "Targets", "Keys", "By", "Created")
HISTORY_COLUMNS = ("Revision", "Publish", "By", "When", "Keys")


def _table(name: str, columns: tuple[str, ...], stretch: int) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(columns)
    table.horizontalHeader().setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
    return table


def _fill(table: QTableWidget, rows: list[tuple[str, ...]]) -> None:
    table.setRowCount(len(rows))
    for row, cells in enumerate(rows):
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            table.setItem(row, col, item)


class ReleasesBox(QWidget):
    """Active gray releases (Promote, Abandon) and the history (Roll back to this).

    Signals:
    message(str): a line for the status bar.
    published(): something was written; the agents view should re-read.
    """

    message = Signal(str)
    published = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.session: Session | None = None
        self.directory: bytes | None = None
        self.production = False
        self.read_only = False
        self.releases: list[GrayRelease] = []
        self.records: list[PublishRecord] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Gray releases (published to chosen agents only)"))
        self.release_table = _table("grayReleases", RELEASE_COLUMNS, 1)
        layout.addWidget(self.release_table, 1)
        buttons = QHBoxLayout()
        self.promote_button = QPushButton("Promote")
        self.promote_button.setObjectName("promoteRelease")
        self.promote_button.setToolTip("Write the release into the directory for every agent")
        self.abandon_button = QPushButton("Abandon")
        self.abandon_button.setObjectName("abandonRelease")
        self.abandon_button.setToolTip("Remove the release: its agents return to the directory")
        for button in (self.promote_button, self.abandon_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("Releases (every publish to this directory, newest first)"))
        self.history_table = _table("releaseHistory", HISTORY_COLUMNS, 4)
        layout.addWidget(self.history_table, 1)
        self.rollback_button = QPushButton("Roll back to this")
        self.rollback_button.setObjectName("rollBack")
        layout.addWidget(self.rollback_button)
        self.promote_button.clicked.connect(self.promote_selected)
        self.abandon_button.clicked.connect(self.abandon_selected)
        self.rollback_button.clicked.connect(self.roll_back_selected)
        self.release_table.itemSelectionChanged.connect(self._update_buttons)
        self.history_table.itemSelectionChanged.connect(self._update_buttons)
        self._update_buttons()

    def set_session(self, session: Session | None, production: bool, read_only: bool) -> None:
        self.session, self.production, self.read_only = session, production, read_only
        self.directory = None
        self.releases, self.records = [], []
        _fill(self.release_table, [])
        _fill(self.history_table, [])
        self._update_buttons()

    def set_directory(self, directory: bytes) -> None:
        self.directory = directory
        self.refresh()

    def refresh(self) -> None:
        if self.session is None or self.directory is None:
            return
        conn, directory = self.session.conn, self.directory

        def read(task: Any) -> tuple[list[GrayRelease], list[PublishRecord]]:
            return read_releases(conn, directory), read_history(conn, directory)

        run_task(
            "read releases",
            read,
            lambda found: self._show(*found) if self.directory == directory else None,
            lambda exc: self.message.emit(describe(exc)),
            owner=self,
        )

    def _show(self, releases: list[GrayRelease], records: list[PublishRecord]) -> None:
        selected = self.selected_release()
        self.releases, self.records = releases, list(reversed(records))
        _fill(
            self.release_table,
            [
                (r.release_id, r.describe_targets(), str(len(r.keys)), r.who, r.created_at)
                for r in releases
            ],
        )
        _fill(
            self.history_table,
            [
                (
                    str(r.revision),
                    r.kind
                    + (f" {r.release}" if r.release else "")
                    + (f" ({r.detail})" if r.detail else ""),
                    r.who,
                    r.when,
                    ", ".join(r.keys),
                )
                for r in self.records
            ],
        )
        if selected is not None:
            for row, r in enumerate(releases):
                if r.release_id == selected.release_id:
                    self.release_table.selectRow(row)
        self._update_buttons()

    def selected_release(self) -> GrayRelease | None:
        rows = {index.row() for index in self.release_table.selectedIndexes()}
        return self.releases[min(rows)] if rows and min(rows) < len(self.releases) else None

    def selected_record(self) -> PublishRecord | None:
        rows = {index.row() for index in self.history_table.selectedIndexes()}
        return self.records[min(rows)] if rows and min(rows) < len(self.records) else None

    def _update_buttons(self) -> None:
        writable = self.session is not None and not self.read_only
        release = writable and self.selected_release() is not None
        self.promote_button.setEnabled(release)
        self.abandon_button.setEnabled(release)
        self.rollback_button.setEnabled(writable and self.selected_record() is not None)

    # -- actions ----------------------------------------------------------------------------

    def promote_selected(self) -> None:
        release = self.selected_release()
        if release is None or self.session is None:
            return
        question = (
            f"Write gray release {release.release_id} ({len(release.keys)} keys) into the "
            "directory for every agent, and remove it?"
        )
        if self.production and not self._ask("Promote on PRODUCTION?", question):
            return
        self._write(
            "promote",
            lambda conn, who: promote_release(
                conn, release.release_id, who=who, directory=release.directory
            ),
            f"promoted {release.release_id}",
        )

    def abandon_selected(self) -> None:
        release = self.selected_release()
        if release is None or self.session is None:
            return
        question = f"Remove gray release {release.release_id}? Its agents return to the directory."
        if self.production and not self._ask("Abandon on PRODUCTION?", question):
            return
        self._write(
            "abandon",
            lambda conn, who: abandon_release(
                conn, release.release_id, who=who, directory=release.directory
            ),
            f"abandoned {release.release_id}",
        )

    def roll_back_selected(self) -> None:
        """Plan the rollback on a worker, show its diff, and write it once confirmed."""
        record = self.selected_record()
        if record is None or self.session is None or self.directory is None:
            return
        conn, directory, revision = self.session.conn, self.directory, record.revision
        run_task(
            "plan the rollback",
            lambda task: plan_rollback(conn, directory, revision),
            lambda plan: self._confirm_rollback(plan, revision),
            lambda exc: show_error(self, "Roll back: nothing was written", exc),
            owner=self,
        )

    def _confirm_rollback(self, plan: DesiredPlan, revision: int) -> None:
        if plan.empty:
            self.message.emit(f"the directory already holds its keys as of revision {revision}")
            return
        if not confirm_rollback(self, plan, revision, production=self.production):
            self.message.emit("roll back cancelled: nothing was written")
            return
        self._write(
            "roll back",
            lambda conn, who: apply_rollback(conn, plan, revision, who=who),
            f"rolled back to revision {revision}",
        )

    def _ask(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self, title, question)
        return answer == QMessageBox.StandardButton.Yes

    def _write(self, what: str, work: Callable[[Any, str], Any], done: str) -> None:
        assert self.session is not None
        conn, who = self.session.conn, publisher(self.session.settings)

        def finished(result: Any) -> None:
            self.message.emit(f"{done}: {result.describe()}")
            self.refresh()
            self.published.emit()

        run_task(
            what,
            lambda task: work(conn, who),
            finished,
            lambda exc: show_error(self, f"{what.capitalize()}: see what was written", exc),
            owner=self,
        )


def confirm_rollback(
    parent: QWidget, plan: DesiredPlan, revision: int, *, production: bool
) -> bool:
    """The rollback's diff (secrets masked), and the question; modal."""
    dialog = QDialog(parent)
    dialog.setObjectName("rollbackDialog")
    where = " on PRODUCTION" if production else ""
    dialog.setWindowTitle(f"Roll back to revision {revision}{where}?")
    layout = QVBoxLayout(dialog)
    layout.addWidget(QLabel(f"The directory will hold exactly its keys as of revision {revision}:"))
    view = QPlainTextEdit(render_plan(plan))
    view.setReadOnly(True)
    view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    layout.addWidget(view)
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Cancel
    )
    buttons.button(QDialogButtonBox.StandardButton.Apply).setText("Roll back")
    buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.resize(640, 420)
    return dialog.exec() == QDialog.DialogCode.Accepted
