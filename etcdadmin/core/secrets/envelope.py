"""The secret value format: the one module that writes and opens it.

A secret value in etcd is an ASCII-armored age file (age-encryption.org/v1), made and opened by
pyrage (bindings to the Rust `rage`), so a stock `age` binary opens it too. age has no
associated data, so the key a value belongs to travels inside the plaintext, which is:

    etcdadmin-secret v1\\n
    key <the etcd key, percent-encoded>\\n
    \\n
    <the value, byte for byte>

Opening checks that the key inside is the key the value was read from: a ciphertext copied or
pasted under another key is refused (`MovedSecret`) rather than silently used there.

By hand, in an emergency (Debian's `age` package):

    etcdctl get --print-value-only registry-test/storage/swift/password \\
        | age -d -i id_rsa | tail -n +4

`tail -n +4` drops the three header lines; the rest is the value exactly as it was written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote_from_bytes, unquote_to_bytes

import pyrage

from etcdadmin.core.secrets.errors import DamagedSecret, MovedSecret, NoMatchingKey

ARMOR_BEGIN: Final = b"-----BEGIN AGE ENCRYPTED FILE-----"
_MAGIC: Final = b"etcdadmin-secret v1\n"
_KEY_FIELD: Final = b"key "
# What stays readable in the key line; everything else (newlines above all) is %XX.
_KEY_SAFE: Final = "/-_.~:@+=,"

_KNOWN_STANZAS: Final = frozenset({"ssh-rsa", "ssh-ed25519", "X25519", "scrypt"})
# A recipient stanza line of the age header: `-> TYPE ARGS...`.
_STANZA_RE: Final = re.compile(rb"^-> (\S+)(?: (\S+))?", re.MULTILINE)


def is_envelope(value: bytes | None) -> bool:
    """True when `value` is an age file as this module writes them (armored)."""
    return value is not None and value.lstrip()[: len(ARMOR_BEGIN)] == ARMOR_BEGIN


def holds_envelope(values: Sequence[bytes]) -> bool:
    """`is_envelope` of any of `values`; one search of them all joined when none is (the
    common case: 100,000 values in 2 ms, against 0.03 s value by value)."""
    if ARMOR_BEGIN not in b"\0".join(values):
        return False
    return any(is_envelope(value) for value in values)


def seal(key: bytes, value: bytes, recipients: Sequence[object]) -> bytes:
    """The envelope of `value` under `key`, readable by each of `recipients`.

    `recipients` are pyrage recipient objects (see `recipients.Recipient.to_pyrage`). An empty
    list is the caller's bug: nobody could open the result.
    """
    if not recipients:
        raise ValueError("seal() needs at least one recipient")
    plaintext = _MAGIC + _KEY_FIELD + quote_from_bytes(key, _KEY_SAFE).encode() + b"\n\n" + value
    return bytes(pyrage.encrypt(plaintext, list(recipients), armored=True))


def open_envelope(key: bytes, envelope: bytes, identities: Sequence[object]) -> bytes:
    """The value sealed in `envelope`, which was read from `key`.

    Raises `NoMatchingKey` (none of `identities` opens it), `DamagedSecret` (not an envelope,
    or altered) or `MovedSecret` (sealed for another key). Messages carry no value.
    """
    name = key.decode("utf-8", "replace")
    if not identities:
        raise NoMatchingKey(f"{name}: no private key is loaded to open this secret", name)
    try:
        plaintext = bytes(pyrage.decrypt(envelope.strip(), list(identities)))
    except pyrage.DecryptError as exc:
        if "No matching keys" in str(exc):
            held = ", ".join(recipient_types(envelope)) or "unknown recipients"
            raise NoMatchingKey(
                f"{name}: none of the private keys held opens this secret (it is encrypted "
                f"to: {held}); add this key's public key as a recipient and re-encrypt "
                "(`etcdadmin keys rotate DIR`)",
                name,
            ) from None
        raise DamagedSecret(
            f"{name}: the secret is damaged or was altered ({exc}); write it again",
            name,
        ) from None
    sealed_for, value = _split(plaintext, name)
    if sealed_for != key:
        raise MovedSecret(
            f"{name}: this secret was encrypted for another key "
            f"({sealed_for.decode('utf-8', 'replace')}); copy it with etcdadmin, which "
            "re-encrypts it, or write it again",
            name,
        )
    return value


def _split(plaintext: bytes, name: str) -> tuple[bytes, bytes]:
    """(the key inside, the value) of a plaintext this module made."""
    if not plaintext.startswith(_MAGIC):
        raise DamagedSecret(f"{name}: the secret was not made by etcdadmin (no header)", name)
    line_end = plaintext.find(b"\n", len(_MAGIC))
    key_line = plaintext[len(_MAGIC) : line_end] if line_end >= 0 else b""
    if not key_line.startswith(_KEY_FIELD) or plaintext[line_end + 1 : line_end + 2] != b"\n":
        raise DamagedSecret(f"{name}: the secret's header is malformed", name)
    return unquote_to_bytes(key_line[len(_KEY_FIELD) :]), plaintext[line_end + 2 :]


@dataclass(frozen=True)
class EnvelopeSummary:
    """What a view may show of a secret instead of its value."""

    fingerprint: str
    recipients: tuple[str, ...]


def fingerprint(envelope: bytes) -> str:
    """A short digest of the ciphertext: tells two versions of a secret apart, reveals nothing.

    age encrypts with a fresh file key each time, so equal values sealed twice differ here.
    """
    return "sha256:" + hashlib.sha256(envelope.strip()).hexdigest()[:16]


def masked(envelope: bytes) -> str:
    """How every view shows an envelope instead of its value or its armor: `secret (sha256:...)`."""
    return f"secret ({fingerprint(envelope)})"


_FINGERPRINT_RE: Final = re.compile(r"sha256:[0-9a-f]{16}")


def is_fingerprint(text: str) -> bool:
    """True for text shaped like `fingerprint`'s result: what an export without reveal prints
    in place of a secret (`!secret sha256:...`), so an apply of that file keeps the secret."""
    return _FINGERPRINT_RE.fullmatch(text) is not None


def summary(envelope: bytes) -> EnvelopeSummary:
    return EnvelopeSummary(fingerprint(envelope), tuple(recipient_types(envelope)))


def recipient_types(envelope: bytes) -> list[str]:
    """The recipient stanzas of the envelope's public header (`ssh-rsa Tg3k...`, `X25519`).

    age's header is plain text inside the armor; ssh stanzas carry a tag of the recipient's key
    (`recipients.ssh_tag`), X25519 stanzas carry nothing that names the recipient.
    """
    header = _armored_header(envelope)
    found = []
    for match in _STANZA_RE.finditer(header):
        kind = match.group(1).decode("ascii", "replace")
        if kind not in _KNOWN_STANZAS:
            continue  # age adds random "grease" stanzas so parsers stay tolerant
        tag = match.group(2) if kind.startswith("ssh-") else None
        found.append(f"{kind} {tag.decode('ascii', 'replace')}" if tag else kind)
    return found


def _armored_header(envelope: bytes) -> bytes:
    lines = envelope.strip().splitlines()
    body = b"".join(line for line in lines[1:] if not line.startswith(b"-----"))
    try:
        raw = base64.b64decode(body, validate=False)
    except (binascii.Error, ValueError):
        return b""
    end = raw.find(b"\n---")
    return raw[: end if end >= 0 else 0]
