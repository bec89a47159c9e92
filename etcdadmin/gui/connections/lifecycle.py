"""Which etcd the window talks to: connect a profile, start the local sandbox, reconnect,
disconnect, and stop the sandbox when the window closes."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.local.example import seed_example
from etcdadmin.core.local.sandbox import Sandbox
from etcdadmin.gui.connections.dialog import ProfileDialog
from etcdadmin.gui.connections.profiles import SANDBOX, ConnectionProfile, ProfileStore
from etcdadmin.gui.errors import describe, show_error
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import run_task

log = logging.getLogger(__name__)


class ConnectionLifecycle(QObject):
    """The one live `Session` (or none) and the sandbox etcd this window started.

    Signals:
        connected(object, object): a new Session and its ConnectionProfile. The session is
            started right after this signal, so its own signals can be connected in a slot.
        disconnected(): the session was closed; whatever showed it must be dropped.
        busy(bool): a sandbox start began (True) or ended (False).
        unavailable(): the sandbox could not start; nothing is connected by that attempt.
    """

    connected = Signal(object, object)
    disconnected = Signal()
    busy = Signal(bool)
    unavailable = Signal()

    def __init__(self, parent: QWidget, store: ProfileStore, sandbox_dir: Path | None) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.store = store
        self.sandbox_dir = sandbox_dir
        self.sandbox: Sandbox | None = None
        self.session: Session | None = None
        self.profile: ConnectionProfile | None = None

    def connect_named(self, name: str) -> None:
        """Connect the stored profile `name`, or start the sandbox for `SANDBOX`."""
        if name == SANDBOX:
            self.start_sandbox()
            return
        try:
            profile = self.store.load(name)
        except Exception as exc:  # a missing entry or a keyring error: both are shown
            show_error(self.parent_widget, "Cannot load connection", describe(exc))
            return
        self.connect_profile(profile)

    def new_profile(self) -> None:
        dialog = ProfileDialog(self.parent_widget)
        if not dialog.exec():
            return
        profile = dialog.profile()
        try:
            self.store.save(profile)
        except Exception as exc:  # keyring unavailable: say so, keep the profile
            show_error(
                self.parent_widget, "Password not saved", f"The system keyring refused it: {exc}"
            )
            self.store.save(profile, store_password=False)
        # the profile in hand has the password, whether or not the keyring took it
        self.connect_profile(profile)

    def start_sandbox(self) -> None:
        """Start (or adopt) the local sandbox etcd on a worker, seed it, then connect."""
        self.busy.emit(True)
        sandbox = self.sandbox or Sandbox(self.sandbox_dir)

        def start(task: object) -> str:
            endpoint = sandbox.start()
            with EtcdConnection(ConnectionSettings((endpoint,))) as conn:
                seed_example(conn)
            return endpoint

        def started(endpoint: str) -> None:
            self.sandbox = sandbox
            self.busy.emit(False)
            self.connect_profile(ConnectionProfile(SANDBOX, endpoint, sandbox=True))

        def failed(exc: BaseException) -> None:
            self.busy.emit(False)
            show_error(self.parent_widget, "Sandbox unavailable", exc)
            self.unavailable.emit()

        run_task("start sandbox", start, started, failed)

    def connect_profile(self, profile: ConnectionProfile) -> None:
        try:
            settings = profile.settings()
        except EtcdAdminError as exc:
            show_error(self.parent_widget, "Bad connection settings", exc)
            return
        self.close_session()
        self.profile = profile
        if not profile.sandbox:
            self.store.last_used = profile.name
        session = Session(settings, profile.name)
        self.session = session
        log.info("connecting a profile")
        self.connected.emit(session, profile)
        session.start()

    def log_in_as(self, user: str, password: str) -> None:
        """Reconnect the current profile as `user` ("": none) after auth was switched from
        the window. The profile keeps the user; its password goes to the keyring, or, when
        the keyring refuses it, is used for this connection only."""
        if self.profile is None:
            return
        profile = dataclasses.replace(self.profile, user=user, password=password)
        if not profile.sandbox:
            try:
                self.store.save(profile)  # the profile is written before the keyring is asked
            except EtcdAdminError:
                log.warning("the keyring refused the password; it is kept for this session")
        self.connect_profile(profile)

    def reconnect(self) -> None:
        if self.profile is not None:
            self.connect_profile(self.profile)

    def close_session(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        self.disconnected.emit()

    def close(self) -> None:
        """The window closes: disconnect and stop the sandbox this window started."""
        self.close_session()
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
