"""Saved connection profiles: one JSON file for their settings, the OS keyring for passwords.

The CLI and the desktop client share them. The file is `profiles.json` under platformdirs'
user config directory (`ETCDADMIN_CONFIG_DIR` overrides it); it never holds a password: those
go to the OS keyring (service `etcdadmin`, user `"{profile}:{user}"`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.etcd import ConnectionSettings
from etcdadmin.core.etcd.settings import parse_endpoint_list
from etcdadmin.core.private_file import write_private

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

KEYRING_SERVICE = "etcdadmin"
CONFIG_DIR_ENV = "ETCDADMIN_CONFIG_DIR"
PROFILES_FILE = "profiles.json"
SANDBOX = "Local sandbox"
_FORMAT = 1


class ProfileError(EtcdAdminError):
    """A profile that does not exist, or a profiles file that cannot be read or written."""


class KeyringUnavailable(EtcdAdminError):
    """The OS keyring refused or is missing (a host without a Secret Service, for example)."""


@dataclass(frozen=True)
class ConnectionProfile:
    """A named connection. `password` is never written to the profiles file (keyring only)."""

    name: str
    endpoints: str
    user: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    production: bool = False
    read_only: bool = False
    sandbox: bool = False
    password: str = field(default="", repr=False, compare=False)

    def settings(self, timeout: float | None = None) -> ConnectionSettings:
        extra = {} if timeout is None else {"timeout": timeout}
        endpoints = parse_endpoint_list(self.endpoints)
        return ConnectionSettings(
            endpoints=endpoints.addresses,
            tls=endpoints.https,
            user=self.user or None,
            password=self.password or None if self.user else None,
            ca_file=self.ca_file or None,
            cert_file=self.cert_file or None,
            key_file=self.key_file or None,
            **extra,
        )

    @classmethod
    def from_entry(cls, name: str, entry: dict[str, Any]) -> ConnectionProfile:
        """A profile from its file entry; unknown fields (from a newer version) are ignored."""
        known = {f.name for f in fields(cls)} - {"password", "name"}
        return cls(name=name, **{k: v for k, v in entry.items() if k in known})


def default_config_dir() -> Path:
    # pathlib and platformdirs are imported when a profile is used: the CLI imports this
    # module for every command (the profile model), and they cost 15-20 ms of its start.
    from pathlib import Path

    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("etcdadmin"))


def _keyring_user(name: str, user: str) -> str:
    return f"{name}:{user}"


class ProfileStore:
    """Profiles by name in `path` (default: `profiles.json` in the user config directory).

    Writes replace the file atomically (a temporary file in the same directory, mode 0600, then
    a rename), so a crash never leaves half a file and another process never reads one.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else default_config_dir() / PROFILES_FILE

    def exists(self) -> bool:
        return self.path.exists()

    def _all(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ProfileError(
                f"cannot read the profiles file {self.path}: {exc.strerror}"
            ) from None
        try:
            data = json.loads(text)
            profiles = data["profiles"]
            if not isinstance(profiles, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ProfileError(
                f"the profiles file {self.path} is not a profiles file; fix or remove it"
            ) from None
        return {str(k): dict(v) for k, v in profiles.items() if isinstance(v, dict)}

    def _write(self, profiles: dict[str, dict[str, Any]]) -> None:
        text = json.dumps({"format": _FORMAT, "profiles": profiles}, indent=2, sort_keys=True)
        try:
            write_private(self.path, text + "\n")
        except OSError as exc:
            raise ProfileError(
                f"cannot write the profiles file {self.path}: {exc.strerror}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._all())

    def load(self, name: str, with_password: bool = True) -> ConnectionProfile:
        entries = self._all()
        if name not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise ProfileError(
                f"no connection profile named {name!r} in {self.path} (saved profiles: {known})"
            )
        profile = ConnectionProfile.from_entry(name, entries[name])
        if with_password and profile.user:
            password = self.password(profile) or ""
            profile = ConnectionProfile(**{**asdict(profile), "password": password})
        return profile

    def password(self, profile: ConnectionProfile) -> str | None:
        """The profile's password from the OS keyring (None when none is kept)."""
        import keyring
        from keyring.errors import KeyringError

        try:
            return keyring.get_password(KEYRING_SERVICE, _keyring_user(profile.name, profile.user))
        except KeyringError as exc:
            raise KeyringUnavailable(
                f"the OS keyring cannot be read ({exc}); give the password another way"
            ) from None

    def save(self, profile: ConnectionProfile, store_password: bool = True) -> None:
        """Write the profile; with `store_password` its password (if any) goes to the keyring.

        The profile is written first, so a keyring failure (raised) still keeps it.
        """
        self.save_all([profile])
        if store_password and profile.user and profile.password:
            import keyring
            from keyring.errors import KeyringError

            try:
                keyring.set_password(
                    KEYRING_SERVICE, _keyring_user(profile.name, profile.user), profile.password
                )
            except KeyringError as exc:
                raise KeyringUnavailable(
                    f"the OS keyring refused the password ({exc}); the profile {profile.name!r} "
                    "is saved without it"
                ) from None

    def save_all(self, profiles: list[ConnectionProfile]) -> None:
        """Write several profiles in one replacement of the file (passwords are not touched)."""
        entries = self._all()
        for profile in profiles:
            entry = asdict(profile)
            entry.pop("password")
            entry.pop("name")
            entries[profile.name] = entry
        self._write(entries)
        log.info("saved %d connection profiles", len(profiles))

    def delete(self, name: str) -> None:
        entries = self._all()
        entry = entries.pop(name, None)
        self._write(entries)
        if entry and entry.get("user"):
            import keyring
            from keyring.errors import PasswordDeleteError

            with contextlib.suppress(PasswordDeleteError):
                keyring.delete_password(KEYRING_SERVICE, _keyring_user(name, str(entry["user"])))
