"""The desktop client on three TLS members with auth on, connected as the command line connects
it (`etcdadmin --endpoints A,B,C --cacert ... --cert ... --key ...`): it keeps its view and
follows new keys when the member it talks to stops."""

from __future__ import annotations

import uuid

import pytest
from PySide6.QtCore import QSettings

from etcdadmin.gui.connections.profiles import ProfileStore
from etcdadmin.gui.mainwindow import MainWindow
from tests.stack.secure import DIRECTORY, SecureCluster


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A window whose profiles and last-used profile are its own: the connection this test
    saves must not become the one the next test's window opens."""
    monkeypatch.setenv("ETCDADMIN_DATA_DIR", str(tmp_path / "data"))
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    store = ProfileStore(tmp_path / "profiles.json", settings)
    win = MainWindow(store=store, sandbox_dir=tmp_path / "sandbox")
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def _shown(window, key: str) -> bool:
    return bool(window.model.find(key.encode()).isValid())


def test_the_client_on_three_members_keeps_its_tree_and_shows_a_key_written_after_its_member_stops(
    qtbot, window, secure_cluster: SecureCluster
):
    top = f"{DIRECTORY}/failover-{uuid.uuid4().hex[:6]}"
    secure_cluster.etcdctl("put", f"{top}/before", "1")
    root = secure_cluster.client("root")
    window.connect_endpoints(
        secure_cluster.endpoints,
        "secure",
        connection={
            "ca_file": str(secure_cluster.ca),
            "cert_file": str(root.cert),
            "key_file": str(root.key),
        },
    )
    qtbot.waitUntil(lambda: "keys loaded" in window.statusBar().currentMessage(), timeout=20_000)
    assert _shown(window, f"{top}/before")

    session = window.connections.session
    assert session is not None
    in_use = session.conn.endpoint_in_use
    assert in_use is not None
    stopped = secure_cluster.cluster.endpoints.index(in_use)
    secure_cluster.cluster.stop_member(stopped)
    try:
        secure_cluster.etcdctl("put", f"{top}/after", "2")
        qtbot.waitUntil(lambda: _shown(window, f"{top}/after"), timeout=30_000)
        assert _shown(window, f"{top}/before"), "the tree kept what it showed"
        assert session.conn.endpoint_in_use != in_use
    finally:
        secure_cluster.cluster.start_member(stopped)
