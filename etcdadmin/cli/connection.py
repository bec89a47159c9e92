"""Connection options (like etcdctl's), saved profiles, the password, and the one connection.

Where each setting comes from, first match wins: an option on the command line; the profile
named by `--profile` (or `ETCDADMIN_PROFILE`); the other `ETCDADMIN_*` environment variables;
the default (etcdctl's 127.0.0.1:2379). The password: `--password`, `ETCDADMIN_PASSWORD`, the
profile's entry in the OS keyring, then a prompt when a user is given and stdin is a terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click
from click.core import ParameterSource

from etcdadmin.cli import exits
from etcdadmin.core.errors import ConnectionSettingsError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.etcd.settings import parse_endpoint_list
from etcdadmin.core.profiles import ConnectionProfile, KeyringUnavailable, ProfileStore

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "127.0.0.1:2379"

# (option name, profile field) for the settings a profile can hold.
_PROFILE_FIELDS = (
    ("endpoints", "endpoints"),
    ("cacert", "ca_file"),
    ("cert", "cert_file"),
    ("key", "key_file"),
    ("user", "user"),
)


def connection_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The connection options, on the `etcdadmin` group (they go before the subcommand)."""
    options = [
        click.option(
            "--endpoints",
            envvar="ETCDADMIN_ENDPOINTS",
            show_envvar=True,
            default=DEFAULT_ENDPOINT,
            show_default=True,
            help="etcd endpoints, host:port or http(s)://host:port, comma separated; https:// "
            "means TLS",
        ),
        click.option(
            "--cacert",
            envvar="ETCDADMIN_CACERT",
            show_envvar=True,
            help="the CA that signed etcd's certificate: use TLS (https:// without it trusts "
            "public CAs only)",
        ),
        click.option(
            "--cert",
            envvar="ETCDADMIN_CERT",
            show_envvar=True,
            help="client certificate file (TLS; needs --key)",
        ),
        click.option(
            "--key",
            envvar="ETCDADMIN_KEY",
            show_envvar=True,
            help="the client certificate's private key file (TLS; needs --cert)",
        ),
        click.option(
            "--user",
            envvar="ETCDADMIN_USER",
            show_envvar=True,
            help="etcd user (name, or name:password as etcdctl)",
        ),
        click.option(
            "--password",
            envvar="ETCDADMIN_PASSWORD",
            show_envvar=True,
            help="etcd password (prefer ETCDADMIN_PASSWORD: options show in the process list)",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            default=5.0,
            show_default=True,
            help="seconds to wait for etcd on each call",
        ),
        click.option(
            "--profile",
            envvar="ETCDADMIN_PROFILE",
            show_envvar=True,
            help="a saved connection profile (profiles.json; the client's connections)",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


class CliSession:
    """What every subcommand shares: the resolved profile and one connection, opened lazily.

    The password is resolved (and asked for) only when a command first connects, so usage
    errors come before any prompt.
    """

    def __init__(
        self, profile: ConnectionProfile, timeout: float, store: ProfileStore | None = None
    ) -> None:
        self.profile = profile
        self.timeout = timeout
        # the saved profiles, opened when one is named or holds a password (`_password`)
        self.store = store
        self._conn: EtcdConnection | None = None

    @property
    def production(self) -> bool:
        return self.profile.production

    @property
    def read_only(self) -> bool:
        return self.profile.read_only

    def connect(self) -> EtcdConnection:
        if self._conn is None:
            self._conn = EtcdConnection(self.settings())
        return self._conn

    def settings(self) -> ConnectionSettings:
        """The resolved settings (the password asked for if needed), without connecting: for
        commands that open connections of their own (`access enable` logs in as several
        users)."""
        if self.profile.user and not self.profile.password:
            self.profile = replace(self.profile, password=self._password())
        return self.profile.settings(self.timeout)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _password(self) -> str:
        profile = self.profile
        if not profile.user or profile.password:
            return profile.password
        if profile.name:
            if self.store is None:
                self.store = ProfileStore()
            try:
                kept = self.store.password(profile)
            except KeyringUnavailable as exc:
                log.info("no password from the keyring: %s", type(exc).__name__)
                kept = None
            if kept:
                return kept
        if sys.stdin.isatty():
            # default "": Enter ends the prompt (it is refused below) instead of asking again;
            # not shown, or the prompt would offer "[]"
            typed = str(
                click.prompt(
                    f"Password for etcd user {profile.user}",
                    hide_input=True,
                    err=True,
                    default="",
                    show_default=False,
                )
            )
            if typed:
                return typed
            raise exits.Refused(
                f"etcd user {profile.user!r} needs a password, and an empty one was typed: type "
                "it when asked, set ETCDADMIN_PASSWORD, or pass --password"
            )
        raise exits.Refused(
            f"etcd user {profile.user!r} needs a password: set ETCDADMIN_PASSWORD, pass "
            "--password, or run in a terminal to be asked"
        )


def resolve_session(ctx: click.Context, params: dict[str, Any], read_only: bool) -> CliSession:
    """The session the options, the profile and the environment describe."""
    store = None
    name = params.get("profile")
    if name:
        store = ProfileStore()
        base = store.load(name, with_password=False)
    else:
        base = ConnectionProfile(name="", endpoints=DEFAULT_ENDPOINT)
    values: dict[str, str] = {}
    origins: dict[str, str] = {}  # where each value came from, for messages
    for option, attribute in _PROFILE_FIELDS:
        given = params.get(option) or ""
        from_profile = getattr(base, attribute) if name else ""
        source = ctx.get_parameter_source(option)
        if source is ParameterSource.COMMANDLINE or not from_profile:
            values[attribute] = given
            origins[attribute] = (
                f"ETCDADMIN_{option.upper()}"
                if source is ParameterSource.ENVIRONMENT
                else f"--{option}"
            )
        else:
            values[attribute] = from_profile
            origins[attribute] = f"profile {name!r}"
    password = params.get("password") or ""
    user = values["user"]
    if ":" in user and not password:
        user, _, password = user.partition(":")
        values["user"] = user
    profile = replace(
        base,
        endpoints=values["endpoints"],
        ca_file=values["ca_file"],
        cert_file=values["cert_file"],
        key_file=values["key_file"],
        user=values["user"],
        password=password,
        read_only=base.read_only or read_only,
    )
    _check(profile, origins)
    return CliSession(profile, params["timeout"], store)


def _check(profile: ConnectionProfile, origins: dict[str, str]) -> None:
    """Refuse settings that cannot work before any prompt or connection, naming where the
    wrong value came from (an option, a variable or a profile)."""
    try:
        parse_endpoint_list(profile.endpoints)
    except ConnectionSettingsError as exc:
        raise exits.Refused(f"{exc} (from {origins['endpoints']})") from None
    try:
        profile.settings()  # the rules every face shares (a certificate needs its key...)
    except ConnectionSettingsError as exc:
        given = "cert_file" if profile.cert_file else "key_file"
        raise exits.Refused(f"{exc} (from {origins[given]})") from None
