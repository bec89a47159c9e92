"""A directory to and from a YAML file: export writes the file, import stages the changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from etcdadmin.core.changes import PendingChange, SetValue
from etcdadmin.core.environments.transfer import (
    Export,
    import_file,
    prepare_export,
    write_export,
)
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.tree.directories import directory_prefix
from etcdadmin.core.tree.names import display_segment
from etcdadmin.gui.errors import show_error
from etcdadmin.gui.secrets.importing import ImportSecretsDialog
from etcdadmin.gui.session import Session
from etcdadmin.gui.workers import run_task

# The secret paths an export question names; the rest are counted.
SECRETS_NAMED = 5


Stage = Callable[[PendingChange], None]


def import_yaml(
    parent: QWidget,
    session: Session,
    directory: bytes,
    stage: Stage,
    message: Callable[[str], None],
) -> None:
    """Ask for a YAML file and stage what it changes under `directory`; nothing is written."""
    path, _ = QFileDialog.getOpenFileName(parent, "Import YAML", "", "YAML (*.yml *.yaml)")
    if path:
        stage_import(parent, session, Path(path), directory, stage, message)


def stage_import(
    parent: QWidget,
    session: Session,
    path: Path,
    directory: bytes,
    stage: Stage,
    message: Callable[[str], None],
) -> None:
    """Read `path` on a worker, ask which values are secrets, seal those, stage everything."""
    if not directory:
        show_error(parent, "Import", "Select the directory to import into first.")
        return
    conn, keeper = session.conn, session.secrets

    def staged(changes: list[SetValue]) -> None:
        for change in changes:
            stage(change)
        message(f"import staged {len(changes)} change(s); review and apply")

    def chosen(changes: list[SetValue], secret: list[SetValue]) -> None:
        if not secret:
            staged(changes)
            return
        marked = {change.key for change in secret}

        def seal(task: object) -> list[SetValue]:
            sealed = keeper.seal([(c.key, c.value) for c in secret])
            envelopes = {c.key: envelope for c, envelope in zip(secret, sealed, strict=True)}
            return [
                SetValue(c.key, envelopes[c.key], c.expected_mod_revision, c.lease)
                if c.key in marked
                else c
                for c in changes
            ]

        run_task(
            "seal secrets",
            seal,
            staged,
            lambda exc: show_error(parent, "Import: nothing was staged", exc),
        )

    def imported(changes: list[SetValue]) -> None:
        if not changes:
            message("import: the directory already holds these values")
            return
        dialog = ImportSecretsDialog(
            parent,
            directory_prefix(directory),
            changes,
            lambda secret: chosen(changes, secret),
        )
        dialog.open()

    run_task(
        "import",
        lambda task: import_file(conn, path, directory),
        imported,
        lambda exc: show_error(parent, "Import failed", exc),
    )


def export_yaml(
    parent: QWidget, conn: EtcdConnection, directory: bytes, message: Callable[[str], None]
) -> None:
    """Ask for a file name, read the directory, ask again when it holds secret paths, then
    write it (mode 0600 either way)."""
    path, _ = QFileDialog.getSaveFileName(parent, "Export YAML", "config.yml", "YAML (*.yml)")
    if not path:
        return

    def prepared(export: Export) -> None:
        if export.secret_paths and not _secrets_confirmed(parent, export, path):
            message("export cancelled: nothing was written")
            return
        run_task(
            "export",
            lambda task: write_export(export, Path(path)),
            lambda size: message(f"exported {display_segment(directory)} to {path}"),
            lambda exc: show_error(parent, "Export failed", exc),
        )

    run_task(
        "export",
        lambda task: prepare_export(conn, directory),
        prepared,
        lambda exc: show_error(parent, "Export failed", exc),
    )


def _secrets_confirmed(parent: QWidget, export: Export, path: str) -> bool:
    shown = ", ".join(export.secret_paths[:SECRETS_NAMED])
    more = len(export.secret_paths) - SECRETS_NAMED
    if more > 0:
        shown += f" and {more} more"
    answer = QMessageBox.question(
        parent,
        "Export secret values?",
        f"This directory holds secret values ({shown}). The file {path} will hold them in "
        "plain text, readable only by you (mode 0600). Write it?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
