"""The History tab's backups: back up a directory, change it elsewhere, restore it from the
backup in the client, and read the directory back with etcdctl."""

from __future__ import annotations

import base64
import json
import uuid

import pyrage
import pytest
from PySide6.QtWidgets import QMessageBox

from etcdadmin.core.backup import BackupOptions, create_backup
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.gui.conftest import SCREENSHOTS, connect
from tests.gui.dialogs import answer_next_dialog


def values(etcd_server, prefix: str) -> dict[str, str]:
    out = etcd_server.etcdctl("get", prefix, "--prefix", "-w", "json").stdout
    return {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
        for kv in json.loads(out).get("kvs") or []
    }


@pytest.fixture(params=["local", "swift"])
def location_kind(request, monkeypatch) -> str:
    """The CLI's rules pick the location: Swift from ST_* variables, else the data directory
    (a test's own, set by the window fixture)."""
    for name in ("ST_AUTH", "ST_USER", "ST_KEY", "OS_AUTH_URL"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "swift":
        swift = request.getfixturevalue("swift")
        monkeypatch.setenv("ST_AUTH", swift.auth_url)
        monkeypatch.setenv("ST_USER", swift.user)
        monkeypatch.setenv("ST_KEY", swift.key)
        monkeypatch.setenv("ETCDADMIN_BACKUP_CONTAINER", f"gui-{uuid.uuid4().hex[:8]}")
    return str(request.param)


def test_the_history_tab_restores_a_directory_from_a_backup_showing_the_diff_first(
    qtbot, window, etcd_server, location_kind
):
    top = f"gui-backup-{uuid.uuid4().hex[:6]}"
    etcd_server.etcdctl("put", f"{top}/app/http/addr", ":5000")
    etcd_server.etcdctl("put", f"{top}/app/log/level", "info")
    etcd_server.etcdctl("put", f"{top}/other/keep", "before")
    connect(qtbot, window, etcd_server.endpoint, production=True)
    backups = window.history.backups
    window.tabs.setCurrentWidget(window.history)
    window.tree.select_key(f"{top}/app".encode())
    qtbot.waitUntil(lambda: backups.target == f"{top}/app/".encode(), timeout=10_000)
    expected = "Swift container" if location_kind == "swift" else "directory"
    assert expected in backups.where.text(), "the panel says where the backups are"

    backups.back_up_now()
    qtbot.waitUntil(lambda: backups.table.rowCount() == 1, timeout=30_000)
    assert backups.table.item(0, 5).text() == f"{top}/app/"
    assert backups.table.item(0, 2).text() == "2", "two keys exported"

    etcd_server.etcdctl("del", f"{top}/app/log/level")
    etcd_server.etcdctl("put", f"{top}/app/http/addr", ":6000")
    etcd_server.etcdctl("put", f"{top}/app/added", "since")
    etcd_server.etcdctl("put", f"{top}/other/keep", "after")

    backups.table.selectRow(0)
    seen: list[str] = []
    answer_next_dialog("Restore", seen)
    backups.restore()
    qtbot.waitUntil(lambda: "restored:" in backups.report.text(), timeout=30_000)

    assert "PRODUCTION" in seen[0] and "+ log/level = info" in seen[0] and "- added" in seen[0]
    assert values(etcd_server, f"{top}/app/") == {
        f"{top}/app/http/addr": ":5000",
        f"{top}/app/log/level": "info",
    }
    assert values(etcd_server, f"{top}/other/") == {f"{top}/other/keep": "after"}
    assert "safety backup" in backups.report.text()
    qtbot.waitUntil(lambda: backups.table.rowCount() == 2, timeout=10_000)

    backups.table.selectRow(1)  # the first backup (newest first), verified again
    backups.verify()
    qtbot.waitUntil(lambda: "Verified" in backups.report.text(), timeout=30_000)
    qtbot.waitUntil(lambda: backups.table.item(1, 4).text() != "not verified", timeout=10_000)
    if location_kind == "local":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert window.grab().save(str(SCREENSHOTS / "backups.png"))


def test_a_restore_declined_in_the_dialog_writes_nothing(qtbot, window, etcd_server):
    top = f"gui-backup-{uuid.uuid4().hex[:6]}"
    etcd_server.etcdctl("put", f"{top}/a", "1")
    connect(qtbot, window, etcd_server.endpoint)
    backups = window.history.backups
    window.tree.select_key(f"{top}/a".encode())
    qtbot.waitUntil(lambda: backups.target == f"{top}/a".encode(), timeout=10_000)
    window.tree.select_key(top.encode())
    qtbot.waitUntil(lambda: backups.target == f"{top}/".encode(), timeout=10_000)
    backups.back_up_now()
    qtbot.waitUntil(lambda: backups.table.rowCount() == 1, timeout=30_000)
    etcd_server.etcdctl("put", f"{top}/a", "2")

    backups.table.selectRow(0)
    seen: list[str] = []
    answer_next_dialog("Cancel", seen)
    backups.restore()
    qtbot.waitUntil(lambda: "nothing was written" in backups.report.text(), timeout=30_000)
    assert "~ a: 2 -> 1" in seen[0]
    assert values(etcd_server, f"{top}/") == {f"{top}/a": "2"}


def test_an_encrypted_backup_restores_with_the_operators_identity_and_a_foreign_one_says_why(
    qtbot, window, etcd_server, os_keyring
):
    from etcdadmin.core.secrets.operator import load_operator_identity

    operator = load_operator_identity(create=True)
    assert operator is not None
    stranger = str(pyrage.x25519.Identity.generate().to_public())
    top = f"gui-backup-{uuid.uuid4().hex[:6]}"
    etcd_server.etcdctl("put", f"{top}/a", "1")
    connect(qtbot, window, etcd_server.endpoint)
    backups = window.history.backups
    window.tree.select_key(top.encode())
    qtbot.waitUntil(lambda: backups.target == f"{top}/".encode(), timeout=10_000)
    assert backups.location is not None
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        for recipient in (operator.public_key, stranger):
            create_backup(
                conn, backups.location, BackupOptions(prefix=f"{top}/", recipients=(recipient,))
            )
            etcd_server.etcdctl("put", f"{top}-elsewhere/x", "a revision of its own")
    etcd_server.etcdctl("put", f"{top}/a", "2")
    backups.refresh()
    qtbot.waitUntil(lambda: backups.table.rowCount() == 2, timeout=10_000)

    backups.table.selectRow(0)  # newest first: the one encrypted to a stranger
    backups.restore()

    def error_box() -> QMessageBox | None:
        boxes = [b for b in window.findChildren(QMessageBox, "errorDialog") if b.isVisible()]
        return boxes[0] if boxes else None

    qtbot.waitUntil(lambda: error_box() is not None, timeout=30_000)
    box = error_box()
    assert box is not None
    assert stranger in box.text() and "is not one of them" in box.text()
    box.close()
    assert values(etcd_server, f"{top}/") == {f"{top}/a": "2"}, "nothing written"

    backups.table.selectRow(1)
    seen: list[str] = []
    answer_next_dialog("Restore", seen)
    backups.restore()
    qtbot.waitUntil(lambda: "restored:" in backups.report.text(), timeout=30_000)
    assert "~ a: 2 -> 1" in seen[0]
    assert values(etcd_server, f"{top}/") == {f"{top}/a": "1"}
