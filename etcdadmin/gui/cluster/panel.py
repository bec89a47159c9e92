"""Cluster health: members, leader, versions, DB sizes, alarms; compaction and defragment."""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.etcd import MemberStatus
from etcdadmin.gui.errors import describe, show_error
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import Task, run_task

COLUMNS = ("Member", "Endpoint", "Leader", "Version", "DB size", "Raft index")


def read_cluster(session: Session) -> tuple[list[tuple[str, str, MemberStatus | str]], list]:
    conn = session.conn
    rows: list[tuple[str, str, MemberStatus | str]] = []
    for member in conn.members():
        endpoint = (member.client_urls[0] if member.client_urls else "").split("://")[-1]
        try:
            status: MemberStatus | str = conn.member_status(endpoint)
        except EtcdAdminError as exc:
            status = str(exc)
        rows.append((member.name or f"{member.member_id:x}", endpoint, status))
    return rows, conn.alarms()


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


REFRESH_MS = 2000


class ClusterPanel(QWidget):
    """Signals:
    message(str): a line for the status bar.
    """

    message = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("clusterPanel")
        self.session: Session | None = None
        layout = QVBoxLayout(self)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("membersTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.compact_button = QPushButton("Compact history…")
        self.compact_button.setObjectName("compactButton")
        self.compact_button.clicked.connect(self.compact)
        self.defrag_button = QPushButton("Defragment…")
        self.defrag_button.clicked.connect(self.defragment)
        for b in (self.refresh_button, self.compact_button, self.defrag_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.revision = 0
        self._task: Task | None = None
        # The members' raft index and DB size move with every write: follow the session's
        # revision, at most one read of every member per REFRESH_MS however busy etcd is.
        self._follow = QTimer(self)
        self._follow.setSingleShot(True)
        self._follow.setInterval(REFRESH_MS)
        self._follow.timeout.connect(self.refresh)

    def revision_changed(self, revision: int) -> None:
        """The cluster moved (the session's watch says so): read it again soon."""
        if self.session is not None and revision != self.revision and not self._follow.isActive():
            self._follow.start()

    def set_session(self, session: Session | None, read_only: bool = False) -> None:
        self._follow.stop()
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.session = session
        self.revision = 0
        self.compact_button.setEnabled(not read_only)
        self.defrag_button.setEnabled(not read_only)
        self.table.setRowCount(0)
        self.summary.setText("")
        if session is not None:
            self.refresh()

    def refresh(self) -> None:
        if self.session is None:
            return
        session = self.session
        self._task = run_task(
            "read cluster",
            lambda task: read_cluster(session),
            self._show,
            lambda exc: self.summary.setText(describe(exc)),
            owner=self,
        )

    def _show(self, result: tuple[list[tuple[str, str, MemberStatus | str]], list]) -> None:
        rows, alarms = result
        self.revision = 0
        self.table.setRowCount(len(rows))
        leaders = {s.leader for _, _, s in rows if isinstance(s, MemberStatus)}
        for row, (name, endpoint, status) in enumerate(rows):
            if isinstance(status, MemberStatus):
                self.revision = max(self.revision, status.revision)
                cells = (
                    name,
                    endpoint,
                    "leader" if status.member_id in leaders else "",
                    status.version,
                    _size(status.db_size),
                    str(status.raft_index),
                )
            else:
                cells = (name, endpoint, "", "unreachable", "", status)
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        alarm_text = ", ".join(f"{name} on {member:x}" for member, name in alarms) or "none"
        self.summary.setText(f"{len(rows)} member(s); alarms: {alarm_text}")

    def compact(self) -> None:
        if self.session is None or not self.revision or not self.compact_button.isEnabled():
            return
        answer = QMessageBox.question(
            self,
            "Compact history",
            f"Discard all key history before revision {self.revision}? Earlier values can no "
            "longer be shown or restored afterwards.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        conn, revision = self.session.conn, self.revision
        run_task(
            "compact",
            lambda task: conn.compact(revision),
            lambda _: self.message.emit(f"history compacted up to revision {revision}"),
            lambda exc: show_error(self, "Compaction failed", exc),
        )

    def _defragmented(self) -> None:
        self.message.emit("defragmented")
        self.refresh()

    def defragment(self) -> None:
        if self.session is None or not self.defrag_button.isEnabled():
            return
        answer = QMessageBox.question(
            self,
            "Defragment",
            "Defragment the member this client talks to? It blocks that member's reads and "
            "writes while it runs (seconds on a large database).",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        conn = self.session.conn
        run_task(
            "defragment",
            lambda task: conn.defragment(),
            lambda _: self._defragmented(),
            lambda exc: show_error(self, "Defragment failed", exc),
        )
