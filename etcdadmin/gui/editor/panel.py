"""The value of the selected key, its metadata, and editing it into a staged change."""

from __future__ import annotations

import logging

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.access.permits import Permits
from etcdadmin.core.changes import DeleteKey, SetValue
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.secrets.envelope import is_envelope
from etcdadmin.core.tree.names import display_segment
from etcdadmin.core.tree.valueformat import (
    ValueFormat,
    ValueFormatError,
    detect,
    from_text,
    to_text,
)
from etcdadmin.gui.errors import describe
from etcdadmin.gui.secrets.field import SecretField
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import Task, run_task

log = logging.getLogger(__name__)


class EditorPanel(QWidget):
    """Signals:
    staged(object, bool): a PendingChange the user staged (SetValue or DeleteKey), and
        whether the value it was based on is what etcd held when the editor last read it
        (False: the key changed in etcd while the operator was editing).
    message(str): a line for the status bar.
    """

    staged = Signal(object, bool)
    message = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("editorPanel")
        self.session: Session | None = None
        self.key: bytes | None = None
        self.current: KeyValue | None = None
        # Whether `current` is still what etcd holds, as far as the watch has said.
        self.fresh = False
        # What the connection's user may write (None until read): a key it may only read
        # is shown, never staged.
        self.permits: Permits | None = None
        self._on = False
        self._task: Task | None = None
        layout = QVBoxLayout(self)
        self.title = QLabel("Select a key")
        self.title.setObjectName("editorTitle")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        meta = QFormLayout()
        self.created = QLabel("-")
        self.modified = QLabel("-")
        self.version = QLabel("-")
        self.lease = QLabel("-")
        meta.addRow("Created at revision", self.created)
        meta.addRow("Modified at revision", self.modified)
        meta.addRow("Version", self.version)
        meta.addRow("Lease", self.lease)
        layout.addLayout(meta)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Format"))
        self.format = QComboBox()
        self.format.setObjectName("valueFormat")
        for fmt in ValueFormat:
            self.format.addItem(fmt.value, fmt)
        self.format.currentIndexChanged.connect(self._format_changed)
        bar.addWidget(self.format)
        bar.addStretch(1)
        layout.addLayout(bar)
        self.text = QPlainTextEdit()
        self.text.setObjectName("valueEdit")
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        layout.addWidget(self.text, 1)
        # A secret is never put in the text editor: it shows this masked field instead.
        self.secret = SecretField()
        self.secret.message.connect(self.message)
        self.secret.hide()
        layout.addWidget(self.secret, 1)
        self.error = QLabel("")
        self.error.setObjectName("editorError")
        self.error.setStyleSheet("color: #c0392b")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        self.read_only_note = QLabel("")
        self.read_only_note.setObjectName("readOnlyNote")
        self.read_only_note.setWordWrap(True)
        self.read_only_note.hide()
        layout.addWidget(self.read_only_note)
        buttons = QHBoxLayout()
        self.stage_button = QPushButton("Stage change")
        self.stage_button.setObjectName("stageButton")
        self.stage_button.setToolTip("Add this value to the pending changes (Ctrl+S)")
        self.stage_button.clicked.connect(self.stage)
        self.delete_button = QPushButton("Stage delete")
        self.delete_button.setObjectName("stageDeleteButton")
        self.delete_button.clicked.connect(self.stage_delete)
        self.revert_button = QPushButton("Revert")
        self.revert_button.clicked.connect(self.revert)
        self.make_secret_button = QPushButton("Make secret")
        self.make_secret_button.setObjectName("makeSecretButton")
        self.make_secret_button.setToolTip(
            "Stage this value encrypted for the directory's recipients"
        )
        self.make_secret_button.clicked.connect(self.make_secret)
        for button in (
            self.stage_button,
            self.delete_button,
            self.revert_button,
            self.make_secret_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self._fmt = ValueFormat.TEXT
        self._set_enabled(False)

    def set_session(self, session: Session | None) -> None:
        self.session = session
        self.permits = None
        self.clear()

    def set_permits(self, permits: Permits) -> None:
        self.permits = permits
        self._set_enabled(self._on)

    def refusal(self) -> str:
        """Why the open key may not be changed by this user ("" when it may)."""
        if self.permits is None or self.session is None or self.key is None:
            return ""
        return self.permits.refusal(self.session.settings, [self.key], "change this key")

    def clear(self) -> None:
        self.key = None
        self.current = None
        self.title.setText("Select a key")
        self.text.setPlainText("")
        self._show_secret(False)
        for label in (self.created, self.modified, self.version, self.lease):
            label.setText("-")
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        self._on = on
        refusal = self.refusal()
        writable = on and not refusal
        for widget in (self.text, self.revert_button):
            widget.setEnabled(on)
        # read-only rather than disabled: the value can still be selected and copied
        self.text.setReadOnly(not writable)
        self.stage_button.setEnabled(writable)
        self.delete_button.setEnabled(writable and self.current is not None)
        self.format.setEnabled(on and not self.is_secret)
        self.make_secret_button.setEnabled(writable and not self.is_secret)
        self.secret.setEnabled(writable or not on)
        self.read_only_note.setText(f"Read only: {refusal}" if refusal else "")
        self.read_only_note.setVisible(bool(refusal))

    @property
    def is_secret(self) -> bool:
        """The open key holds a secret: it is edited blind and stays one."""
        return self.current is not None and is_envelope(self.current.value)

    def _show_secret(self, on: bool) -> None:
        self.text.setVisible(not on)
        self.secret.setVisible(on)
        if not on:
            self.secret.clear()

    def _modified(self) -> bool:
        return self.text.document().isModified() or self.secret.has_input()

    def changed_elsewhere(self) -> None:
        """The open key changed in etcd. An unedited view reloads; an edit in progress is kept
        and stays guarded by the revision it was based on, so applying it reports the conflict
        instead of silently overwriting the other write."""
        if self.key is None:
            return
        if not self._modified():
            self.open_key(self.key)
            return
        self.fresh = False
        self.error.setText(
            "This key changed in etcd since you opened it. Your edit is kept; applying it will "
            "report a conflict. Revert loads the new value."
        )

    def open_key(self, key: bytes) -> None:
        """Load `key` in the background; a newer selection supersedes an older load."""
        if self.session is None:
            return
        self.key = key
        # Until the new key is loaded nothing may be staged: the guard would be the old key's.
        self.current = None
        self._set_enabled(False)
        self.title.setText(display_segment(key))
        self.error.setText("")
        if self._task is not None:
            self._task.cancel()
        session = self.session

        def load(task: object) -> tuple[bytes, KeyValue | None, int]:
            kv = session.conn.get(key)
            ttl = 0
            if kv is not None and kv.lease:
                ttl = session.conn.lease_ttl(kv.lease)
            return key, kv, ttl

        self._task = run_task("read key", load, self._loaded, self._failed)

    def _loaded(self, result: tuple[bytes, KeyValue | None, int]) -> None:
        key, kv, ttl = result
        if key != self.key:
            return  # a newer selection superseded this load
        self.current = kv
        self.fresh = True
        log.info("a key was loaded into the editor")
        if kv is None:
            self.created.setText("(deleted)")
            self.modified.setText("-")
            self.version.setText("-")
            self.lease.setText("-")
        else:
            self.created.setText(str(kv.create_revision))
            self.modified.setText(str(kv.mod_revision))
            self.version.setText(str(kv.version))
            self.lease.setText(f"{kv.lease:x} (TTL {ttl}s)" if kv.lease else "none")
        self._show_current()
        self._set_enabled(True)

    def _failed(self, exc: BaseException) -> None:
        self.current = None
        self._set_enabled(False)
        self.error.setText(describe(exc))
        self.message.emit(describe(exc))

    def _show_current(self) -> None:
        value = self.current.value if self.current is not None else b""
        if self.current is not None and self.session is not None and is_envelope(value):
            self.text.setPlainText("")
            self.text.document().setModified(False)
            self.secret.show_envelope(self.session.secrets, self.current.key, value)
            self._show_secret(True)
            self.error.setText("")
            return
        self._show_secret(False)
        self._fmt = detect(value)
        self.format.blockSignals(True)
        self.format.setCurrentIndex(list(ValueFormat).index(self._fmt))
        self.format.blockSignals(False)
        self.text.setPlainText(to_text(value, self._fmt))
        self.text.document().setModified(False)
        self.error.setText("")

    def focus_value(self) -> None:
        """Put the cursor in the value (Keys → Edit value): editing needs no mouse."""
        self.text.setFocus()

    def revert(self) -> None:
        """Back to what etcd holds now (re-read: the key may have changed since it opened)."""
        if self.key is not None:
            self.open_key(self.key)

    def discarded(self, keys: set[bytes]) -> None:
        """Staged changes of `keys` were dropped: text staged from here must not stay shown."""
        if self.key is not None and self.key in keys:
            self.revert()

    def _format_changed(self) -> None:
        new = self.format.currentData()
        try:
            value = from_text(self.text.toPlainText(), self._fmt)
            self.text.setPlainText(to_text(value, new))
            self._fmt = new
            self.error.setText("")
        except ValueFormatError as exc:
            self.error.setText(str(exc))
            self.format.blockSignals(True)
            self.format.setCurrentIndex(list(ValueFormat).index(self._fmt))
            self.format.blockSignals(False)

    def edited_value(self) -> bytes:
        return from_text(self.text.toPlainText(), self.format.currentData())

    def stage(self) -> None:
        if self.key is None or not self.stage_button.isEnabled():
            return
        if self.is_secret:
            self._stage_secret(self.secret.typed())
            return
        try:
            value = self.edited_value()
        except ValueFormatError as exc:
            self.error.setText(str(exc))
            return
        expected = self.current.mod_revision if self.current is not None else 0
        lease = self.current.lease if self.current is not None else 0
        self.error.setText("")
        self.staged.emit(SetValue(self.key, value, expected, lease), self.fresh)
        # staged: the edit is safe in the pending list, so the view may follow etcd again
        self.text.document().setModified(False)
        self.message.emit(f"staged: {display_segment(self.key)}")

    def make_secret(self) -> None:
        """Stage the value shown, encrypted (Keys → Make secret): the key holds a secret from
        the next apply on."""
        if self.key is None or self.is_secret or not self.stage_button.isEnabled():
            return
        try:
            value = self.edited_value()
        except ValueFormatError as exc:
            self.error.setText(str(exc))
            return
        self._stage_secret(value, was_plain=self.current is not None)

    def _stage_secret(self, value: bytes, was_plain: bool = False) -> None:
        """Seal `value` on a worker, then stage the envelope: only ciphertext is ever staged,
        so the pending list, its diff, undo and the recovery file never hold the value."""
        if self.key is None or self.session is None:
            return
        if not value:
            self.error.setText("Type the new value of the secret first.")
            return
        key, keeper, fresh = self.key, self.session.secrets, self.fresh
        expected = self.current.mod_revision if self.current is not None else 0
        lease = self.current.lease if self.current is not None else 0
        self.error.setText("")
        self.message.emit("encrypting …")

        def sealed(envelopes: list[bytes]) -> None:
            self.staged.emit(SetValue(key, envelopes[0], expected, lease), fresh)
            if key == self.key:
                self.secret.new_value.clear()
                self.text.document().setModified(False)
            # etcd keeps earlier versions (MVCC) until a compaction: say so, once, here
            note = "; the plain value stays in etcd's history until a compaction"
            note = note if was_plain else ""
            self.message.emit(f"staged secret: {display_segment(key)}{note}")

        def refused(exc: BaseException) -> None:
            text = f"Not staged: {describe(exc)}"
            self.error.setText(text)
            self.message.emit(text)

        run_task(
            "seal secret", lambda task: keeper.seal([(key, value)]), sealed, refused, owner=self
        )

    def stage_delete(self) -> None:
        if self.key is None or self.current is None or not self.delete_button.isEnabled():
            return
        self.staged.emit(DeleteKey(self.key, self.current.mod_revision), self.fresh)
        self.message.emit(f"staged delete: {display_segment(self.key)}")
