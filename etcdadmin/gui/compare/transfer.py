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
from etcdadmin.core.tree.names import display_segment
from etcdadmin.gui.errors import show_error
from etcdadmin.gui.workers import run_task

# The secret paths an export question names; the rest are counted.
SECRETS_NAMED = 5


def import_yaml(
    parent: QWidget,
    conn: EtcdConnection,
    directory: bytes,
    stage: Callable[[PendingChange], None],
    message: Callable[[str], None],
) -> None:
    """Ask for a YAML file and stage what it changes under `directory`; nothing is written."""
    path, _ = QFileDialog.getOpenFileName(parent, "Import YAML", "", "YAML (*.yml *.yaml)")
    if not path:
        return
    if not directory:
        show_error(parent, "Import", "Select the directory to import into first.")
        return

    def imported(changes: list[SetValue]) -> None:
        for change in changes:
            stage(change)
        message(f"import staged {len(changes)} change(s); review and apply")

    run_task(
        "import",
        lambda task: import_file(conn, Path(path), directory),
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
