"""The main window: connection, tree, editor, pending changes and the side panels."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.changes import RenameKey, SetValue
from etcdadmin.core.environments.transfer import export_file, import_file
from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.local.example import seed_example
from etcdadmin.core.local.sandbox import Sandbox
from etcdadmin.core.tree.directories import parent_directory
from etcdadmin.core.tree.index import KeyIndex
from etcdadmin.core.tree.names import display_segment, parse_display_segment
from etcdadmin.gui.agents.panel import AgentsPanel
from etcdadmin.gui.changes.panel import ChangesPanel
from etcdadmin.gui.cluster.panel import ClusterPanel
from etcdadmin.gui.compare.dialog import CompareDialog
from etcdadmin.gui.connections.dialog import ProfileDialog
from etcdadmin.gui.connections.profiles import SANDBOX, ConnectionProfile, ProfileStore
from etcdadmin.gui.editor.newkey import NewKeyDialog
from etcdadmin.gui.editor.panel import EditorPanel
from etcdadmin.gui.errors import describe, show_error
from etcdadmin.gui.history.panel import HistoryPanel
from etcdadmin.gui.session import Session
from etcdadmin.gui.tree.model import KeyTreeModel
from etcdadmin.gui.tree.view import TreePanel
from etcdadmin.gui.workers import activity, run_task

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def icon(name: str) -> QIcon:
    return QIcon(str(RESOURCES / "icons" / f"{name}.svg"))


class MainWindow(QMainWindow):
    """Signals: none of its own; it wires the panels' signals together."""

    def __init__(self, store: ProfileStore | None = None, sandbox_dir: Path | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("etcdadmin")
        self.setWindowIcon(icon("etcdadmin"))
        self.store = store or ProfileStore()
        self.sandbox_dir = sandbox_dir
        self.sandbox: Sandbox | None = None
        self.session: Session | None = None
        self.profile: ConnectionProfile | None = None

        self.model = KeyTreeModel({"dir": icon("folder"), "key": icon("key")})
        self.tree = TreePanel(self.model)
        self.editor = EditorPanel()
        self.changes = ChangesPanel()
        self.history = HistoryPanel()
        self.agents = AgentsPanel()
        self.cluster = ClusterPanel()

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        self.banner = QLabel("")
        self.banner.setObjectName("productionBanner")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.setStyleSheet(
            "background: #c0392b; color: white; font-weight: bold; padding: 4px;"
        )
        self.banner.hide()
        layout.addWidget(self.banner)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tree)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("detailTabs")
        self.tabs.addTab(self.editor, "Value")
        self.tabs.addTab(self.history, "History")
        self.tabs.addTab(self.agents, "Agents")
        self.tabs.addTab(self.cluster, "Cluster")
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        layout.addWidget(split, 1)
        self.setCentralWidget(central)

        dock = QDockWidget("Pending changes", self)
        dock.setObjectName("changesDock")
        dock.setWidget(self.changes)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

        self._build_toolbar()
        self._build_statusbar()
        self._wire()
        self._restore_window_state()

    # -- construction -----------------------------------------------------------------------

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main")
        bar.setObjectName("mainToolbar")
        self.addToolBar(bar)
        self.profiles = QComboBox()
        self.profiles.setObjectName("profileCombo")
        self.profiles.setMinimumWidth(180)
        self._fill_profiles()
        bar.addWidget(QLabel(" Connection "))
        bar.addWidget(self.profiles)

        def action(
            text: str,
            shortcut: str | QKeySequence | QKeySequence.StandardKey | None,
            slot: Callable[[], None],
            name: str,
            tip: str,
        ) -> QAction:
            act = QAction(text, self)
            act.setObjectName(name)
            if shortcut:
                act.setShortcut(shortcut)
            act.setToolTip(tip)
            act.triggered.connect(slot)
            bar.addAction(act)
            return act

        self.connect_action = action(
            "Connect", "Ctrl+K", self.connect_selected, "connectAction", "Connect (Ctrl+K)"
        )
        action("New…", "Ctrl+N", self.new_profile, "newProfileAction", "New connection (Ctrl+N)")
        action(
            "Reload", QKeySequence.StandardKey.Refresh, self.reload, "reloadAction", "Reload (F5)"
        )
        bar.addSeparator()
        action("Compare…", "Ctrl+D", self.compare, "compareAction", "Compare directories (Ctrl+D)")
        self._build_menus()
        search = QAction(self)
        search.setShortcut(QKeySequence.StandardKey.Find)
        search.triggered.connect(lambda: self.tree.search.setFocus())
        self.addAction(search)
        stage = QAction(self)
        stage.setShortcut(QKeySequence.StandardKey.Save)
        stage.triggered.connect(self.editor.stage)
        self.addAction(stage)
        undo = QAction(self)
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        undo.triggered.connect(self.changes.undo)
        self.addAction(undo)

    def _build_menus(self) -> None:
        menu = self.menuBar().addMenu("&Keys")
        for text, shortcut, slot, name in (
            ("New key…", "Ctrl+Shift+N", self.new_key, "newKeyAction"),
            ("Rename key…", "F2", self.rename_key, "renameKeyAction"),
            (
                "Stage delete",
                QKeySequence.StandardKey.Delete,
                self.editor.stage_delete,
                "deleteAction",
            ),
            ("Apply pending changes", "Ctrl+Return", self.changes.apply, "applyAction"),
        ):
            act = menu.addAction(text)
            act.setObjectName(name)
            act.setShortcut(shortcut)  # type: ignore[call-overload]
            act.triggered.connect(slot)
        menu = self.menuBar().addMenu("&Directory")
        for text, slot, name in (
            ("Compare…", self.compare, "compareMenuAction"),
            ("Import YAML into directory…", self.import_yaml, "importAction"),
            ("Export directory as YAML…", self.export_yaml, "exportAction"),
        ):
            act = menu.addAction(text)
            act.setObjectName(name)
            act.triggered.connect(slot)

    def _build_statusbar(self) -> None:
        status = self.statusBar()
        self.connection_label = QLabel("not connected")
        self.connection_label.setObjectName("connectionLabel")
        self.revision_label = QLabel("")
        self.revision_label.setObjectName("revisionLabel")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setRange(0, 0)
        self.progress.hide()
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.connection_label)
        status.addPermanentWidget(self.revision_label)

    def _activity_changed(self, running: int) -> None:
        if running and not self._busy_timer.isActive() and not self.progress.isVisible():
            self._busy_timer.start()
        elif not running and not self._loading:
            self._busy_timer.stop()
            self.progress.hide()

    def _show_busy(self) -> None:
        if activity.running:
            self.progress.show()

    def _wire(self) -> None:
        self._loading = False
        self._busy_timer = QTimer(self)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.setInterval(500)  # only work that takes over half a second shows
        self._busy_timer.timeout.connect(self._show_busy)
        activity.changed.connect(self._activity_changed)
        self.tree.key_selected.connect(self._key_selected)
        self.tree.directory_selected.connect(self._directory_selected)
        self.editor.staged.connect(self.changes.stage)
        self.history.staged.connect(self.changes.stage)
        for panel in (self.editor, self.changes, self.history, self.agents, self.cluster):
            panel.message.connect(self.show_message)

    def _fill_profiles(self) -> None:
        self.profiles.clear()
        names = self.store.names()
        for name in names:
            self.profiles.addItem(name)
        self.profiles.addItem(SANDBOX)
        last = self.store.last_used
        if last and last in names:
            self.profiles.setCurrentText(last)

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
        settings = QSettings("etcdadmin", "etcdadmin")
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        self.disconnect_session()
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        super().closeEvent(event)

    # -- connecting -------------------------------------------------------------------------

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 10_000)

    def start(self) -> None:
        """Connect to the last profile, or offer the local sandbox to a new user."""
        self.connect_selected()

    def new_profile(self) -> None:
        dialog = ProfileDialog(self)
        if dialog.exec():
            profile = dialog.profile()
            try:
                self.store.save(profile)
            except Exception as exc:  # keyring unavailable: say so, keep the profile
                show_error(self, "Password not saved", f"The system keyring refused it: {exc}")
                self.store.save(profile, store_password=False)
            self._fill_profiles()
            self.profiles.setCurrentText(profile.name)
            # the profile in hand has the password, whether or not the keyring took it
            self.connect_profile(profile)

    def connect_selected(self) -> None:
        name = self.profiles.currentText()
        if name == SANDBOX:
            self._connect_sandbox()
            return
        try:
            profile = self.store.load(name)
        except Exception as exc:
            show_error(self, "Cannot load connection", describe(exc))
            return
        self.connect_profile(profile)

    def _connect_sandbox(self) -> None:
        self.show_message("starting the local sandbox etcd …")
        self.progress.show()
        sandbox = self.sandbox or Sandbox(self.sandbox_dir)

        def start(task: object) -> str:
            endpoint = sandbox.start()
            from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection

            with EtcdConnection(ConnectionSettings((endpoint,))) as conn:
                seed_example(conn)
            return endpoint

        def started(endpoint: str) -> None:
            self.sandbox = sandbox
            self.progress.hide()
            self.connect_profile(ConnectionProfile(SANDBOX, endpoint, sandbox=True))

        def failed(exc: BaseException) -> None:
            self.progress.hide()
            show_error(self, "Sandbox unavailable", exc)
            self.connection_label.setText("not connected")

        run_task("start sandbox", start, started, failed)

    def connect_profile(self, profile: ConnectionProfile) -> None:
        try:
            settings = profile.settings()
        except EtcdAdminError as exc:
            show_error(self, "Bad connection settings", exc)
            return
        self.disconnect_session()
        self.profile = profile
        if self.profiles.findText(profile.name) < 0:
            self.profiles.addItem(profile.name)
        self.profiles.setCurrentText(profile.name)
        if not profile.sandbox:
            self.store.last_used = profile.name
        session = Session(settings, profile.name)
        self.session = session
        session.load_started.connect(self._load_started)
        session.page_loaded.connect(self._page_loaded)
        session.keys_changed.connect(self._keys_changed)
        session.revision_changed.connect(self._revision_changed)
        session.failed.connect(self._session_failed)
        session.recovered.connect(lambda: self.show_message("connection restored"))
        self.editor.set_session(session)
        self.tree.session = session
        self.changes.set_session(session, profile.production, profile.read_only)
        self.history.set_session(session)
        self.agents.set_session(session)
        self.cluster.set_session(session, profile.read_only)
        flags = []
        if profile.production:
            flags.append("PRODUCTION")
        if profile.read_only:
            flags.append("read-only")
        self.banner.setVisible(profile.production)
        self.banner.setText(
            f"PRODUCTION: {profile.name} ({settings.describe()}) — writes ask first"
        )
        self.connection_label.setText(
            f"{profile.name} · {settings.describe()}" + (f" · {' · '.join(flags)}" if flags else "")
        )
        self.setWindowTitle(f"etcdadmin — {profile.name}")
        session.start()

    def disconnect_session(self) -> None:
        # a compare dialog holds the session it was opened on: it must not stage across
        for dialog in self.findChildren(CompareDialog):
            dialog.close()
            dialog.deleteLater()
        if self.session is not None:
            self.session.close()
            self.session = None
        self.model.reset()

    def reload(self) -> None:
        if self.profile is not None:
            self.connect_profile(self.profile)

    # -- session signals --------------------------------------------------------------------

    def _load_started(self, index: KeyIndex) -> None:
        self.model.reset(index)
        self._loading = True
        self.progress.show()

    def _page_loaded(self, loaded: int, revision: int, last: bool) -> None:
        self.model.refresh_listed()
        if last:
            log.info("%d keys loaded at revision %d", loaded, revision)
            self._loading = False
            if not activity.running:
                self.progress.hide()
            self.show_message(f"{loaded:,} keys loaded at revision {revision}")
        else:
            self.show_message(f"loading keys … {loaded:,}")

    def _keys_changed(self, changed: set[bytes]) -> None:
        self.model.keys_changed(changed)
        if self.editor.key is not None and self.editor.key in changed:
            self.editor.changed_elsewhere()
            self.show_message(f"{display_segment(self.editor.key)} changed in etcd")

    def _revision_changed(self, revision: int) -> None:
        self.revision_label.setText(f"revision {revision}")

    def _session_failed(self, message: str) -> None:
        self.progress.hide()
        self.show_message(message)
        self.connection_label.setText(f"{self.profile.name if self.profile else ''} · unreachable")

    # -- selection --------------------------------------------------------------------------

    def _key_selected(self, key: bytes) -> None:
        self.editor.open_key(key)
        self.history.set_key(key)

    def _directory_selected(self, directory: bytes) -> None:
        self.agents.set_directory(directory)

    def _current_directory(self) -> bytes:
        index = self.tree.view.currentIndex()
        directory = self.model.directory_at(index)
        if directory is not None:
            return directory
        key = self.model.key_at(index)
        return (parent_directory(key) if key else None) or b""

    def new_key(self) -> None:
        if self.session is None or (self.profile is not None and self.profile.read_only):
            self.show_message("read-only connection: nothing can be staged")
            return
        dialog = NewKeyDialog(self, self._current_directory())
        if not dialog.exec():
            return
        try:
            key = parse_display_segment(dialog.key.text())
        except EtcdAdminError as exc:
            show_error(self, "New key", exc)
            return
        value = dialog.value.toPlainText().encode("utf-8")
        ttl = dialog.ttl.value()
        if not ttl:
            self.changes.stage(SetValue(key, value, 0, 0))
            return
        conn = self.session.conn
        run_task(
            "grant lease",
            lambda task: conn.grant_lease(ttl),
            lambda lease: self.changes.stage(SetValue(key, value, 0, lease)),
            lambda exc: show_error(self, "Cannot grant a lease", exc),
        )

    def rename_key(self) -> None:
        current = self.editor.current
        if current is None:
            return
        name, ok = QInputDialog.getText(
            self,
            "Rename key",
            "New name (\\xNN for a raw byte):",
            text=display_segment(current.key),
        )
        if not ok or not name:
            return
        try:
            new = parse_display_segment(name)
        except EtcdAdminError as exc:
            show_error(self, "Rename key", exc)
            return
        if new != current.key:
            self.changes.stage(RenameKey(current.key, new, current.mod_revision))

    def import_yaml(self) -> None:
        if self.session is None:
            return
        directory = self._current_directory()
        path, _ = QFileDialog.getOpenFileName(self, "Import YAML", "", "YAML (*.yml *.yaml)")
        if not path or not directory:
            if path:
                show_error(self, "Import", "Select the directory to import into first.")
            return
        conn = self.session.conn
        run_task(
            "import",
            lambda task: import_file(conn, Path(path), directory),
            self._imported,
            lambda exc: show_error(self, "Import failed", exc),
        )

    def _imported(self, changes: list[SetValue]) -> None:
        for change in changes:
            self.changes.stage(change)
        self.show_message(f"import staged {len(changes)} change(s); review and apply")

    def export_yaml(self) -> None:
        if self.session is None or not self._current_directory():
            return
        directory = self._current_directory()
        path, _ = QFileDialog.getSaveFileName(self, "Export YAML", "config.yml", "YAML (*.yml)")
        if not path:
            return
        conn = self.session.conn
        run_task(
            "export",
            lambda task: export_file(conn, directory, Path(path)),
            lambda size: self.show_message(f"exported {display_segment(directory)} to {path}"),
            lambda exc: show_error(self, "Export failed", exc),
        )

    def compare(self) -> None:
        if self.session is None:
            return
        dialog = CompareDialog(self, self.session, self.model.index_data)
        dialog.staged.connect(self.changes.stage)
        dialog.show()
