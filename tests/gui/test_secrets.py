"""Secrets in the desktop client: marked, sealed before staging, masked everywhere, revealed
only on request. Real window (offscreen), real etcd read back with etcdctl, the real OS
keyring (gnome-keyring on a private bus) holding the operator's identity."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QWidget,
)

from etcdadmin.core.changes import SetValue
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.secrets.envelope import is_envelope, open_envelope
from etcdadmin.core.secrets.identities import load_key_files, new_agent_key, write_key_pair
from etcdadmin.core.secrets.recipients import Recipient, add_recipient
from etcdadmin.gui.editor.newkey import NewKeyDialog, stage_from_dialog
from etcdadmin.gui.secrets import field
from etcdadmin.gui.tree.model import SECRET_MARK
from tests.gui.conftest import SCREENSHOTS, connect
from tests.gui.test_client import etcd_value, open_key, unique

ARMOR = "BEGIN AGE ENCRYPTED FILE"


@pytest.fixture
def agent_key(tmp_path: Path) -> object:
    """The private key of the directory's agent: what a user would open a stored value with."""
    key = new_agent_key("ed25519")
    write_key_pair(tmp_path / "id_ed25519", key)
    return key


def team_with_agent(etcd_server, agent_key, prefix: str) -> str:
    team = unique(prefix)
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        add_recipient(conn, team, Recipient("agent-1", agent_key.public_key))
    return team


def agent_opens(tmp_path: Path, key: str, stored: str) -> bytes:
    identity = load_key_files(str(tmp_path / "id_ed25519"))[0].identities[0]
    return open_envelope(key.encode(), stored.encode(), [identity])


def pending_rows(win) -> list[str]:
    return [win.changes.list.item(r).text() for r in range(win.changes.list.count())]


def staged_values(win) -> dict[bytes, bytes]:
    return {c.key: c.value for c in win.changes.changes if isinstance(c, SetValue)}


def model_texts(model: QAbstractItemModel, parent: QModelIndex | None = None) -> list[str]:
    """Every DisplayRole text of the rows a model has listed (no fetching), all columns."""
    parent = parent or QModelIndex()
    try:
        columns = model.columnCount(parent)
    except TypeError:  # a list model's columnCount is private in PySide6: it has one
        columns = 1
    texts = []
    for row in range(model.rowCount(parent)):
        for column in range(columns):
            value = model.data(model.index(row, column, parent), Qt.ItemDataRole.DisplayRole)
            if value is not None:
                texts.append(str(value))
        texts += model_texts(model, model.index(row, 0, parent))
    return texts


def visible_texts(root: QWidget) -> list[str]:
    """Everything the window shows in words: labels, line and text edits, item views."""
    texts: list[str] = []
    for label in root.findChildren(QLabel):
        if label.isVisible():
            texts.append(label.text())
    for edit in root.findChildren(QLineEdit):
        if edit.isVisible():
            texts.append(edit.text())
    for view in root.findChildren(QPlainTextEdit):
        if view.isVisible():
            texts.append(view.toPlainText())
    for item_view in root.findChildren(QAbstractItemView):
        if item_view.isVisible() and item_view.model() is not None:
            texts += model_texts(item_view.model())
    return texts


def expand_to(qtbot, win, key: str) -> QModelIndex:
    win.tree.view.expandRecursively(win.model.find(key.rsplit("/", 1)[0].encode()))
    index = win.model.find(key.encode())
    assert index.isValid()
    return index


def test_new_and_existing_keys_made_secret_reach_etcd_only_as_ciphertext_and_show_masked(
    qtbot, window, private_etcd, os_keyring, agent_key, tmp_path
):
    etcd_server = private_etcd  # a tree of this test's keys only: its picture is the README's
    team = team_with_agent(etcd_server, agent_key, "secrets")
    existing, new = f"{team}/db/password", f"{team}/http/secret"
    etcd_server.etcdctl("put", existing, "existing-plain-pw")
    etcd_server.etcdctl("put", f"{team}/http/addr", ":5000")
    connect(qtbot, window, etcd_server.endpoint)

    open_key(qtbot, window, existing)
    window.make_secret()
    qtbot.waitUntil(lambda: pending_rows(window) == [f"set {existing}"], timeout=20_000)
    dialog = NewKeyDialog(window, f"{team}/".encode())
    dialog.key.setText(new)
    dialog.value.setPlainText("brand-new-s3cret")
    dialog.secret.setChecked(True)  # what was typed moves to the masked field
    assert dialog.value.toPlainText() == "" and dialog.secret_value.text() == "brand-new-s3cret"
    stage_from_dialog(window, window.session, dialog, window.changes.stage)
    qtbot.waitUntil(lambda: len(pending_rows(window)) == 2, timeout=20_000)

    plaintexts = ("existing-plain-pw", "brand-new-s3cret")
    assert all(is_envelope(value) for value in staged_values(window).values())
    qtbot.waitUntil(lambda: new in window.changes.diff.toPlainText(), timeout=10_000)
    shown = window.changes.diff.toPlainText() + "\n".join(pending_rows(window))
    assert not any(p in shown for p in plaintexts), "the pending diff holds no plaintext"
    kept = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert not any(p.encode() in kept for p in plaintexts), "nor does the recovery file"

    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    for key, plaintext in ((existing, "existing-plain-pw"), (new, "brand-new-s3cret")):
        stored = etcd_value(etcd_server, key)
        assert ARMOR in stored and plaintext not in stored
        assert agent_opens(tmp_path, key, stored) == plaintext.encode(), "the agent reads it"

    index = expand_to(qtbot, window, existing)
    mark = window.model.index(index.row(), 1, index.parent())
    qtbot.waitUntil(lambda: window.model.data(mark) == SECRET_MARK, timeout=10_000)
    new_index = expand_to(qtbot, window, new)
    new_mark = window.model.index(new_index.row(), 1, new_index.parent())
    qtbot.waitUntil(lambda: window.model.data(new_mark) == SECRET_MARK, timeout=10_000)
    lock = window.model.icons["secret"].cacheKey()
    assert window.model.data(index, Qt.ItemDataRole.DecorationRole).cacheKey() == lock
    addr = window.model.find(f"{team}/http/addr".encode())
    assert window.model.data(window.model.index(addr.row(), 1, addr.parent())) == ""

    open_key(qtbot, window, existing)
    editor = window.editor
    assert editor.secret.isVisible() and not editor.text.isVisible()
    assert editor.text.toPlainText() == "" and editor.secret.new_value.text() == ""
    assert "sha256:" in editor.secret.summary.text()
    assert not editor.format.isEnabled() and not editor.make_secret_button.isEnabled()

    picture = tmp_path / "secret-in-tree.png"
    assert window.grab().save(str(picture))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "secrets.png"))
    texts = "\n".join(visible_texts(window))
    assert SECRET_MARK in texts and existing.rsplit("/", 1)[1] in texts
    for plaintext in plaintexts:
        assert plaintext not in texts
    assert ARMOR not in texts, "not even the ciphertext is shown"


def test_reveal_hides_again_and_a_copied_secret_leaves_the_clipboard(
    qtbot, window, etcd_server, os_keyring, agent_key, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)  # the client's log, at its most talkative
    monkeypatch.setattr(field, "REVEAL_SECONDS", 0.5)
    monkeypatch.setattr(field, "CLIPBOARD_SECONDS", 0.5)
    team = team_with_agent(etcd_server, agent_key, "reveal")
    key = f"{team}/token"
    etcd_server.etcdctl("put", key, "tok-123-plain")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.make_secret()
    qtbot.waitUntil(lambda: len(pending_rows(window)) == 1, timeout=20_000)
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    qtbot.waitUntil(lambda: window.editor.secret.isVisible(), timeout=10_000)
    secret = window.editor.secret
    assert not secret.revealed.isVisible()

    secret.reveal_button.click()
    qtbot.waitUntil(lambda: secret.revealed.isVisible(), timeout=10_000)
    assert secret.revealed.text() == "tok-123-plain"
    qtbot.waitUntil(lambda: not secret.revealed.isVisible(), timeout=5000)
    assert secret.revealed.text() == "", "hidden means gone from the widget too"

    clipboard = QGuiApplication.clipboard()
    secret.copy_button.click()
    qtbot.waitUntil(lambda: clipboard.text() == "tok-123-plain", timeout=10_000)
    qtbot.waitUntil(lambda: clipboard.text() == "", timeout=5000)

    secret.copy_button.click()
    qtbot.waitUntil(lambda: clipboard.text() == "tok-123-plain", timeout=10_000)
    clipboard.setText("something of my own")
    with pytest.raises(qtbot.TimeoutError):
        qtbot.waitUntil(lambda: clipboard.text() != "something of my own", timeout=1500)

    # a new value typed blind is sealed on staging and reaches the agent
    secret.new_value.setText("tok-456-new")
    window.editor.stage()
    qtbot.waitUntil(lambda: len(pending_rows(window)) == 1, timeout=20_000)
    assert secret.new_value.text() == ""
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    stored = etcd_value(etcd_server, key)
    assert "tok-456-new" not in stored
    assert agent_opens(tmp_path, key, stored) == b"tok-456-new"

    # searching values finds neither the value nor the ciphertext of a secret
    window.tree.view.setCurrentIndex(window.model.find(team.encode()))
    window.tree.in_values.setChecked(True)
    status = window.tree.search_status
    for needle in ("tok-456", "AGE ENCRYPTED"):
        window.tree.search.setText("")  # hides the last search's status line
        window.tree.search.setText(needle)
        qtbot.waitUntil(
            lambda: status.isVisible() and status.text().startswith("0 values"), timeout=10_000
        )
        assert window.tree.results.count() == 0

    # revealed, copied and typed: none of it reached the client's log
    assert caplog.records, "the client logged nothing: the check below would prove nothing"
    for plaintext in ("tok-123-plain", "tok-456-new"):
        assert plaintext not in caplog.text


def test_history_and_the_pending_diff_never_show_a_secret(
    qtbot, window, private_etcd, os_keyring, agent_key
):
    etcd_server = private_etcd  # as above: pictures for the README
    team = team_with_agent(etcd_server, agent_key, "history")
    key = f"{team}/storage/password"
    etcd_server.etcdctl("put", key, "first-plain")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.make_secret()
    qtbot.waitUntil(lambda: len(pending_rows(window)) == 1, timeout=20_000)
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    qtbot.waitUntil(lambda: window.editor.is_secret, timeout=10_000)
    window.editor.secret.new_value.setText("second-secret")
    window.editor.stage()
    qtbot.waitUntil(lambda: len(pending_rows(window)) == 1, timeout=20_000)
    qtbot.waitUntil(lambda: key in window.changes.diff.toPlainText(), timeout=10_000)
    assert "second-secret" not in window.changes.diff.toPlainText()
    assert re.search(
        r"secret changed \(sha256:\w{16} -> sha256:\w{16}\)", window.changes.diff.toPlainText()
    ), "versions told apart"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "secret-pending.png"))
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()

    window.tabs.setCurrentWidget(window.history)
    history = window.history
    qtbot.waitUntil(lambda: history.list.count() == 3, timeout=10_000)
    rows = [history.list.item(r).text() for r in range(history.list.count())]
    assert sum("secret sha256:" in row for row in rows) == 2, rows
    for row in range(history.list.count()):
        history.list.setCurrentRow(row)
        shown = history.diff.toPlainText()
        assert "second-secret" not in shown
    history.list.setCurrentRow(1)  # the plain value before "Make secret", against now
    assert "first-plain" not in history.diff.toPlainText()
    assert window.grab().save(str(SCREENSHOTS / "secret-history.png"))
    texts = "\n".join(visible_texts(window))
    assert "second-secret" not in texts and "first-plain" not in texts


def test_a_directory_without_recipients_says_to_add_a_key_first(
    qtbot, window, etcd_server, os_keyring
):
    key = f"{unique('nobody')}/password"
    etcd_server.etcdctl("put", key, "plain")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.make_secret()
    qtbot.waitUntil(lambda: "no recipients" in window.editor.error.text(), timeout=20_000)
    assert "keys new" in window.editor.error.text()
    assert pending_rows(window) == [], "nothing staged, not even in plain text"


def test_with_no_keyring_the_message_names_what_to_install(
    qtbot, window, etcd_server, os_keyring, agent_key, tmp_path, monkeypatch
):
    import keyring

    keyring.get_keyring()  # the Secret Service backend, chosen while the keyring ran
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    team = team_with_agent(etcd_server, agent_key, "nokeyring")
    key = f"{team}/password"
    etcd_server.etcdctl("put", key, "plain-value")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.make_secret()
    qtbot.waitUntil(lambda: "keyring" in window.editor.error.text(), timeout=20_000)
    assert "gnome-keyring" in window.editor.error.text()
    assert pending_rows(window) == [], "never a plaintext fallback"
    assert etcd_value(etcd_server, key) == "plain-value"


def test_import_encrypts_the_ticked_keys_and_secret_names_are_ticked_already(
    qtbot, window, etcd_server, os_keyring, agent_key, tmp_path
):
    from etcdadmin.gui.compare.transfer import stage_import
    from etcdadmin.gui.secrets.importing import ImportSecretsDialog

    team = team_with_agent(etcd_server, agent_key, "import")
    source = tmp_path / "config.yml"
    source.write_text("http:\n  addr: ':5000'\nstorage:\n  swift:\n    password: imp-pw\n")
    connect(qtbot, window, etcd_server.endpoint)
    stage_import(
        window, window.session, source, f"{team}/".encode(), window.changes.stage, lambda _: None
    )
    found: list[ImportSecretsDialog] = []
    qtbot.waitUntil(
        lambda: bool(found.extend(window.findChildren(ImportSecretsDialog)) or found),
        timeout=10_000,
    )
    dialog = found[0]
    ticks = {
        dialog.list.item(r).text(): dialog.list.item(r).checkState()
        for r in range(dialog.list.count())
    }
    assert ticks == {
        "http/addr": Qt.CheckState.Unchecked,
        "storage/swift/password": Qt.CheckState.Checked,
    }
    dialog.findChild(QListWidget)  # the list the operator ticks
    dialog._ok()
    qtbot.waitUntil(lambda: len(pending_rows(window)) == 2, timeout=20_000)
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_value(etcd_server, f"{team}/http/addr") == ":5000"
    stored = etcd_value(etcd_server, f"{team}/storage/swift/password")
    assert ARMOR in stored and "imp-pw" not in stored
    assert agent_opens(tmp_path, f"{team}/storage/swift/password", stored) == b"imp-pw"


def test_compare_shows_fingerprints_and_a_copied_secret_is_sealed_for_its_new_key(
    qtbot, window, etcd_server, os_keyring, agent_key, tmp_path
):
    from etcdadmin.gui.compare.dialog import CompareDialog

    left = team_with_agent(etcd_server, agent_key, "cmp-test")
    right = team_with_agent(etcd_server, agent_key, "cmp-prod")
    key = f"{left}/http/secret"
    etcd_server.etcdctl("put", key, "cmp-plain-secret")
    etcd_server.etcdctl("put", f"{right}/http/secret", "old")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, key)
    window.make_secret()
    qtbot.waitUntil(lambda: len(pending_rows(window)) == 1, timeout=20_000)
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()

    window.tree.view.setCurrentIndex(window.model.find(left.encode()))
    window.compare()
    dialog = window.findChild(CompareDialog)
    dialog.right.setCurrentText(f"{right}/")
    dialog.compare()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=10_000)
    cells = [dialog.table.item(0, column).text() for column in range(4)]
    assert cells[1].startswith("secret (sha256:") and "hidden" in cells[2]
    assert dialog.grab().save(str(tmp_path / "compare.png"))
    texts = "\n".join(visible_texts(dialog))
    assert "cmp-plain-secret" not in texts and ARMOR not in texts

    dialog.table.selectRow(0)
    dialog.copy_selected(to_right=True)
    qtbot.waitUntil(lambda: len(pending_rows(window)) == 1, timeout=20_000)
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    stored = etcd_value(etcd_server, f"{right}/http/secret")
    assert stored != etcd_value(etcd_server, key), "sealed anew, not the same ciphertext"
    assert agent_opens(tmp_path, f"{right}/http/secret", stored) == b"cmp-plain-secret"


def test_a_renamed_secret_and_a_copied_directory_are_sealed_for_their_new_keys(
    qtbot, window, etcd_server, os_keyring, agent_key, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QInputDialog

    from etcdadmin.gui.compare.dialog import CompareDialog

    team = team_with_agent(etcd_server, agent_key, "move")
    old, renamed = f"{team}/a/password", f"{team}/a/db-password"
    etcd_server.etcdctl("put", old, "moved-pw")
    etcd_server.etcdctl("put", f"{team}/a/host", "db.internal")
    connect(qtbot, window, etcd_server.endpoint)
    open_key(qtbot, window, old)
    window.make_secret()
    qtbot.waitUntil(lambda: len(pending_rows(window)) == 1, timeout=20_000)
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    qtbot.waitUntil(lambda: window.editor.is_secret, timeout=10_000)

    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: (renamed, True))
    window.rename_key()
    qtbot.waitUntil(
        lambda: pending_rows(window) == [f"create {renamed}", f"delete {old}"], timeout=20_000
    )
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_value(etcd_server, old) is None
    assert agent_opens(tmp_path, renamed, etcd_value(etcd_server, renamed)) == b"moved-pw"

    copy = f"{team}/b"
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: (copy, True))
    window.tree.view.setCurrentIndex(window.model.find(f"{team}/a".encode()))
    window.compare()
    dialog = window.findChild(CompareDialog)
    dialog.copy_directory()
    qtbot.waitUntil(lambda: len(pending_rows(window)) == 2, timeout=20_000)
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_value(etcd_server, f"{copy}/host") == "db.internal"
    copied = etcd_value(etcd_server, f"{copy}/db-password")
    assert agent_opens(tmp_path, f"{copy}/db-password", copied) == b"moved-pw"
