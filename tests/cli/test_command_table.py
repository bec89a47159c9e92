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


def test_every_backup_subcommand_kept_in_a_module_of_its_own_is_in_the_backup_lazy_table():
    from etcdadmin.cli.backup import _SUBCOMMAND_MODULES, backup

    for info in pkgutil.iter_modules(etcdadmin.cli.__path__):
        importlib.import_module(f"etcdadmin.cli.{info.name}")
    elsewhere = {
        name: command.callback.__module__.rpartition(".")[2]
        for name, command in backup.commands.items()
        if command.callback is not None and command.callback.__module__ != "etcdadmin.cli.backup"
    }
    assert elsewhere, "no backup subcommand found in another module: the test looks wrong"
    assert elsewhere == _SUBCOMMAND_MODULES
