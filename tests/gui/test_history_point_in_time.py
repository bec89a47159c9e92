"""The History tab past etcd's own history: a directory put back as it was at a time (a full
backup plus `backup follow`'s deltas), and a key's versions that only the backups kept."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from etcdadmin.core.backup import BackupOptions, create_backup
from etcdadmin.core.backup.continuous import FollowOptions
from etcdadmin.gui.history.backups import backup_location
from etcdadmin.gui.history.restore_dialogs import MomentDialog
from tests.core.backup_support import connect as connect_etcd
from tests.core.test_backup_follow import following
from tests.gui.conftest import SCREENSHOTS, connect
from tests.gui.dialogs import POLL_MS, answer_next_dialog
from tests.gui.test_backups import operator_and_team, values
from tests.gui.test_client import etcd_value, open_key


@pytest.fixture(autouse=True)
def local_backups(monkeypatch) -> None:
    """Backups in the test's own data directory: no Swift variables reach the client."""
    for name in ("ST_AUTH", "ST_USER", "ST_KEY", "OS_AUTH_URL"):
        monkeypatch.delenv(name, raising=False)


def answer_moment(when: datetime, then: str | None = None, seen: list[str] | None = None) -> None:
    """When "Restore to a time…" asks, type `when` in and show the diff; then answer the
    confirmation that follows with the button `then` (None: no confirmation will come, and
    an answer left waiting would click the next test's dialog)."""

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, MomentDialog):
            QTimer.singleShot(POLL_MS, answer)
            return
        dialog.set_time(when)
        if then is not None:
            answer_next_dialog(then, seen if seen is not None else [])
        dialog.accept()

    QTimer.singleShot(0, answer)


def test_restore_to_a_time_between_two_changes_puts_back_exactly_the_earlier_state(
    qtbot, window, etcd_server
):
    top = f"gui-pit-{uuid.uuid4().hex[:6]}"
    prefix = f"{top}/"
    etcd_server.etcdctl("put", f"{prefix}a", "a0")
    connect(qtbot, window, etcd_server.endpoint, production=True)
    backups = window.history.backups
    window.tabs.setCurrentWidget(window.history)
    window.tree.select_key(top.encode())
    qtbot.waitUntil(lambda: backups.target == prefix.encode(), timeout=10_000)
    assert backups.restore_at_button.isEnabled()
    assert backups.location is not None

    options = FollowOptions(prefix, flush_seconds=0.2)
    with (
        connect_etcd(etcd_server) as conn,
        following(etcd_server, backups.location, options) as running,
    ):
        conn.put(f"{prefix}a", "a1")  # t1
        running.stored(conn.put(f"{prefix}b", "b1"))
        conn.put(f"{prefix}a", "a2")  # t2
        conn.delete(f"{prefix}b")
        running.stored(conn.put(f"{prefix}c", "c2"))
        # a whole second after t2 and before t3: what the time field can be typed to
        between = datetime.fromtimestamp(math.ceil(datetime.now(UTC).timestamp()), UTC)
        qtbot.waitUntil(lambda: datetime.now(UTC) > between, timeout=5_000)
        conn.put(f"{prefix}a", "a3")  # t3
        running.stored(conn.put(f"{prefix}d", "d3"))
    assert values(etcd_server, prefix) == {
        f"{prefix}a": "a3",
        f"{prefix}c": "c2",
        f"{prefix}d": "d3",
    }

    seen: list[str] = []
    answer_moment(between, "Restore", seen)
    backups.restore_at()
    qtbot.waitUntil(lambda: "restored:" in backups.report.text(), timeout=30_000)

    assert "PRODUCTION" in seen[0], "a production profile asks before writing"
    assert "~ a: a3 -> a2" in seen[0] and "- d" in seen[0]
    assert values(etcd_server, prefix) == {f"{prefix}a": "a2", f"{prefix}c": "c2"}
    assert "safety backup" in backups.report.text()

    # before the first full backup there is nothing to rebuild from: said, nothing written
    answer_moment(datetime(2001, 1, 1, tzinfo=UTC))
    backups.restore_at()
    qtbot.waitUntil(lambda: "no full backup" in backups.report.text(), timeout=30_000)
    boxes = [b for b in window.findChildren(QMessageBox, "errorDialog") if b.isVisible()]
    assert boxes and "no full backup" in boxes[0].text()
    boxes[0].close()
    assert values(etcd_server, prefix) == {f"{prefix}a": "a2", f"{prefix}c": "c2"}


def test_a_key_is_not_restored_to_a_time_alone(qtbot, window, etcd_server):
    key = f"gui-pit-{uuid.uuid4().hex[:6]}/a"
    etcd_server.etcdctl("put", key, "1")
    connect(qtbot, window, etcd_server.endpoint)
    backups = window.history.backups
    open_key(qtbot, window, key)
    qtbot.waitUntil(lambda: backups.target == key.encode(), timeout=10_000)
    assert not backups.restore_at_button.isEnabled()
    assert "restores directories" in backups.restore_at_button.toolTip().lower()


def test_a_version_compacted_away_comes_back_from_a_backup_and_restores(
    qtbot, window, private_etcd, tmp_path
):
    key = "old/level"
    private_etcd.etcdctl("put", key, "v1-from-long-ago")
    with connect_etcd(private_etcd) as conn:
        # where the client will look: the CLI's default location, the test's data directory
        create_backup(conn, backup_location(), BackupOptions(prefix="old/"))
        conn.put(key, "v2")
        revision = conn.put(key, "v3")
    private_etcd.etcdctl("compact", str(revision))
    # connected after the compaction: the client's watch starts past it, so no late event
    # re-reads the history while the test looks at it
    connect(qtbot, window, private_etcd.endpoint)
    history = window.history

    open_key(qtbot, window, key)
    window.tabs.setCurrentWidget(history)
    qtbot.waitUntil(lambda: "was compacted" in history.header.text(), timeout=10_000)
    assert history.list.count() == 1, "etcd itself kept only the current version"

    history.include_backups.setChecked(True)
    qtbot.waitUntil(lambda: history.list.count() == 2, timeout=30_000)
    qtbot.waitUntil(lambda: not history.looking.isVisible(), timeout=5_000)
    old = history.list.item(1).text()
    assert "from backup" in old and "v1-from-long-ago" in old
    qtbot.waitUntil(lambda: "1 more from backups" in history.header.text(), timeout=10_000)
    history.list.setCurrentRow(1)
    assert "-v1-from-long-ago" in history.diff.toPlainText()
    assert "+v3" in history.diff.toPlainText()
    assert history.restore_button.isEnabled()
    history.backups.refresh()  # the backup was taken outside the client
    qtbot.waitUntil(lambda: history.backups.table.rowCount() == 1, timeout=10_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "history-backups.png"))
    assert window.grab().save(str(tmp_path / "history-backups.png"))

    history.restore()
    window.changes.apply()
    qtbot.waitUntil(lambda: etcd_value(private_etcd, key) == "v1-from-long-ago", timeout=10_000)

    history.include_backups.setChecked(False)
    shown = lambda: [history.list.item(i).text() for i in range(history.list.count())]  # noqa: E731
    qtbot.waitUntil(lambda: not any("from backup" in text for text in shown()), timeout=10_000)


def test_versions_in_encrypted_backups_show_once_an_identity_opens_them(
    qtbot, window, private_etcd, os_keyring, tmp_path, monkeypatch
):
    operator, team, team_file = operator_and_team(tmp_path)
    key = "old/level"
    private_etcd.etcdctl("put", key, "v1-for-the-team")
    with connect_etcd(private_etcd) as conn:
        # the team's backup holds v1, the operator's v2; etcd keeps v3 only
        team_backup = create_backup(
            conn,
            backup_location(),
            BackupOptions(prefix="old/", recipients=(str(team.to_public()),)),
        )
        conn.put(key, "v2-for-the-operator")
        create_backup(
            conn, backup_location(), BackupOptions(prefix="old/", recipients=(operator.public_key,))
        )
        private_etcd.etcdctl("compact", str(conn.put(key, "v3")))
    connect(qtbot, window, private_etcd.endpoint)
    history = window.history
    open_key(qtbot, window, key)
    window.tabs.setCurrentWidget(history)
    qtbot.waitUntil(lambda: "was compacted" in history.header.text(), timeout=10_000)
    shown = lambda: [history.list.item(i).text() for i in range(history.list.count())]  # noqa: E731

    history.include_backups.setChecked(True)
    qtbot.waitUntil(
        lambda: "1 encrypted backup not searched" in history.header.text(), timeout=30_000
    )
    assert any("v2-for-the-operator" in text for text in shown()), "the keyring's identity"
    assert not any("v1-for-the-team" in text for text in shown())
    assert "restoring from one offers to open an identity file" in history.header.text()
    assert window.grab().save(str(tmp_path / "history-encrypted-unsearched.png"))

    # as a restore from the team's backup asks for it: the file is opened, the restore declined
    monkeypatch.setattr(
        "etcdadmin.gui.history.backup_identities.QFileDialog.getOpenFileName",
        lambda *_args, **_kwargs: (str(team_file), ""),
    )
    backups = history.backups
    backups.refresh()
    qtbot.waitUntil(lambda: backups.table.rowCount() == 2, timeout=10_000)
    backups.table.selectRow(1)  # newest first: the team's is the older one
    selected = backups.selected()
    assert selected is not None and selected.id == team_backup.id
    assert backups.table.item(1, 0).toolTip() == f"{team_backup.id} (encrypted)"
    assert not backups.table.item(1, 0).icon().isNull(), "an encrypted backup shows the lock"
    assert window.grab().save(str(tmp_path / "history-encrypted-backups.png"))
    seen: list[str] = []
    answer_next_dialog("Open identity file", seen)
    answer_next_dialog("Cancel", seen)
    backups.restore()
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=30_000)
    assert etcd_value(private_etcd, key) == "v3", "declined: nothing was written"

    # the file opened for the restore opens the team's backup here too, without asking again
    qtbot.waitUntil(lambda: any("v1-for-the-team" in text for text in shown()), timeout=30_000)
    qtbot.waitUntil(lambda: "2 more from backups" in history.header.text(), timeout=10_000)
    assert "not searched" not in history.header.text()
