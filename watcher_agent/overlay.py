"""The gray releases an agent follows: the second prefix it reads then watches.

Beside its directory the agent follows `/etcdadmin/gray/<directory prefix>`, where gray
releases live (`etcdadmin.core.releases.gray`), with the same `Follower` and the same
guarantees. A release whose targets name this agent's id or labels is applied on top of the
directory's keys before rendering; the others are ignored. Because targets may be labels, an
agent replaced by a new one with the same labels applies the same releases.

An agent whose etcd user may not read the gray prefix (a role made before gray releases
existed) logs it once and renders the directory alone: a missing grant must not take down a
service that runs no gray release.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from etcdadmin.core.errors import EtcdPermissionDenied
from etcdadmin.core.etcd import Page, WatchEvent
from etcdadmin.core.etcd.follow import FollowConsumer
from etcdadmin.core.releases.gray import GrayRelease, overlay, releases_from_keys

log = logging.getLogger(__name__)


class GrayReleases(FollowConsumer):
    """The gray keys of one directory as followed, and the overlay they make for one agent.

    `on_change()` is called (under the caller's lock) when the releases changed or were read
    for the first time; `tick` is the loop's, so the gray follower keeps the loop's timers
    running too.
    """

    def __init__(
        self,
        agent_id: str,
        labels: Mapping[str, str],
        lock: threading.RLock,
        on_change: Callable[[int], None],
        tick: Callable[[], float | None],
    ) -> None:
        self.agent_id = agent_id
        self.labels = dict(labels)
        self.ready = False
        self.revision = 0
        self._lock = lock
        self._on_change = on_change
        self._tick = tick
        self._keys: dict[bytes, bytes] = {}
        self._reading: dict[bytes, bytes] = {}
        self._releases: list[GrayRelease] = []
        self.stop = threading.Event()

    def apply_to(self, keys: Mapping[bytes, bytes]) -> tuple[dict[bytes, bytes], tuple[str, ...]]:
        """The directory's keys with this agent's releases on top, and the releases' ids."""
        return overlay(keys, self._releases, self.agent_id, self.labels)

    def load_started(self) -> None:
        self._reading = {}

    def page_loaded(self, page: Page) -> None:
        assert page.values is not None
        self._reading.update(zip(page.keys, page.values, strict=True))

    def loaded(self, revision: int, cluster_id: int) -> None:
        with self._lock:
            keys, self._reading = self._reading, {}
            first = not self.ready
            self.ready, self.revision = True, revision
            if first or keys != self._keys:
                self._keys = keys
                self._changed(revision)

    def changed(self, events: Sequence[WatchEvent], revision: int) -> None:
        with self._lock:
            self.revision = revision
            if not events:
                return
            for event in events:
                if event.kind == "put":
                    self._keys[event.kv.key] = event.kv.value
                else:
                    self._keys.pop(event.kv.key, None)
            self._changed(revision)

    def failed(self, error: Exception) -> None:
        if isinstance(error, EtcdPermissionDenied):
            log.warning(
                "cannot read the gray releases of this directory (%s); rendering the directory "
                "alone: grant the agent's role read on /etcdadmin/gray/<directory>/ to follow them",
                error,
            )
            with self._lock:
                self.stop.set()
                if not self.ready:
                    self.ready = True
                    self._on_change(0)

    def tick(self) -> float | None:
        with self._lock:
            return self._tick()

    def _changed(self, revision: int) -> None:
        self._releases = releases_from_keys(self._keys.items())
        log.info(
            "gray releases: %d active, %d targeting this agent",
            len(self._releases),
            sum(r.targets(self.agent_id, self.labels) for r in self._releases),
        )
        self._on_change(revision)
