"""The Access panel's questions: a password, a new user, a role name, a grant, a new team.

Each dialog is opened with `open()` (window-modal, the panel keeps running) and hands what was
typed to a callback on OK. Passwords are typed into password fields, twice for a new one, and
go to that callback only: nothing keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.access.grants import Access


def _password_field(name: str) -> QLineEdit:
    field = QLineEdit()
    field.setObjectName(name)
    field.setEchoMode(QLineEdit.EchoMode.Password)
    return field


def names_in(text: str) -> tuple[str, ...]:
    """`alice, bob` (commas or spaces) as names, in the order typed, once each."""
    found: list[str] = []
    for name in text.replace(",", " ").split():
        if name not in found:
            found.append(name)
    return tuple(found)


class _FormDialog(QDialog):
    """A form with a note, OK and Cancel; OK runs `_ok`, which returns an error to show (the
    dialog stays open) or "" (it closes)."""

    def __init__(self, parent: QWidget, title: str, note: str, name: str) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setWindowTitle(title)
        layout = QVBoxLayout(self)
        self.note = QLabel(note)
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.form = QFormLayout()
        layout.addLayout(self.form)
        self.problem = QLabel("")
        self.problem.setObjectName("dialogProblem")
        self.problem.setStyleSheet("color: #c0392b")
        self.problem.setWordWrap(True)
        layout.addWidget(self.problem)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept_if_valid)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.setMinimumWidth(460)

    def _accept_if_valid(self) -> None:
        problem = self._ok()
        self.problem.setText(problem)
        if not problem:
            self.accept()

    def _ok(self) -> str:
        raise NotImplementedError


class PasswordDialog(_FormDialog):
    """root's password (or a new one, typed twice with `repeat`)."""

    def __init__(
        self,
        parent: QWidget,
        title: str,
        note: str,
        done: Callable[[str], None],
        *,
        repeat: bool = False,
    ) -> None:
        super().__init__(parent, title, note, "passwordDialog")
        self.password = _password_field("passwordField")
        self.form.addRow("Password", self.password)
        self.repeat = _password_field("repeatField") if repeat else None
        if self.repeat is not None:
            self.form.addRow("Again", self.repeat)
        self._done = done

    def _ok(self) -> str:
        password = self.password.text()
        if not password:
            return "Type the password."
        if self.repeat is not None and self.repeat.text() != password:
            return "The two passwords differ: type the same one twice."
        self._done(password)
        return ""


class UserDialog(_FormDialog):
    """A new user: name, password (twice), and roles to give it."""

    def __init__(
        self,
        parent: QWidget,
        roles: Sequence[str],
        done: Callable[[str, str, tuple[str, ...]], None],
    ) -> None:
        super().__init__(
            parent, "Add user", "A new etcd user and the roles it holds.", "userDialog"
        )
        self.name = QLineEdit()
        self.name.setObjectName("userName")
        self.password = _password_field("passwordField")
        self.repeat = _password_field("repeatField")
        self.roles = QLineEdit()
        self.roles.setObjectName("userRoles")
        self.roles.setPlaceholderText(", ".join(list(roles)[:3]) or "no roles yet")
        self.form.addRow("Name", self.name)
        self.form.addRow("Password", self.password)
        self.form.addRow("Again", self.repeat)
        self.form.addRow("Roles", self.roles)
        self._done = done

    def _ok(self) -> str:
        if not self.name.text().strip():
            return "Type the user's name."
        if self.password.text() != self.repeat.text():
            return "The two passwords differ: type the same one twice."
        self._done(self.name.text().strip(), self.password.text(), names_in(self.roles.text()))
        return ""


class RoleDialog(_FormDialog):
    """A new role's name."""

    def __init__(self, parent: QWidget, done: Callable[[str], None]) -> None:
        super().__init__(
            parent,
            "Add role",
            "A new role, with no permissions yet: grant it directories next.",
            "roleDialog",
        )
        self.name = QLineEdit()
        self.name.setObjectName("roleName")
        self.form.addRow("Name", self.name)
        self._done = done

    def _ok(self) -> str:
        if not self.name.text().strip():
            return "Type the role's name."
        self._done(self.name.text().strip())
        return ""


class GrantDialog(_FormDialog):
    """read or read-write on a directory, for a role."""

    def __init__(
        self,
        parent: QWidget,
        roles: Sequence[str],
        role: str,
        directory: str,
        done: Callable[[str, str, Access], None],
    ) -> None:
        super().__init__(
            parent,
            "Grant a directory",
            "Give a role read or read-write on every key of a directory (and nothing beside "
            "it: a grant on team-a covers team-a/..., never team-a-2/...).",
            "grantDialog",
        )
        self.role = QComboBox()
        self.role.setObjectName("grantRole")
        self.role.addItems([r for r in roles if r != "root"])
        if role:
            self.role.setCurrentText(role)
        self.directory = QLineEdit(directory)
        self.directory.setObjectName("grantDirectory")
        self.access = QComboBox()
        self.access.setObjectName("grantAccess")
        self.access.addItem("read", "read")
        self.access.addItem("read-write", "readwrite")
        self.form.addRow("Role", self.role)
        self.form.addRow("Directory", self.directory)
        self.form.addRow("Access", self.access)
        self._done = done

    def _ok(self) -> str:
        if not self.role.currentText():
            return "Add a role first: there is none to grant to."
        if not self.directory.text().strip():
            return "Type the directory."
        self._done(
            self.role.currentText(), self.directory.text().strip(), self.access.currentData()
        )
        return ""


class TeamDialog(_FormDialog):
    """A team in one step: its name, directory, operators and agents, and a password for each
    user that does not exist yet (the fields appear as the names are typed)."""

    def __init__(
        self,
        parent: QWidget,
        users: Sequence[str],
        directory: str,
        done: Callable[[str, str, tuple[str, ...], tuple[str, ...], dict[str, str]], None],
    ) -> None:
        super().__init__(
            parent,
            "New team",
            "Operators get read-write on the directory and its secret recipients; agents get "
            "read, and each may write its own status key only. Users that do not exist are "
            "created with the passwords typed here.",
            "teamDialog",
        )
        self.existing = set(users)
        self.name = QLineEdit()
        self.name.setObjectName("teamName")
        self.directory = QLineEdit(directory)
        self.directory.setObjectName("teamDirectory")
        self.operators = QLineEdit()
        self.operators.setObjectName("teamOperators")
        self.operators.setPlaceholderText("alice, bob")
        self.agents = QLineEdit()
        self.agents.setObjectName("teamAgents")
        self.agents.setPlaceholderText("registry-host-1")
        self.form.addRow("Team", self.name)
        self.form.addRow("Directory", self.directory)
        self.form.addRow("Operators", self.operators)
        self.form.addRow("Agents", self.agents)
        self.passwords: dict[str, QLineEdit] = {}
        self.operators.textChanged.connect(self._new_users_changed)
        self.agents.textChanged.connect(self._new_users_changed)
        self._done = done

    def new_users(self) -> tuple[str, ...]:
        named = names_in(f"{self.operators.text()} {self.agents.text()}")
        return tuple(name for name in named if name not in self.existing)

    def _new_users_changed(self) -> None:
        wanted = self.new_users()
        for name in [n for n in self.passwords if n not in wanted]:
            self.form.removeRow(self.passwords.pop(name))
        for name in wanted:
            if name not in self.passwords:
                field = _password_field(f"teamPassword-{name}")
                self.passwords[name] = field
                self.form.addRow(f"Password for new user {name}", field)

    def _ok(self) -> str:
        if not self.name.text().strip() or not self.directory.text().strip():
            return "Type the team's name and its directory."
        operators, agents = names_in(self.operators.text()), names_in(self.agents.text())
        if not operators and not agents:
            return "Name at least one operator or agent."
        passwords = {name: field.text() for name, field in self.passwords.items()}
        self._done(
            self.name.text().strip(), self.directory.text().strip(), operators, agents, passwords
        )
        return ""
