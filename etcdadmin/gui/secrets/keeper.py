"""The operator's access to secrets on one connection: sealing, opening and re-sealing.

Every method here blocks (the OS keyring is a D-Bus call, the recipients an etcd read, an
RSA recipient costs milliseconds per seal), so they are called from workers only, inside the
function handed to `run_task`; the panels turn the results into staged changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.secrets.sealer import SecretSealer

log = logging.getLogger(__name__)


class SecretKeeper:
    """Seals and opens the secrets of one session with the operator's identity.

    The identity is loaded from the keyring (created there on first use) by the first call,
    not at connect: a client that never touches a secret never asks the keyring. A failure
    (`KeyringUnavailable`, `NoRecipients`) is raised to the caller and tried again next time,
    so installing or unlocking a keyring needs no reconnect.
    """

    def __init__(self, conn: EtcdConnection) -> None:
        self._conn = conn
        # One worker at a time: the sealer's decryption cache is a plain OrderedDict.
        self._lock = threading.Lock()
        self._sealer: SecretSealer | None = None

    def _ready(self) -> SecretSealer:
        if self._sealer is None:
            self._sealer = SecretSealer(self._conn)
            log.info("operator identity loaded for sealing")
        else:
            # recipients added since (by `etcdadmin keys add`, another operator) take effect
            self._sealer.refresh()
        return self._sealer

    def seal(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """The envelope of each (key, value), in order (worker thread)."""
        with self._lock:
            sealer = self._ready()
            return [sealer.seal(key, value) for key, value in items]

    def open(self, key: bytes, envelope: bytes) -> bytes:
        """The value sealed at `key`, for an explicit reveal (worker thread)."""
        with self._lock:
            if self._sealer is None:
                self._sealer = SecretSealer(self._conn)
            return self._sealer.open(key, envelope)

    def reseal(self, moves: Sequence[tuple[bytes, bytes, bytes]]) -> list[bytes]:
        """Each (source key, envelope, target key) sealed again for its target (worker thread):
        a secret copied to another key must be made for that key and its recipients."""
        with self._lock:
            sealer = self._ready()
            return [sealer.reseal(source, envelope, target) for source, envelope, target in moves]
