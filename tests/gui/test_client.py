"""The desktop client driven like an operator drives it, against a real etcd."""

from __future__ import annotations

import json
import uuid

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QMessageBox

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.local.example import seed_example
from etcdadmin.gui.connections.profiles import ConnectionProfile
from tests.gui.conftest import SCREENSHOTS, connect
from tests.gui.dialogs import answer_next_dialog
from tests.stack.procs import free_port


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def etcd_value(etcd_server, key: str) -> str | None:
    out = etcd_server.etcdctl("get", key, "--print-value-only").stdout
    return out[:-1] if out else None


def top_level_names(win) -> list[str]:
    model = win.model
    return [model.data(model.index(r, 0)) for r in range(model.rowCount())]


def open_key(qtbot, win, key: str) -> None:
    win.tree.select_key(key.encode())
    # `current` is the loaded key's metadata: until it matches, a stage would guard the old key
    qtbot.waitUntil(
        lambda: win.editor.current is not None and win.editor.current.key == key.encode()
    )


def test_browse_and_edit_several_keys_applied_as_one_transaction(qtbot, window, etcd_server):
    top = unique("app")
    etcd_server.etcdctl("put", f"{top}/http/addr", ":5000")
    etcd_server.etcdctl("put", f"{top}/log/level", "info")
    etcd_server.etcdctl("put", f"{top}/old", "remove me")
    connect(qtbot, window, etcd_server.endpoint)
    assert top in top_level_names(window)

    open_key(qtbot, window, f"{top}/http/addr")
    assert window.editor.text.toPlainText() == ":5000"
    assert window.editor.version.text() == "1"
    window.editor.text.setPlainText(":6000")
    window.editor.stage()
    open_key(qtbot, window, f"{top}/log/level")
    window.editor.text.setPlainText("debug")
    window.editor.stage()
    open_key(qtbot, window, f"{top}/old")
    window.editor.stage_delete()
    assert len(window.changes.changes) == 3
    qtbot.waitUntil(lambda: ":6000" in window.changes.diff.toPlainText())
    assert etcd_value(etcd_server, f"{top}/http/addr") == ":5000", "staging writes nothing"

    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_value(etcd_server, f"{top}/http/addr") == ":6000"
    assert etcd_value(etcd_server, f"{top}/log/level") == "debug"
    assert etcd_value(etcd_server, f"{top}/old") is None
    revisions = etcd_server.etcdctl("get", "--prefix", f"{top}/", "-w", "json").stdout
    mods = {kv["mod_revision"] for kv in json.loads(revisions)["kvs"]}
    assert len(mods) == 1, "both edits carry the one transaction's revision"

    answer_next_dialog("Apply", [])
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.undo()
    assert etcd_value(etcd_server, f"{top}/http/addr") == ":5000"
    assert etcd_value(etcd_server, f"{top}/old") == "remove me"


def test_a_conflicting_edit_from_etcdctl_is_shown_and_nothing_is_written(
    qtbot, window, etcd_server
):
    top = unique("conflict")
    etcd_server.etcdctl("put", f"{top}/a", "1")
    etcd_server.etcdctl("put", f"{top}/b", "1")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, f"{top}/a")
    window.editor.text.setPlainText("mine")
    window.editor.stage()
    open_key(qtbot, window, f"{top}/b")
    window.editor.text.setPlainText("mine too")
    window.editor.stage()
    etcd_server.etcdctl("put", f"{top}/a", "theirs")

    window.changes.apply()
    shown = conflict_dialog(qtbot, window).text()
    assert "nothing was written" in shown
    assert "theirs" in shown and f"{top}/a" in shown
    assert etcd_value(etcd_server, f"{top}/a") == "theirs"
    assert etcd_value(etcd_server, f"{top}/b") == "1", "the other edit was not written either"
    assert len(window.changes.changes) == 2, "the staged changes are kept for review"


def test_keys_written_elsewhere_show_up_live(qtbot, window, etcd_server):
    top = unique("live")
    etcd_server.etcdctl("put", f"{top}/first", "1")
    connect(qtbot, window, etcd_server.endpoint)
    index = window.model.find(f"{top}/first".encode())
    assert index.isValid()
    window.tree.view.expand(index.parent())
    etcd_server.etcdctl("put", f"{top}/second", "2")
    qtbot.waitUntil(lambda: window.model.find(f"{top}/second".encode()).isValid(), timeout=5000)
    etcd_server.etcdctl("del", f"{top}/first")
    parent = window.model.find(top.encode())

    def gone() -> bool:
        names = [
            window.model.data(window.model.index(r, 0, parent))
            for r in range(window.model.rowCount(parent))
        ]
        return names == ["second"]

    qtbot.waitUntil(gone, timeout=5000)


def test_history_shows_earlier_values_and_restores_one(qtbot, window, etcd_server):
    key = f"{unique('hist')}/level"
    for value in ("v1", "v2", "v3"):
        etcd_server.etcdctl("put", key, value)
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.tabs.setCurrentWidget(window.history)
    qtbot.waitUntil(lambda: window.history.list.count() == 3, timeout=10_000)
    window.history.list.setCurrentRow(2)  # oldest
    assert "-v1" in window.history.diff.toPlainText()
    window.history.restore()
    window.changes.apply()
    qtbot.waitUntil(lambda: etcd_value(etcd_server, key) == "v1", timeout=10_000)


def test_compare_two_directories_and_copy_a_difference_across(qtbot, window, etcd_server):
    left, right = unique("registry-test"), unique("registry-production-1.0")
    for d in (left, right):
        etcd_server.etcdctl("put", f"{d}/http/addr", ":5000")
    etcd_server.etcdctl("put", f"{left}/log/level", "debug")
    etcd_server.etcdctl("put", f"{right}/log/level", "info")
    etcd_server.etcdctl("put", f"{left}/only/left", "x")
    connect(qtbot, window, etcd_server.endpoint)
    from etcdadmin.gui.compare.dialog import CompareDialog

    dialog = CompareDialog(window, window.session, window.model.index_data)
    dialog.staged.connect(window.changes.stage)
    qtbot.addWidget(dialog)
    dialog.left.setCurrentText(f"{left}/")
    dialog.right.setCurrentText(f"{right}/")
    dialog.compare()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=10_000)
    rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 3).text() for r in range(2)}
    assert rows == {"log/level": "different", "only/left": "only left"}
    dialog.table.selectRow(0)
    dialog.copy_selected(to_right=True)
    window.changes.apply()
    qtbot.waitUntil(
        lambda: etcd_value(etcd_server, f"{right}/log/level") == "debug", timeout=10_000
    )
    assert etcd_value(etcd_server, f"{right}/only/left") is None


def test_an_unreachable_endpoint_is_reported_without_blocking(qtbot, window):
    port = free_port()
    window.connect_profile(ConnectionProfile(name="nowhere", endpoints=f"127.0.0.1:{port}"))
    qtbot.waitUntil(
        lambda: f"127.0.0.1:{port}" in window.statusBar().currentMessage(), timeout=10_000
    )
    assert "unreachable" in window.connection_label.text()


def test_a_production_profile_shows_a_banner(qtbot, window, etcd_server):
    connect(qtbot, window, etcd_server.endpoint, name="prod", production=True)
    assert window.banner.isVisible()
    assert "PRODUCTION" in window.banner.text()


def test_screenshots_of_the_main_views(qtbot, window, private_etcd, os_keyring):
    """PNGs for the README, on a tree an operator would recognise (the sandbox's example),
    its `http/secret` kept as a secret the way an operator would (so the tree shows a lock)."""
    from etcdadmin.core.secrets.identities import new_agent_key
    from etcdadmin.core.secrets.recipients import Recipient, add_recipient
    from etcdadmin.core.secrets.sealer import SecretSealer

    with EtcdConnection(ConnectionSettings((private_etcd.endpoint,))) as conn:
        seed_example(conn)
        agent = Recipient("registry-host-1", new_agent_key("ed25519").public_key)
        add_recipient(conn, "example-test", agent)
        secret = b"example-test/http/secret"
        conn.put(secret, SecretSealer(conn).seal(secret, b"change-me-in-production"))
        for addr in ("0.0.0.0:5000", "127.0.0.1:5000"):  # a little history to show
            conn.put("example-test/http/addr", addr)
        conn.put(
            "/etcdadmin/agents/example-test/registry-host-1",
            json.dumps(
                {
                    "agent_id": "registry-host-1",
                    "applied_revision": conn.header()[0],
                    "last_result": "ok",
                    "last_error": None,
                    "updated_at": "2026-11-24T23:59:00Z",
                }
            ),
        )
    connect(qtbot, window, private_etcd.endpoint, name="sandbox")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    open_key(qtbot, window, "example-test/http/addr")
    window.tree.view.expandRecursively(window.model.find(b"example-test"))
    window.editor.text.setPlainText(":5001")
    window.editor.stage()
    qtbot.waitUntil(lambda: ":5001" in window.changes.diff.toPlainText())
    assert window.grab().save(str(SCREENSHOTS / "main-window.png"))
    window.tabs.setCurrentWidget(window.history)
    qtbot.waitUntil(lambda: window.history.list.count() == 3, timeout=10_000)
    window.history.list.setCurrentRow(2)
    assert window.grab().save(str(SCREENSHOTS / "history.png"))
    window.tree.view.setCurrentIndex(window.model.find(b"example-test"))
    window.tabs.setCurrentWidget(window.agents)
    qtbot.waitUntil(lambda: window.agents.table.rowCount() == 1, timeout=10_000)
    assert window.grab().save(str(SCREENSHOTS / "agents.png"))
    window.tabs.setCurrentWidget(window.cluster)
    qtbot.waitUntil(lambda: window.cluster.table.rowCount() >= 1, timeout=10_000)
    assert window.grab().save(str(SCREENSHOTS / "cluster.png"))


def test_search_streams_keys_and_values_of_a_directory(qtbot, window, etcd_server):
    top = unique("search")
    etcd_server.etcdctl("put", f"{top}/a/needle-key", "x")
    etcd_server.etcdctl("put", f"{top}/b/other", "has a NEEDLE inside")
    etcd_server.etcdctl("put", f"{top}/c/plain", "nothing")
    connect(qtbot, window, etcd_server.endpoint)
    window.tree.search.setText(f"{top}/a/needle")
    qtbot.waitUntil(lambda: window.tree.results.count() == 1, timeout=5000)
    assert window.tree.results.item(0).text() == f"{top}/a/needle-key"

    window.tree.view.setCurrentIndex(window.model.find(top.encode()))
    window.tree.in_values.setChecked(True)
    window.tree.search.setText("needle")
    qtbot.waitUntil(lambda: "values in" in window.tree.search_status.text(), timeout=5000)
    keys = [window.tree.results.item(i).text() for i in range(window.tree.results.count())]
    assert keys == [f"{top}/b/other"]


def test_copying_a_directory_to_a_new_name_reads_back_with_etcdctl(
    qtbot, window, etcd_server, monkeypatch
):
    source, target = unique("registry-test"), unique("registry-production-1.0")
    etcd_server.etcdctl("put", f"{source}/http/addr", ":5000")
    etcd_server.etcdctl("put", f"{source}/log/level", "info")
    connect(qtbot, window, etcd_server.endpoint)
    from etcdadmin.gui.compare.dialog import CompareDialog

    dialog = CompareDialog(window, window.session, window.model.index_data)
    qtbot.addWidget(dialog)
    dialog.staged.connect(window.changes.stage)
    dialog.left.setCurrentText(f"{source}/")
    monkeypatch.setattr(
        "etcdadmin.gui.compare.dialog.QInputDialog.getText",
        lambda *a, **k: (target, True),
    )
    dialog.copy_directory()
    # staged once a worker has looked for secrets to re-encrypt (there are none here)
    qtbot.waitUntil(lambda: len(window.changes.changes) == 1, timeout=10_000)
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    out = etcd_server.etcdctl("get", "--prefix", f"{target}/").stdout.splitlines()
    assert out == [f"{target}/http/addr", ":5000", f"{target}/log/level", "info"]


def test_a_new_user_gets_a_working_local_sandbox_that_stops_with_the_window(qtbot, window):
    assert window.profiles.currentText() == "Local sandbox"
    window.start()
    qtbot.waitUntil(lambda: "keys loaded" in window.statusBar().currentMessage(), timeout=30_000)
    assert set(top_level_names(window)) == {"example-test", "example-production"}
    for where in (window.windowTitle(), window.banner.text(), window.connection_label.text()):
        assert "sandbox (local, throw-away)" in where, where
    assert window.banner.isVisible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "sandbox.png"))
    pid = window.sandbox.pid
    assert pid is not None
    window.close()
    import os

    qtbot.waitUntil(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), timeout=10_000)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] == "Z"
    except OSError:
        return True


def test_compaction_asks_first_and_then_discards_earlier_history(
    qtbot, window, private_etcd, monkeypatch
):
    key = "compact/me"
    for value in ("v1", "v2", "v3"):
        private_etcd.etcdctl("put", key, value)
    connect(qtbot, window, private_etcd.endpoint)
    window.tabs.setCurrentWidget(window.cluster)
    qtbot.waitUntil(lambda: window.cluster.table.rowCount() == 1, timeout=10_000)
    assert window.cluster.table.item(0, 2).text() == "leader"
    asked: list[str] = []

    def answer(parent, title, text, *a, **k):
        asked.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr("etcdadmin.gui.cluster.panel.QMessageBox.question", answer)
    window.cluster.compact()
    assert asked and "Discard all key history" in asked[0]
    assert "compacted" not in private_etcd.etcdctl("get", key, "--rev", "2").stdout

    monkeypatch.setattr(
        "etcdadmin.gui.cluster.panel.QMessageBox.question",
        lambda *a, **k: QMessageBox.StandardButton.Yes,
    )
    with qtbot.waitSignal(window.cluster.message, timeout=10_000):
        window.cluster.compact()
    done = private_etcd.etcdctl("get", key, "--rev", "2", check=False)
    assert "compacted" in done.stderr


def test_an_edit_in_progress_survives_a_change_elsewhere_and_then_conflicts(
    qtbot, window, etcd_server
):
    key = f"{unique('editing')}/value"
    etcd_server.etcdctl("put", key, "original")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.editor.text.moveCursor(QTextCursor.MoveOperation.End)
    qtbot.keyClicks(window.editor.text, " + my edit")  # typed, as an operator does
    etcd_server.etcdctl("put", key, "theirs")
    qtbot.waitUntil(lambda: "changed in etcd" in window.editor.error.text(), timeout=5000)
    assert window.editor.text.toPlainText() == "original + my edit"
    window.editor.stage()
    window.changes.apply()
    conflict_dialog(qtbot, window)
    assert etcd_value(etcd_server, key) == "theirs"
    window.editor.revert()
    qtbot.waitUntil(lambda: window.editor.text.toPlainText() == "theirs", timeout=5000)


def conflict_dialog(qtbot, win):
    from tests.gui.test_operator_flows import conflict_dialog as shown

    return shown(qtbot, win)


def test_the_cluster_tab_follows_writes_made_elsewhere(qtbot, window, private_etcd):
    connect(qtbot, window, private_etcd.endpoint)
    window.tabs.setCurrentWidget(window.cluster)
    qtbot.waitUntil(lambda: window.cluster.table.rowCount() == 1, timeout=10_000)
    before = int(window.cluster.table.item(0, 5).text())
    private_etcd.etcdctl("put", "cluster-follow/key", "x")  # no click on Refresh after this
    qtbot.waitUntil(lambda: int(window.cluster.table.item(0, 5).text()) > before, timeout=10_000)


def test_a_window_closed_while_its_panels_read_etcd_takes_no_late_results(
    qtbot, tmp_path, private_etcd
):
    import shiboken6
    from PySide6.QtCore import QThreadPool

    from etcdadmin.gui.mainwindow import MainWindow

    win = MainWindow(sandbox_dir=tmp_path / "sandbox")
    win.show()
    connect(qtbot, win, private_etcd.endpoint)
    win.agents.set_directory(b"late/")
    win.cluster.refresh()  # both reads are in flight when the window goes
    win.close()
    shiboken6.delete(win)  # at once, as Qt does when its parent goes, before the reads end
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=10_000)
    qtbot.wait(200)  # the results' deliveries run now: pytest-qt fails on any exception in them
