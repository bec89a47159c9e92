"""The changes the Access panel makes: auth on and off, users, roles, grants, teams. Each runs
the core's access call on a worker, asks first on production connections (and always before
enabling or disabling auth and before removing), then reads everything again."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QMessageBox, QTableWidget, QTreeWidget, QWidget

from etcdadmin.core.access import accounts, teams
from etcdadmin.core.access.enabling import ROOT, disable_auth, enable_auth
from etcdadmin.core.access.grants import Access, grant_directory
from etcdadmin.core.access.reach import describe_permission
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.etcd.auth import RolePermission
from etcdadmin.core.tree.directories import directory_prefix
from etcdadmin.gui.access.dialogs import (
    GrantDialog,
    PasswordDialog,
    RoleDialog,
    TeamDialog,
    UserDialog,
)
from etcdadmin.gui.access.reading import AccessOverview
from etcdadmin.gui.errors import describe, show_error
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import run_task

log = logging.getLogger(__name__)

ACCESS_SHOWN = {"read": "read", "write": "write", "readwrite": "read-write"}
PERMISSION_ROLE = Qt.ItemDataRole.UserRole


class AccessChanging(QWidget):
    """The Access panel's changes (the panel lays them out and shows what they change).

    Signals:
    message(str): a line for the status bar.
    signed_in(str, str): auth was just switched: the connection must log in as this user with
        this password from now on, or ("", "") without a user once auth is off (etcd refuses
        a login then); the window reconnects with them.
    """

    message = Signal(str)
    signed_in = Signal(str, str)

    session: Session | None
    production: bool
    directory: bytes
    overview: AccessOverview | None
    dialog: QWidget | None
    users: QTableWidget
    roles: QTreeWidget

    def refresh(self) -> None:
        raise NotImplementedError

    def _may_change(self) -> bool:
        raise NotImplementedError

    def _may_switch_auth(self, on: bool) -> bool:
        raise NotImplementedError

    def _confirmed(self, title: str, text: str, always: bool = False) -> bool:
        """Every change on a production connection is asked about; `always` asks anywhere."""
        if not (always or self.production):
            return True
        if self.production:
            text = f"This connection is marked PRODUCTION. {text}"
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _change(self, what: str, fn: Callable[[EtcdConnection], Any], done: str) -> None:
        """Run `fn(conn)` on a worker, then say `done` and read everything again."""
        if self.session is None or not self._may_change():
            return
        conn = self.session.conn

        def finished(_: object) -> None:
            self._changed(done)

        def failed(exc: BaseException) -> None:
            show_error(self, f"Could not {what}", exc)
            self.message.emit(f"could not {what}: {describe(exc)}")
            self.refresh()

        run_task(what, lambda task: fn(conn), finished, failed, owner=self)

    def _changed(self, done: str) -> None:
        self.message.emit(done)
        self.refresh()

    def _open(self, dialog: QWidget) -> None:
        self.dialog = dialog
        dialog.open()  # type: ignore[attr-defined]

    def enable(self) -> None:
        if self.session is None or not self._may_switch_auth(True):
            return
        if not self._confirmed(
            "Enable auth",
            "Enable etcd auth? From then on every client must log in. The root user is made "
            "(or given) the password you type next, and this connection logs in as root.",
            always=True,
        ):
            return
        settings = self.session.settings

        def typed(password: str) -> None:
            def enabled(_: object) -> None:
                self.message.emit("auth enabled; logging in as root")
                user = settings.user or ROOT
                self.signed_in.emit(user, settings.password or password)

            run_task(
                "enable auth",
                lambda task: enable_auth(settings, password),
                enabled,
                lambda exc: show_error(self, "Auth not enabled", exc),
                owner=self,
            )

        self._open(
            PasswordDialog(
                self,
                "Root's password",
                "The password of etcd's root user, set now (auth is off, so no one logs in "
                "with it yet). Keep it: disabling auth again needs it.",
                typed,
                repeat=True,
            )
        )

    def disable(self) -> None:
        if self.session is None or not self._may_switch_auth(False):
            return
        if not self._confirmed(
            "Disable auth",
            "Disable etcd auth? Anyone who reaches etcd may then read and write everything.",
            always=True,
        ):
            return
        settings = self.session.settings

        def typed(password: str) -> None:
            as_root = dataclasses.replace(settings, user=ROOT, password=password)
            run_task(
                "disable auth",
                lambda task: disable_auth(as_root),
                lambda _: self._disabled(),
                lambda exc: show_error(self, "Auth not disabled", exc),
                owner=self,
            )

        self._open(
            PasswordDialog(self, "Root's password", "Disabling auth takes root's password.", typed)
        )

    def _disabled(self) -> None:
        self.message.emit("auth disabled; connecting without a user")
        self.signed_in.emit("", "")

    def _role_names(self) -> list[str]:
        return [r.name for r in self.overview.roles] if self.overview else []

    def add_user(self) -> None:
        def typed(name: str, password: str, roles: tuple[str, ...]) -> None:
            if self._confirmed("Add user", f"Add etcd user {name!r}?"):
                self._change(
                    "add the user",
                    lambda conn: accounts.add_user(conn, name, password, roles),
                    f"user {name} added",
                )

        self._open(UserDialog(self, self._role_names(), typed))

    def _selected_user(self) -> str:
        row = self.users.currentRow()
        item = self.users.item(row, 0) if row >= 0 else None
        return item.text() if item is not None else ""

    def remove_user(self) -> None:
        name = self._selected_user()
        if not name:
            self.message.emit("select a user to remove")
            return
        if self._confirmed("Remove user", f"Remove etcd user {name!r}?", always=True):
            self._change(
                "remove the user",
                lambda conn: accounts.remove_user(conn, name),
                f"user {name} removed",
            )

    def add_role(self) -> None:
        def typed(name: str) -> None:
            if self._confirmed("Add role", f"Add role {name!r}?"):
                self._change(
                    "add the role", lambda conn: accounts.add_role(conn, name), f"role {name} added"
                )

        self._open(RoleDialog(self, typed))

    def _selected_role(self) -> tuple[str, RolePermission | None]:
        item = self.roles.currentItem()
        if item is None:
            return "", None
        parent = item.parent()
        if parent is None:
            return item.text(0), None
        return parent.text(0), item.data(0, PERMISSION_ROLE)

    def remove_role(self) -> None:
        role, _ = self._selected_role()
        if not role:
            self.message.emit("select a role to remove")
            return
        if self._confirmed("Remove role", f"Remove role {role!r}?", always=True):
            self._change(
                "remove the role",
                lambda conn: accounts.remove_role(conn, role),
                f"role {role} removed",
            )

    def _directory_text(self) -> str:
        return self.directory.decode("utf-8", "backslashreplace")

    def grant(self) -> None:
        role, _ = self._selected_role()

        def typed(role: str, directory: str, access: Access) -> None:
            shown = f"{ACCESS_SHOWN[access]} on {directory_prefix(directory)}"
            if self._confirmed("Grant", f"Give role {role!r} {shown}?"):
                self._change(
                    "grant the directory",
                    lambda conn: grant_directory(conn, role, directory, access),
                    f"role {role} now has {shown}",
                )

        self._open(GrantDialog(self, self._role_names(), role, self._directory_text(), typed))

    def revoke(self) -> None:
        role, permission = self._selected_role()
        if permission is None:
            self.message.emit("select one of a role's permissions to revoke")
            return
        shown = describe_permission(permission)
        if self._confirmed("Revoke", f"Take role {role!r}'s permission on {shown} away?", True):
            self._change(
                "revoke the permission",
                lambda conn: conn.role_revoke(role, permission.key, permission.range_end),
                f"role {role} no longer has {shown}",
            )

    def new_team(self) -> None:
        users = [u.name for u in self.overview.users] if self.overview else []

        def typed(
            name: str,
            directory: str,
            operators: tuple[str, ...],
            agents: tuple[str, ...],
            passwords: dict[str, str],
        ) -> None:
            if self._confirmed("New team", f"Make team {name!r} on {directory}?"):
                self._change(
                    "make the team",
                    lambda conn: teams.create_team(
                        conn,
                        name,
                        directory,
                        operators=operators,
                        agents=agents,
                        passwords=passwords,
                    ),
                    f"team {name} made",
                )

        self._open(TeamDialog(self, users, self._directory_text(), typed))
