"""Which config values are secrets: the one rule every view that shows values uses to mask them.

A key is secret by its path below the directory (`is_secret_key`), and a value is secret by
what it holds (`holds_private_key`, `holds_secret_envelope`); `is_secret` combines them.
Views print ``(secret)`` instead of such a value, never the value itself.
"""

from __future__ import annotations

import re
from typing import Final

# Secret words, compared against a path segment lowercased with `_` and `-` removed, so that
# `api_key`, `Api-Key` and `apikey` are one word.
_SECRET_WORDS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "credential",
    "accountkey",
    "authorization",
)

# A segment that holds a collection of secrets: a word in the plural, or `credential`.
_COLLECTION_RE: Final = re.compile(rf"(?:{'|'.join(_SECRET_WORDS)})s|credential")

# A segment that ends with one of the words: `dbpassword`, `client_secret`, `X-Api-Key`.
_ENDS_WITH_WORD_RE: Final = re.compile(rf".*(?:{'|'.join(_SECRET_WORDS)})s?")

# The armor line of PEM private key material, in every form (PKCS#8, RSA, EC, OpenSSH, ENCRYPTED).
_PRIVATE_KEY_MARK: Final = b"PRIVATE KEY-----"

# The first line of an ASCII-armored age file: how a secret value is stored in etcd.
SECRET_ENVELOPE_MARK: Final = b"-----BEGIN AGE ENCRYPTED FILE-----"


def _normalized(segment: str) -> str:
    return segment.lower().replace("_", "").replace("-", "")


def is_secret_key(relative_key: str) -> bool:
    """True when the value at `relative_key` (the path below the directory) is a secret.

    The path is split into segments on ``/`` and ``.`` (so etcd keys ``storage/swift/password``
    and ``http.secret`` and config paths ``storage.swift.password`` all work). Each segment is
    compared lowercased, with ``_`` and ``-`` removed, against the words password, passwd,
    secret, token, apikey (api_key), accesskey (access_key), secretkey (secret_key), privatekey
    (private_key), credential, accountkey (Azure storage) and authorization (an HTTP header
    carrying credentials), each optionally plural:

    * the last segment (list indices aside: ``headers/Authorization/0`` is an element of the
      list ``Authorization``) is secret when it is or ends with such a word: ``password``,
      ``dbPassword``, ``client_secret``, ``X-Api-Key``, ``credentials``;
    * an earlier segment makes everything below it secret only when it names a collection of
      secrets, a plural word or ``credential``: ``credentials/aws/id``, ``secrets/db/host``.
      Others name the settings of a mechanism, not secrets: ``auth/token/realm`` (the URL of
      the registry's token server) and ``auth/htpasswd/path`` (where the htpasswd file is) are
      shown.

    ===========================  =======
    ``storage/swift/password``   secret
    ``http/secret``              secret
    ``http.secret``              secret
    ``secrets/db/host``          secret
    ``auth/token/realm``         shown
    ``auth/htpasswd/path``       shown
    ``auth/htpasswd/realm``      shown
    ``storage/s3/accesskey``     secret
    ``headers/Authorization/0``  secret
    ``tokenurl``                 shown
    ===========================  =======
    """
    segments = [_normalized(s) for s in re.split(r"[/.]", relative_key) if s]
    while segments and segments[-1].isdigit():
        segments.pop()  # list elements are what their list is named
    if not segments:
        return False
    if _ENDS_WITH_WORD_RE.fullmatch(segments[-1]):
        return True
    return any(_COLLECTION_RE.fullmatch(segment) for segment in segments[:-1])


def holds_private_key(value: bytes | None) -> bool:
    """True when `value` contains PEM private key material (a TLS or SSH key), whatever its key.

    A substring test for the armor line: cheap on any value, and it never misses a PEM key.
    """
    return value is not None and _PRIVATE_KEY_MARK in value


def holds_secret_envelope(value: bytes | None) -> bool:
    """True when `value` is a secret stored encrypted (an armored age file), whatever its key.

    Its ciphertext reveals nothing, but a view that shows it invites copying it around as if
    it were the setting; views say that a secret is there, or changed, instead.
    """
    return value is not None and value.lstrip().startswith(SECRET_ENVELOPE_MARK)


def is_secret(relative_key: str, *values: bytes | None) -> bool:
    """True when the key is secret by its path, or any of `values` holds a private key or is
    an encrypted secret."""
    return is_secret_key(relative_key) or any(
        holds_private_key(value) or holds_secret_envelope(value) for value in values
    )
