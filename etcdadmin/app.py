"""`etcdadmin`: the desktop client (`python -m etcdadmin` too)."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="etcdadmin", description="Browse and edit etcd.")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError:
        print(
            "etcdadmin needs PySide6 for its window: pip install 'etcdadmin[gui]'",
            file=sys.stderr,
        )
        return 2
    from etcdadmin.gui.mainwindow import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("etcdadmin")
    app.setOrganizationName("etcdadmin")
    window = MainWindow()
    window.show()
    window.start()
    return int(app.exec())
