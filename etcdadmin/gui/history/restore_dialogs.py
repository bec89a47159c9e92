"""The History tab's restore questions: the moment "Restore to a time…" puts a directory back
to (shown in local time, handed to `restore_from.plan_at` as an aware UTC datetime or a
revision, never both), and the diff with its confirmation every restore from backups shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from PySide6.QtCore import QDateTime
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QButtonGroup,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.backup.restore_from import BackupRestorePlan
from etcdadmin.core.backup.restore_online import render_restore_plan
from etcdadmin.core.tree.names import display_segment


@dataclass(frozen=True)
class Moment:
    """Exactly one of `at_time` (aware, UTC) and `at_revision` is set."""

    at_time: datetime | None = None
    at_revision: int | None = None

    def describe(self) -> str:
        if self.at_time is not None:
            return self.at_time.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        return f"revision {self.at_revision}"


class MomentDialog(QDialog):
    """Asks for the moment a directory is put back to; `moment()` reads the answer."""

    def __init__(self, parent: QWidget | None, target: str, revision: int = 0) -> None:
        super().__init__(parent)
        self.setObjectName("restoreAtDialog")
        self.setWindowTitle(f"Restore {target} to a time")
        layout = QVBoxLayout(self)
        intro = QLabel(
            f"Put {target} back as it was at a moment: the newest full backup before it plus "
            "the changes `backup follow` recorded after. The diff is shown before anything "
            "is written."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.by_time = QRadioButton("At the time")
        self.by_time.setObjectName("restoreAtByTime")
        self.by_revision = QRadioButton("At the revision")
        self.by_revision.setObjectName("restoreAtByRevision")
        group = QButtonGroup(self)
        group.addButton(self.by_time)
        group.addButton(self.by_revision)
        self.time = QDateTimeEdit(QDateTime.currentDateTime())
        self.time.setObjectName("restoreAtTime")
        self.time.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
        self.time.setCalendarPopup(True)
        self.time.setToolTip("Local time of this computer")
        self.revision = QSpinBox()
        self.revision.setObjectName("restoreAtRevision")
        self.revision.setRange(1, 2**31 - 1)
        self.revision.setValue(max(1, revision))
        form.addRow(self.by_time, self.time)
        form.addRow(self.by_revision, self.revision)
        layout.addLayout(form)
        self.by_time.toggled.connect(self._switch)
        self.by_time.setChecked(True)
        self._switch()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton("Show the diff", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _switch(self) -> None:
        self.time.setEnabled(self.by_time.isChecked())
        self.revision.setEnabled(not self.by_time.isChecked())

    def set_time(self, when: datetime) -> None:
        """Show `when` (aware) in local time, as if typed in."""
        self.by_time.setChecked(True)
        self.time.setDateTime(QDateTime.fromSecsSinceEpoch(int(when.timestamp())))

    def moment(self) -> Moment:
        if self.by_revision.isChecked():
            return Moment(at_revision=self.revision.value())
        # the edit shows local time; the core compares aware datetimes, stored in UTC
        milliseconds = self.time.dateTime().toMSecsSinceEpoch()
        return Moment(at_time=datetime.fromtimestamp(milliseconds / 1000, UTC))


def ask_moment(parent: QWidget | None, target: str) -> Moment | None:
    """The moment the operator picked, or None when they cancelled."""
    dialog = MomentDialog(parent, target)
    return dialog.moment() if dialog.exec() == QDialog.DialogCode.Accepted else None


def origin(planned: BackupRestorePlan) -> str:
    """Where the restored state comes from, in the operator's words."""
    state = planned.point_in_time
    if state is None:
        return f"backup {planned.backup.id}"
    return f"revision {state.revision} (backup {state.base_backup} and {state.deltas_used} deltas)"


def confirm_restore(parent: QWidget, planned: BackupRestorePlan, *, production: bool) -> bool:
    """The restore's diff (secrets masked by the core's renderer) and the question."""
    dialog = QDialog(parent)
    dialog.setObjectName("restoreDialog")
    target = display_segment(planned.target)
    title = f"Restore {target} from backup"
    if production:
        title += " on PRODUCTION"
    dialog.setWindowTitle(title + "?")
    layout = QVBoxLayout(dialog)
    question = QLabel(
        ("This connection is marked production. " if production else "")
        + f"Restore {target} as {origin(planned)} holds it? A safety backup of "
        "what it overwrites is taken first."
    )
    question.setObjectName("restoreQuestion")
    question.setWordWrap(True)
    layout.addWidget(question)
    view = QPlainTextEdit(render_restore_plan(planned.plan))
    view.setObjectName("restoreDiff")
    view.setReadOnly(True)
    view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    layout.addWidget(view)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
    buttons.addButton("Restore", QDialogButtonBox.ButtonRole.AcceptRole)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.resize(640, 420)
    return dialog.exec() == QDialog.DialogCode.Accepted
