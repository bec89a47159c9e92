"""The History tab's backups: those holding the selected directory or key, "Back up now",
"Restore" (the diff first, masked), "Restore to a time" (a full backup plus the deltas
`backup follow` recorded, `restore_from.plan_at`) and "Verify", all on workers through the core.

An encrypted backup is restored with the operator's identity from the OS keyring (the
core's default); when that does not open it, a dialog names the backup's recipients and offers
to open an identity file (an age identity file or an OpenSSH private key), whose keys the panel
then keeps in memory for its next restores, never on disk.

The location follows the CLI's rules (`open_location` without `--dir`): Swift when `ST_AUTH`
or `OS_AUTH_URL` is set (container `ETCDADMIN_BACKUP_CONTAINER`, default
`etcdadmin-backups`), else the user data directory's `backups` folder. The panel shows which.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.backup import (
    BackupOptions,
    Catalog,
    CatalogEntry,
    Location,
    create_backup,
    open_location,
    verify_backup,
)
from etcdadmin.core.backup.errors import BackupLocked
from etcdadmin.core.backup.restore_from import (
    BackupRestorePlan,
    plan_at,
    plan_from_backup,
    restore_from_backup,
)
from etcdadmin.core.backup.restore_online import RestoreReport
from etcdadmin.core.secrets.errors import SecretError
from etcdadmin.core.secrets.identities import identities_in
from etcdadmin.core.secrets.operator import with_operator_identity
from etcdadmin.core.tree.names import display_segment
from etcdadmin.gui.errors import describe, show_error
from etcdadmin.gui.history.backup_identities import ask_identity_file
from etcdadmin.gui.history.restore_dialogs import ask_moment, confirm_restore, origin
from etcdadmin.gui.icons import icon
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import Task, run_task

log = logging.getLogger(__name__)

CONTAINER_VARIABLE = "ETCDADMIN_BACKUP_CONTAINER"
COLUMNS = ("Time", "Revision", "Keys", "Size", "Verified", "Holds")


def backup_location() -> Location:
    """Where the CLI's `backup` commands look without --dir: the same place."""
    return open_location(None, os.environ.get(CONTAINER_VARIABLE) or None)


class BackupsPanel(QWidget):
    """Signals:
    message(str): a line for the status bar.
    restored(object): a restore ended (its RestoreReport), complete or cancelled.
    identities_opened(): an identity file was opened for this window (`identities`).
    """

    message = Signal(str)
    restored = Signal(object)
    identities_opened = Signal()

    def __init__(self, location_factory: Callable[[], Location] = backup_location) -> None:
        super().__init__()
        self.setObjectName("backupsPanel")
        self._location_factory = location_factory
        self.location: Location | None = None
        self.session: Session | None = None
        self.production = False
        self.read_only = False
        self.target = b""  # a directory prefix (trailing slash), a key, or b"" for everything
        self.catalog: list[CatalogEntry] = []  # the location's, read once and after each job
        self.entries: list[CatalogEntry] = []  # those holding the target, newest first
        self._task: Task | None = None
        self._cancel = threading.Event()
        # identities the operator opened from files for an encrypted backup: this window's only
        self.identities: list[object] | None = None
        layout = QVBoxLayout(self)
        self.where = QLabel()
        self.where.setObjectName("backupLocation")
        self.where.setWordWrap(True)
        layout.addWidget(self.where)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("backupList")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table, 1)
        self.progress = QProgressBar()
        self.progress.setObjectName("backupProgress")
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.report = QLabel()
        self.report.setObjectName("backupReport")
        self.report.setWordWrap(True)
        layout.addWidget(self.report)
        buttons = QHBoxLayout()
        self.backup_button = self._button("Back up now", "backupNowButton", self.back_up_now)
        self.restore_button = self._button("Restore…", "backupRestoreButton", self.restore)
        self.restore_at_button = self._button(
            "Restore to a time…", "backupRestoreAtButton", self.restore_at
        )
        self.verify_button = self._button("Verify", "backupVerifyButton", self.verify)
        self.cancel_button = self._button("Cancel", "backupCancelButton", self.cancel)
        # Two rows: taking and checking backups, then restoring from them. Five buttons in one
        # row were cut to "tore to a tim" beside a key tree wide enough to read.
        for button in (self.backup_button, self.verify_button, self.cancel_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        restores = QHBoxLayout()
        for button in (self.restore_button, self.restore_at_button):
            restores.addWidget(button)
        layout.addLayout(restores)
        self._update_buttons()

    def _button(self, text: str, name: str, slot: Callable[[], None]) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.clicked.connect(slot)
        return button

    # -- what is shown ------------------------------------------------------------------------

    def set_session(
        self, session: Session | None, production: bool = False, read_only: bool = False
    ) -> None:
        self.session, self.production, self.read_only = session, production, read_only
        if session is not None and self.location is None:
            self.location = self._location_factory()
        self._update_buttons()
        if session is not None:
            self.refresh()

    def set_target(self, target: bytes) -> None:
        """The selected directory (its prefix) or key; b"" for the whole key space."""
        self.target = target
        self._show()

    def refresh(self) -> None:
        """Read the location's catalog again (on a worker)."""
        if self.location is None:
            return
        location = self.location
        run_task(
            "list backups",
            lambda task: Catalog(location).entries(),
            self._listed,
            lambda exc: self.report.setText(describe(exc)),
            owner=self,
        )

    def _target_name(self) -> str:
        return display_segment(self.target) if self.target else "every key"

    def _listed(self, entries: list[CatalogEntry]) -> None:
        self.catalog = entries
        self._show()

    def _show(self) -> None:
        if self.location is not None:
            self.where.setText(
                f"Backups of {self._target_name()} in {self.location.description} "
                "(Swift when ST_AUTH or OS_AUTH_URL is set)"
            )
        # a backup holds the selection when its export covers it (prefix "" covers everything)
        target = self.target
        self.entries = [e for e in self.catalog if target.startswith(e.prefix.encode("utf-8"))]
        self.entries.reverse()  # newest first
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            cells = (
                entry.created,
                str(entry.revision),
                str(entry.key_count),
                _size(entry.size),
                entry.verified_at or "not verified",
                entry.prefix or "(all)",
            )
            # an encrypted backup carries the lock, as a secret value does in the tree: the
            # one a restore or "Include backups" could not open is found by it
            tip = f"{entry.id} (encrypted)" if entry.encrypted else entry.id
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, entry.id)
                item.setToolTip(tip)
                if column == 0 and entry.encrypted:
                    item.setIcon(icon("lock"))
                self.table.setItem(row, column, item)
        self._update_buttons()

    def selected(self) -> CatalogEntry | None:
        rows = self.table.selectionModel().selectedRows()
        return self.entries[rows[0].row()] if rows else None

    def _update_buttons(self) -> None:
        idle = self._task is None
        connected = self.session is not None and self.location is not None
        chosen = self.selected() is not None
        self.backup_button.setEnabled(idle and connected)
        self.restore_button.setEnabled(idle and connected and chosen and not self.read_only)
        self.verify_button.setEnabled(idle and connected and chosen)
        # plan_at restores every key starting with its prefix: a key's name alone would
        # take its longer-named siblings along, so only a directory is offered
        directory = self.target.endswith(b"/")
        self.restore_at_button.setEnabled(idle and connected and directory and not self.read_only)
        self.restore_at_button.setToolTip(
            "Put the selected directory back as it was at a time or revision"
            if directory
            else "Restores directories: select a directory (a key's own, to restore it)"
        )
        self.cancel_button.setEnabled(not idle)

    # -- the jobs -----------------------------------------------------------------------------

    def _start(
        self,
        description: str,
        fn: Callable[[Task], Any],
        done: Callable[[Any], None],
        dialog_title: str | None = None,
        locked: Callable[[BackupLocked], None] | None = None,
    ) -> None:
        """Run `fn` on a worker; a failure shows in the report line (and in an error dialog
        titled `dialog_title` when given, or through `locked` for a locked backup)."""
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.report.setText(f"{description.capitalize()} …")

        def finished(result: Any) -> None:
            self._end()
            done(result)

        def failed(exc: BaseException) -> None:
            self._end()
            if locked is not None and isinstance(exc, BackupLocked):
                shown = f"backup {exc.backup} is encrypted to others: nothing was written"
                self.report.setText(shown)
                self.message.emit(shown)
                locked(exc)
                return
            self.report.setText(describe(exc))
            self.message.emit(describe(exc))
            if dialog_title is not None:
                show_error(self, dialog_title, exc)

        self._task = run_task(description, fn, finished, failed, owner=self)
        self._task.progress.connect(self._progressed)
        self._update_buttons()

    def _progressed(self, done: int, total: int) -> None:
        if total <= 0:  # a backup: bytes stored so far, of a size nobody knows in advance
            self.report.setText(f"Stored {done / 1000:.1f} MB …")
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.report.setText(f"Restored {done} of {total} keys …")

    def _end(self) -> None:
        self._task = None
        self.progress.setVisible(False)
        self._update_buttons()

    def cancel(self) -> None:
        self._cancel.set()
        self.report.setText("Cancelling after the step in flight …")

    def back_up_now(self) -> None:
        if self.session is None or self.location is None:
            return
        conn, location = self.session.conn, self.location
        cancel = self._cancel = threading.Event()
        # a key is backed up with its directory: exports cover prefixes
        prefix = self.target if self.target.endswith(b"/") or not self.target else b""
        what = display_segment(prefix) if prefix else "every key"

        def work(task: Task) -> Any:
            stored = [0]

            def progress(n: int) -> None:
                stored[0] += n
                task.report(stored[0] // 1000, 0)  # kB; the total is unknown: shown as busy

            options = BackupOptions(prefix=prefix.decode("utf-8"))
            return create_backup(conn, location, options, progress=progress, cancel=cancel)

        self._start(f"back up {what}", work, self._backed_up)

    def _backed_up(self, manifest: Any) -> None:
        self.report.setText(
            f"Backed up: {manifest.id}, revision {manifest.revision}, {manifest.key_count} keys"
        )
        self.message.emit(f"backup {manifest.id} written")
        self.refresh()

    def verify(self) -> None:
        entry = self.selected()
        if entry is None or self.location is None:
            return
        location = self.location
        self._start(
            f"verify {entry.id}",
            lambda task: verify_backup(location, entry.id),
            self._verified,
        )

    def _verified(self, report: Any) -> None:
        self.report.setText(f"Verified {report.id}: every object matches its manifest")
        self.refresh()

    def restore(self) -> None:
        """Plan on a worker, show the diff and ask, restore on a worker."""
        entry = self.selected()
        if entry is None or self.session is None or self.location is None or not self.target:
            if not self.target:
                self.report.setText("Select a directory or a key to restore")
            return
        conn, location, target = self.session.conn, self.location, self.target
        directory, key = (target, None) if target.endswith(b"/") else (None, target)
        self._plan(
            f"plan the restore of {display_segment(target)}",
            lambda identities: plan_from_backup(
                conn, location, entry.id, directory=directory, key=key, identities=identities
            ),
            "Restore from backup",
        )

    def restore_at(self) -> None:
        """Ask for a moment, plan it on a worker, then as `restore`: the diff, the question."""
        if self.session is None or self.location is None or not self.target.endswith(b"/"):
            return
        moment = ask_moment(self, display_segment(self.target))
        if moment is None:
            return
        conn, location, prefix = self.session.conn, self.location, self.target.decode("utf-8")
        self._plan(
            f"plan {display_segment(self.target)} as at {moment.describe()}",
            lambda identities: plan_at(
                conn,
                location,
                prefix,
                at_time=moment.at_time,
                at_revision=moment.at_revision,
                identities=identities,
            ),
            "Restore to a time",
        )

    def _plan(
        self,
        description: str,
        plan: Callable[[Sequence[object] | None], BackupRestorePlan],
        title: str,
    ) -> None:
        """`plan` on a worker with the identities opened so far (None: the keyring's); when
        the backup is locked to them, offer to open an identity file and plan again."""
        files = self.identities

        def locked(exc: BackupLocked) -> None:
            path = ask_identity_file(self, title, exc)
            if path is None:
                return
            try:
                loaded = identities_in([path])
            except SecretError as error:
                show_error(self, title, error)
                return
            self.identities = [*loaded, *(self.identities or ())]
            self.identities_opened.emit()
            self._plan(description, plan, title)

        self._start(
            description,
            lambda task: plan(None if files is None else with_operator_identity(files)),
            self._planned,
            dialog_title=title,
            locked=locked,
        )

    def _planned(self, planned: BackupRestorePlan) -> None:
        if planned.plan.empty:
            self.report.setText(f"{display_segment(planned.target)} is as {origin(planned)} has it")
            return
        if not confirm_restore(self, planned, production=self.production):
            self.report.setText("Restore cancelled: nothing was written")
            return
        assert self.session is not None and self.location is not None
        conn, location = self.session.conn, self.location
        cancel = self._cancel = threading.Event()
        self._start(
            f"restore {display_segment(planned.target)}",
            lambda task: restore_from_backup(
                conn, location, planned, progress=task.report, cancel=cancel
            ),
            self._restored,
        )

    def _restored(self, report: RestoreReport) -> None:
        safety = getattr(report.safety_backup, "id", None)
        text = report.describe() + (f"; safety backup {safety}" if safety else "")
        self.report.setText(text)
        self.message.emit(text)
        self.restored.emit(report)
        self.refresh()


def _size(n: int) -> str:
    if n < 1e3:
        return f"{n} B"
    return f"{n / 1e3:.0f} kB" if n < 1e6 else f"{n / 1e6:.1f} MB"
