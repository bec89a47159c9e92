"""Connection profiles: kept in QSettings, their passwords in the OS keyring (never in a file)."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field

from PySide6.QtCore import QSettings

from etcdadmin.core.etcd import ConnectionSettings

log = logging.getLogger(__name__)

KEYRING_SERVICE = "etcdadmin"
SANDBOX = "Local sandbox"


@dataclass(frozen=True)
class ConnectionProfile:
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

    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            endpoints=ConnectionSettings.parse_endpoints(self.endpoints),
            user=self.user or None,
            password=self.password or None if self.user else None,
            ca_file=self.ca_file or None,
            cert_file=self.cert_file or None,
            key_file=self.key_file or None,
        )


def _keyring_name(profile: ConnectionProfile) -> str:
    return f"{profile.name}:{profile.user}"


class ProfileStore:
    """Profiles by name. Passwords go to `keyring`; a keyring failure is reported, not hidden."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.qsettings = settings or QSettings("etcdadmin", "etcdadmin")

    def names(self) -> list[str]:
        return sorted(json.loads(str(self.qsettings.value("profiles", "{}"))).keys())

    def _all(self) -> dict[str, dict[str, object]]:
        return dict(json.loads(str(self.qsettings.value("profiles", "{}"))))

    def load(self, name: str, with_password: bool = True) -> ConnectionProfile:
        raw = self._all()[name]
        profile = ConnectionProfile(**{k: v for k, v in raw.items() if k != "password"})  # type: ignore[arg-type]
        if with_password and profile.user:
            import keyring

            password = keyring.get_password(KEYRING_SERVICE, _keyring_name(profile)) or ""
            profile = ConnectionProfile(**{**asdict(profile), "password": password})
        return profile

    def save(self, profile: ConnectionProfile, store_password: bool = True) -> None:
        data = self._all()
        entry = asdict(profile)
        entry.pop("password")
        data[profile.name] = entry
        self.qsettings.setValue("profiles", json.dumps(data, sort_keys=True))
        self.qsettings.sync()
        if store_password and profile.user and profile.password:
            import keyring

            keyring.set_password(KEYRING_SERVICE, _keyring_name(profile), profile.password)

    def delete(self, name: str) -> None:
        data = self._all()
        entry = data.pop(name, None)
        self.qsettings.setValue("profiles", json.dumps(data, sort_keys=True))
        if entry and entry.get("user"):
            import keyring
            from keyring.errors import PasswordDeleteError

            with contextlib.suppress(PasswordDeleteError):
                keyring.delete_password(KEYRING_SERVICE, f"{name}:{entry['user']}")

    @property
    def last_used(self) -> str | None:
        value = self.qsettings.value("last_profile")
        return str(value) if value else None

    @last_used.setter
    def last_used(self, name: str) -> None:
        self.qsettings.setValue("last_profile", name)
