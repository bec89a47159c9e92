"""`etcdadmin`: the desktop client (`python -m etcdadmin` too)."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="etcdadmin", description="Browse and edit etcd.")
    parser.add_argument(
        "--endpoints", help="connect to this etcd (host:port, or a comma list) instead of a profile"
    )
    parser.add_argument("--name", default="", help="a name for that connection")
    parser.add_argument("--read-only", action="store_true", help="never write")
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

    def log_uncaught(kind: type[BaseException], exc: BaseException, tb: object) -> None:
        # an exception escaping a Qt slot must not vanish: log it (code, not values)
        logging.getLogger("etcdadmin").error("uncaught error", exc_info=(kind, exc, tb))  # type: ignore[arg-type]

    sys.excepthook = log_uncaught
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("etcdadmin")
    app.setOrganizationName("etcdadmin")
    window = MainWindow()
    window.show()
    if args.endpoints:
        from etcdadmin.gui.connections.profiles import ConnectionProfile

        window.connect_profile(
            ConnectionProfile(
                name=args.name or args.endpoints, endpoints=args.endpoints, read_only=args.read_only
            )
        )
    else:
        window.start()
    return int(app.exec())
