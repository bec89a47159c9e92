"""A key's earlier values from etcd's MVCC history, a diff against now, and one-click restore;
with "Include backups", also the older versions the backups and `backup follow` deltas kept
(`point_in_time.key_history_from_backups`), past etcd's compaction. Beside them, the backups
holding the selected directory or key (`backups.BackupsPanel`)."""

from __future__ import annotations

import threading

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.backup.deltas import is_delta_name
from etcdadmin.core.backup.point_in_time import (
    BackupKeyVersion,
    KeyHistoryInBackups,
    key_history_from_backups,
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
        # versions only the backups kept, by revision (those etcd still lists are not repeated)
        self.from_backups: dict[int, BackupKeyVersion] = {}
        # encrypted backups the last search could not open, said in the header
        self.unsearched: tuple[str, ...] = ()
        self._backups_for: bytes | None = None  # the key `from_backups` belongs to
        self._backups_task: Task | None = None
        self._backups_cancel = threading.Event()
        layout = QVBoxLayout(self)
        self.header = QLabel("Select a key to see its history")
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        # the key's versions: etcd's, and with "Include backups" those only backups kept
        versions = QWidget()
        column = QVBoxLayout(versions)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.include_backups = QCheckBox("Include backups")
        self.include_backups.setObjectName("historyIncludeBackups")
        self.include_backups.setToolTip(
            "Also list the versions kept in backups and `backup follow` deltas, older than "
            "etcd's compaction (reads the backups' exports: can take a while; encrypted "
            "backups are opened with your identity from the OS keyring and any identity file "
            "opened in this window, the header counts the others; uncheck to stop)"
        )
        self.include_backups.toggled.connect(self._backups_toggled)
        row.addWidget(self.include_backups)
        self.looking = QProgressBar()
        self.looking.setObjectName("historyBackupsProgress")
        self.looking.setRange(0, 0)  # how many exports are left is not known in advance
        self.looking.setMaximumWidth(120)
        self.looking.setVisible(False)
        row.addWidget(self.looking)
        row.addStretch(1)
        column.addLayout(row)
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
        column.addWidget(split, 1)
        # etcd's own history of the key, and beside it the backups holding the selection
        beside = QSplitter(Qt.Orientation.Horizontal)
        beside.addWidget(versions)
        self.backups = BackupsPanel()
        self.backups.message.connect(self.message)
        # a file opened for a restore may open the backups the last search could not
        self.backups.identities_opened.connect(self._identities_opened)
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
        self._stop_looking()
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
        self._stop_looking()
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
        if history.key != self._backups_for:
            self.from_backups, self.unsearched = {}, ()
        self._fill()
        if self.include_backups.isChecked():
            self._look_in_backups()

    def _fill(self) -> None:
        """List etcd's versions and those only the backups kept, newest first."""
        history = self.history
        if history is None:
            return
        chosen = self._selected()
        self.list.clear()
        kept = [
            KeyVersion(found.revision, found.value, 0, 0, history.key)
            for found in self.from_backups.values()
        ]
        versions = sorted((*history.versions, *kept), key=lambda v: v.revision, reverse=True)
        # Once a key has held a secret, its plain versions are the secret's earlier values
        # (a "Make secret" leaves the plain one in etcd's history until compaction).
        secret_key = is_envelope(getattr(self.current, "value", None)) or any(
            is_envelope(version.value) for version in versions
        )
        for version in versions:
            found = self.from_backups.get(version.revision)
            label = f"revision {version.revision}"
            if version.value is None:
                label += " — deleted"
            else:
                if found is None:
                    label += f" — version {version.version}"
                if is_envelope(version.value):
                    label += f" — secret {fingerprint(version.value)}"
                elif secret_key:
                    label += " — (a plain value, hidden: a secret key)"
                else:
                    label += f" — {preview(version.value, PREVIEW)}"
            tip = label
            if found is not None:
                # the value first, where it was kept after: the list is narrow
                label += (
                    f" — from {'delta' if is_delta_name(found.source) else 'backup'}, {found.time}"
                )
                tip += f" — from {_kept_in(found)}, recorded {found.time}"
            item = QListWidgetItem(label)
            item.setToolTip(tip)
            if secret_key and version.value is not None:
                item.setIcon(icon("lock"))
            if found is not None:
                font = item.font()
                font.setItalic(True)
                item.setFont(font)
            item.setData(Qt.ItemDataRole.UserRole, version)
            self.list.addItem(item)
        self._describe()
        if versions:
            revisions = [v.revision for v in versions]
            keep = chosen.revision if chosen is not None else None
            self.list.setCurrentRow(revisions.index(keep) if keep in revisions else 0)

    def _describe(self) -> None:
        history = self.history
        if history is None:
            return
        count = len(history.versions)
        since = (
            f" (history before revision {history.compacted_before} was compacted)"
            if history.compacted_before > 1
            else ""
        )
        text = (
            f"{count} version{'s' if count != 1 else ''} of {display_segment(history.key)}{since}"
        )
        if self._backups_task is not None:
            text += "; looking for older versions in the backups …"
        elif self.include_backups.isChecked():
            text += f"; {len(self.from_backups)} more from backups"
            if self.unsearched:
                count = len(self.unsearched)
                text += (
                    f"; {count} encrypted backup{'s' if count != 1 else ''} not searched: "
                    f"no identity at hand opens {'them' if count != 1 else 'it'}"
                )
                if not self.backups.read_only:
                    text += " (restoring from one offers to open an identity file)"
        self.header.setText(text)

    # -- versions only the backups kept -------------------------------------------------------

    def _backups_toggled(self, checked: bool) -> None:
        if checked:
            self._look_in_backups()
            return
        self._stop_looking()
        self.from_backups.clear()
        self.unsearched = ()
        self._fill()

    def _identities_opened(self) -> None:
        if self.include_backups.isChecked() and self.unsearched:
            self._look_in_backups()

    def _look_in_backups(self) -> None:
        location = self.backups.location
        if self.session is None or self.history is None or location is None:
            return
        self._stop_looking()
        conn, key = self.session.conn, self.history.key
        cancel = self._backups_cancel = threading.Event()

        # identity files opened for a restore in this window open encrypted backups here too
        files = tuple(self.backups.identities or ())

        def work(task: Task) -> KeyHistoryInBackups:
            # the connected cluster's backups only: a location may hold several clusters'
            return key_history_from_backups(
                location,
                key,
                cluster_id=f"{conn.header(key)[1]:016x}",
                cancel=cancel,
                identities=files,
                operator_identity=True,
            )

        self._backups_task = run_task(
            "read history from backups", work, self._found, self._not_found, owner=self
        )
        self.looking.setVisible(True)
        self._describe()

    def _stop_looking(self) -> None:
        """Unchecking, or another key: the lookup stops before its next download (the one in
        flight ends on its worker), and what it found is not shown."""
        self._backups_cancel.set()
        if self._backups_task is not None:
            self._backups_task.cancel()
            self._backups_task = None
        self.looking.setVisible(False)

    def _found(self, found: KeyHistoryInBackups) -> None:
        self._backups_task = None
        self.looking.setVisible(False)
        listed = {v.revision for v in self.history.versions} if self.history else set()
        self.from_backups = {v.revision: v for v in found.versions if v.revision not in listed}
        self.unsearched = found.unsearched
        self._backups_for = self.history.key if self.history else None
        self._fill()

    def _not_found(self, exc: BaseException) -> None:
        self._backups_task = None
        self.looking.setVisible(False)
        self._describe()
        self.header.setText(f"{self.header.text()} — backups: {describe(exc)}")
        self.message.emit(describe(exc))

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
        found = self.from_backups.get(version.revision)
        old_label = f"revision {version.revision}" + (f" from {_kept_in(found)}" if found else "")
        old_label += " (deleted)" if version.value is None else ""
        new_label = "current" + (" (absent)" if now is None else "")
        # the core's one diff masks envelopes by fingerprint and secret-named values by key
        self.diff.setPlainText(value_diff(version.value, now, old_label, new_label, key=self.key))

    def restore(self) -> None:
        version = self._selected()
        if version is None or version.value is None:
            return
        self.staged.emit(restore_change(version, self.current))  # type: ignore[arg-type]
        found = self.from_backups.get(version.revision)
        origin = f" from {_kept_in(found)}" if found is not None else ""
        self.message.emit(f"staged restore of revision {version.revision}{origin}")


def _kept_in(found: BackupKeyVersion) -> str:
    """Which backup or `backup follow` delta kept a version, as the operator names it."""
    return f"{'delta' if is_delta_name(found.source) else 'backup'} {found.source}"
