"""Start-up and shutdown: settings, logging, the pieces wired together, signals."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

from etcdadmin import __version__
from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.etcd import EtcdConnection
from watcher_agent.apply import Applier
from watcher_agent.config_file import ConfigWriter
from watcher_agent.docker_control import HealthPolicy, ServedContainers
from watcher_agent.loop import SyncLoop
from watcher_agent.metrics import Metrics, serve
from watcher_agent.settings import AgentSettings
from watcher_agent.state import StateStore
from watcher_agent.status import StatusPublisher

log = logging.getLogger("watcher_agent")


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # grpc and docker log request details at DEBUG; keep them out even when debugging the agent.
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = AgentSettings.from_env()
    except EtcdAdminError as exc:
        log.error("bad configuration: %s", exc)
        return 2
    for warning in settings.warnings:
        log.warning("%s", warning)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    store = StateStore(settings.state_dir, settings.config_path, settings.history_keep)
    try:
        store.open()
    except EtcdAdminError as exc:
        log.error("%s", exc)
        return 2
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
    status = StatusPublisher(
        conn,
        settings.status_key,
        settings.status_ttl,
        {
            "agent_id": settings.agent_id,
            "directory": settings.watch_prefix,
            "config": str(settings.config_path),
            "containers": list(settings.containers),
            "version": __version__,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "applied_revision": store.state.applied_revision,
            "config_sha256": store.state.applied_sha,
            "last_result": "starting",
            "last_error": None,
        },
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
    applier = Applier(
        store=store,
        writer=ConfigWriter(settings.config_path),
        containers=containers,
        status=status,
        metrics=metrics,
        directory=settings.watch_prefix,
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
    )
    server = None
    if settings.metrics_addr:
        # An apply may legitimately take a restart, a health check and a rollback.
        stale_after = 2 * (settings.health_timeout + 60) * max(1, len(settings.containers)) + 30
        server = serve(metrics, settings.metrics_addr, stale_after=stale_after)
    status.start()
    try:
        loop.run(stop)
    finally:
        status.stop()
        if server is not None:
            server.shutdown()
        if containers is not None:
            containers.close()
        conn.close()
    log.info("stopped")
    return 0
