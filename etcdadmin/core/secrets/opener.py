"""Opening many secrets again and again without paying for the same decryption twice.

An RSA-3072 `id_rsa` costs about 19 ms per decryption here (ed25519: 0.3 ms), so an agent that
re-renders a directory of 1,000 secrets on every change would spend 19 s per change. Envelopes
are immutable (age picks a fresh file key per encryption), so a plaintext is cached by the key it
was read from and the SHA-256 of its envelope: a changed secret is a new envelope, a moved one a
new key, and both miss the cache and get checked in full.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from etcdadmin.core.secrets.envelope import open_envelope, seal

# Entries, not bytes: secrets are small (passwords, tokens, keys); 4,096 covers a large
# directory and bounds memory at a few MB even for certificate-sized values.
DEFAULT_CAPACITY = 4096


class SecretOpener:
    """Opens envelopes with a fixed set of identities, remembering what it opened."""

    def __init__(self, identities: Sequence[object], capacity: int = DEFAULT_CAPACITY) -> None:
        self._identities = list(identities)
        self._capacity = capacity
        self._cache: OrderedDict[tuple[bytes, bytes], bytes] = OrderedDict()
        self.decryptions = 0  # how many times age actually ran (benchmarks and tests read it)

    def __repr__(self) -> str:
        return f"SecretOpener({len(self._identities)} keys, {len(self._cache)} cached)"

    @property
    def has_identities(self) -> bool:
        return bool(self._identities)

    def open(self, key: bytes, envelope: bytes) -> bytes:
        """The value in `envelope`, read from `key`; raises what `open_envelope` raises."""
        slot = (key, hashlib.sha256(envelope).digest())
        cached = self._cache.get(slot)
        if cached is not None:
            self._cache.move_to_end(slot)
            return cached
        value = open_envelope(key, envelope, self._identities)
        self.decryptions += 1
        self._cache[slot] = value
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return value

    def reseal(
        self, source_key: bytes, envelope: bytes, target_key: bytes, recipients: Sequence[object]
    ) -> bytes:
        """The secret at `source_key`, sealed again for `target_key` and `recipients`.

        How a secret is copied to another directory or re-encrypted after its recipients
        changed: opened (so it must be readable by one of our identities), then sealed anew.
        """
        return seal(target_key, self.open(source_key, envelope), recipients)
