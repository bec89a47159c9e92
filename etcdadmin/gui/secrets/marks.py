"""Which listed keys of the tree hold a secret: asked of etcd for the rows the tree shows.

The tree loads keys only, so a row does not know its value. When rows are listed (a directory
opened, a page loaded) or a listed key changes in etcd, their keys are probed on a worker in
batches (`find_secret_keys`) and the model marks the secret ones with a lock.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QTimer

from etcdadmin.core.secrets.finder import find_secret_keys
from etcdadmin.gui.session import Session
from etcdadmin.gui.tree.model import KeyTreeModel
from etcdadmin.gui.workers import run_task

log = logging.getLogger(__name__)

# Rows are listed in bursts (1,000 per fetch, every page of a load): probe once per burst.
PROBE_DELAY_MS = 100


class SecretMarks(QObject):
    """Keeps `model.secret_keys` true for the keys the tree has listed.

    Signals: none; it updates the model, whose dataChanged repaints the rows.
    """

    def __init__(self, model: KeyTreeModel) -> None:
        super().__init__()
        self.model = model
        self.session: Session | None = None
        self._listed: set[bytes] = set()
        self._pending: set[bytes] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PROBE_DELAY_MS)
        self._timer.timeout.connect(self._probe)
        model.rowsInserted.connect(self._rows_inserted)
        model.modelReset.connect(self._reset)

    def set_session(self, session: Session | None) -> None:
        self.session = session
        self._reset()

    def _reset(self) -> None:
        self._listed.clear()
        self._pending.clear()

    def _rows_inserted(
        self, parent: QModelIndex | QPersistentModelIndex, first: int, last: int
    ) -> None:
        keys = self.model.listed_keys(parent, first, last)
        if keys:
            self._listed.update(keys)
            self._pending.update(keys)
            self._timer.start()

    def keys_changed(self, changed: set[bytes]) -> None:
        """Listed keys written or deleted elsewhere may have become, or stopped being, secret."""
        touched = changed & self._listed
        if touched:
            self._pending.update(touched)
            self._timer.start()

    def probe_now(self, keys: set[bytes]) -> None:
        """Probe `keys` at once (after the operator's own apply, for instance)."""
        self._pending.update(keys & self._listed)
        self._probe()

    def _probe(self) -> None:
        if self.session is None or not self._pending:
            return
        keys, self._pending = sorted(self._pending), set()
        conn, model = self.session.conn, self.model
        session = self.session

        def done(found: set[bytes]) -> None:
            if self.session is session:
                model.mark_secrets(set(keys), found)

        run_task(
            "find secret keys",
            lambda task: find_secret_keys(conn, keys),
            done,
            lambda exc: log.warning("could not tell which keys are secret: %s", type(exc).__name__),
            owner=self,
        )
