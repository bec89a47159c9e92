"""A key's earlier values from etcd's MVCC history, a diff against now, and one-click restore;
beside them, the backups holding the selected directory or key (`backups.BackupsPanel`)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.changes.diff import value_diff
from etcdadmin.core.changes.history import KeyHistory, KeyVersion, key_history, restore_change
from etcdadmin.core.secrets.envelope import fingerprint, is_envelope
from etcdadmin.core.tree.names import display_segment
from etcdadmin.core.tree.valueformat import preview
from etcdadmin.gui.errors import describe
from etcdadmin.gui.history.backups import BackupsPanel
from etcdadmin.gui.icons import icon
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import Task, run_task

# Characters of each version's value in its row: enough to tell versions apart at a glance.
PREVIEW = 60


class HistoryPanel(QWidget):
    """Signals:
    staged(object): a restore, staged as a guarded SetValue.
    message(str): a line for the status bar.
    """

    staged = Signal(object)
    message = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("historyPanel")
        self.session: Session | None = None
        self.key: bytes | None = None
        self.history: KeyHistory | None = None
        self._task: Task | None = None
        layout = QVBoxLayout(self)
        self.header = QLabel("Select a key to see its history")
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        split = QSplitter(Qt.Orientation.Vertical)
        self.list = QListWidget()
        self.list.setObjectName("historyList")
        self.list.setIconSize(QSize(16, 16))
        self.list.currentRowChanged.connect(self._show_diff)
        split.addWidget(self.list)
        self.diff = QPlainTextEdit()
        self.diff.setObjectName("historyDiff")
        self.diff.setReadOnly(True)
        self.diff.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        split.addWidget(self.diff)
        # etcd's own history of the key, and beside it the backups holding the selection
        beside = QSplitter(Qt.Orientation.Horizontal)
        beside.addWidget(split)
        self.backups = BackupsPanel()
        self.backups.message.connect(self.message)
        beside.addWidget(self.backups)
        beside.setStretchFactor(0, 2)
        beside.setStretchFactor(1, 3)  # six columns against one
        layout.addWidget(beside, 1)
        self.restore_button = QPushButton("Restore this version")
        self.restore_button.setObjectName("restoreButton")
        self.restore_button.setToolTip("Stage this value as a change guarded by the current one")
        self.restore_button.clicked.connect(self.restore)
        self.restore_button.setEnabled(False)
        layout.addWidget(self.restore_button)

    def set_session(self, session: Session | None) -> None:
        self.session = session
        self.key = None
        self.list.clear()
        self.diff.clear()

    def keys_changed(self, changed: set[bytes]) -> None:
        """The watch saw `changed` keys (anyone's write, the operator's own apply too): a
        history of one of them is out of date, and so is the "current" a restore guards on."""
        if self.key is not None and self.key in changed:
            self.history = None
            if self.isVisible():
                self.refresh()

    def set_key(self, key: bytes) -> None:
        self.key = key
        if self.isVisible():
            self.refresh()

    def showEvent(self, event: object) -> None:  # type: ignore[override]
        super().showEvent(event)  # type: ignore[arg-type]
        if self.key is not None and (self.history is None or self.history.key != self.key):
            self.refresh()

    def refresh(self) -> None:
        if self.session is None or self.key is None:
            return
        if self._task is not None:
            self._task.cancel()
        conn, key = self.session.conn, self.key
        self.header.setText(f"Loading the history of {display_segment(key)} …")
        self._task = run_task(
            "read history",
            lambda task: (key_history(conn, key), conn.get(key)),
            self._loaded,
            lambda exc: self.header.setText(describe(exc)),
        )

    def _loaded(self, result: tuple[KeyHistory, object]) -> None:
        history, current = result
        self.history = history
        self.current = current
        self.list.clear()
        # Once a key has held a secret, its plain versions are the secret's earlier values
        # (a "Make secret" leaves the plain one in etcd's history until compaction).
        secret_key = is_envelope(getattr(current, "value", None)) or any(
            is_envelope(version.value) for version in history.versions
        )
        for version in history.versions:
            label = f"revision {version.revision}"
            if version.value is None:
                label += " — deleted"
            elif is_envelope(version.value):
                label += f" — version {version.version} — secret {fingerprint(version.value)}"
            elif secret_key:
                label += f" — version {version.version} — (a plain value, hidden: a secret key)"
            else:
                label += f" — version {version.version} — {preview(version.value, PREVIEW)}"
            item = QListWidgetItem(label)
            item.setToolTip(label)
            if secret_key and version.value is not None:
                item.setIcon(icon("lock"))
            item.setData(Qt.ItemDataRole.UserRole, version)
            self.list.addItem(item)
        since = (
            f" (history before revision {history.compacted_before} was compacted)"
            if history.compacted_before > 1
            else ""
        )
        self.header.setText(
            f"{len(history.versions)} version{'s' if len(history.versions) != 1 else ''} of "
            f"{display_segment(history.key)}{since}"
        )
        if history.versions:
            self.list.setCurrentRow(0)

    def _selected(self) -> KeyVersion | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _show_diff(self) -> None:
        version = self._selected()
        self.restore_button.setEnabled(version is not None and version.value is not None)
        if version is None:
            self.diff.clear()
            return
        now = getattr(self.current, "value", None)
        old_label = f"revision {version.revision}" + (" (deleted)" if version.value is None else "")
        new_label = "current" + (" (absent)" if now is None else "")
        # the core's one diff masks envelopes by fingerprint and secret-named values by key
        self.diff.setPlainText(value_diff(version.value, now, old_label, new_label, key=self.key))

    def restore(self) -> None:
        version = self._selected()
        if version is None or version.value is None:
            return
        self.staged.emit(restore_change(version, self.current))  # type: ignore[arg-type]
        self.message.emit(f"staged restore of revision {version.revision}")
