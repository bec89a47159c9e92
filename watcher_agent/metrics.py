"""`/healthz` and `/metrics` (Prometheus text format) on an optional local port.

The standard library's HTTP server is enough for two read-only endpoints; a metrics library
would add a dependency to the agent image for no gain.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


@dataclass
class Metrics:
    applied_revision: int = 0
    seen_revision: int = 0
    resyncs: int = 0
    restarts: int = 0
    rollbacks: int = 0
    apply_errors: int = 0
    # age decryptions since start: a change that touches no secret adds none (the cache).
    secret_decryptions: int = 0
    secret_values: int = 0
    last_tick: float = 0.0
    # The step the loop is in (e.g. "rendering"), since when, and how long it may take before
    # /healthz calls the loop stuck. Written by the loop's thread, read by the HTTP thread.
    busy_with: str | None = None
    busy_since: float = 0.0
    busy_bound: float = 0.0

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    def busy(self, step: str, bound: float) -> None:
        self.busy_since, self.busy_bound = time.monotonic(), bound
        self.busy_with = step

    def idle(self) -> None:
        self.busy_with = None
        self.tick()

    def health(self, stale_after: float) -> str | None:
        """None when healthy, else why not, in a few words."""
        now = time.monotonic()
        step = self.busy_with
        if step is not None and now - self.busy_since > self.busy_bound:
            return f"{step} for {now - self.busy_since:.0f} s"
        if now - self.last_tick >= stale_after:
            return "main loop stalled"
        return None

    def render(self) -> str:
        rows = [
            (
                "applied_revision",
                "gauge",
                "etcd revision of the config last applied",
                self.applied_revision,
            ),
            (
                "seen_revision",
                "gauge",
                "latest etcd revision the agent has seen",
                self.seen_revision,
            ),
            (
                "revision_lag",
                "gauge",
                "revisions seen but not yet applied",
                max(0, self.seen_revision - self.applied_revision),
            ),
            ("resyncs_total", "counter", "full re-reads of the watched directory", self.resyncs),
            ("restarts_total", "counter", "container restarts for a new config", self.restarts),
            (
                "rollbacks_total",
                "counter",
                "configs rolled back after a failed check",
                self.rollbacks,
            ),
            (
                "apply_errors_total",
                "counter",
                "changes that could not be applied",
                self.apply_errors,
            ),
            (
                "secret_decryptions_total",
                "counter",
                "secret values decrypted (values already opened are cached)",
                self.secret_decryptions,
            ),
            (
                "secret_values",
                "gauge",
                "secret values in the config last rendered",
                self.secret_values,
            ),
        ]
        lines = []
        for name, kind, help_text, value in rows:
            lines += [
                f"# HELP watcher_agent_{name} {help_text}",
                f"# TYPE watcher_agent_{name} {kind}",
                f"watcher_agent_{name} {value}",
            ]
        return "\n".join(lines) + "\n"


class _MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver prints a traceback to stderr for any error; a scraper that hung up
        # before its answer (its timeout ran out while the agent was busy) is no error of the
        # agent's, and anything else is one line in the log, not a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            return
        log.warning("a /metrics or /healthz request failed: %s", exc)


def bind(address: tuple[str, int]) -> ThreadingHTTPServer:
    """Bind the port now (before anything is written), serve later with `serve`."""
    return _MetricsServer(address, BaseHTTPRequestHandler)


def serve(server: ThreadingHTTPServer, metrics: Metrics, stale_after: float) -> None:
    """Serve on a daemon thread; /healthz fails when the main loop has stalled or is stuck."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                problem = metrics.health(stale_after)
                body = f"{problem or 'ok'}\n".encode()
                self._send(503 if problem else 200, body, "text/plain")
            elif self.path == "/metrics":
                self._send(200, metrics.render().encode(), "text/plain; version=0.0.4")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds would drown the event log

    server.RequestHandlerClass = Handler
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("serving /healthz and /metrics on %s:%s", *server.server_address[:2])
