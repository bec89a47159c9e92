"""Why a secret could not be opened or written, in words an operator can act on.

Messages name the key and the reason, never the value, the plaintext or a private key.
"""

from __future__ import annotations

from etcdadmin.core.errors import EtcdAdminError


class SecretError(EtcdAdminError):
    """Base of the secret errors; `reason` is a short word for status records and tables."""

    reason = "secret"

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class NoMatchingKey(SecretError):
    """None of the identities held is among the value's recipients."""

    reason = "no_matching_key"


class DamagedSecret(SecretError):
    """The value is not a well-formed envelope, or it was altered after it was made."""

    reason = "damaged"


class MovedSecret(SecretError):
    """The envelope was made for another key: copied or pasted by hand, not re-encrypted."""

    reason = "moved"


class NoRecipients(SecretError):
    """The directory has no recipients, so a secret written there could be read by nobody."""

    reason = "no_recipients"


class BadKeyFile(SecretError):
    """A private or public key file that cannot be used (format, passphrase, permissions)."""

    reason = "bad_key"


class KeyringUnavailable(SecretError):
    """No usable OS keyring holds (or can hold) the operator's identity."""

    reason = "no_keyring"


class StalePlaceholder(SecretError):
    """A file's `!secret sha256:...` names a secret version etcd does not hold (any more)."""

    reason = "stale_placeholder"
