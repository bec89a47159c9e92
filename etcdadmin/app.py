"""The desktop window, opened by `etcdadmin` without a subcommand (see `etcdadmin.cli.main`).

PySide6 is imported only here and only when the window opens, so the command line runs on
hosts without the `gui` extra.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping


def run_window(
    endpoints: str | None,
    name: str = "",
    read_only: bool = False,
    connection: Mapping[str, str] | None = None,
) -> int:
    """Open the window; with `endpoints`, connect to them at once instead of a saved profile,
    with `connection`'s TLS files, user and password (profile field names)."""
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError:
        print(
            "etcdadmin needs PySide6 for its window: pip install 'etcdadmin[gui]' "
            "(the command line works without it: etcdadmin --help)",
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
    if endpoints:
        window.connect_endpoints(endpoints, name, read_only, connection)
    else:
        window.start()
    return int(app.exec())


def main(argv: list[str] | None = None) -> int:
    """Kept for callers of the former entry point: the same as `etcdadmin.cli.main.main`."""
    from etcdadmin.cli.main import main as cli_main

    return cli_main(argv)
