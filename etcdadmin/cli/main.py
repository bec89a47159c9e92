"""`etcdadmin`: with no subcommand the desktop window, with one the command line.

This module holds the group, its global options, and the one place where exceptions become an
exit code and one line on stderr (`_exit_for`). Nothing here imports PySide6: the window is
imported only when it is opened, so the CLI runs on hosts without the `gui` extra. Nor does it
import the commands: each module of `_COMMAND_MODULES` is imported when one of its commands
runs (click's lazily loaded subcommands).
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import sys
import threading
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from etcdadmin.cli import exits
from etcdadmin.cli.deferred import deferred
from etcdadmin.cli.grpclog import grpc_quiet

# grpc and protobuf are imported here (see `deferred`), gRPC's own logging silenced unless the
# command line asks for debug output: errors are one line each (see `grpclog`)
with grpc_quiet(sys.argv[1:]), deferred():
    from etcdadmin.cli.connection import CliSession, connection_options, resolve_session
from etcdadmin.core.errors import (
    ConflictError,
    ConnectionSettingsError,
    EtcdAdminError,
    EtcdError,
    MappingError,
    RevisionCompacted,
)

log = logging.getLogger(__name__)


# Command name -> the module (in etcdadmin.cli) whose COMMANDS holds it. Imported when the
# command runs: `export` of 100,000 keys spent 0.42 s of CPU importing every command's modules
# (the staged changes, the agents' records, the plan display), 0.29 s importing its own.
_COMMAND_MODULES = {
    "get": "keys",
    "put": "keys",
    "del": "keys",
    "ls": "directories",
    "diff": "directories",
    "copy": "directories",
    "export": "export",
    "history": "history",
    "restore": "history",
    "agents": "status",
    "cluster": "status",
    "apply": "apply",
    "secret": "secrets",
    "keys": "recipients",
    "identity": "identity",
    "access": "access",
    "certs": "certs",
    "backup": "backup",
    "release": "releases",
}


def _exit_for(exc: Exception) -> exits.CliError:
    """The exit code and message for an exception a command let through."""
    # Imported here: only a failing command needs them (the changes package, and the backup
    # package, which imports swiftclient).
    from etcdadmin.core.backup.errors import (
        BackupDamaged,
        BackupNotFound,
        LocationAuthFailed,
        LocationUnreachable,
    )
    from etcdadmin.core.changes import InvalidChange, TooManyOperations

    if isinstance(exc, ConflictError):
        return exits.Conflict(str(exc))
    if isinstance(exc, BackupNotFound):
        return exits.NotFound(str(exc))
    if isinstance(exc, BackupDamaged):
        return exits.Different(str(exc))
    if isinstance(exc, LocationUnreachable | LocationAuthFailed):
        return exits.Unreachable(str(exc))
    if isinstance(
        exc,
        RevisionCompacted
        | MappingError
        | InvalidChange
        | TooManyOperations
        | ConnectionSettingsError,
    ):
        return exits.Refused(str(exc))
    if isinstance(exc, EtcdError):
        # unreachable, credentials refused, permission denied, TLS, or a request refused
        return exits.EtcdFailure(str(exc))
    if isinstance(exc, EtcdAdminError):
        return exits.Refused(str(exc))
    log.debug("unexpected error", exc_info=exc)
    return exits.Bug(
        f"internal error, a bug in etcdadmin: {type(exc).__name__}: {exc} "
        "(run with --log-level debug for the traceback, and report it)"
    )


class EtcdAdminGroup(click.Group):
    """Click's group, turning the project's exceptions into exit codes (see `exits`), with its
    commands imported on first use (`_COMMAND_MODULES`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMAND_MODULES:
            module = importlib.import_module(f"etcdadmin.cli.{_COMMAND_MODULES[cmd_name]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit):
            raise
        except click.Abort:  # Ctrl-C or the end of input at a question, asked before any write
            raise exits.Interrupted("stopped at the question: nothing was written") from None
        except KeyboardInterrupt:  # not 1, which says "conflict or differences" here
            raise exits.Interrupted("interrupted") from None
        except BrokenPipeError:
            raise click.exceptions.Exit(exits.CLOSED_PIPE) from None
        except Exception as exc:
            raise _exit_for(exc) from None


@click.group(cls=EtcdAdminGroup, invoke_without_command=True)
@connection_options
@click.option("--read-only", is_flag=True, help="never write (the window, and every command)")
@click.option("--name", default="", help="the window's name for the --endpoints connection")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="WARNING",
    show_default=True,
)
@click.version_option(package_name="etcdadmin")
@click.pass_context
def cli(ctx: click.Context, read_only: bool, name: str, log_level: str, **params: Any) -> None:
    """Browse and edit the configuration kept in etcd.

    Without a command, open the desktop window (needs the `gui` extra). Connection options go
    before the command: etcdadmin --endpoints etcd1.example.com:2379 get registry-test/http/addr
    """
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if ctx.invoked_subcommand is None:
        # As before the CLI existed: --endpoints (or ETCDADMIN_ENDPOINTS) connects at once,
        # otherwise the window offers the saved profiles.
        given = any(
            ctx.get_parameter_source(option) not in (None, ParameterSource.DEFAULT)
            for option in ("endpoints", "profile")
        )
        from etcdadmin.app import run_window
        from etcdadmin.cli.deferred import load_now

        load_now()  # before the window's threads: see `deferred`

        if not given:
            ctx.exit(run_window(None, name, read_only))
        # The same resolution as every command's: TLS files, user and password (options,
        # --profile, ETCDADMIN_*) reach the window too, not the endpoints alone.
        profile = resolve_session(ctx, params, read_only).profile
        connection = {
            field: getattr(profile, field)
            for field in ("ca_file", "cert_file", "key_file", "user", "password")
            if getattr(profile, field)
        }
        window_name = name or params.get("profile") or ""
        ctx.exit(run_window(profile.endpoints, window_name, read_only, connection))
    session: CliSession = resolve_session(ctx, params, read_only)
    ctx.obj = session
    ctx.call_on_close(session.close)


def main(argv: list[str] | None = None) -> int:
    """The `etcdadmin` entry point (and `python -m etcdadmin`)."""
    try:
        cli.main(args=argv, prog_name="etcdadmin", standalone_mode=True)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return exits.OK


def run() -> NoReturn:
    """The `etcdadmin` command (and `python -m etcdadmin`): `main`, then out of the process.

    Tearing the interpreter down (every module of grpc, protobuf, click and PyYAML released one
    by one) took 0.10-0.18 s of the 0.8-1.2 s a short command such as `ls` takes (2 cores,
    CPython 3.11), for a process that has nothing left to release. So the process ends as a
    forked `multiprocessing` child does: the exit handlers run (logging's flush among them),
    the output is flushed, then `os._exit`. Not after the window (Qt writes its settings as its
    objects go), nor while another thread still runs: those exit the usual way.
    """
    code = main()
    others = [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon and thread.is_alive()
    ]
    if others or "PySide6" in sys.modules:
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe (Python's own exit would say 120)
        os._exit(code or exits.CLOSED_PIPE)
    os._exit(code)


if __name__ == "__main__":
    run()
