"""One apply: render the keys onto the base, write the file, restart, check, roll back on failure.

The order is what keeps the running config safe: open the secrets (one that cannot be opened
stops here), render (a bad value stops here), look the containers up (a missing one stops
here), try it before the live service sees it (`preflight`: a canary container or
PREFLIGHT_CMD; a failure stops here and is quarantined), and only then write; a config that
fails its health check is replaced by the last-known-good one and quarantined so it is not
retried in a loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from etcdadmin.core.errors import EtcdAdminError
from watcher_agent.config_file import ConfigWriter, read_bytes, sha256
from watcher_agent.docker_control import DockerError, HealthCheckFailed, ServedContainers
from watcher_agent.metrics import Metrics
from watcher_agent.preflight import Preflight, PreflightFailed, secret_texts
from watcher_agent.render_worker import SLOW_RENDER, Rendered, RenderWorker, stop_timeout_for
from watcher_agent.secret_values import SecretValues
from watcher_agent.state import StateStore
from watcher_agent.status import StatusPublisher

log = logging.getLogger(__name__)

__all__ = ["Applier", "ApplyResult", "stop_timeout_for"]


@dataclass(frozen=True)
class ApplyResult:
    """What happened; `retry` asks the loop to try the same revision again later."""

    result: str
    error: str | None = None
    retry: bool = False
    key: str | None = None
    # For a secret that cannot be opened: `no_matching_key`, `damaged` or `moved`.
    reason: str | None = None


class Applier:
    def __init__(
        self,
        *,
        store: StateStore,
        writer: ConfigWriter,
        containers: ServedContainers | None,
        status: StatusPublisher,
        metrics: Metrics,
        directory: str,
        renderer: RenderWorker,
        secrets: SecretValues | None = None,
        stop: threading.Event | None = None,
        preflight: Preflight | None = None,
    ) -> None:
        self.renderer = renderer
        self.preflight = preflight
        self.secrets = secrets or SecretValues(())
        self.stop = stop
        self.store = store
        self.writer = writer
        self.containers = containers
        self.status = status
        self.metrics = metrics
        self.directory = directory
        self._stop_timeout = 0

    def apply(self, entries: Mapping[bytes, bytes], revision: int) -> ApplyResult:
        outcome = self._apply(entries, revision)
        if outcome.result == "stopped":
            return outcome
        self.status.update(seen_revision=revision)
        if outcome.result == "ok":
            self.metrics.applied_revision = revision
            self.status.update(
                applied_revision=revision,
                config_sha256=self.store.state.applied_sha,
                last_result="ok",
                last_error=None,
                failed_key=None,
                failed_reason=None,
            )
        else:
            self.metrics.apply_errors += 1
            self.status.update(
                failed_revision=revision,
                config_sha256=self.store.state.applied_sha,
                last_result=outcome.result,
                last_error=outcome.error,
                failed_key=outcome.key,
                failed_reason=outcome.reason,
            )
        return outcome

    def _render(self, entries: Mapping[bytes, bytes]) -> Rendered:
        started = time.time()
        self.metrics.busy("rendering", SLOW_RENDER)

        slow_seen = False

        def slow() -> None:
            # The status must not keep saying `ok` while a render holds the loop.
            nonlocal slow_seen
            slow_seen = True
            log.warning("render still running after %.0f s", time.time() - started)
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
            self.status.update(last_result="rendering", rendering_since=since)

        try:
            return self.renderer.render(
                self.store.base_text, entries, self.directory, stop=self.stop, on_slow=slow
            )
        finally:
            self.metrics.idle()
            if slow_seen:
                self.status.update(rendering_since=None)

    def _apply(self, entries: Mapping[bytes, bytes], revision: int) -> ApplyResult:
        before, started = self.secrets.decryptions, time.monotonic()
        unsealed = self.secrets.unseal(entries)
        self.metrics.secret_decryptions = self.secrets.decryptions
        if self.secrets.decryptions > before:
            log.info(
                "decrypted %d secret values in %.2f s",
                self.secrets.decryptions - before,
                time.monotonic() - started,
            )
        if unsealed.failure is not None:
            return self._fail(
                "secret_failed",
                unsealed.failure_text(),
                key=unsealed.failure.key,
                reason=unsealed.failure.reason,
            )
        self.metrics.secret_values = unsealed.secrets
        # A config holding a decrypted secret is written 0600 (and stays so: a later write
        # keeps the file's mode), like every rendered config in the state directory.
        private = unsealed.secrets > 0
        outcome = self._render(unsealed.entries)
        if outcome.interrupted:
            return ApplyResult("stopped")
        if outcome.config is None:
            if outcome.bug:
                # A real bug: where it happened, never what the value was.
                log.error("render failed on an unexpected error:\n%s", "\n".join(outcome.bug))
            result = "render_timeout" if outcome.timed_out else "render_failed"
            return self._fail(result, outcome.error or "render failed", key=outcome.key)
        rendered = outcome.config
        self._stop_timeout = outcome.stop_timeout
        sha = sha256(rendered)
        state = self.store.state
        try:
            on_disk = read_bytes(self.writer.path)
        except OSError as exc:
            return self._write_failed(exc)
        if on_disk == rendered and state.applied_sha == sha:
            if state.applied_revision != revision:
                self.store.record_applied(rendered, revision)
            return ApplyResult("ok")
        if sha in state.quarantined:
            if state.applied_sha != sha256(self.store.last_good):
                return self._restore_last_good(state.quarantined[sha])
            return self._fail(
                "quarantined",
                f"this config (sha256 {sha[:12]}) failed its health check at revision "
                f"{state.quarantined[sha]}; the last good config stays. Change the keys to retry",
            )
        targets: list[Any] = []
        if self.containers is not None:
            try:
                targets = self.containers.resolve()
            except DockerError as exc:
                return self._fail("docker_failed", str(exc), retry=True)
        if self.preflight is not None:
            secrets = secret_texts(entries, unsealed.entries, self.store.base_text, self.directory)
            failed = self._preflight(rendered, targets, secrets, sha, revision)
            if failed is not None:
                return failed
        if on_disk != rendered:
            try:
                self._write(rendered, private=private)
            except OSError as exc:
                return self._write_failed(exc)
            self.store.add_history(rendered, revision)
            log.info("config written: revision %d, sha256 %s", revision, sha[:12])
        if not targets:
            self.store.record_applied(rendered, revision)
            return ApplyResult("ok")
        try:
            self._restart(targets, rendered)
        except DockerError as exc:
            return self._fail("docker_failed", str(exc), retry=True)
        except HealthCheckFailed as exc:
            return self._roll_back(targets, sha, revision, str(exc))
        self.store.record_applied(rendered, revision)
        log.info("revision %d applied", revision)
        return ApplyResult("ok")

    def _preflight(
        self, rendered: bytes, targets: list[Any], secrets: list[str], sha: str, revision: int
    ) -> ApplyResult | None:
        """None when `rendered` passed its pre-flight; else the result, the live config and
        containers untouched (a failing config is quarantined like one rolled back)."""
        assert self.preflight is not None
        try:
            self.preflight.check(rendered, targets, secrets)
        except DockerError as exc:
            return self._fail("docker_failed", str(exc), retry=True)
        except PreflightFailed as exc:
            if self.stop is not None and self.stop.is_set():
                return ApplyResult("stopped")
            if exc.quarantine:
                self.store.record_rollback(self.store.last_good, sha, revision, healthy=False)
            return self._fail("preflight_failed", str(exc))
        return None

    def _write(self, data: bytes, *, private: bool = False) -> None:
        self.store.note_writing(data)
        self.writer.write(data, private=private)

    def _restart(self, targets: list[Any], rendered: bytes) -> None:
        assert self.containers is not None
        # A fresh render carries its stop timeout from the render process; the last good config
        # (rendered, checked and run before) is read here.
        timeout = self._stop_timeout if rendered is not self.store.last_good else None
        self.containers.restart_and_check(targets, timeout or stop_timeout_for(rendered))
        self.metrics.restarts += 1

    def _write_failed(self, exc: OSError) -> ApplyResult:
        return self._fail(
            "write_failed",
            f"cannot write {self.writer.path}: {exc.strerror or exc}; check the mount and free "
            "space (the running config is unchanged)",
            retry=True,
        )

    def _roll_back(
        self, targets: list[Any], failed_sha: str, revision: int, why: str
    ) -> ApplyResult:
        log.error("revision %d failed its health check: %s; rolling back", revision, why)
        self.metrics.rollbacks += 1
        good = self.store.last_good
        healthy = False
        try:
            self._write(good)
            self._restart(targets, good)
            healthy = True
            after = "the last good config is running again"
        except (EtcdAdminError, OSError) as exc:
            after = f"the last good config did not come back either: {exc}"
            log.error("rollback of revision %d failed: %s", revision, exc)
        self.store.record_rollback(good, failed_sha, revision, healthy)
        # A failed rollback is retried: the next attempt restores the last good config again.
        return self._fail("rolled_back", f"{why}; rolled back: {after}", retry=not healthy)

    def _restore_last_good(self, failed_at: int) -> ApplyResult:
        """The keys still ask for a quarantined config and the last good one is not running
        (its rollback failed): bring the last good one back."""
        good = self.store.last_good
        try:
            targets = self.containers.resolve() if self.containers is not None else []
            if read_bytes(self.writer.path) != good:
                self._write(good)
            if targets:
                self._restart(targets, good)
        except (EtcdAdminError, OSError) as exc:
            return self._fail(
                "rollback_failed", f"the last good config does not come back: {exc}", retry=True
            )
        self.store.state.applied_sha = sha256(good)
        self.store.save()
        return self._fail(
            "quarantined",
            f"the keys still ask for a config that failed its health check at revision "
            f"{failed_at}; the last good config is running again. Change the keys to retry",
        )

    def _fail(
        self,
        result: str,
        error: str,
        retry: bool = False,
        key: str | None = None,
        reason: str | None = None,
    ) -> ApplyResult:
        log.error("not applied (%s): %s", result, error)
        return ApplyResult(result, error, retry, key, reason)
