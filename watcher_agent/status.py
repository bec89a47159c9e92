"""The agent's status, published in etcd under a lease so a dead agent disappears.

Key: `<STATUS_PREFIX>/<watched dir>/<agent id>` (default `/etcdadmin/agents/hack/<hostname>`),
outside the watched directory so publishing never triggers the agent itself. Value: the JSON
`StatusRecord` (`etcdadmin.core.agents.record`, the one definition the client reads too). The
publisher runs on its own thread so a slow or dead etcd never holds up applying a config.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from etcdadmin.core.agents.record import StatusRecord
from etcdadmin.core.errors import EtcdError, EtcdPermissionDenied
from etcdadmin.core.etcd import EtcdConnection

log = logging.getLogger(__name__)


class StatusPublisher:
    """Keeps the status key current; `update()` may be called from any thread."""

    def __init__(
        self,
        conn: EtcdConnection,
        key: str,
        ttl: int,
        base: StatusRecord,
        on_refused: Callable[[EtcdError], None] | None = None,
    ) -> None:
        self.conn = conn
        self.on_refused = on_refused
        self.key = key
        self.ttl = ttl
        self._status = base
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._lease: int | None = None
        self._thread = threading.Thread(target=self._run, name="status", daemon=True)
        self._failing = False

    def start(self) -> None:
        self._thread.start()

    def update(self, **fields: Any) -> None:
        """Change record fields (names of `StatusRecord`; any other raises TypeError)."""
        with self._lock:
            self._status = self._status.replace_fields(**fields)
        self._changed.set()

    def snapshot(self) -> StatusRecord:
        with self._lock:
            return self._status

    def _run(self) -> None:
        heartbeat = max(1.0, self.ttl / 3)
        while not self._stopping.is_set():
            changed = self._changed.wait(heartbeat)
            if self._stopping.is_set():
                break
            self._changed.clear()
            try:
                self._publish(force=changed)
                if self._failing:
                    log.info("status key %s published again", self.key)
                self._failing = False
            except EtcdError as exc:
                if isinstance(exc, EtcdPermissionDenied) and self.on_refused:
                    self.on_refused(exc)
                if not self._failing:
                    log.warning("cannot publish status: %s", exc)
                self._failing = True
                self._lease = None
                self._changed.set()
                self._stopping.wait(2.0)

    def _publish(self, force: bool) -> None:
        if self._stopping.is_set():
            return  # stop() revokes the lease: do not grant a new one behind its back
        if self._lease is not None and self.conn.refresh_lease(self._lease) <= 0:
            self._lease = None  # expired while etcd was away: the key went with it
        if self._lease is None:
            self._lease = self.conn.grant_lease(self.ttl)
            force = True
        if force:
            body = self.snapshot().to_json()
            self.conn.put(self.key, body, lease=self._lease)

    def stop(self) -> None:
        """Stop and remove the key: a stopped agent is no longer an agent."""
        self._stopping.set()
        self._changed.set()
        # One publish is at most three etcd calls of ETCD_TIMEOUT each.
        self._thread.join(timeout=3 * self.conn.settings.timeout + 1)
        if self._lease is not None:
            with contextlib.suppress(EtcdError):
                self.conn.revoke_lease(self._lease)
