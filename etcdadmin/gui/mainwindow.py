"""The main window: it lays out the panels and wires their signals; the work is theirs."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.access.permits import Permits
from etcdadmin.core.changes.recovery import StagedWork
from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.local.sandbox import Sandbox
from etcdadmin.core.tree.directories import parent_directory
from etcdadmin.core.tree.index import KeyIndex
from etcdadmin.core.tree.names import display_segment
from etcdadmin.gui.access.gating import WriteGate
from etcdadmin.gui.access.panel import AccessPanel
from etcdadmin.gui.actions import install_actions
from etcdadmin.gui.agents.panel import AgentsPanel
from etcdadmin.gui.changes.panel import ChangesPanel
from etcdadmin.gui.cluster.panel import ClusterPanel
from etcdadmin.gui.compare.dialog import CompareDialog
from etcdadmin.gui.compare.transfer import export_yaml, import_yaml
from etcdadmin.gui.connections.indicator import ConnectionIndicator
from etcdadmin.gui.connections.lifecycle import ConnectionLifecycle
from etcdadmin.gui.connections.picker import ProfilePicker
from etcdadmin.gui.connections.profiles import ConnectionProfile, ProfileStore
from etcdadmin.gui.editor.newkey import stage_new_key, stage_rename
from etcdadmin.gui.editor.panel import EditorPanel
from etcdadmin.gui.errors import describe
from etcdadmin.gui.history.panel import HistoryPanel
from etcdadmin.gui.icons import icon
from etcdadmin.gui.secrets.marks import SecretMarks
from etcdadmin.gui.session import Session
from etcdadmin.gui.statusbar import StatusLine
from etcdadmin.gui.tree.model import KeyTreeModel
from etcdadmin.gui.tree.view import TreePanel

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Signals: none of its own; it wires the panels' signals together."""

    def __init__(self, store: ProfileStore | None = None, sandbox_dir: Path | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("etcdadmin")
        self.setWindowIcon(icon("etcdadmin"))
        self.store = store or ProfileStore()
        # Set while a close waits for the apply the operator chose in the close question.
        self.close_after_apply = False
        self.connections = ConnectionLifecycle(self, self.store, sandbox_dir)

        self.model = KeyTreeModel(
            {"dir": icon("folder"), "key": icon("key"), "secret": icon("lock")}
        )
        self.secret_marks = SecretMarks(self.model)
        self.tree = TreePanel(self.model)
        self.editor = EditorPanel()
        self.changes = ChangesPanel()
        self.history = HistoryPanel()
        self.agents = AgentsPanel()
        self.cluster = ClusterPanel()
        self.access = AccessPanel()
        self.profiles = ProfilePicker(self.store)

        self.status = StatusLine(self.statusBar(), self)
        self.indicator = ConnectionIndicator(self, self.status)
        self.banner = self.indicator.banner
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.indicator.banner)
        layout.addWidget(self.indicator.unreachable)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tree)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("detailTabs")
        self.tabs.addTab(self.editor, "Value")
        self.tabs.addTab(self.history, "History")
        self.tabs.addTab(self.agents, "Agents")
        self.tabs.addTab(self.cluster, "Cluster")
        self.tabs.addTab(self.access, "Access")
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        # Stretch factors share out only the room left over the panes' size hints, and the
        # History tab's backups table asks for most of it: the key tree came out about 200 px
        # wide in a 1280 px window, three levels deep showing "…" instead of names.
        split.setSizes([360, 640])
        layout.addWidget(split, 1)
        self.setCentralWidget(central)

        dock = QDockWidget("Pending changes", self)
        dock.setObjectName("changesDock")
        dock.setWidget(self.changes)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

        self.connection_label = self.status.connection_label
        self.revision_label = self.status.revision_label
        self.actions_by_name = install_actions(self)
        self.connect_action = self.actions_by_name["connectAction"]
        self.write_gate = WriteGate(self.actions_by_name)
        self._wire()
        self._restore_window_state()

    # -- construction -----------------------------------------------------------------------

    def _wire(self) -> None:
        self.connections.connected.connect(self._connected)
        self.connections.disconnected.connect(self._disconnected)
        self.connections.busy.connect(self.status.set_busy)
        self.connections.busy.connect(
            lambda busy: self.show_message("starting the local sandbox etcd …") if busy else None
        )
        self.connections.unavailable.connect(
            lambda: self.status.set_connection("not connected", place="")
        )
        self.tree.key_selected.connect(self._key_selected)
        self.tree.directory_selected.connect(self.agents.set_directory)
        self.tree.directory_selected.connect(self.history.backups.set_target)
        self.tree.directory_selected.connect(self.access.set_directory)
        self.tree.directory_selected.connect(self.write_gate.directory_selected)
        self.tree.key_selected.connect(self.write_gate.key_selected)
        self.access.signed_in.connect(self.connections.log_in_as)
        self.editor.staged.connect(self.changes.stage)
        self.history.staged.connect(self.changes.stage)
        self.changes.discarded.connect(self.editor.discarded)
        self.changes.applied.connect(self._applied)
        self.changes.failed.connect(self._apply_failed)
        panels = (self.editor, self.changes, self.history, self.agents, self.cluster, self.access)
        for panel in panels:
            panel.message.connect(self.show_message)

    def _restore_window_state(self) -> None:
        settings = QSettings("etcdadmin", "etcdadmin")
        geometry = settings.value("window/geometry")
        state = settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:
        if len(self.changes.changes):
            # Staged work is never dropped by a close: the operator says what happens to it.
            event.ignore()
            self._ask_before_close()
            return
        settings = QSettings("etcdadmin", "etcdadmin")
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        self.connections.close()
        super().closeEvent(event)

    def _ask_before_close(self) -> None:
        count = len(self.changes.changes)
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Close with staged changes?",
            f"{count} change{'s are' if count != 1 else ' is'} staged and not applied. Apply "
            "them before closing, discard them, or cancel and keep working?",
            parent=self,
        )
        box.setObjectName("closeQuestion")
        apply = box.addButton("Apply and close", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard and close", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)

        def answered(button: object) -> None:
            if button is apply:
                self.close_after_apply = True
                self.changes.apply()
            elif button is discard:
                self.changes.discard()
                self.close()

        box.buttonClicked.connect(answered)
        box.open()

    def quit(self) -> None:
        """File → Quit: the same as closing the window (staged changes are asked about)."""
        self.close()

    def _apply_failed(self) -> None:
        # the apply chosen on close wrote nothing: stay open, the changes are still staged
        self.close_after_apply = False

    # -- the connection ---------------------------------------------------------------------

    @property
    def session(self) -> Session | None:
        return self.connections.session

    @property
    def sandbox(self) -> Sandbox | None:
        return self.connections.sandbox

    @property
    def profile(self) -> ConnectionProfile | None:
        return self.connections.profile

    def show_message(self, text: str) -> None:
        self.status.show_message(text)

    def start(self) -> None:
        """Connect to the last profile, or offer the local sandbox to a new user."""
        self.connect_selected()

    def connect_selected(self) -> None:
        self.connections.connect_named(self.profiles.currentText())

    def connect_profile(self, profile: ConnectionProfile) -> None:
        self.connections.connect_profile(profile)

    def disconnect_session(self) -> None:
        self.connections.close_session()

    def reload(self) -> None:
        self.connections.reconnect()

    def connect_endpoints(
        self,
        endpoints: str,
        name: str = "",
        read_only: bool = False,
        connection: Mapping[str, str] | None = None,
    ) -> None:
        """Connect to `endpoints` given on the command line, remembered as a profile (named
        `name`, or after the endpoints) so that the next start without them opens it again.

        A profile of that name keeps what it says beyond the endpoints (production, TLS, user):
        a command line must not quietly turn a production profile into a plain one.
        `connection` (profile fields: TLS files, user, password) is what the command line
        gave besides; the password is never written to the profile."""
        name = name or endpoints
        given: dict[str, Any] = dict(connection or {})
        profile = ConnectionProfile(name=name, endpoints=endpoints, read_only=read_only, **given)
        try:
            if name in self.store.names():
                stored = self.store.load(name)
                profile = dataclasses.replace(
                    stored, endpoints=endpoints, read_only=stored.read_only or read_only, **given
                )
            self.store.save(profile, store_password=False)
        except EtcdAdminError as exc:  # connect all the same; only the remembering failed
            self.show_message(describe(exc))
        self.profiles.fill()
        self.connect_profile(profile)

    def _connected(self, session: Session, profile: ConnectionProfile) -> None:
        self.profiles.show_profile(profile.name)
        session.load_started.connect(self._load_started)
        session.page_loaded.connect(self._page_loaded)
        session.keys_changed.connect(self._keys_changed)
        session.revision_changed.connect(self.status.set_revision)
        session.revision_changed.connect(self.cluster.revision_changed)
        session.failed.connect(self._session_failed)
        session.recovered.connect(self._session_recovered)
        session.permits_known.connect(self._permits_known)
        session.partial.connect(self._partial)
        self.editor.set_session(session)
        self.tree.session = session
        self.secret_marks.set_session(session)
        # the sandbox is throw-away: its staged changes are not kept for a next start
        recovery = None if profile.sandbox else StagedWork(profile.name)
        self.changes.set_session(session, profile.production, profile.read_only, recovery)
        self.history.set_session(session)
        self.history.backups.set_session(session, profile.production, profile.read_only)
        self.agents.set_session(session, profile.production, profile.read_only)
        self.cluster.set_session(session, profile.read_only)
        self.access.set_session(session, profile.production, profile.read_only)
        self.indicator.connected(session, profile)

    def _disconnected(self) -> None:
        # a compare dialog holds the session it was opened on: it must not stage across
        for dialog in self.findChildren(CompareDialog):
            dialog.close()
            dialog.deleteLater()
        # nothing may still plan or apply on the closed session (the window may be closing)
        self.changes.set_session(None, production=False, read_only=False)
        self.cluster.set_session(None)
        self.agents.set_session(None)
        self.history.backups.set_session(None)
        self.access.set_session(None)
        self.write_gate.set_permits(None)
        self.secret_marks.set_session(None)
        self.indicator.disconnected()
        self.model.reset()

    # -- session signals --------------------------------------------------------------------

    def _load_started(self, index: KeyIndex) -> None:
        self.model.reset(index)
        self.status.load_started()

    def _page_loaded(self, loaded: int, revision: int, last: bool) -> None:
        self.model.refresh_listed()
        if last:
            log.info("%d keys loaded at revision %d", loaded, revision)
            self.status.load_finished()
            self.indicator.loaded()
            self.show_message(f"{loaded:,} keys loaded at revision {revision}")
        else:
            self.show_message(f"loading keys … {loaded:,}")

    def _applied(self, revision: int) -> None:
        if self.close_after_apply and not len(self.changes.changes):
            self.close()
            return
        # The watch reports the operator's own write too, a coalescing window later; a restore
        # staged from History in between would be guarded by the value before this apply.
        if self.history.key is not None:
            self.history.keys_changed({self.history.key})

    def _keys_changed(self, changed: set[bytes]) -> None:
        self.model.keys_changed(changed)
        self.secret_marks.keys_changed(changed)
        self.changes.keys_changed(changed)
        self.history.keys_changed(changed)
        self.agents.keys_changed(changed)
        if self.editor.key is not None and self.editor.key in changed:
            self.editor.changed_elsewhere()
            self.show_message(f"{display_segment(self.editor.key)} changed in etcd")

    def _session_failed(self, message: str) -> None:
        self.status.set_busy(False)
        self.show_message(message)
        self.indicator.failed(message)

    def _permits_known(self, permits: Permits) -> None:
        """What the user may write, once per connection: the editor and the pending list
        refuse the rest before etcd does (etcd still refuses what changed since)."""
        self.editor.set_permits(permits)
        self.changes.set_permits(permits)
        self.write_gate.set_permits(permits)

    def _partial(self, prefixes: tuple[bytes, ...]) -> None:
        shown = ", ".join(p.decode("utf-8", "backslashreplace") for p in prefixes) or "nothing"
        self.show_message(f"the tree shows what this user may read: {shown}")

    def _session_recovered(self) -> None:
        self.indicator.recovered()
        self.show_message("connected again")

    # -- selection and the actions on it ----------------------------------------------------

    def _key_selected(self, key: bytes) -> None:
        self.editor.open_key(key)
        self.history.set_key(key)
        self.history.backups.set_target(key)

    def _current_directory(self) -> bytes:
        index = self.tree.view.currentIndex()
        directory = self.model.directory_at(index)
        if directory is not None:
            return directory
        key = self.model.key_at(index)
        return (parent_directory(key) if key else None) or b""

    def edit_value(self) -> None:
        self.tabs.setCurrentWidget(self.editor)
        self.editor.focus_value()

    def new_key(self) -> None:
        if self.session is None or self.changes.workspace.read_only:
            self.show_message("read-only connection: nothing can be staged")
            return
        stage_new_key(self, self.session, self._current_directory(), self.changes.stage)

    def make_secret(self) -> None:
        if self.changes.workspace.read_only:
            self.show_message("read-only connection: nothing can be staged")
            return
        self.editor.make_secret()

    def rename_key(self) -> None:
        if self.editor.current is not None and self.session is not None:
            stage_rename(self, self.session, self.editor.current, self.changes.stage)

    def import_yaml(self) -> None:
        if self.session is not None:
            directory = self._current_directory()
            import_yaml(self, self.session, directory, self.changes.stage, self.show_message)

    def export_yaml(self) -> None:
        directory = self._current_directory()
        if self.session is not None and directory:
            export_yaml(self, self.session.conn, directory, self.show_message)

    def compare(self) -> None:
        if self.session is None:
            return
        dialog = CompareDialog(self, self.session, self.model.index_data)
        dialog.staged.connect(self.changes.stage)
        dialog.apply_requested.connect(self.changes.apply)
        directory = self._current_directory()
        if directory:
            dialog.left.setCurrentText(display_segment(directory))
        dialog.show()
        dialog.compare()
