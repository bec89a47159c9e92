"""The Access panel: auth on or off, users and their roles, roles and their grants, teams, who
can reach a directory, and the changes to them, each made by the core's access modules on a
worker (`etcdadmin.core.access`, shared with `etcdadmin access ...`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.access.reach import Grant, describe_permission, who_can_reach
from etcdadmin.gui.access.changing import ACCESS_SHOWN, PERMISSION_ROLE, AccessChanging
from etcdadmin.gui.access.reading import AccessOverview, read_overview
from etcdadmin.gui.errors import describe, show_error
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import Task, run_task

log = logging.getLogger(__name__)


def _table(name: str, columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(columns)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    return table


def _fill(table: QTableWidget, rows: list[tuple[str, ...]]) -> None:
    table.setRowCount(len(rows))
    for row, cells in enumerate(rows):
        for col, text in enumerate(cells):
            table.setItem(row, col, QTableWidgetItem(text))


def _group(title: str, body: QWidget, buttons: list[QPushButton]) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.addWidget(body, 1)
    if buttons:
        row = QHBoxLayout()
        for button in buttons:
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
    return box


def _button(text: str, name: str, slot: Callable[[], object]) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.clicked.connect(lambda checked=False: slot())
    return button


class AccessPanel(AccessChanging):
    """Signals: those of `AccessChanging` (message, signed_in)."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("accessPanel")
        self.session: Session | None = None
        self.production = False
        self.read_only = False
        self.directory = b""
        self.overview: AccessOverview | None = None
        self.dialog: QWidget | None = None  # the question open now (tests answer it)
        self._task: Task | None = None
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.state = QLabel("Not connected")
        self.state.setObjectName("authState")
        self.state.setWordWrap(True)
        top.addWidget(self.state, 1)
        self.enable_button = _button("Enable auth…", "enableAuthButton", self.enable)
        self.disable_button = _button("Disable auth…", "disableAuthButton", self.disable)
        self.refresh_button = _button("Refresh", "refreshAccessButton", self.refresh)
        for button in (self.enable_button, self.disable_button, self.refresh_button):
            top.addWidget(button)
        layout.addLayout(top)

        self.users = _table("usersTable", ("User", "Roles"))
        self.roles = QTreeWidget()
        self.roles.setObjectName("rolesTree")
        self.roles.setHeaderLabels(("Role / directory", "Access"))
        self.roles.header().setStretchLastSection(False)
        self.roles.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.roles.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.teams = _table("teamsTable", ("Team", "Directory", "Operators", "Agents"))
        self.reach = _table("reachTable", ("User", "Role", "Permission", "Covers"))
        self.reach_title = QLabel("Select a directory in the tree")
        self.reach_title.setObjectName("reachTitle")

        self.add_user_button = _button("Add user…", "addUserButton", self.add_user)
        self.remove_user_button = _button("Remove", "removeUserButton", self.remove_user)
        self.add_role_button = _button("Add role…", "addRoleButton", self.add_role)
        self.remove_role_button = _button("Remove", "removeRoleButton", self.remove_role)
        self.grant_button = _button("Grant…", "grantButton", self.grant)
        self.revoke_button = _button("Revoke", "revokeButton", self.revoke)
        self.team_button = _button("New team…", "newTeamButton", self.new_team)
        self.reach_button = _button("Who can reach it", "whoCanReachButton", self.who_can_reach)
        self.changers = [
            self.enable_button,
            self.disable_button,
            self.add_user_button,
            self.remove_user_button,
            self.add_role_button,
            self.remove_role_button,
            self.grant_button,
            self.revoke_button,
            self.team_button,
        ]

        grid = QGridLayout()
        users_box = _group("Users", self.users, [self.add_user_button, self.remove_user_button])
        roles_box = _group(
            "Roles",
            self.roles,
            [self.add_role_button, self.remove_role_button, self.grant_button, self.revoke_button],
        )
        reach_body = QWidget()
        reach_layout = QVBoxLayout(reach_body)
        reach_layout.setContentsMargins(0, 0, 0, 0)
        reach_layout.addWidget(self.reach_title)
        reach_layout.addWidget(self.reach, 1)
        grid.addWidget(users_box, 0, 0)
        grid.addWidget(roles_box, 0, 1)
        grid.addWidget(_group("Teams", self.teams, [self.team_button]), 1, 0, 1, 2)
        grid.addWidget(_group("Reach", reach_body, [self.reach_button]), 2, 0, 1, 2)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        grid.setRowStretch(2, 2)
        layout.addLayout(grid, 1)
        self._enable_buttons()

    # -- the connection ---------------------------------------------------------------------

    def set_session(
        self, session: Session | None, production: bool = False, read_only: bool = False
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.session, self.production, self.read_only = session, production, read_only
        self.overview = None
        for table in (self.users, self.teams, self.reach):
            table.setRowCount(0)
        self.roles.clear()
        self.state.setText("Reading access …" if session is not None else "Not connected")
        self._enable_buttons()
        if session is not None:
            self.refresh()

    def set_directory(self, directory: bytes) -> None:
        """The tree's selected directory: the default of a grant, a team, and who can reach."""
        self.directory = directory
        shown = directory.decode("utf-8", "backslashreplace")
        self.reach_title.setText(f"Who can reach {shown}" if directory else "Select a directory")
        self.reach.setRowCount(0)
        self._enable_buttons()

    def refresh(self) -> None:
        if self.session is None:
            return
        conn = self.session.conn
        self._task = run_task(
            "read access",
            lambda task: read_overview(conn),
            self._show,
            lambda exc: self.state.setText(describe(exc)),
            owner=self,
        )

    def _show(self, overview: AccessOverview) -> None:
        self.overview = overview
        permits = overview.permits
        if not overview.auth_enabled:
            state = (
                "Auth is OFF: anyone who reaches etcd may read and write everything. Enable it "
                "once users and roles are in place (root is made for you)."
            )
        else:
            who = f"user {permits.user!r}" if permits.user else "this connection"
            state = f"Auth is ON; you are {who}" + (" (root role)." if permits.everything else ".")
        if overview.refused:
            own = ", ".join(
                f"{describe_permission(p)} {ACCESS_SHOWN[p.kind]}" for p in permits.permissions
            )
            state += f" {overview.refused}. Your grants: {own or 'none'}."
        self.state.setText(state)
        _fill(self.users, [(u.name, ", ".join(u.roles)) for u in overview.users])
        self.roles.clear()
        for role in overview.roles:
            item = QTreeWidgetItem([role.name, ""])
            for permission in role.permissions:
                child = QTreeWidgetItem(
                    [describe_permission(permission), ACCESS_SHOWN[permission.kind]]
                )
                child.setData(0, PERMISSION_ROLE, permission)
                item.addChild(child)
            self.roles.addTopLevelItem(item)
        self.roles.expandAll()
        _fill(
            self.teams,
            [
                (t.name, t.directory, ", ".join(t.operators), ", ".join(t.agents))
                for t in overview.teams
            ],
        )
        self._enable_buttons()

    def _may_change(self) -> bool:
        """Connected, not read-only, and allowed to list users (auth off, or the root role)."""
        overview = self.overview
        return (
            self.session is not None
            and not self.read_only
            and overview is not None
            and not overview.refused
        )

    def _may_switch_auth(self, on: bool) -> bool:
        return self._may_change() and self.overview is not None and self.overview.auth_enabled != on

    def _enable_buttons(self) -> None:
        manage = self._may_change()
        for button in self.changers:
            button.setEnabled(manage)
        self.enable_button.setEnabled(self._may_switch_auth(True))
        self.disable_button.setEnabled(self._may_switch_auth(False))
        reads = self.overview is not None and not self.overview.refused
        self.reach_button.setEnabled(reads and bool(self.directory))

    def who_can_reach(self) -> None:
        if self.session is None or not self.directory:
            return
        conn, directory = self.session.conn, self.directory

        def show(grants: list[Grant]) -> None:
            if directory != self.directory:
                return
            _fill(
                self.reach,
                [
                    (
                        g.user,
                        g.role,
                        f"{describe_permission(g.permission)} {ACCESS_SHOWN[g.permission.kind]}",
                        "all of it" if g.whole else "part of it",
                    )
                    for g in grants
                ],
            )
            self.message.emit(f"{len(grants)} grant(s) reach {self._directory_text()}")

        run_task(
            "who can reach",
            lambda task: who_can_reach(conn, directory),
            show,
            lambda exc: show_error(self, "Who can reach", exc),
            owner=self,
        )
