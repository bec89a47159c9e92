"""Secret values: `secret put KEY` (encrypts), `secret get KEY` (reveals only when asked),
`secret ls DIR` (which keys are secret, to whom, and whether this operator can open them).

A value never comes from the command line (argv shows in the process list and shell history):
`put` reads stdin, or asks without echo on a terminal. `get` prints the value only with
`--reveal`; without it, what a secret is encrypted to. See the README's "Secrets" section for
the format and how to open a value by hand with `age`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from etcdadmin.cli import exits
from etcdadmin.cli.arguments import DIR, KEY
from etcdadmin.cli.connection import CliSession
from etcdadmin.cli.output import emit_json, json_option, show, write_stdout
from etcdadmin.cli.writes import apply_changes, refuse_if_read_only, yes_option
from etcdadmin.core.changes import SetValue
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.secrets.envelope import fingerprint, is_envelope, recipient_types
from etcdadmin.core.secrets.errors import KeyringUnavailable, NoMatchingKey, SecretError
from etcdadmin.core.secrets.opener import SecretOpener
from etcdadmin.core.secrets.operator import load_operator_identity
from etcdadmin.core.secrets.recipients import RecipientBook, describe
from etcdadmin.core.secrets.sealer import SecretSealer

log = logging.getLogger(__name__)


class OperatorSealer:
    """The operator's `SecretSealer`, made on first use: commands that meet no secret never
    touch the keyring (a host without one can still copy plain directories)."""

    def __init__(self, conn: EtcdConnection, *, join: bool = True) -> None:
        self._conn = conn
        self._join = join
        self._sealer: SecretSealer | None = None

    @property
    def sealer(self) -> SecretSealer:
        if self._sealer is None:
            self._sealer = SecretSealer(self._conn, join=self._join)
        return self._sealer

    def seal(self, key: bytes, value: bytes) -> bytes:
        return self.sealer.seal(key, value)

    def open(self, key: bytes, envelope: bytes) -> bytes:
        return self.sealer.open(key, envelope)

    def reseal(self, source_key: bytes, envelope: bytes, target_key: bytes) -> bytes:
        return self.sealer.reseal(source_key, envelope, target_key)


class OperatorOpener:
    """Opens secrets with the operator's identity, read from the keyring on first use (a
    command that meets no secret never touches the keyring). Without an identity (or a
    keyring) every open raises `NoMatchingKey`, so reads say "cannot open" instead of failing.
    """

    def __init__(self) -> None:
        self._opener: SecretOpener | None = None
        self._missing = ""

    def _load(self) -> SecretOpener:
        if self._opener is None:
            identities: list[object] = []
            try:
                identity = load_operator_identity(create=False)
            except KeyringUnavailable as exc:
                log.info("no operator identity: %s", exc.reason)
                self._missing = str(exc)
            else:
                if identity is None:
                    self._missing = "no operator identity on this workstation"
                else:
                    identities.append(identity.to_pyrage())
            self._opener = SecretOpener(identities)
        return self._opener

    @property
    def available(self) -> bool:
        return self._load().has_identities

    def open(self, key: bytes, envelope: bytes) -> bytes:
        opener = self._load()
        if not opener.has_identities:
            name = key.decode("utf-8", "replace")
            raise NoMatchingKey(f"{name}: cannot open it here ({self._missing})", name)
        return opener.open(key, envelope)


def operator_opener() -> OperatorOpener:
    return OperatorOpener()


def _read_value(key: bytes) -> bytes:
    if sys.stdin.isatty():
        typed = click.prompt(
            f"Secret value for {show(key)}", hide_input=True, confirmation_prompt=True, err=True
        )
        return str(typed).encode("utf-8")
    return sys.stdin.buffer.read()


@click.group()
def secret() -> None:
    """Secret values, encrypted in etcd to the recipients of their directory (see `keys`)."""


@secret.command()
@click.argument("key", type=KEY)
@yes_option
@click.pass_obj
def put(session: CliSession, key: bytes, yes: bool) -> None:
    """Encrypt a value from stdin (or typed without echo on a terminal) and write it at KEY.

    The value is sealed for the recipients of KEY's directory, and for you: your identity
    (kept in the OS keyring) joins them on your first write there. Never on the command line.
    """
    refuse_if_read_only(session)
    value = _read_value(key)
    conn = session.connect()
    current = conn.get(key)
    sealer = SecretSealer(conn)
    if current is not None and is_envelope(current.value):
        try:
            if sealer.open(key, current.value) == value:
                click.echo("nothing to change: etcd already holds this secret", err=True)
                return
        except SecretError as exc:
            log.info("the current secret cannot be opened (%s): replacing it", exc.reason)
    envelope = sealer.seal(key, value)
    expected = current.mod_revision if current is not None else 0
    lease = current.lease if current is not None else 0
    apply_changes(session, [SetValue(key, envelope, expected, lease)], yes=yes)


@secret.command()
@click.argument("key", type=KEY)
@click.option("--reveal", is_flag=True, help="print the value itself, byte for byte")
@json_option
@click.pass_obj
def get(session: CliSession, key: bytes, reveal: bool, as_json: bool) -> None:
    """Without --reveal: the secret's fingerprint and recipients. With it: the value."""
    conn = session.connect()
    kv = conn.get(key)
    if kv is None:
        raise exits.NotFound(f"key {show(key)} not found")
    if not is_envelope(kv.value):
        raise exits.Refused(
            f"{show(key)} is not a secret (its value is not encrypted); read it with "
            f"`etcdadmin get`, or encrypt it with `etcdadmin secret put {show(key)}`"
        )
    if reveal:
        if as_json:
            raise click.UsageError("--reveal prints the raw value; it cannot go with --json")
        opener = operator_opener()
        if not opener.available:
            raise exits.Refused(
                "no operator identity on this workstation: import yours "
                "(`etcdadmin identity import FILE`) or ask a recipient to add you"
            )
        write_stdout(opener.open(key, kv.value))
        return
    book = RecipientBook.read(conn)
    governing = book.governing(key)
    names = book.by_directory.get(governing, ()) if governing is not None else ()
    record: dict[str, Any] = {
        "key": show(key),
        "fingerprint": fingerprint(kv.value),
        "mod_revision": kv.mod_revision,
        "encrypted_to": recipient_types(kv.value),
        "directory_recipients": [
            {"name": r.name, "role": r.role, "fingerprint": r.fingerprint} for r in names
        ],
    }
    if as_json:
        emit_json(record)
        return
    click.echo(f"{show(key)}: secret ({record['fingerprint']}) at revision {kv.mod_revision}")
    click.echo(f"encrypted to: {', '.join(record['encrypted_to']) or 'unknown'}")
    click.echo(f"recipients of its directory now: {describe(names) or 'none'}")
    click.echo("(--reveal prints the value)", err=True)


@secret.command(name="ls")
@click.argument("directory", metavar="DIR", type=DIR)
@json_option
@click.pass_obj
def ls_secrets(session: CliSession, directory: bytes, as_json: bool) -> None:
    """The secret keys of DIR: fingerprint, what each is encrypted to, whether you can open it."""
    opener = operator_opener()
    rows: list[dict[str, Any]] = []
    for kv in session.connect().read_prefix(directory).items:
        if not is_envelope(kv.value):
            continue
        opens, reason = False, ""
        try:
            opener.open(kv.key, kv.value)
            opens = True
        except SecretError as exc:
            reason = exc.reason
        rows.append(
            {
                "key": show(kv.key),
                "fingerprint": fingerprint(kv.value),
                "encrypted_to": recipient_types(kv.value),
                "opens": opens,
                "reason": reason or None,
            }
        )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"no secrets under {show(directory)}", err=True)
    for row in rows:
        state = "opens" if row["opens"] else f"cannot open ({row['reason']})"
        to = ", ".join(row["encrypted_to"])
        click.echo(f"{row['key']}\t{row['fingerprint']}\t{to}\t{state}")


COMMANDS = (secret,)
