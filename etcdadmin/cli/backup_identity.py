"""`--identity FILE`: the private keys that open an encrypted backup, for `backup restore`,
`backup restore-at` and `backup verify`.

A file is what `age -d -i` takes: an age identity file (`AGE-SECRET-KEY-1...` lines, every
one of them tried, as age does) or an OpenSSH private key (`id_ed25519`, `id_rsa`), read by
the secrets feature's loader. Without the option a restore tries the operator's own identity
from the OS keyring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


_HELP = (
    "private keys that open an encrypted backup (an age identity file, all of its keys tried, "
    "or an OpenSSH private key); repeatable; default: your operator identity in the OS keyring"
)


def identity_option(function: F | None = None, *, help: str = _HELP) -> Any:
    """The `--identity` option; `@identity_option(help=...)` where a command uses it its own
    way."""

    def decorate(f: F) -> F:
        return click.option(
            "--identity",
            "identity_files",
            multiple=True,
            metavar="FILE",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help=help,
        )(f)

    return decorate(function) if function is not None else decorate


def load_identities(files: Sequence[Path]) -> list[object] | None:
    """Every pyrage identity in `files`; None when none was given (the keyring default)."""
    if not files:
        return None
    from etcdadmin.core.secrets.identities import identities_in

    return identities_in(files)
