"""The History tab's backups: back up a directory, change it elsewhere, restore it from the
backup in the client, and read the directory back with etcdctl."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pyrage
import pytest

from etcdadmin.core.backup import BackupOptions, create_backup
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.secrets.operator import OperatorIdentity
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
    seen: list[str] = []
    answer_next_dialog("Close", seen)  # offered an identity file, the operator has none
    backups.restore()
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=30_000)
    assert stranger in seen[0] and "is not one of them" in seen[0]
    qtbot.waitUntil(lambda: "nothing was written" in backups.report.text(), timeout=10_000)
    assert values(etcd_server, f"{top}/") == {f"{top}/a": "2"}, "nothing written"

    backups.table.selectRow(1)
    answer_next_dialog("Restore", seen)
    backups.restore()
    qtbot.waitUntil(lambda: "restored:" in backups.report.text(), timeout=30_000)
    assert "~ a: 2 -> 1" in seen[1]
    assert values(etcd_server, f"{top}/") == {f"{top}/a": "1"}


def operator_and_team(folder: Path) -> tuple[OperatorIdentity, pyrage.x25519.Identity, Path]:
    """The operator's identity in the OS keyring (made when missing), and a team's age key in
    an identity file the keyring knows nothing of."""
    from etcdadmin.core.secrets.operator import load_operator_identity

    operator = load_operator_identity(create=True)
    assert operator is not None
    team = pyrage.x25519.Identity.generate()
    identity_file = folder / "team.agekey"
    identity_file.write_text(f"# the ops team's key\n{team}\n")
    return operator, team, identity_file


def test_a_backup_encrypted_to_a_team_key_restores_once_its_identity_file_is_opened(
    qtbot, window, etcd_server, os_keyring, tmp_path, monkeypatch
):
    operator, team, identity_file = operator_and_team(tmp_path)
    top = f"gui-backup-{uuid.uuid4().hex[:6]}"
    etcd_server.etcdctl("put", f"{top}/a", "1")
    connect(qtbot, window, etcd_server.endpoint)
    backups = window.history.backups
    window.tree.select_key(top.encode())
    qtbot.waitUntil(lambda: backups.target == f"{top}/".encode(), timeout=10_000)
    assert backups.location is not None
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        # the operator's backup holds a=1, the team's a=2; etcd then holds a=3
        for value, recipient in (("2", operator.public_key), ("3", str(team.to_public()))):
            create_backup(
                conn, backups.location, BackupOptions(prefix=f"{top}/", recipients=(recipient,))
            )
            etcd_server.etcdctl("put", f"{top}/a", value)
    backups.refresh()
    qtbot.waitUntil(lambda: backups.table.rowCount() == 2, timeout=10_000)
    opened: list[str] = []

    def choose_file(*_args: object, **_kwargs: object) -> tuple[str, str]:
        opened.append("asked")
        return str(identity_file), ""

    monkeypatch.setattr(
        "etcdadmin.gui.history.backup_identities.QFileDialog.getOpenFileName", choose_file
    )
    backups.table.selectRow(0)  # newest first: the one encrypted to the team key only
    seen: list[str] = []
    answer_next_dialog("Open identity file", seen)
    backups.restore()
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=30_000)
    assert str(team.to_public()) in seen[0] and "is not one of them" in seen[0]
    assert "Nothing was written" in seen[0] and "--identity" not in seen[0]
    answer_next_dialog("Restore", seen)
    qtbot.waitUntil(lambda: "restored:" in backups.report.text(), timeout=30_000)
    assert opened == ["asked"]
    assert "~ a: 3 -> 2" in seen[1]
    assert values(etcd_server, f"{top}/") == {f"{top}/a": "2"}

    # the file's key is kept for this window, and the operator's own still opens theirs:
    # the oldest row (the restore added its safety backup, encrypted to the team, on top)
    qtbot.waitUntil(lambda: backups.table.rowCount() == 3, timeout=10_000)
    backups.table.selectRow(2)
    answer_next_dialog("Restore", seen)
    backups.restore()
    qtbot.waitUntil(lambda: len(seen) == 3, timeout=30_000)
    qtbot.waitUntil(lambda: "restored:" in backups.report.text(), timeout=30_000)
    assert "~ a: 2 -> 1" in seen[2] and opened == ["asked"]
    assert values(etcd_server, f"{top}/") == {f"{top}/a": "1"}
