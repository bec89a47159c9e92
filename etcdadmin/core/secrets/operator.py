"""The operator's own age identity, kept in the OS keyring and nowhere else.

One X25519 identity per operator account (keyring service `etcdadmin`, user
`age-identity`), created on first use. Its public key (`age1...`) becomes a recipient of the
directories the operator writes secrets to. Moving it to a second workstation is an explicit
export to a passphrase-protected age file and an import there.

No plaintext fallback: when the keyring is missing, locked or a plain-file backend, this module
refuses and says what to install; it never writes the identity to a file itself.
"""

from __future__ import annotations

import getpass
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pyrage

from etcdadmin.core.secrets.errors import BadKeyFile, KeyringUnavailable, SecretError

log = logging.getLogger(__name__)

KEYRING_SERVICE: Final = "etcdadmin"
KEYRING_USER: Final = "age-identity"

_INSTALL_HINT: Final = (
    "install and unlock an OS keyring (gnome-keyring or KWallet, reached over D-Bus; on a "
    "headless host run the command inside `dbus-run-session` with gnome-keyring-daemon "
    "unlocked); etcdadmin never keeps secret keys in a plain file"
)


@dataclass(frozen=True)
class OperatorIdentity:
    """The operator's identity: `secret` is the AGE-SECRET-KEY string (never log it)."""

    secret: str
    public_key: str

    def __repr__(self) -> str:
        return f"OperatorIdentity(public_key={self.public_key!r})"

    def to_pyrage(self) -> object:
        return pyrage.x25519.Identity.from_str(self.secret)


def default_name() -> str:
    """The recipient name an operator gets in a directory: `user@host`."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _backend() -> object:
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    module = type(backend).__module__
    # keyrings.alt backends keep secrets in plain or weakly protected files: refused too.
    plain = module.startswith(("keyrings.alt", "keyring.backends.null"))
    if isinstance(backend, fail.Keyring) or plain:
        name = type(backend).__name__
        raise KeyringUnavailable(f"no usable OS keyring ({name}): {_INSTALL_HINT}")
    return backend


def _identity(secret: str) -> OperatorIdentity:
    try:
        identity = pyrage.x25519.Identity.from_str(secret.strip())
    except pyrage.IdentityError:
        raise BadKeyFile("the identity kept in the OS keyring is malformed") from None
    return OperatorIdentity(secret.strip(), str(identity.to_public()))


def load_operator_identity(*, create: bool = False) -> OperatorIdentity | None:
    """The operator's identity from the keyring; a new one when `create` and none is kept."""
    from keyring.errors import KeyringError

    backend = _backend()
    try:
        secret = backend.get_password(KEYRING_SERVICE, KEYRING_USER)  # type: ignore[attr-defined]
    except (KeyringError, OSError) as exc:
        raise KeyringUnavailable(
            f"the OS keyring cannot be read ({exc}): {_INSTALL_HINT}"
        ) from None
    if secret:
        return _identity(secret)
    if not create:
        return None
    new = str(pyrage.x25519.Identity.generate())
    _store(backend, new)
    log.info("created a new operator identity in the OS keyring")
    return _identity(new)


def with_operator_identity(identities: Sequence[object]) -> list[object]:
    """`identities` (pyrage identities, opened from files), and the operator's own from the
    keyring when it holds one: a file opened for one backup must not lock the operator out
    of the backups encrypted to them. A keyring that cannot be read adds nothing."""
    try:
        operator = load_operator_identity()
    except SecretError as exc:
        # said, not hidden: an operator who is a recipient would otherwise only hear that no
        # identity opens the backup
        log.warning("the operator identity is not used: %s", exc)
        return list(identities)
    return [*identities, operator.to_pyrage()] if operator is not None else list(identities)


def _store(backend: object, secret: str) -> None:
    from keyring.errors import KeyringError

    try:
        backend.set_password(KEYRING_SERVICE, KEYRING_USER, secret)  # type: ignore[attr-defined]
    except (KeyringError, OSError) as exc:
        raise KeyringUnavailable(
            f"the OS keyring refused the identity ({exc}): {_INSTALL_HINT}"
        ) from None


def export_identity(identity: OperatorIdentity, passphrase: str) -> bytes:
    """The identity as an armored age file protected by `passphrase` (age's scrypt recipient)."""
    if len(passphrase) < 8:
        raise BadKeyFile("choose a passphrase of at least 8 characters for the exported identity")
    return bytes(pyrage.passphrase.encrypt(identity.secret.encode(), passphrase, armored=True))


def import_identity(data: bytes, passphrase: str, *, replace: bool = False) -> OperatorIdentity:
    """Keep the identity from an exported file in this workstation's keyring."""
    try:
        secret = bytes(pyrage.passphrase.decrypt(data.strip(), passphrase)).decode("ascii")
    except (pyrage.DecryptError, UnicodeDecodeError):
        raise BadKeyFile(
            "cannot open the identity file: wrong passphrase or not an identity export"
        ) from None
    identity = _identity(secret)
    current = load_operator_identity()
    if current is not None and current.public_key != identity.public_key and not replace:
        raise BadKeyFile(
            f"this workstation already holds another identity ({current.public_key}); import "
            "with replace to swap it (secrets encrypted only to the old one stay unreadable here)"
        )
    _store(_backend(), identity.secret)
    return identity
