"""New passwords for etcd users, from a file, a variable, or a prompt (never an option: options
show in the process list)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from etcdadmin.cli import exits


def password_file_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--password-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="read the new password from this file (its first line)",
    )(f)


def new_password(what: str, path: Path | None, variable: str) -> str:
    """The password for `what`: `path`, then the environment variable, then a prompt (asked
    twice) when stdin is a terminal."""
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise exits.Refused(f"cannot read the password file {path}: {exc}") from None
    from_env = os.environ.get(variable)
    if from_env:
        return from_env
    if sys.stdin.isatty():
        return str(
            click.prompt(
                f"Password for {what}", hide_input=True, confirmation_prompt=True, err=True
            )
        )
    raise exits.Refused(
        f"no password for {what}: pass --password-file, set {variable}, or run in a terminal "
        "to be asked"
    )
