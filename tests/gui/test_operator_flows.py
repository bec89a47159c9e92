"""The operator's everyday flows, step by step: conflicts and re-base, views that follow etcd,
undo that asks. Real window (offscreen), real etcd, read back with etcdctl."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from tests.gui.conftest import SCREENSHOTS, connect
from tests.gui.dialogs import answer_next_dialog
from tests.gui.test_client import etcd_value, open_key, unique


def etcd_version(etcd_server, key: str) -> int:
    out = json.loads(etcd_server.etcdctl("get", key, "-w", "json").stdout)
    return int(out["kvs"][0]["version"])


def pending_rows(win) -> list[str]:
    return [win.changes.list.item(r).text() for r in range(win.changes.list.count())]


def conflict_dialog(qtbot, win) -> QMessageBox:
    found: list[QMessageBox] = []

    def shown() -> bool:
        found[:] = [
            box for box in win.findChildren(QMessageBox, "conflictDialog") if box.isVisible()
        ]
        return bool(found)

    qtbot.waitUntil(shown, timeout=10_000)
    return found[-1]


def test_a_conflict_then_rebase_then_apply_writes_my_value_exactly_once(qtbot, window, etcd_server):
    key = f"{unique('rebase')}/http/addr"
    etcd_server.etcdctl("put", key, "seen")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.editor.text.setPlainText("mine")
    window.editor.stage()

    etcd_server.etcdctl("put", key, "theirs")
    qtbot.waitUntil(lambda: pending_rows(window)[0].startswith("⚠"), timeout=5000)
    assert pending_rows(window)[0].endswith("(changed in etcd)"), "flagged before apply"
    # the editor follows the watch too: the staged text is in the pending list, not lost
    qtbot.waitUntil(lambda: window.editor.text.toPlainText() == "theirs", timeout=5000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "pending-flagged.png"))

    window.changes.apply()
    box = conflict_dialog(qtbot, window)
    assert box.grab().save(str(SCREENSHOTS / "conflict.png"))
    assert "nothing was written" in box.text() and "theirs" in box.text()
    assert etcd_value(etcd_server, key) == "theirs"
    rebase = next(b for b in box.buttons() if b.text() == "Re-base on the current values")
    rebase.click()
    qtbot.waitUntil(lambda: pending_rows(window) == [f"set {key}"], timeout=5000)  # not flagged
    diff = window.changes.diff
    qtbot.waitUntil(lambda: "-theirs" in diff.toPlainText() and "!!" not in diff.toPlainText())
    assert "+mine" in diff.toPlainText(), "the diff is against what is there now"

    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_value(etcd_server, key) == "mine"
    assert etcd_version(etcd_server, key) == 3, "seen, theirs, mine: written exactly once"
    assert pending_rows(window) == []


def test_staging_a_key_again_replaces_its_row(qtbot, window, etcd_server):
    key = f"{unique('restage')}/level"
    etcd_server.etcdctl("put", key, "info")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    for value in ("debug", "warn"):
        window.editor.text.setPlainText(value)
        window.editor.stage()
    assert pending_rows(window) == [f"set {key}"]
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_value(etcd_server, key) == "warn"
    assert etcd_version(etcd_server, key) == 2


def test_restoring_the_same_key_twice_leaves_one_row(qtbot, window, etcd_server):
    key = f"{unique('restore')}/password"
    for value in ("v1", "v2", "v3"):
        etcd_server.etcdctl("put", key, value)
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.tabs.setCurrentWidget(window.history)
    qtbot.waitUntil(lambda: window.history.list.count() == 3, timeout=10_000)
    window.history.list.setCurrentRow(1)
    window.history.restore()
    window.history.list.setCurrentRow(2)
    window.history.restore()
    assert pending_rows(window) == [f"set {key}"]
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_value(etcd_server, key) == "v1", "the last restore chosen is the one written"


def test_history_follows_my_own_apply_and_a_restore_from_it_does_not_conflict(
    qtbot, window, etcd_server
):
    key = f"{unique('histapply')}/addr"
    for value in (":5000", ":5001"):
        etcd_server.etcdctl("put", key, value)
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.tabs.setCurrentWidget(window.history)
    qtbot.waitUntil(lambda: window.history.list.count() == 2, timeout=10_000)
    window.editor.text.setPlainText(":6000")
    window.editor.stage()
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    qtbot.waitUntil(lambda: window.history.list.count() == 3, timeout=5000)
    window.history.list.setCurrentRow(2)  # the oldest, :5000
    assert "+:6000" in window.history.diff.toPlainText(), "current is my applied value"

    window.history.restore()
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_value(etcd_server, key) == ":5000"


def test_ctrl_return_in_compare_applies_instead_of_copying_again(qtbot, window, etcd_server):
    left, right = unique("example-test"), unique("example-production")
    etcd_server.etcdctl("put", f"{left}/log/level", "debug")
    etcd_server.etcdctl("put", f"{right}/log/level", "info")
    connect(qtbot, window, etcd_server.endpoint)
    window.tree.view.setCurrentIndex(window.model.find(left.encode()))
    window.compare()
    from etcdadmin.gui.compare.dialog import CompareDialog

    dialog = window.findChild(CompareDialog)
    assert dialog.left.currentText() == f"{left}/", "the selected directory is the left side"
    dialog.right.setCurrentText(f"{right}/")
    dialog.compare()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=10_000)
    dialog.table.selectRow(0)
    qtbot.mouseClick(dialog.to_right, Qt.MouseButton.LeftButton)
    dialog.to_right.setFocus()
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        qtbot.keyClick(dialog.to_right, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert pending_rows(window) == [], "the copy was applied, not staged a second time"
    assert etcd_value(etcd_server, f"{right}/log/level") == "debug"


def test_undo_shows_the_diff_it_will_write_and_asks(qtbot, window, etcd_server):
    key = f"{unique('undo')}/level"
    etcd_server.etcdctl("put", key, "info")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.editor.text.setPlainText("debug")
    window.editor.stage()
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()

    seen: list[str] = []
    answer_next_dialog("Cancel", seen)
    with qtbot.waitSignal(window.changes.failed, timeout=10_000):  # wrote nothing
        window.changes.undo()
    assert "Undo the last apply?" in seen[0]
    assert "-debug" in seen[0] and "+info" in seen[0], "the diff undo would write"
    assert etcd_value(etcd_server, key) == "debug"

    answer_next_dialog("Apply", seen)
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.undo()
    assert etcd_value(etcd_server, key) == "info"


def shown_box(qtbot, win, name: str) -> QMessageBox:
    found: list[QMessageBox] = []

    def shown() -> bool:
        found[:] = [box for box in win.findChildren(QMessageBox, name) if box.isVisible()]
        return bool(found)

    qtbot.waitUntil(shown, timeout=10_000)
    return found[-1]


def click(box: QMessageBox, text: str) -> None:
    next(b for b in box.buttons() if b.text().replace("&", "") == text).click()


def stage_value(qtbot, win, key: str, value: str) -> None:
    open_key(qtbot, win, key)
    win.editor.text.setPlainText(value)
    win.editor.stage()


def test_closing_with_staged_changes_asks_and_cancel_keeps_them(qtbot, window, etcd_server):
    key = f"{unique('close')}/level"
    etcd_server.etcdctl("put", key, "info")
    connect(qtbot, window, etcd_server.endpoint)
    stage_value(qtbot, window, key, "debug")

    window.actions_by_name["quitAction"].trigger()  # File → Quit, Ctrl+Q
    box = shown_box(qtbot, window, "closeQuestion")
    assert "1 change is staged" in box.text()
    click(box, "Cancel")
    assert window.isVisible()
    assert pending_rows(window) == [f"set {key}"], "cancel keeps the staged change"

    window.close()
    click(shown_box(qtbot, window, "closeQuestion"), "Apply and close")
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert etcd_value(etcd_server, key) == "debug"


def test_closing_and_discarding_closes_without_writing(qtbot, window, etcd_server):
    key = f"{unique('discardclose')}/level"
    etcd_server.etcdctl("put", key, "info")
    connect(qtbot, window, etcd_server.endpoint)
    stage_value(qtbot, window, key, "debug")
    window.close()
    click(shown_box(qtbot, window, "closeQuestion"), "Discard and close")
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert etcd_value(etcd_server, key) == "info"


def test_after_discard_all_the_editor_shows_what_etcd_holds(qtbot, window, etcd_server):
    key = f"{unique('discard')}/level"
    etcd_server.etcdctl("put", key, "info")
    connect(qtbot, window, etcd_server.endpoint)
    stage_value(qtbot, window, key, "debug")
    window.changes.discard()
    qtbot.waitUntil(lambda: window.editor.text.toPlainText() == "info", timeout=5000)


def test_staged_changes_come_back_after_the_process_is_killed(qtbot, window, etcd_server, tmp_path):
    top = unique("killed")
    key, secret = f"{top}/log/level", f"{top}/db/password"
    etcd_server.etcdctl("put", key, "info")
    etcd_server.etcdctl("put", secret, "old-password")
    profile = unique("killed-profile")
    env = {**os.environ, "ETCDADMIN_DATA_DIR": str(tmp_path / "data")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    client = subprocess.Popen(
        [sys.executable, "-m", "tests.gui.stage_and_wait", etcd_server.endpoint, profile, key,
         secret],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "staged", "the client staged its changes"
    finally:
        client.kill()  # SIGKILL: no close event, no chance to save anything more
        client.wait(timeout=10)
    data = (tmp_path / "data" / "staged").glob("*.json")
    assert not any("a-new-password" in path.read_text() for path in data)

    connect(qtbot, window, etcd_server.endpoint, name=profile)
    box = shown_box(qtbot, window, "restoreQuestion")
    assert "1 staged change" in box.text()
    assert f"Not kept, stage them again: {secret}" in box.text()
    assert "Secret values are never written to disk" in box.text()
    click(box, "Restore")
    assert pending_rows(window) == [f"set {key}"]
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_value(etcd_server, key) == "debug"
    assert etcd_value(etcd_server, secret) == "old-password"


def test_etcd_stopped_then_started_shows_one_state_and_an_apply_works_again(
    qtbot, window, private_etcd
):
    private_etcd.etcdctl("put", "app/level", "info")
    connect(qtbot, window, private_etcd.endpoint)
    label = window.connection_label
    qtbot.waitUntil(lambda: "member private" in label.text(), timeout=5000)
    assert label.text().endswith("· connected")
    assert private_etcd.endpoint.split("//")[-1] in label.text()
    stage_value(qtbot, window, "app/level", "debug")
    qtbot.waitUntil(lambda: "+debug" in window.changes.diff.toPlainText())

    private_etcd.stop()
    banner = window.indicator.unreachable
    qtbot.waitUntil(banner.isVisible, timeout=20_000)
    assert "etcd is unreachable" in banner.text()
    assert label.text().endswith("· unreachable") and "connected" not in label.text()
    window.changes.apply()
    error = shown_box(qtbot, window, "errorDialog")
    assert error.text().startswith("Your changes were not written: etcd did not answer.")
    assert "still staged" in error.text()
    assert "+debug" in window.changes.diff.toPlainText(), "the diff under review stays"
    error.close()

    private_etcd.start()
    qtbot.waitUntil(lambda: not banner.isVisible(), timeout=30_000)
    assert label.text().endswith("· connected"), "one state, and it is connected again"
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_value(private_etcd, "app/level") == "debug"
    assert label.text().endswith("· connected")


def test_an_endpoints_connection_is_remembered_as_a_profile(qtbot, etcd_server, tmp_path):
    from etcdadmin.gui.connections.profiles import ConnectionProfile, ProfileStore
    from etcdadmin.gui.mainwindow import MainWindow

    store = ProfileStore(tmp_path / "profiles.json")
    first = MainWindow(store=store, sandbox_dir=tmp_path / "sandbox")
    qtbot.addWidget(first)
    first.connect_endpoints(etcd_server.endpoint)
    qtbot.waitUntil(lambda: "keys loaded" in first.statusBar().currentMessage(), timeout=20_000)
    first.close()
    assert store.names() == [etcd_server.endpoint]

    second = MainWindow(store=ProfileStore(tmp_path / "profiles.json"))
    qtbot.addWidget(second)
    assert second.profiles.currentText() == etcd_server.endpoint, "reopened next time"

    store.save(ConnectionProfile("prod", "127.0.0.1:1", production=True))
    second.connect_endpoints(etcd_server.endpoint, "prod")
    assert not second.banner.isHidden(), "a named production profile stays production"
    assert store.load("prod").production and store.load("prod").endpoints == etcd_server.endpoint
    second.connections.close_session()


def test_export_asks_before_writing_secret_values_and_writes_the_file_0600(
    qtbot, window, etcd_server, tmp_path, monkeypatch
):
    top = unique("export")
    etcd_server.etcdctl("put", f"{top}/http/addr", ":5000")
    etcd_server.etcdctl("put", f"{top}/http/secret", "s3cr3t")
    connect(qtbot, window, etcd_server.endpoint)
    window.tree.view.setCurrentIndex(window.model.find(top.encode()))
    target = tmp_path / "config.yml"
    monkeypatch.setattr(
        "etcdadmin.gui.compare.transfer.QFileDialog.getSaveFileName",
        lambda *a, **k: (str(target), "YAML (*.yml)"),
    )
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.No]

    def question(parent, title, text, *a, **k):
        asked.append(text)
        return answer[0]

    monkeypatch.setattr("etcdadmin.gui.compare.transfer.QMessageBox.question", question)
    window.export_yaml()
    qtbot.waitUntil(lambda: "export cancelled" in window.statusBar().currentMessage())
    assert "secret values (http/secret)" in asked[0] and "0600" in asked[0]
    assert not target.exists()

    answer[0] = QMessageBox.StandardButton.Yes
    window.export_yaml()
    qtbot.waitUntil(target.exists, timeout=5000)
    assert target.stat().st_mode & 0o777 == 0o600
    assert "secret: s3cr3t" in target.read_text()


def test_history_rows_preview_each_version_and_menus_show_shortcuts(qtbot, window, etcd_server):
    key = f"{unique('preview')}/level"
    for value in ("info", "debug"):
        etcd_server.etcdctl("put", key, value)
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.tabs.setCurrentWidget(window.history)
    qtbot.waitUntil(lambda: window.history.list.count() == 2, timeout=10_000)
    rows = [window.history.list.item(r).text() for r in range(2)]
    assert rows[0].endswith("debug") and rows[1].endswith("info")

    menus = {
        menu.title().replace("&", ""): {a.text(): a.shortcut().toString() for a in menu.actions()}
        for menu in (a.menu() for a in window.menuBar().actions())
    }
    assert menus["File"]["Quit"] == "Ctrl+Q"
    assert menus["Keys"]["Undo last apply…"] == "Ctrl+Z"
    assert menus["Keys"]["Apply pending changes"] == "Ctrl+Return"
    assert menus["Directory"]["Compare…\tCtrl+D"] == ""  # shown, owned by the toolbar's action


def test_clearing_the_search_keeps_the_tree_on_the_chosen_key(qtbot, window, etcd_server):
    top = unique("place")
    etcd_server.etcdctl("put", f"{top}/deep/down/needle", "x")
    connect(qtbot, window, etcd_server.endpoint)
    window.tree.search.setText(f"{top}/deep/down/nee")
    qtbot.waitUntil(lambda: window.tree.results.count() == 1, timeout=5000)
    window.tree.results.itemClicked.emit(window.tree.results.item(0))
    qtbot.waitUntil(lambda: window.editor.key == f"{top}/deep/down/needle".encode())
    window.tree.search.clear()
    assert window.tree.view.isVisible()
    current = window.model.key_at(window.tree.view.currentIndex())
    assert current == f"{top}/deep/down/needle".encode()


def test_a_conflict_on_a_secret_path_names_the_key_but_never_shows_its_values(qtbot):
    from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

    from etcdadmin.core.changes.commands import Conflict
    from etcdadmin.core.etcd.keyvalue import KeyValue
    from etcdadmin.gui.changes.dialogs import show_conflict

    parent = QWidget()
    qtbot.addWidget(parent)
    seen = KeyValue(b"prod/storage/swift/password", b"MARKER-seen", 2, 2, 1, 0)
    now = KeyValue(b"prod/storage/swift/password", b"MARKER-now", 2, 3, 2, 0)
    show_conflict(parent, (Conflict(seen.key, seen, now, "changed"),), lambda: None)
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]
    text = "\n".join(box.text() for box in boxes if box.isVisible())
    assert "prod/storage/swift/password" in text and "(secret) (revision 3)" in text
    assert "MARKER" not in text
    for box in boxes:
        box.close()
