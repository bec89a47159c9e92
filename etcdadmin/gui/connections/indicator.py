"""Which etcd the window is on, said once: the title, the banners and the status bar's state.

A sandbox says it is one everywhere it shows; a production profile has its red banner; while
the session's loader has lost etcd, an amber banner says so and what to do, until the loader
is back in sync and the state reads "connected" again.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QLabel, QWidget

from etcdadmin.core.profiles import ConnectionProfile
from etcdadmin.gui.session import Session
from etcdadmin.gui.statusbar import StatusLine
from etcdadmin.gui.workers import run_task

# How the sandbox is named wherever it shows: never to be mistaken for a real cluster.
SANDBOX_LABEL = "sandbox (local, throw-away)"

_BANNER = "background: {}; color: {}; font-weight: bold; padding: 4px;"


class ConnectionIndicator(QObject):
    """The banners above the panels and the connection state of the status line.

    Signals: none; the window calls `connected`, `loaded`, `failed`, `recovered`.
    """

    def __init__(self, window: QWidget, status: StatusLine) -> None:
        super().__init__(window)
        self.window = window
        self.status = status
        self.session: Session | None = None
        self.banner = QLabel("")
        self.banner.setObjectName("productionBanner")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.unreachable = QLabel("")
        self.unreachable.setObjectName("unreachableBanner")
        self.unreachable.setWordWrap(True)
        self.unreachable.setStyleSheet(_BANNER.format("#d68910", "black"))
        self.unreachable.hide()

    def connected(self, session: Session, profile: ConnectionProfile) -> None:
        self.session = session
        where = session.settings.describe()
        self.unreachable.hide()
        if profile.sandbox:
            name = SANDBOX_LABEL
            self._banner(
                f"{SANDBOX_LABEL}: a private etcd on this machine ({where}) with example data; "
                "nothing done here reaches a real cluster",
                "#1f618d",
            )
        else:
            name = profile.name
            if profile.production:
                self._banner(f"PRODUCTION: {name} ({where}) — writes ask first", "#c0392b")
            else:
                self.banner.hide()
        flags = [
            flag
            for flag, on in (("PRODUCTION", profile.production), ("read-only", profile.read_only))
            if on
        ]
        place = f"{name} · {where}" + (f" · {' · '.join(flags)}" if flags else "")
        self.status.set_connection("connecting", place=place)
        self.window.setWindowTitle(f"etcdadmin — {name}")

    def disconnected(self) -> None:
        self.session = None
        self.unreachable.hide()

    def loaded(self) -> None:
        """The keys are loaded: the session answers."""
        self.unreachable.hide()
        self.status.set_connection("connected")
        self._find_member()

    def failed(self, message: str) -> None:
        self.status.set_connection("unreachable")
        self.unreachable.setText(
            f"etcd is unreachable: {message}\nThe client retries by itself and says "
            "“connected” when etcd answers again. Staged changes are kept: apply them then."
        )
        self.unreachable.show()

    def recovered(self) -> None:
        self.loaded()

    def _banner(self, text: str, color: str) -> None:
        self.banner.setText(text)
        self.banner.setStyleSheet(_BANNER.format(color, "white"))
        self.banner.show()

    def _find_member(self) -> None:
        """Name the member that answers, on a worker (two small calls)."""
        session = self.session
        if session is None:
            return
        conn, endpoint = session.conn, session.settings.endpoints[0]

        def find(task: object) -> str:
            status = conn.member_status(endpoint)
            names = {m.member_id: m.name for m in conn.members()}
            return names.get(status.member_id) or f"{status.member_id:x}"

        def found(name: str) -> None:
            if self.session is session:
                self.status.set_connection(self.status.state, member=name)

        # not knowing the member's name is no news: the state already says what matters
        run_task("find the member", find, found, lambda exc: None)
