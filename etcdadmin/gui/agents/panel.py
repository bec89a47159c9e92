"""The agents publishing status for the selected directory, whether they are behind, which gray
release each runs, and below them the directory's gray releases and release history."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.agents.status import AgentsView, read_agents, status_prefix_for
from etcdadmin.core.releases.gray import gray_prefix
from etcdadmin.core.releases.history import records_prefix
from etcdadmin.core.tree.names import display_segment
from etcdadmin.gui.agents.releases import ReleasesBox
from etcdadmin.gui.errors import describe
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import run_task

COLUMNS = (
    "Agent",
    "Labels",
    "Release",
    "Applied revision",
    "Last result",
    "Last error",
    "Updated",
    "State",
)
STATE = COLUMNS.index("State")
REFRESH_MS = 5000


class AgentsPanel(QWidget):
    """Signals:
    message(str): a line for the status bar.
    """

    message = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("agentsPanel")
        self.session: Session | None = None
        self.directory: bytes | None = None
        layout = QVBoxLayout(self)
        self.header = QLabel("Select a directory to see the agents that serve it")
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("agentsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(
            COLUMNS.index("Last error"), QHeaderView.ResizeMode.Stretch
        )
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.releases = ReleasesBox()
        self.releases.message.connect(self.message)
        self.releases.published.connect(self.refresh)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.releases)
        layout.addWidget(split, 1)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    def set_session(
        self, session: Session | None, production: bool = False, read_only: bool = False
    ) -> None:
        self.session = session
        self.directory = None
        self.table.setRowCount(0)
        self.releases.set_session(session, production, read_only)

    def set_directory(self, directory: bytes) -> None:
        self.directory = directory
        self.refresh()
        self.releases.set_directory(directory)
        self._timer.start()

    def keys_changed(self, changed: set[bytes]) -> None:
        """The watch saw `changed` keys: re-read when the directory or its agents' status moved
        (the timer alone would show a fresh apply up to REFRESH_MS late)."""
        if self.directory is None:
            return
        watched = (self.directory, status_prefix_for(self.directory))
        if any(key.startswith(prefix) for key in changed for prefix in watched):
            self.refresh()
        published = (gray_prefix(self.directory), records_prefix(self.directory))
        if any(key.startswith(prefix) for key in changed for prefix in published):
            self.releases.refresh()

    def refresh(self) -> None:
        if self.session is None or self.directory is None:
            return
        conn, directory = self.session.conn, self.directory
        run_task(
            "read agents",
            lambda task: read_agents(conn, directory),
            lambda view: self._show(view) if self.directory == directory else None,
            lambda exc: self.message.emit(describe(exc)),
            owner=self,
        )

    def _show(self, view: AgentsView) -> None:
        assert self.directory is not None
        name = display_segment(self.directory)
        if not view.agents:
            self.header.setText(f"No agent publishes status for {name}")
        else:
            behind = sum(a.behind for a in view.agents)
            self.header.setText(
                f"{len(view.agents)} agent(s) for {name}; latest change at revision "
                f"{view.latest_revision}; {behind} behind"
            )
        self.table.setRowCount(len(view.agents))
        for row, agent in enumerate(view.agents):
            failed = agent.last_result not in (None, "ok")
            state = "error" if failed or agent.error else ("behind" if agent.behind else "in sync")
            cells = (
                agent.agent_id,
                ",".join(f"{k}={v}" for k, v in agent.labels.items()),
                ",".join(agent.releases) or "directory",
                str(agent.applied_revision or "-"),
                agent.last_result or "-",
                agent.error or agent.last_error or "",
                agent.updated_at or "-",
                state,
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if col == STATE:
                    color = {"error": "#c0392b", "behind": "#d68910", "in sync": "#1e8449"}[state]
                    item.setForeground(QBrush(QColor(color)))
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, col, item)
