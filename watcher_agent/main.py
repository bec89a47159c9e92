"""Start-up and shutdown: settings, logging, the pieces wired together, signals."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from http.server import ThreadingHTTPServer
from types import FrameType

from etcdadmin import __version__
from etcdadmin.core.agents.record import StatusRecord, now_text
from etcdadmin.core.errors import EtcdAdminError, EtcdError
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.secrets.identities import identities
from watcher_agent.apply import Applier
from watcher_agent.config_file import ConfigWriter
from watcher_agent.docker_control import HealthPolicy, ServedContainers
from watcher_agent.loop import SyncLoop
from watcher_agent.metrics import Metrics, bind, serve
from watcher_agent.preflight import Preflight
from watcher_agent.preflight_settings import PreflightSettings
from watcher_agent.render_worker import RenderWorker
from watcher_agent.secret_values import SecretValues
from watcher_agent.settings import (
    AgentSettings,
    SettingsError,
    load_private_keys,
    read_config_file,
)
from watcher_agent.state import StateStore
from watcher_agent.state_layout import StateLock, migrate_shared_layout
from watcher_agent.status import StatusPublisher

log = logging.getLogger("watcher_agent")

# `docker stop` sends SIGKILL 10 s after SIGTERM by default: whatever the agent is blocked in
# (a restart's health check, etcd calls of ETCD_TIMEOUT each, a read), it exits on its own first.
STOP_GRACE = 8.0

# Exit codes: 2 bad configuration (before anything is touched); 4 etcd refused the agent's
# credentials or a permission it needs (its user, its grants); 143 killed after STOP_GRACE.
EXIT_CONFIG = 2
EXIT_REFUSED = 4


def _on_stop(stop: threading.Event) -> None:
    def force_exit() -> None:
        log.warning("not stopped %.0f s after the signal: exiting now", STOP_GRACE)
        logging.shutdown()
        os._exit(143)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            return
        log.info("signal %d: stopping", signum)
        stop.set()
        timer = threading.Timer(STOP_GRACE, force_exit)
        timer.daemon = True  # a clean stop must not wait for it
        timer.start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # grpc and docker log request details at DEBUG; keep them out even when debugging the agent.
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = threading.Event()
    _on_stop(stop)
    renderer: RenderWorker | None = None
    lock: StateLock | None = None
    try:
        settings = AgentSettings.from_env()
        preflight = PreflightSettings.from_env(os.environ, settings)
        logging.getLogger().setLevel(settings.log_level)
        renderer = RenderWorker(settings.render_timeout, settings.render_memory)
        # Everything is checked before the first write (the lock file, the state).
        server, base_text, secrets = _check(settings, renderer, stop)
        lock = StateLock(settings.state_dir)
        lock.acquire()
        store = StateStore(settings.state_dir, settings.config_path, settings.history_keep)
        migrate_shared_layout(settings.state_root, settings.state_dir, base_text.encode())
        store.open()
    except (EtcdAdminError, OSError) as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.error("bad configuration: %s", text)
        if renderer is not None:
            renderer.close()
        return EXIT_CONFIG
    for warning in settings.warnings:
        log.warning("%s", warning)
    try:
        return _run(settings, preflight, store, renderer, secrets, server, stop)
    finally:
        renderer.close()
        lock.release()


def _check(
    settings: AgentSettings, renderer: RenderWorker, stop: threading.Event
) -> tuple[ThreadingHTTPServer | None, str, SecretValues]:
    """The checks that need more than the environment: the config file, the private keys, the
    metrics port."""
    base_text = read_config_file(settings.config_path)
    keys = load_private_keys(settings.private_key) if settings.private_key else []
    server = None
    if settings.metrics_addr:
        try:
            server = bind(settings.metrics_addr)
        except OSError as exc:
            host, port = settings.metrics_addr
            raise SettingsError(
                f"METRICS_ADDR={host}:{port}: cannot listen there ({exc.strerror or exc}); "
                "choose a free local port"
            ) from None
    outcome = renderer.render(base_text, {}, settings.watch_prefix, stop=stop)
    if outcome.config is None:
        if server is not None:
            server.server_close()
        raise SettingsError(f"CONFIG={settings.config_path}: {outcome.error}")
    opening = identities(keys)
    if keys:
        log.info("%d private keys loaded for secret values", len(opening))
    return server, base_text, SecretValues(opening)


def _run(
    settings: AgentSettings,
    preflight_settings: PreflightSettings,
    store: StateStore,
    renderer: RenderWorker,
    secrets: SecretValues,
    server: ThreadingHTTPServer | None,
    stop: threading.Event,
) -> int:
    log.info(
        "watcher-agent %s: %s -> %s, containers %s, state in %s",
        __version__,
        settings.watch_prefix,
        settings.config_path,
        ",".join(settings.containers) or "(none)",
        settings.state_dir,
    )

    conn = EtcdConnection(settings.etcd)
    metrics = Metrics(applied_revision=store.state.applied_revision)
    refusals: list[EtcdError] = []

    def refused(error: EtcdError) -> None:
        if not refusals:
            refusals.append(error)
        stop.set()

    status = StatusPublisher(
        conn,
        settings.status_key,
        settings.status_ttl,
        StatusRecord(
            agent_id=settings.agent_id,
            directory=settings.watch_prefix,
            config=str(settings.config_path),
            containers=tuple(settings.containers),
            version=__version__,
            started_at=now_text(),
            updated_at=now_text(),
            applied_revision=store.state.applied_revision,
            config_sha256=store.state.applied_sha,
            labels=dict(settings.labels),
        ),
        on_refused=refused,
    )
    containers = (
        ServedContainers(
            settings.containers,
            settings.docker_host,
            HealthPolicy(settings.health_timeout, settings.health_stable, settings.health_url),
        )
        if settings.containers
        else None
    )
    preflight = None
    if preflight_settings.enabled:
        preflight = Preflight(
            preflight_settings,
            containers=containers,
            renderer=renderer,
            directory=settings.watch_prefix,
            config_path=settings.config_path,
            agent_id=settings.agent_id,
            state_dir=settings.state_dir,
            timeout=settings.health_timeout,
            stop=stop,
        )
        preflight.remove_leftovers()
        log.info("pre-flight: %s", preflight_settings.mode)
    applier = Applier(
        store=store,
        writer=ConfigWriter(settings.config_path),
        containers=containers,
        status=status,
        metrics=metrics,
        directory=settings.watch_prefix,
        renderer=renderer,
        secrets=secrets,
        stop=stop,
        preflight=preflight,
    )
    loop = SyncLoop(
        conn=conn,
        prefix=settings.watch_prefix,
        applier=applier,
        status=status,
        metrics=metrics,
        debounce=settings.debounce,
        debounce_max=settings.debounce_max,
        resync_interval=settings.resync_interval,
        cluster_id=store.state.cluster_id,
        on_refused=refused,
        gray_prefix=settings.gray_prefix,
        agent_id=settings.agent_id,
        labels=settings.labels,
    )
    if server is not None:
        # An apply may legitimately take a restart, a health check and a rollback.
        stale_after = 2 * (settings.health_timeout + 60) * max(1, len(settings.containers)) + 30
        serve(server, metrics, stale_after=stale_after)
    status.start()
    try:
        if not stop.is_set():
            loop.run(stop)
    finally:
        status.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
        if containers is not None:
            containers.close()
        conn.close()
    if refusals:
        log.error("etcd refused the agent, stopping: %s", refusals[0])
        return EXIT_REFUSED
    log.info("stopped")
    return 0
