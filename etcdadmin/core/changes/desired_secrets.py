"""Values a config file marks `!secret`, turned into what etcd should hold at their key.

age seals with a fresh file key every time, so two envelopes of one value never match: a
marked value is compared with what the envelope etcd holds opens to, and left alone when they
are equal. That is what lets an apply of an unchanged file write nothing.

An export without reveal prints a secret as its placeholder, `!secret sha256:...` (the
envelope's `fingerprint`); applying that file keeps the envelope it names. A placeholder naming
a version etcd no longer holds is refused: it carries no value to write.
"""

from __future__ import annotations

import logging
from typing import Protocol

from etcdadmin.core.config.values import parse_value
from etcdadmin.core.errors import MappingError
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.secrets.envelope import fingerprint, is_envelope, is_fingerprint
from etcdadmin.core.secrets.errors import SecretError, StalePlaceholder

log = logging.getLogger(__name__)


def _same_value(held: bytes, wanted: bytes) -> bool:
    """Equal bytes, or two spellings the mapping reads as one value (`'5000'` and `"5000"`,
    what `secret put` stored and what a file writes): the agent renders both the same, so
    rewriting would change nothing but the ciphertext. repr() keeps `1` and `true` apart."""
    if held == wanted:
        return True
    try:
        return repr(parse_value(held)) == repr(parse_value(wanted))
    except MappingError:
        return False


class Sealer(Protocol):
    """What sealing a file's secrets needs (`etcdadmin.core.secrets.sealer.SecretSealer`)."""

    def seal(self, key: bytes, value: bytes) -> bytes: ...

    def open(self, key: bytes, envelope: bytes) -> bytes: ...


def resolve_secret(
    sealer: Sealer, key: bytes, current: KeyValue | None, plaintext: bytes
) -> bytes | None:
    """The envelope to write at `key` for the file's `plaintext`; None when etcd holds it already.

    A placeholder keeps the envelope it names (`StalePlaceholder` when etcd holds another one
    or none). A current envelope this operator cannot open is replaced by the file's value:
    the file says what the key must hold, and nothing tells the two apart.
    """
    held = current.value if current is not None and is_envelope(current.value) else None
    if is_fingerprint(plaintext.decode("ascii", "replace")):
        named = plaintext.decode("ascii")
        if held is not None and fingerprint(held) == named:
            return None
        name = key.decode("utf-8", "replace")
        now = f"another version ({fingerprint(held)})" if held is not None else "no secret there"
        raise StalePlaceholder(
            f"{name}: the file holds the placeholder `!secret {named}` but etcd holds {now}; a "
            "placeholder only keeps a secret as it is. Export the directory again, or write the "
            "value (`!secret VALUE` in the file, or `etcdadmin secret put`)",
            name,
        )
    if held is not None:
        try:
            if _same_value(sealer.open(key, held), plaintext):
                return None
        except SecretError as exc:
            log.info("a secret in etcd cannot be opened (%s): sealing the file's value", exc.reason)
    return sealer.seal(key, plaintext)
