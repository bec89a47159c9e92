"""Run as its own process by the recovery test: open the window, connect, stage two changes
(one of a secret key), say "staged", then wait to be killed."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from etcdadmin.core.changes import SetValue
from etcdadmin.gui.connections.profiles import ConnectionProfile
from etcdadmin.gui.mainwindow import MainWindow


def main(endpoint: str, profile: str, key: str, secret_key: str) -> int:
    app = QApplication(sys.argv[:1])
    window = MainWindow()
    window.show()
    window.connect_profile(ConnectionProfile(name=profile, endpoints=endpoint))
    session = window.session
    assert session is not None
    for name, value in ((key, b"debug"), (secret_key, b"a-new-password")):
        kv = session.conn.get(name)
        window.changes.stage(SetValue(name.encode(), value, kv.mod_revision if kv else 0))
    print("staged", flush=True)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:5]))
