"""The agent's configuration, read from environment variables (the seed's names, kept exactly).

Every variable is documented in the README's configuration reference; a bad value stops the
agent at start with a message naming the variable, before anything is touched.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from etcdadmin.core.agents.status import status_prefix_for
from etcdadmin.core.errors import EtcdAdminError, EtcdError
from etcdadmin.core.etcd import ConnectionSettings
from etcdadmin.core.tree.directories import directory_prefix


class SettingsError(EtcdAdminError):
    """An environment variable is missing or malformed."""


_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, name: str) -> float:
    """Seconds from `1.5`, `500ms`, `2s`, `5m` or `1h`."""
    match = _DURATION.match(text)
    if not match:
        raise SettingsError(f"{name}={text!r} is not a duration: use e.g. 500ms, 2s or 5m")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class AgentSettings:
    etcd: ConnectionSettings
    watch_dir: str
    config_path: Path
    containers: tuple[str, ...]
    state_dir: Path
    agent_id: str
    private_key: Path | None = None
    docker_host: str | None = None
    health_url: str | None = None
    health_timeout: float = 60.0
    health_stable: float = 2.0
    debounce: float = 0.5
    debounce_max: float = 5.0
    resync_interval: float = 300.0
    status_prefix: str = "/etcdadmin/agents/"
    status_ttl: int = 30
    metrics_addr: tuple[str, int] | None = None
    history_keep: int = 5
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def watch_prefix(self) -> str:
        """The key prefix watched: the directory with exactly one trailing slash."""
        return directory_prefix(self.watch_dir)

    @property
    def status_key(self) -> str:
        prefix = status_prefix_for(self.watch_dir, self.status_prefix).decode("utf-8")
        return prefix + self.agent_id

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AgentSettings:
        env = os.environ if env is None else env
        warnings: list[str] = []

        def required(name: str, hint: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"{name} is not set: {hint}")
            return value

        def duration(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            return parse_duration(raw, name) if raw else default

        try:
            endpoints = ConnectionSettings.parse_endpoints(
                required("ETCD_HOST", "give etcd as host:port, or a comma list of them")
            )
        except EtcdError as exc:
            raise SettingsError(f"ETCD_HOST: {exc}") from None
        password = env.get("ETCD_PASSWORD") or None
        password_file = env.get("ETCD_PASSWORD_FILE", "").strip()
        if password_file:
            try:
                password = Path(password_file).read_text().rstrip("\n")
            except OSError as exc:
                raise SettingsError(
                    f"ETCD_PASSWORD_FILE={password_file}: cannot read it ({exc.strerror})"
                ) from None
        user = env.get("ETCD_USER", "").strip() or None
        if bool(user) != bool(password):
            raise SettingsError("ETCD_USER and ETCD_PASSWORD (or ETCD_PASSWORD_FILE) go together")
        tls = {
            name: env.get(name, "").strip() or None
            for name in ("ETCD_CACERT", "ETCD_CERT", "ETCD_KEY")
        }
        for name, path in tls.items():
            if path and not Path(path).is_file():
                raise SettingsError(f"{name}={path}: no such file")
        if (tls["ETCD_CERT"] or tls["ETCD_KEY"]) and not tls["ETCD_CACERT"]:
            raise SettingsError("ETCD_CERT/ETCD_KEY need ETCD_CACERT (TLS) as well")
        etcd = ConnectionSettings(
            endpoints=endpoints,
            user=user,
            password=password,
            ca_file=tls["ETCD_CACERT"],
            cert_file=tls["ETCD_CERT"],
            key_file=tls["ETCD_KEY"],
            timeout=duration("ETCD_TIMEOUT", 5.0),
        )

        watch_dir = required("WATCH_ETCD_DIR", "name the etcd directory to watch, e.g. hack")
        if directory_prefix(watch_dir) == "/":
            raise SettingsError(
                f"WATCH_ETCD_DIR={watch_dir} covers every key that starts with a slash, the "
                "agents' own status keys included: name a directory, not the whole key space"
            )
        config_path = Path(required("CONFIG", "give the path of the config file to render"))

        containers = tuple(
            c.strip() for c in env.get("SERVE_CONTAINER", "").split(",") if c.strip()
        )
        if not containers:
            warnings.append("SERVE_CONTAINER is not set: the config is rendered, nothing restarted")

        private_key = env.get("PRIVATE_KEY", "").strip()
        if private_key and not Path(private_key).is_file():
            warnings.append(f"PRIVATE_KEY={private_key}: no such file (needed for secret values)")

        state_raw = env.get("STATE_DIR", "").strip()
        state_dir = Path(state_raw) if state_raw else cls.default_state_dir(config_path)

        metrics = env.get("METRICS_ADDR", "").strip()
        metrics_addr = None
        if metrics:
            host, sep, port = metrics.rpartition(":")
            if not sep or not port.isdigit():
                raise SettingsError(f"METRICS_ADDR={metrics}: use host:port, e.g. 127.0.0.1:9180")
            metrics_addr = (host or "127.0.0.1", int(port))

        try:
            history_keep = int(env.get("HISTORY_KEEP", "5"))
            status_ttl = int(env.get("STATUS_TTL", "30"))
        except ValueError as exc:
            raise SettingsError(f"HISTORY_KEEP/STATUS_TTL must be whole numbers: {exc}") from None
        if status_ttl < 5:
            raise SettingsError("STATUS_TTL must be at least 5 seconds")

        return cls(
            etcd=etcd,
            watch_dir=watch_dir,
            config_path=config_path,
            containers=containers,
            state_dir=state_dir,
            agent_id=env.get("AGENT_ID", "").strip() or socket.gethostname(),
            private_key=Path(private_key) if private_key else None,
            docker_host=env.get("DOCKER_HOST", "").strip() or None,
            health_url=env.get("HEALTH_URL", "").strip() or None,
            health_timeout=duration("HEALTH_TIMEOUT", 60.0),
            health_stable=duration("HEALTH_STABLE", 2.0),
            debounce=duration("DEBOUNCE", 0.5),
            debounce_max=duration("DEBOUNCE_MAX", 5.0),
            resync_interval=duration("RESYNC_INTERVAL", 300.0),
            status_prefix=env.get("STATUS_PREFIX", "/etcdadmin/agents/"),
            status_ttl=status_ttl,
            metrics_addr=metrics_addr,
            history_keep=max(1, history_keep),
            warnings=tuple(warnings),
        )

    @staticmethod
    def default_state_dir(config_path: Path) -> Path:
        """Next to the config when its directory is a mount of its own, else /var/lib.

        A state directory beside the config survives container re-creation whenever the
        config's directory is mounted, which is the setup the README recommends.
        """
        parent = config_path.parent
        if parent != Path("/") and os.access(parent, os.W_OK):
            return parent / ".watcher-agent"
        return Path("/var/lib/watcher-agent")
