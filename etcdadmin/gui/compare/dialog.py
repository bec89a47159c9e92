"""Two directories side by side, only the differences, and copying selected ones across."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.changes import CopyDirectory, DeleteKey, SetValue
from etcdadmin.core.environments.compare import DirectoryDiff, compare_directories
from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.secrets.envelope import is_envelope
from etcdadmin.core.tree.directories import directory_prefix
from etcdadmin.core.tree.index import KeyIndex
from etcdadmin.core.tree.names import display_segment, parse_display_segment
from etcdadmin.core.tree.valueformat import preview
from etcdadmin.gui.errors import describe
from etcdadmin.gui.icons import icon
from etcdadmin.gui.secrets.masking import masked_pair
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import Task, run_task

MAX_CELL = 200


def cells(left: KeyValue | None, right: KeyValue | None) -> tuple[str, str]:
    """Two values side by side; where either is a secret, labels instead (`masked_pair`)."""
    shown = masked_pair(left.value if left else None, right.value if right else None)
    return preview(shown[0], MAX_CELL), preview(shown[1], MAX_CELL)


def top_directories(index: KeyIndex) -> list[bytes]:
    return [c.prefix for c in index.children(b"") if c.is_dir]


class CompareDialog(QDialog):
    """Signals:
    staged(object): a change copying a difference across, or a whole directory copy.
    apply_requested(): the operator pressed Ctrl+Return here: apply the pending changes.
    """

    staged = Signal(object)
    apply_requested = Signal()

    def __init__(self, parent: QWidget | None, session: Session, index: KeyIndex) -> None:
        super().__init__(parent)
        self.setObjectName("compareDialog")
        self.setWindowTitle("Compare directories")
        self.session = session
        self.diff: DirectoryDiff | None = None
        self._task: Task | None = None
        layout = QVBoxLayout(self)
        pick = QHBoxLayout()
        self.left = QComboBox()
        self.right = QComboBox()
        for combo in (self.left, self.right):
            combo.setEditable(True)
            for directory in top_directories(index):
                combo.addItem(display_segment(directory), directory)
            combo.setMinimumWidth(220)
        if self.right.count() > 1:
            self.right.setCurrentIndex(1)
        pick.addWidget(QLabel("Left"))
        pick.addWidget(self.left)
        pick.addWidget(QLabel("Right"))
        pick.addWidget(self.right)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setObjectName("compareButton")
        self.compare_button.clicked.connect(self.compare)
        pick.addWidget(self.compare_button)
        layout.addLayout(pick)
        self.summary = QLabel("")
        layout.addWidget(self.summary)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("compareTable")
        self.table.setHorizontalHeaderLabels(("Key", "Left", "Right", "Difference"))
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.to_right = QPushButton("Copy selected left → right")
        self.to_right.setObjectName("copyToRight")
        self.to_right.clicked.connect(lambda: self.copy_selected(to_right=True))
        self.to_left = QPushButton("Copy selected right → left")
        self.to_left.clicked.connect(lambda: self.copy_selected(to_right=False))
        self.copy_dir = QPushButton("Copy left directory to a new name…")
        self.copy_dir.setObjectName("copyDirectory")
        self.copy_dir.clicked.connect(self.copy_directory)
        for b in (self.compare_button, self.to_right, self.to_left, self.copy_dir):
            # A focused auto-default button clicks on Return WITH any modifier (QPushButton's
            # keyPressEvent ignores them): Ctrl+Return, the window's apply, staged a copy twice.
            b.setAutoDefault(False)
        for b in (self.to_right, self.to_left, self.copy_dir):
            buttons.addWidget(b)
        apply = QShortcut(QKeySequence("Ctrl+Return"), self)
        apply.activated.connect(self.apply_requested)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.resize(900, 520)

    @staticmethod
    def _prefix(combo: QComboBox) -> bytes:
        text = combo.currentText().strip()
        data = combo.currentData()
        if isinstance(data, bytes) and display_segment(data) == text:
            return data
        return directory_prefix(parse_display_segment(text))

    def compare(self) -> None:
        try:
            left, right = self._prefix(self.left), self._prefix(self.right)
        except EtcdAdminError as exc:
            self.summary.setText(describe(exc))
            return
        conn = self.session.conn
        self.summary.setText("comparing …")
        if self._task is not None:
            self._task.cancel()  # a newer pair of directories supersedes the running compare
        self._task = run_task(
            "compare",
            lambda task: compare_directories(conn, left, right),
            self._show,
            lambda exc: self.summary.setText(describe(exc)),
        )

    def _show(self, diff: DirectoryDiff) -> None:
        self.diff = diff
        self.table.setRowCount(len(diff.entries))
        labels = {"only_left": "only left", "only_right": "only right", "different": "different"}
        for row, entry in enumerate(diff.entries):
            texts = (
                display_segment(entry.relative),
                *cells(entry.left, entry.right),
                labels.get(str(entry.status), str(entry.status)),
            )
            secrets = (None, entry.left, entry.right, None)
            for col, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                kv = secrets[col]
                if kv is not None and is_envelope(kv.value):
                    item.setIcon(icon("lock"))
                self.table.setItem(row, col, item)
        self.summary.setText(
            f"{len(diff.entries)} difference(s), {diff.identical} identical key(s), "
            f"at revision {diff.revision}"
        )

    def copy_selected(self, to_right: bool) -> None:
        if self.diff is None:
            return
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        # A secret is bound to its key: copied as it is, the target would refuse to open it.
        # Secrets are sealed again for the target key (and its recipients) on a worker.
        moves: list[tuple[bytes, bytes, bytes]] = []
        resealed: list[tuple[bytes, int]] = []
        for row in rows:
            entry = self.diff.entries[row]
            source, target = (entry.left, entry.right) if to_right else (entry.right, entry.left)
            prefix = self.diff.right if to_right else self.diff.left
            key = prefix + entry.relative
            expected = target.mod_revision if target is not None else 0
            if source is None:
                self.staged.emit(DeleteKey(key, expected))
            elif is_envelope(source.value):
                moves.append((source.key, source.value, key))
                resealed.append((key, expected))
            else:
                self.staged.emit(SetValue(key, source.value, expected, 0))
        self.summary.setText(f"staged {len(rows) - len(moves)} change(s); see Pending changes")
        if moves:
            self._reseal(moves, resealed)

    def _reseal(
        self, moves: list[tuple[bytes, bytes, bytes]], targets: list[tuple[bytes, int]]
    ) -> None:
        keeper = self.session.secrets

        def done(envelopes: list[bytes]) -> None:
            for (key, expected), envelope in zip(targets, envelopes, strict=True):
                self.staged.emit(SetValue(key, envelope, expected, 0))
            self.summary.setText(f"staged {len(envelopes)} secret(s), encrypted for their new keys")

        self.summary.setText("encrypting the secrets for their new keys …")
        run_task(
            "re-seal secrets",
            lambda task: keeper.reseal(moves),
            done,
            lambda exc: self.summary.setText(f"Secrets not copied: {describe(exc)}"),
            owner=self,
        )

    def copy_directory(self) -> None:
        try:
            source = self._prefix(self.left)
        except EtcdAdminError as exc:
            self.summary.setText(describe(exc))
            return
        name, ok = QInputDialog.getText(
            self, "Copy directory", f"Copy {display_segment(source)} to:", text=""
        )
        if ok and name.strip():
            try:
                target = directory_prefix(parse_display_segment(name.strip()))
                change = CopyDirectory(source, target)
            except EtcdAdminError as exc:
                self.summary.setText(describe(exc))
                return
            self._copy_with_secrets(change)

    def _copy_with_secrets(self, change: CopyDirectory) -> None:
        """Stage `change`; the secrets it copies are sealed again for their new keys on a
        worker and staged after it (the later write of a key wins in a plan), so none lands
        under a key it was not made for. Nothing is staged when they cannot be."""
        conn, keeper = self.session.conn, self.session.secrets
        source, target = change.source, change.target

        def resealed(task: object) -> list[SetValue]:
            secrets = [kv for kv in conn.read_prefix(source).items if is_envelope(kv.value)]
            moves = [(kv.key, kv.value, target + kv.key[len(source) :]) for kv in secrets]
            envelopes = keeper.reseal(moves) if moves else []
            # no guard of their own: the copy already requires each target key to be absent
            return [
                SetValue(new, envelope, None)
                for (_, _, new), envelope in zip(moves, envelopes, strict=True)
            ]

        def done(secrets: list[SetValue]) -> None:
            self.staged.emit(change)
            for secret in secrets:
                self.staged.emit(secret)
            again = f", {len(secrets)} secret(s) encrypted for their new keys" if secrets else ""
            self.summary.setText(
                f"staged copy {display_segment(source)} → {display_segment(target)}{again}"
            )

        self.summary.setText("reading the directory's secrets …")
        run_task(
            "copy directory",
            resealed,
            done,
            lambda exc: self.summary.setText(f"Nothing staged: {describe(exc)}"),
            owner=self,
        )
