"""A directory to and from a YAML file: export writes the file, import stages the changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from etcdadmin.core.changes import PendingChange, SetValue
from etcdadmin.core.environments.transfer import export_file, import_file
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.tree.names import display_segment
from etcdadmin.gui.errors import show_error
from etcdadmin.gui.workers import run_task


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
    """Ask for a file name and write `directory` there as one YAML document."""
    path, _ = QFileDialog.getSaveFileName(parent, "Export YAML", "config.yml", "YAML (*.yml)")
    if not path:
        return
    run_task(
        "export",
        lambda task: export_file(conn, directory, Path(path)),
        lambda size: message(f"exported {display_segment(directory)} to {path}"),
        lambda exc: show_error(parent, "Export failed", exc),
    )
