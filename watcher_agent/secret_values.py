"""Secret values opened in the agent just before a render, with the keys PRIVATE_KEY names.

The agent process opens them and hands the plaintext to the render process through its pipe:
the private keys never leave the agent, and no file but the rendered config (and its copies in
the state directory, all 0600) ever holds a value. The opener lives as long as the agent: an
RSA-3072 `id_rsa` costs about 19 ms per decryption, so a directory of 1,000 secrets re-opened
on every change would spend about 19 s per change; cached by key and ciphertext, a change that
touches no secret opens none.

A secret that cannot be opened stops the whole apply (see `Applier`): rendering without it
would hand the service a config with a value missing or still encrypted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from etcdadmin.core.secrets.envelope import is_envelope
from etcdadmin.core.secrets.errors import NoMatchingKey, SecretError
from etcdadmin.core.secrets.opener import SecretOpener


@dataclass(frozen=True)
class Unsealed:
    """The entries to render, secrets replaced by their values, or why that was not possible."""

    entries: Mapping[bytes, bytes]
    secrets: int = 0
    # The first secret (in key order) that could not be opened, and how many could not.
    failure: SecretError | None = None
    failures: int = 0

    def failure_text(self) -> str:
        """The failure as the status record's `last_error`: the key and what to do, no value."""
        assert self.failure is not None
        text = str(self.failure)
        if self.failures > 1:
            text += f" ({self.failures - 1} more secrets in the directory cannot be opened either)"
        return text


class SecretValues:
    """Opens the secrets of the watched directory for the agent's whole life."""

    def __init__(self, identities: Sequence[object]) -> None:
        self._opener = SecretOpener(identities)
        # key -> (envelope, value) of the last render: the sync loop hands over the same bytes
        # objects while a key is unchanged, so one comparison (identity first) replaces the
        # opener's SHA-256 of each envelope. Measured with 1,000 cached secrets on a loaded
        # 2-core machine: 9 ms through the opener alone, 0.7 ms with this, for a render of
        # 19-55 ms (benchmarks/agent_secrets.py). It also holds a whole directory whatever
        # the opener's capacity, so a directory of more secrets than that is not re-decrypted.
        self._last: dict[bytes, tuple[bytes, bytes]] = {}

    @property
    def decryptions(self) -> int:
        """How many times age actually ran (cache misses), since the agent started."""
        return self._opener.decryptions

    def unseal(self, entries: Mapping[bytes, bytes]) -> Unsealed:
        opened: dict[bytes, bytes] = {}
        current: dict[bytes, tuple[bytes, bytes]] = {}
        failed: list[SecretError] = []
        last = self._last
        for key, value in entries.items():
            if not is_envelope(value):
                continue
            held = last.get(key)
            if held is not None and held[0] == value:
                plaintext = held[1]
            else:
                try:
                    plaintext = self._opener.open(key, value)
                except SecretError as exc:
                    failed.append(self._explained(exc))
                    continue
            opened[key] = plaintext
            current[key] = (value, plaintext)
        self._last = current
        if failed:
            first = min(failed, key=lambda exc: exc.key or "")
            return Unsealed(entries, failure=first, failures=len(failed))
        if not opened:
            return Unsealed(entries)
        return Unsealed({**entries, **opened}, secrets=len(opened))

    def _explained(self, exc: SecretError) -> SecretError:
        """Without PRIVATE_KEY, say so: the generic message would send the operator to the
        recipients when the agent is simply missing its key."""
        if isinstance(exc, NoMatchingKey) and not self._opener.has_identities:
            return NoMatchingKey(
                f"{exc.key}: the agent holds no private key to open this secret; set "
                "PRIVATE_KEY to the agent's key file (or a directory of key files) and restart it",
                exc.key,
            )
        return exc
