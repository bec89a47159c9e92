"""GUI tests: the real widgets, offscreen, against real etcd servers."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before Qt is imported: no display is needed, and QSettings (XDG_CONFIG_HOME on Linux) must
# not touch the user's own settings.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_CONFIG_HOME = tempfile.mkdtemp(prefix="etcdadmin-gui-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG_HOME
# Nor may staged changes kept for recovery land in the user's data directory.
_DATA_DIR = tempfile.mkdtemp(prefix="etcdadmin-gui-data-")
os.environ["ETCDADMIN_DATA_DIR"] = _DATA_DIR
# Both go with the test run, as tmp_path's do.
for _made in (_CONFIG_HOME, _DATA_DIR):
    atexit.register(shutil.rmtree, _made, ignore_errors=True)

from etcdadmin.gui.connections.profiles import ConnectionProfile  # noqa: E402
from etcdadmin.gui.mainwindow import MainWindow  # noqa: E402

# The README's pictures: regenerated with ETCDADMIN_SCREENSHOTS=resources/screenshots; by default
# a run writes them under build/ (ignored), so tests never dirty the work tree.
SCREENSHOTS = Path(
    os.environ.get("ETCDADMIN_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "build" / "screenshots"
).resolve()


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MainWindow]:
    # each test's staged changes are kept apart: one test's leftovers are not offered to the next
    monkeypatch.setenv("ETCDADMIN_DATA_DIR", str(tmp_path / "data"))
    win = MainWindow(sandbox_dir=tmp_path / "sandbox")
    qtbot.addWidget(win)
    win.resize(1400, 850)
    win.show()
    yield win
    win.changes.discard()  # a close with staged changes asks, and a test has nobody to answer
    win.close()


def connect(qtbot, win: MainWindow, endpoint: str, **profile) -> None:
    win.connect_profile(
        ConnectionProfile(name=profile.pop("name", "test"), endpoints=endpoint, **profile)
    )
    try:
        qtbot.waitUntil(lambda: "keys loaded" in win.statusBar().currentMessage(), timeout=20_000)
    except qtbot.TimeoutError:
        pytest.fail(
            f"no keys loaded in 20 s; the status bar says: {win.statusBar().currentMessage()!r}, "
            f"connection {win.status.connection_label.text()!r} state {win.status.state!r} "
            f"loading {win.status.loading!r} rows {win.model.rowCount()}"
        )
