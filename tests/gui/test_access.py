"""The Access panel and a permission-aware client, against real etcd with auth on.

Auth is never enabled on the session's shared etcd: these tests use the module's `auth_etcd`
(auth on from the start) or an etcd of their own (`private_etcd`), and check what the client
did with etcdctl.
"""

from __future__ import annotations

import uuid

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox, QWidget

from etcdadmin.core.access.teams import create_team
from etcdadmin.core.changes import SetValue
from etcdadmin.core.local.example import seed_example
from etcdadmin.gui.access.dialogs import PasswordDialog, RoleDialog, TeamDialog
from etcdadmin.gui.compare.transfer import stage_import
from etcdadmin.gui.mainwindow import MainWindow
from tests.gui.conftest import SCREENSHOTS, connect
from tests.gui.dialogs import answer_next_dialog
from tests.stack.access import ROOT_PASSWORD, secured_etcd

NEW_ROOT_PASSWORD = "root-pw-set-from-the-client"


def top_level_names(win: MainWindow) -> list[str]:
    model = win.model
    return [model.data(model.index(r, 0)) for r in range(model.rowCount())]


def press_ok(dialog: QWidget) -> None:
    buttons = dialog.findChild(QDialogButtonBox)
    assert buttons is not None
    buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def access_read(qtbot, win: MainWindow, auth_enabled: bool) -> None:
    """Wait until the Access panel shows auth as `auth_enabled`."""
    try:
        qtbot.waitUntil(
            lambda: (
                win.access.overview is not None and win.access.overview.auth_enabled is auth_enabled
            ),
            timeout=20_000,
        )
    except qtbot.TimeoutError:
        pytest.fail(f"the Access panel shows: {win.access.state.text()}")


def switch_auth(qtbot, win: MainWindow, on: bool, password: str) -> list[str]:
    """Press Enable (or Disable), say yes, type root's password, press OK."""
    seen: list[str] = []
    answer_next_dialog("Yes", seen)
    (win.access.enable if on else win.access.disable)()
    dialog = win.access.dialog
    assert isinstance(dialog, PasswordDialog)
    dialog.password.setText(password)
    if dialog.repeat is not None:
        dialog.repeat.setText(password)
    press_ok(dialog)
    return seen


@pytest.fixture
def own_profiles(monkeypatch: pytest.MonkeyPatch, tmp_path, os_keyring) -> None:
    """Profiles of the test's own (before the window opens), and the real keyring for the
    password the client keeps after enabling auth: nothing leaks into later tests' profiles."""
    monkeypatch.setenv("ETCDADMIN_CONFIG_DIR", str(tmp_path / "config"))


def test_enabling_auth_from_the_client_locks_no_one_out_and_round_trips(
    qtbot, own_profiles, window, private_etcd
):
    private_etcd.etcdctl("put", "app/http/addr", ":5000")
    connect(qtbot, window, private_etcd.endpoint)
    window.tabs.setCurrentWidget(window.access)
    access_read(qtbot, window, False)
    assert "Auth is OFF" in window.access.state.text()

    seen = switch_auth(qtbot, window, True, NEW_ROOT_PASSWORD)
    assert "Enable etcd auth?" in seen[0]
    # the client logs in as root and loads the tree again
    qtbot.waitUntil(
        lambda: window.session is not None and window.session.settings.user == "root",
        timeout=20_000,
    )
    qtbot.waitUntil(lambda: "keys loaded" in window.statusBar().currentMessage(), timeout=20_000)
    access_read(qtbot, window, True)
    assert "app" in top_level_names(window)
    refused = private_etcd.etcdctl("get", "app/http/addr", check=False)
    assert refused.returncode != 0  # auth is on: no anonymous reads
    as_root = private_etcd.etcdctl(f"--user=root:{NEW_ROOT_PASSWORD}", "user", "list")
    assert "root" in as_root.stdout.split()
    # the next start logs in too: the profile keeps root, the keyring its password
    kept = window.store.load("test")
    assert (kept.user, kept.password) == ("root", NEW_ROOT_PASSWORD)

    switch_auth(qtbot, window, False, NEW_ROOT_PASSWORD)
    access_read(qtbot, window, False)
    assert private_etcd.etcdctl("get", "app/http/addr", "--print-value-only").stdout == ":5000\n"

    # and once more: the profile now logs in as root, whose password is the one set before
    switch_auth(qtbot, window, True, NEW_ROOT_PASSWORD)
    access_read(qtbot, window, True)
    assert private_etcd.etcdctl("get", "app/http/addr", check=False).returncode != 0
    switch_auth(qtbot, window, False, NEW_ROOT_PASSWORD)
    access_read(qtbot, window, False)
    assert private_etcd.etcdctl("get", "app/http/addr", "--print-value-only").stdout == ":5000\n"


def test_a_new_team_made_in_one_dialog_has_the_roles_and_grants_etcdctl_shows(
    qtbot, window, tmp_path
):
    """On an etcd of its own, so that the README's picture shows only this test's names."""
    directory, team, operator, agent = "example-test", "registry-test", "alice", "registry-host-1"
    with secured_etcd(tmp_path / "etcd") as etcd:
        with etcd.connect() as root:
            seed_example(root)
            create_team(
                root,
                "registry-production",
                "example-production",
                operators=["bob"],
                passwords={"bob": "pw-bob"},
            )
        connect(qtbot, window, etcd.endpoint, user="root", password=ROOT_PASSWORD)
        window.tabs.setCurrentWidget(window.access)
        access_read(qtbot, window, True)
        window.tree.view.setCurrentIndex(window.model.find(directory.encode()))
        assert window.access.directory == f"{directory}/".encode()

        window.access.new_team()
        dialog = window.access.dialog
        assert isinstance(dialog, TeamDialog)
        assert dialog.directory.text() == f"{directory}/"  # the tree's directory by default
        dialog.name.setText(team)
        dialog.operators.setText(f"{operator}, bob")
        dialog.agents.setText(agent)
        # bob exists already: only the new users need a password
        assert set(dialog.passwords) == {operator, agent}
        dialog.passwords[operator].setText("pw-alice")
        dialog.passwords[agent].setText("pw-agent")
        press_ok(dialog)
        qtbot.waitUntil(
            lambda: (
                window.access.overview is not None
                and any(t.name == team for t in window.access.overview.teams)
            ),
            timeout=20_000,
        )

        operators = etcd.root("role", "get", f"{team}-operators").stdout
        assert "KV Read:" in operators and f"[{directory}/, {directory}0)" in operators
        agents = etcd.root("role", "get", f"{team}-agents").stdout
        assert f"[{directory}/, {directory}0)" in agents.split("KV Write:")[0]
        assert f"{directory}/" not in agents.split("KV Write:")[1]
        assert f"{team}-operators" in etcd.root("user", "get", operator).stdout
        assert f"{team}-operators" in etcd.root("user", "get", "bob").stdout
        assert f"{team}-agents" in etcd.root("user", "get", agent).stdout
        # the new operator logs in and reads the directory with etcdctl
        read = etcd.etcdctl_as(operator, "pw-alice", "get", f"{directory}/http/addr")
        assert ":5000" in read.stdout

        window.access.who_can_reach()
        reach = window.access.reach
        qtbot.waitUntil(lambda: reach.rowCount() >= 4, timeout=10_000)
        reaching = {reach.item(r, 0).text() for r in range(reach.rowCount())}
        assert reaching == {"root", operator, "bob", agent}
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert window.grab().save(str(SCREENSHOTS / "access.png"))
        window.disconnect_session()


@pytest.fixture
def two_teams(auth_etcd):
    """Teams a and b with an operator and an agent (read-only) each; one key in each directory."""
    tag = uuid.uuid4().hex[:6]
    names = {"tag": tag, "dir_a": f"team-a-{tag}", "dir_b": f"team-b-{tag}"}
    with auth_etcd.connect() as root:
        for side in ("a", "b"):
            create_team(
                root,
                f"{side}{tag}",
                names[f"dir_{side}"],
                operators=[f"op-{side}-{tag}"],
                agents=[f"agent-{side}-{tag}"],
                passwords={f"op-{side}-{tag}": "pw-op", f"agent-{side}-{tag}": "pw-agent"},
            )
    auth_etcd.root("put", f"{names['dir_a']}/http/addr", ":5000")
    auth_etcd.root("put", f"{names['dir_b']}/http/addr", ":6000")
    return names


def test_a_team_operator_sees_only_its_directory_and_cannot_stage_a_write_to_another_team(
    qtbot, window, auth_etcd, two_teams, tmp_path
):
    tag, dir_a, dir_b = two_teams["tag"], two_teams["dir_a"], two_teams["dir_b"]
    operator = f"op-a-{tag}"
    connect(qtbot, window, auth_etcd.endpoint, user=operator, password="pw-op")
    assert top_level_names(window) == [dir_a]  # the whole key space is refused: no failure
    qtbot.waitUntil(lambda: window.changes.permits is not None)
    window.tree.view.setCurrentIndex(window.model.find(dir_a.encode()))
    assert window.actions_by_name["newKeyAction"].isEnabled()

    # a paste from a file into team b: etcd refuses even reading it, and says who lacks what
    path = tmp_path / "b.yml"
    path.write_text("http:\n  addr: ':7000'\nlog:\n  level: debug\n")
    session = window.session
    assert session is not None
    stage_import(window, session, path, f"{dir_b}/".encode(), window.changes.stage, print)

    def refusal_shown() -> bool:
        box = window.findChild(QMessageBox, "errorDialog")
        return box is not None and box.isVisible()

    qtbot.waitUntil(refusal_shown, timeout=10_000)
    box = window.findChild(QMessageBox, "errorDialog")
    assert f"user '{operator}' lacks read on {dir_b}/" in box.text()
    assert "Traceback" not in box.text()
    box.close()
    # a change staged by other means is refused before it reaches etcd, with the same words
    window.changes.stage(SetValue(f"{dir_b}/log/level".encode(), b"debug", 0))
    assert not len(window.changes.changes)
    assert f"user '{operator}' lacks read-write on {dir_b}/" in window.changes.problem.text()
    assert "lacks read-write" in window.statusBar().currentMessage()
    keys_b = auth_etcd.root("get", f"{dir_b}/", "--prefix", "--keys-only").stdout.split()
    assert keys_b == [f"{dir_b}/http/addr"]  # nothing was written

    # in its own directory the operator edits and applies as anyone would, and the tree
    # follows what others write there
    window.tree.select_key(f"{dir_a}/http/addr".encode())
    qtbot.waitUntil(lambda: window.editor.current is not None)
    assert window.editor.stage_button.isEnabled()
    window.editor.text.setPlainText(":5001")
    window.editor.stage()
    window.changes.apply()
    qtbot.waitUntil(lambda: not len(window.changes.changes), timeout=10_000)
    value = auth_etcd.root("get", f"{dir_a}/http/addr", "--print-value-only").stdout
    assert value == ":5001\n"
    auth_etcd.root("put", f"{dir_a}/log/level", "info")
    qtbot.waitUntil(lambda: window.model.find(f"{dir_a}/log/level".encode()).isValid())


def test_a_user_who_may_only_read_cannot_stage_edits(qtbot, window, auth_etcd, two_teams):
    tag, dir_a = two_teams["tag"], two_teams["dir_a"]
    reader = f"agent-a-{tag}"
    connect(qtbot, window, auth_etcd.endpoint, user=reader, password="pw-agent")
    assert top_level_names(window) == [dir_a]
    window.tree.select_key(f"{dir_a}/http/addr".encode())
    qtbot.waitUntil(lambda: window.editor.current is not None and window.editor.permits is not None)
    assert window.editor.text.toPlainText() == ":5000"  # it may read the value
    editor = window.editor
    assert not editor.stage_button.isEnabled()
    assert not editor.delete_button.isEnabled()
    assert not editor.make_secret_button.isEnabled()
    assert editor.text.isReadOnly()
    assert f"user '{reader}' lacks read-write on {dir_a}/" in editor.read_only_note.text()
    editor.stage()  # the shortcut, pressed anyway
    assert not len(window.changes.changes)
    window.tree.view.setCurrentIndex(window.model.find(dir_a.encode()))
    assert not window.actions_by_name["newKeyAction"].isEnabled()
    assert not window.actions_by_name["importAction"].isEnabled()
    # the Access panel shows what the user holds, and offers no change
    window.tabs.setCurrentWidget(window.access)
    access_read(qtbot, window, True)
    assert "does not hold the root role" in window.access.state.text()
    assert not window.access.team_button.isEnabled()
    assert not window.access.enable_button.isEnabled()


def test_on_a_production_profile_an_access_change_is_asked_about_first(qtbot, window, auth_etcd):
    role = f"role-{uuid.uuid4().hex[:6]}"
    connect(qtbot, window, auth_etcd.endpoint, user="root", password=ROOT_PASSWORD, production=True)
    access_read(qtbot, window, True)
    window.access.add_role()
    dialog = window.access.dialog
    assert isinstance(dialog, RoleDialog)
    dialog.name.setText(role)
    seen: list[str] = []
    answer_next_dialog("No", seen)
    press_ok(dialog)
    assert "PRODUCTION" in seen[0] and role in seen[0]
    assert role not in auth_etcd.root("role", "list").stdout.split()

    window.access.add_role()
    dialog = window.access.dialog
    assert isinstance(dialog, RoleDialog)
    dialog.name.setText(role)
    answer_next_dialog("Yes", seen)
    press_ok(dialog)
    qtbot.waitUntil(
        lambda: (
            window.access.overview is not None
            and role in [r.name for r in window.access.overview.roles]
        ),
        timeout=10_000,
    )
    assert role in auth_etcd.root("role", "list").stdout.split()
