"""The window's action table: toolbar buttons, menus and shortcuts, in one place.

Each row names a slot on the window; `install_actions` builds the toolbar, the File, Keys and
Directory menus and the shortcuts that have no button. Object names are stable: tests and
screen readers find actions by them. A toolbar action listed in a menu too shows its shortcut
there after a tab, as text only: the same shortcut on two actions would be ambiguous, and Qt
then fires neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QToolBar

if TYPE_CHECKING:
    from etcdadmin.gui.mainwindow import MainWindow

Shortcut = str | QKeySequence.StandardKey | None


@dataclass(frozen=True)
class ActionSpec:
    """One action: where it shows ("toolbar", a menu title, or "" for a bare shortcut)."""

    place: str
    text: str
    shortcut: Shortcut
    slot: Callable[[], object]
    name: str = ""
    tip: str = ""


def action_table(window: MainWindow) -> list[ActionSpec]:
    keys, directory = "&Keys", "&Directory"
    return [
        ActionSpec("&File", "Connect\tCtrl+K", None, window.connect_selected, "connectMenuAction"),
        ActionSpec("&File", "New connection…\tCtrl+N", None, window.connections.new_profile,
                   "newProfileMenuAction"),
        ActionSpec("&File", "Reload\tF5", None, window.reload, "reloadMenuAction"),
        # Not StandardKey.Quit: it maps to no key at all on some platforms (offscreen, here).
        ActionSpec("&File", "Quit", "Ctrl+Q", window.quit, "quitAction"),
        ActionSpec("toolbar", "Connect", "Ctrl+K", window.connect_selected, "connectAction",
                   "Connect (Ctrl+K)"),
        ActionSpec("toolbar", "New…", "Ctrl+N", window.connections.new_profile,
                   "newProfileAction", "New connection (Ctrl+N)"),
        ActionSpec("toolbar", "Reload", QKeySequence.StandardKey.Refresh, window.reload,
                   "reloadAction", "Reload (F5)"),
        ActionSpec("toolbar", "Compare…", "Ctrl+D", window.compare, "compareAction",
                   "Compare directories (Ctrl+D)"),
        ActionSpec(keys, "New key…", "Ctrl+Shift+N", window.new_key, "newKeyAction"),
        ActionSpec(keys, "Rename key…", "F2", window.rename_key, "renameKeyAction"),
        ActionSpec(keys, "Stage delete", QKeySequence.StandardKey.Delete,
                   window.editor.stage_delete, "deleteAction"),
        ActionSpec(keys, "Apply pending changes", "Ctrl+Return", window.changes.apply,
                   "applyAction"),
        ActionSpec(directory, "Compare…\tCtrl+D", None, window.compare, "compareMenuAction"),
        ActionSpec(directory, "Import YAML into directory…", None, window.import_yaml,
                   "importAction"),
        ActionSpec(directory, "Export directory as YAML…", None, window.export_yaml,
                   "exportAction"),
        ActionSpec(keys, "Find key…", QKeySequence.StandardKey.Find,
                   window.tree.search.setFocus, "findAction"),
        # Not Ctrl+E: on X11 a focused line edit takes it (end of line), so it never fired.
        ActionSpec(keys, "Edit value", "Ctrl+Shift+E", window.edit_value, "editValueAction"),
        ActionSpec(keys, "Stage change", QKeySequence.StandardKey.Save, window.editor.stage,
                   "stageAction"),
        ActionSpec(keys, "Make secret", None, window.make_secret, "makeSecretAction",
                   "Stage the value encrypted for the directory's recipients"),
        ActionSpec(keys, "Undo last apply…", QKeySequence.StandardKey.Undo, window.changes.undo,
                   "undoAction"),
    ]  # fmt: skip


def install_actions(window: MainWindow) -> dict[str, QAction]:
    """Build the toolbar (with the connection picker first), the menus and the shortcuts;
    returns the named actions."""
    bar = QToolBar("Main")
    bar.setObjectName("mainToolbar")
    window.addToolBar(bar)
    bar.addWidget(QLabel(" Connection "))
    bar.addWidget(window.profiles)
    menus: dict[str, object] = {}
    named: dict[str, QAction] = {}
    for spec in action_table(window):
        act = QAction(spec.text, window)
        if spec.name:
            act.setObjectName(spec.name)
            named[spec.name] = act
        if spec.shortcut:
            act.setShortcut(spec.shortcut)
        if spec.tip:
            act.setToolTip(spec.tip)
        slot = spec.slot
        act.triggered.connect(lambda checked=False, slot=slot: slot())
        if spec.place == "toolbar":
            if spec.name == "compareAction":
                bar.addSeparator()
            bar.addAction(act)
        elif spec.place:
            if spec.place not in menus:
                menus[spec.place] = window.menuBar().addMenu(spec.place)
            menus[spec.place].addAction(act)  # type: ignore[attr-defined]
        else:
            window.addAction(act)
    return named
