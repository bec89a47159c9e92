"""Pre-flight: a new config is tried before the live service sees it.

A config that fails is never written to the live config file and the live containers are not
touched: the apply ends as `preflight_failed`, with the canary's exit code and last log lines
(every secret value of the config masked), and the config is quarantined. Two checks, in order:

- `PREFLIGHT_CMD` runs against the staged file (confd's `check_cmd`): non-zero exit fails;
- `PREFLIGHT=container` runs a canary of each served container (`watcher_agent.canary`) on a
  copy of the config whose listen address (`PREFLIGHT_ADDR_KEY`) is moved to
  127.0.0.1:`PREFLIGHT_PORT` (or a free port), probed at HEALTH_URL with that port.

Staged files live in a private (0700) directory under `PREFLIGHT_DIR`, each file 0600, and are
removed when the check ends; canaries carry labels naming the agent and its state, and both are
removed at the next start when the agent was killed in the middle of a pre-flight.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from etcdadmin.core.config.mapping import flatten_text
from etcdadmin.core.config.sensitive import is_secret, is_secret_key
from etcdadmin.core.errors import EtcdAdminError
from watcher_agent.canary import (
    CANARY_LABEL,
    CANARY_STATE_LABEL,
    Canary,
    CanaryFailed,
    CanarySetupError,
    find_config_mount,
    remove_leftovers,
)
from watcher_agent.docker_control import DockerError, ServedContainers
from watcher_agent.host_paths import HostPaths
from watcher_agent.preflight_settings import PreflightSettings
from watcher_agent.render_worker import RenderWorker

log = logging.getLogger(__name__)

MASK = "(secret)"
OUTPUT_LINES = 10


class PreflightFailed(EtcdAdminError):
    """The new config failed its pre-flight; `quarantine` is False when the setup, not the
    config, is at fault (nothing to remember about the config)."""

    def __init__(self, message: str, quarantine: bool = True) -> None:
        super().__init__(message)
        self.quarantine = quarantine


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by `(secret)`, longest first (a value holding
    another is masked whole)."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def free_port() -> int:
    """A port nothing listens on right now on 127.0.0.1 (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe_url_on(url: str | None, port: int) -> str | None:
    """HEALTH_URL with the canary's address: same scheme and path, 127.0.0.1:`port`."""
    if not url:
        return None
    return urllib.parse.urlsplit(url)._replace(netloc=f"127.0.0.1:{port}").geturl()


class Preflight:
    def __init__(
        self,
        settings: PreflightSettings,
        *,
        containers: ServedContainers | None,
        renderer: RenderWorker,
        directory: str,
        config_path: Path,
        agent_id: str,
        state_dir: Path,
        timeout: float,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.containers = containers
        self.renderer = renderer
        self.directory = directory
        self.config_path = config_path
        self.timeout = timeout
        self.stop = stop
        self.labels = {CANARY_LABEL: agent_id, CANARY_STATE_LABEL: str(state_dir)}
        # Staged directories of this agent's state only: PREFLIGHT_DIR may be shared.
        self._prefix = f"canary-{hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]}-"
        self._host_paths: HostPaths | None = None

    def remove_leftovers(self) -> None:
        """Remove the canaries and staged configs a killed agent left behind."""
        staging = self.settings.staging_dir
        if staging.is_dir():
            for entry in staging.glob(f"{self._prefix}*"):
                shutil.rmtree(entry, ignore_errors=True)
                log.info("removed a staged config left by an earlier run")
        if self.settings.canary and self.containers is not None:
            try:
                count = remove_leftovers(self.containers.client(), self.labels)
            except DockerError as exc:
                # Docker away at start is no reason to stop: the apply reports it if it lasts.
                log.warning("cannot look for leftover canaries: %s", exc)
                return
            if count:
                log.info("removed %d canary containers left by an earlier run", count)

    def check(self, rendered: bytes, targets: list[Any], secrets: Iterable[str]) -> None:
        """Raise PreflightFailed when `rendered` fails; DockerError when Docker does."""
        secrets = list(secrets)
        with self._staged() as staged_dir:
            staged = staged_dir / self.config_path.name
            if self.settings.command:
                self._write(staged, rendered)
                self._run_command(staged, secrets)
            if self.settings.canary:
                for live in targets:
                    self._run_canary(live, rendered, staged, secrets)

    @contextlib.contextmanager
    def _staged(self) -> Iterator[Path]:
        try:
            self.settings.staging_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = Path(tempfile.mkdtemp(prefix=self._prefix, dir=self.settings.staging_dir))
        except OSError as exc:
            raise PreflightFailed(
                f"cannot stage the config in {self.settings.staging_dir}: "
                f"{exc.strerror or exc}; set PREFLIGHT_DIR to a writable directory",
                quarantine=False,
            ) from None
        try:
            yield path  # mkdtemp makes it 0700
        finally:
            shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    def _run_command(self, staged: Path, secrets: list[str]) -> None:
        argv = [word.replace("{}", str(staged)) for word in self.settings.command]
        log.info("running PREFLIGHT_CMD on the staged config")
        try:
            done = subprocess.run(
                argv,
                env={**os.environ, "CONFIG_STAGED": str(staged)},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise PreflightFailed(
                f"PREFLIGHT_CMD: {argv[0]} not found; install it or fix PREFLIGHT_CMD",
                quarantine=False,
            ) from None
        except subprocess.TimeoutExpired:
            raise PreflightFailed(
                f"PREFLIGHT_CMD did not finish within HEALTH_TIMEOUT ({self.timeout:g} s)"
            ) from None
        except OSError as exc:
            raise PreflightFailed(
                f"PREFLIGHT_CMD cannot run: {exc.strerror or exc}", quarantine=False
            ) from None
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode("utf-8", "replace")
            lines = [line for line in output.splitlines() if line.strip()][-OUTPUT_LINES:]
            tail = masked("\n".join(lines), secrets)
            raise PreflightFailed(
                f"PREFLIGHT_CMD failed (exit code {done.returncode})"
                + (f"; its last output:\n{tail}" if tail else "")
            )

    def _run_canary(self, live: Any, rendered: bytes, staged: Path, secrets: list[str]) -> None:
        assert self.containers is not None
        if self._host_paths is None:
            self._host_paths = HostPaths.discover(self.containers.client())
        host_config = self._host_paths.host_path(self.config_path)
        mount = find_config_mount(live.attrs, host_config) if host_config else None
        if mount is None:
            raise PreflightFailed(
                f"no bind mount of container {live.name} holds {self.config_path}; mount the "
                "config's directory into it, or set PREFLIGHT=off (or PREFLIGHT=cmd)",
                quarantine=False,
            )
        port = self.settings.port or free_port()
        config = self._moved_to(rendered, port)
        self._write(staged, config)
        canary = Canary(self.containers, self.labels, self.stop)
        try:
            took = canary.run(
                live,
                mount,
                config,
                self._host_paths.host_path(staged),
                probe_url_on(self.containers.policy.url, port),
            )
        except CanarySetupError as exc:
            raise PreflightFailed(str(exc), quarantine=False) from None
        except CanaryFailed as exc:
            if self.stop is not None and self.stop.is_set():
                raise PreflightFailed("the agent is stopping", quarantine=False) from None
            code = f"exit code {exc.exit_code}" if exc.exit_code is not None else "still running"
            tail = masked(exc.log_tail, secrets)
            raise PreflightFailed(
                f"the canary of {live.name} failed ({code}): {exc.why}"
                + (f"; its last log lines:\n{tail}" if tail else "")
            ) from None
        log.info("the canary of %s passed in %.1f s", live.name, took)

    def _moved_to(self, rendered: bytes, port: int) -> bytes:
        """The config with its listen address on 127.0.0.1:`port`, through the same render
        (child process, bounded) as every config: the config is built from untrusted values."""
        if not self.settings.addr_key:
            return rendered
        key = self.directory + self.settings.addr_key.replace(".", "/")
        outcome = self.renderer.render(
            rendered.decode("utf-8"),
            {key.encode(): f"127.0.0.1:{port}".encode()},
            self.directory,
            stop=self.stop,
        )
        if outcome.interrupted:
            raise PreflightFailed("the agent is stopping", quarantine=False)
        if outcome.config is None:
            raise PreflightFailed(
                f"cannot move the canary's {self.settings.addr_key} (PREFLIGHT_ADDR_KEY) to "
                f"port {port}: {outcome.error}"
            )
        return outcome.config


def secret_texts(
    entries: Mapping[bytes, bytes], unsealed: Mapping[bytes, bytes], base_text: str, directory: str
) -> list[str]:
    """Every secret value the rendered config can hold, as a log could spell it: the values of
    secret keys and of opened secrets (`core.config.sensitive`), and the base config's secret
    values; each as written and without its YAML quotes."""
    found: list[str] = []
    for key, value in entries.items():
        relative = key.decode("utf-8", "replace").removeprefix(directory)
        if is_secret(relative, value):
            found.extend(_spellings(unsealed.get(key, value).decode("utf-8", "replace")))
    try:
        base = flatten_text(base_text, directory) if base_text else {}
    except EtcdAdminError:
        base = {}  # the base rendered before; a parse failure here only loses masking of it
    for name, text in base.items():
        if is_secret_key(name.removeprefix(directory)):
            found.extend(_spellings(text))
    return found


def _spellings(text: str) -> list[str]:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return [text, text[1:-1]]
    return [text]
