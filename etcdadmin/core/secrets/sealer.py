"""Turning a value an operator typed into the envelope written to etcd, for the CLI and client.

The operator's identity (OS keyring, created on first use) joins the recipients of the
directory it writes a secret into, so the operator can read back what they wrote. A directory
with no recipients at all is refused: a secret there would only be readable by its writer,
never by the agent that needs it.
"""

from __future__ import annotations

import logging

from etcdadmin.core.etcd.client import EtcdConnection
from etcdadmin.core.secrets.envelope import is_envelope, seal
from etcdadmin.core.secrets.opener import SecretOpener
from etcdadmin.core.secrets.operator import (
    OperatorIdentity,
    default_name,
    load_operator_identity,
)
from etcdadmin.core.secrets.recipients import (
    Recipient,
    RecipientBook,
    add_recipient,
    normalize_public_key,
    pyrage_recipients,
)

log = logging.getLogger(__name__)


class SecretSealer:
    """Seals and opens secrets for one operator on one connection.

    Reads the recipients once; `refresh()` re-reads them (after `keys add`, for instance).
    """

    def __init__(
        self, conn: EtcdConnection, identity: OperatorIdentity | None = None, *, join: bool = True
    ) -> None:
        self._conn = conn
        self.identity = identity or load_operator_identity(create=True)
        assert self.identity is not None
        self._join = join
        self.book = RecipientBook.read(conn)
        self.opener = SecretOpener([self.identity.to_pyrage()])

    def refresh(self) -> None:
        self.book = RecipientBook.read(self._conn)

    def recipients_for(self, key: bytes) -> tuple[Recipient, ...]:
        """The recipients a secret at `key` goes to, the operator joining them if needed."""
        recipients = self.book.for_key(key)  # NoRecipients when the directory has none
        assert self.identity is not None
        mine = normalize_public_key(self.identity.public_key)
        if self._join and all(normalize_public_key(r.public_key) != mine for r in recipients):
            directory = self.book.governing(key)
            assert directory is not None
            me = Recipient(default_name(), self.identity.public_key, "operator")
            add_recipient(self._conn, directory, me)
            log.info("added the operator's key to the recipients of a directory")
            self.refresh()
            recipients = self.book.for_key(key)
        return recipients

    def seal(self, key: bytes, value: bytes) -> bytes:
        """The envelope for `value` at `key`."""
        return seal(key, value, pyrage_recipients(self.recipients_for(key)))

    def open(self, key: bytes, envelope: bytes) -> bytes:
        """The value of the secret at `key` (only for an explicit reveal)."""
        return self.opener.open(key, envelope)

    def reseal(self, source_key: bytes, envelope: bytes, target_key: bytes) -> bytes:
        """A secret copied from `source_key` to `target_key`, for the target's recipients."""
        recipients = pyrage_recipients(self.recipients_for(target_key))
        return self.opener.reseal(source_key, envelope, target_key, recipients)

    @staticmethod
    def is_secret_value(value: bytes | None) -> bool:
        return is_envelope(value)
