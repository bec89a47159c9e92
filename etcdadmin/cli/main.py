"""`etcdadmin`: with no subcommand the desktop window, with one the command line.

This module holds the group, its global options, and the one place where exceptions become an
exit code and one line on stderr (`_exit_for`). Nothing here imports PySide6: the window is
imported only when it is opened, so the CLI runs on hosts without the `gui` extra.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from click.core import ParameterSource

from etcdadmin.cli import (
    access,
    apply,
    certs,
    directories,
    exits,
    history,
    identity,
    keys,
    recipients,
    secrets,
    status,
)
from etcdadmin.cli.connection import CliSession, connection_options, resolve_session
from etcdadmin.core.changes import InvalidChange, TooManyOperations
from etcdadmin.core.errors import (
    ConflictError,
    EtcdAdminError,
    EtcdError,
    MappingError,
    RevisionCompacted,
)

log = logging.getLogger(__name__)


def _exit_for(exc: Exception) -> exits.CliError:
    """The exit code and message for an exception a command let through."""
    if isinstance(exc, ConflictError):
        return exits.Conflict(str(exc))
    if isinstance(exc, RevisionCompacted | MappingError | InvalidChange | TooManyOperations):
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
    """Click's group, turning the project's exceptions into exit codes (see `exits`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise
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


for family in (
    keys,
    directories,
    history,
    status,
    apply,
    secrets,
    recipients,
    identity,
    access,
    certs,
):
    for command in family.COMMANDS:
        cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """The `etcdadmin` entry point (and `python -m etcdadmin`)."""
    try:
        cli.main(args=argv, prog_name="etcdadmin", standalone_mode=True)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return exits.OK


if __name__ == "__main__":
    sys.exit(main())
