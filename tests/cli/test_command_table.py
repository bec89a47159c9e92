"""Every command a CLI module defines is reachable: the group imports commands lazily from a
table (`etcdadmin.cli.main._COMMAND_MODULES`), so a command missing from it would vanish."""

from __future__ import annotations

import importlib
import pkgutil

import etcdadmin.cli
from etcdadmin.cli.main import _COMMAND_MODULES


def test_every_command_of_every_cli_module_is_in_the_lazy_table():
    defined: dict[str, str] = {}
    for info in pkgutil.iter_modules(etcdadmin.cli.__path__):
        module = importlib.import_module(f"etcdadmin.cli.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            defined[command.name] = info.name
    assert defined, "no command found: the test looks in the wrong place"
    assert defined == _COMMAND_MODULES
