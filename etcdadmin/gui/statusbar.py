"""The window's status line: messages, the connection, the revision, and a busy indicator."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from etcdadmin.gui.workers import activity

# Only work that takes over half a second shows the busy indicator: shorter flashes distract.
BUSY_DELAY_MS = 500


class StatusLine(QObject):
    """Permanent widgets on a QStatusBar; `loading` keeps the indicator up through a key load.

    The connection is shown once, in `connection_label`: where (profile and endpoints), the
    member that answers, and one state (connecting, connected, unreachable) that every change
    of the session goes through `set_connection` to update; `revision_label` the newest
    revision seen.

    A QObject owned by the window so that its connection to the process-wide `activity`
    ends with the window.

    Signals: none.
    """

    def __init__(self, status: QStatusBar, owner: QWidget) -> None:
        super().__init__(owner)
        self.status = status
        self.connection_label = QLabel("not connected")
        self.connection_label.setObjectName("connectionLabel")
        self.revision_label = QLabel("")
        self.revision_label.setObjectName("revisionLabel")
        self.progress = QProgressBar()
        self.progress.setObjectName("busyIndicator")
        # A busy bar, not a measure: narrow and without its "%" text, so that showing it does
        # not squeeze the message on the left.
        self.progress.setMaximumWidth(80)
        self.progress.setTextVisible(False)
        self.progress.setRange(0, 0)
        self.progress.hide()
        status.addPermanentWidget(self.connection_label)
        status.addPermanentWidget(self.revision_label)
        status.addPermanentWidget(self.progress)
        self.place = ""
        self.member = ""
        self.state = "not connected"
        self.loading = False
        self._busy_timer = QTimer(self)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.setInterval(BUSY_DELAY_MS)
        self._busy_timer.timeout.connect(self._show_busy)
        activity.changed.connect(self._activity_changed)

    def show_message(self, text: str) -> None:
        self.status.showMessage(text, 10_000)
        # the whole line stays readable on hover even when the window is narrow
        self.status.setToolTip(text)

    def set_connection(
        self, state: str, *, place: str | None = None, member: str | None = None
    ) -> None:
        """The one connection state; `place` (a new connection) clears the member shown."""
        if place is not None:
            self.place, self.member = place, ""
            self.revision_label.setText("")
        if member is not None:
            self.member = member
        self.state = state
        parts = [self.place] if self.place else []
        if self.member:
            parts.append(f"member {self.member}")
        parts.append(state)
        self.connection_label.setText(" · ".join(parts))
        self.connection_label.setToolTip(self.connection_label.text())

    def set_revision(self, revision: int) -> None:
        self.revision_label.setText(f"revision {revision}")

    def set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)

    def load_started(self) -> None:
        self.loading = True
        self.progress.show()

    def load_finished(self) -> None:
        self.loading = False
        if not activity.running:
            self.progress.hide()

    def _activity_changed(self, running: int) -> None:
        if running and not self._busy_timer.isActive() and not self.progress.isVisible():
            self._busy_timer.start()
        elif not running and not self.loading:
            self._busy_timer.stop()
            self.progress.hide()

    def _show_busy(self) -> None:
        if activity.running:
            self.progress.show()
