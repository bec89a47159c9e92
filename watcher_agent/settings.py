"""The agent's configuration, read from environment variables (the seed's names, kept exactly).

Every variable is documented in the README's configuration reference; a bad value stops the
agent at start with a message naming the variable, before anything is touched.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from etcdadmin.core.agents.status import status_prefix_for
from etcdadmin.core.certs.identity import certificate_user
from etcdadmin.core.errors import ConnectionSettingsError, EtcdAdminError
from etcdadmin.core.etcd import ConnectionSettings
from etcdadmin.core.etcd.settings import parse_endpoint_list
from etcdadmin.core.releases.gray import ReleaseError, gray_prefix, parse_labels
from etcdadmin.core.secrets.errors import BadKeyFile
from etcdadmin.core.secrets.identities import LoadedKey, key_paths, load_key_files
from etcdadmin.core.tree.directories import directory_prefix


class SettingsError(EtcdAdminError):
    """An environment variable is missing or malformed."""


_DURATION = re.compile(r"^\s*([0-9]{1,30}(?:\.[0-9]{1,9})?)\s*(ms|s|m|h)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"^\s*([0-9]{1,9})\s*([KMG])i?B?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def parse_duration(text: str, name: str) -> float:
    """Seconds from `1.5`, `500ms`, `2s`, `5m` or `1h`; 30 digits at most, so never infinite."""
    match = _DURATION.match(text)
    if not match:
        raise SettingsError(f"{name}={text!r} is not a duration: use e.g. 500ms, 2s or 5m")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _describe(seconds: float) -> str:
    for unit, size in (("h", HOUR), ("m", MINUTE), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms"


def parse_size(text: str, name: str) -> int:
    """Bytes from `512M`, `1G`, `1GiB`."""
    match = _SIZE.match(text)
    if not match:
        raise SettingsError(f"{name}={text!r} is not a size: use e.g. 512M or 1G")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


def _agent_id(
    env: Mapping[str, str], user: str | None, cert: str | None, warnings: list[str]
) -> str:
    """AGENT_ID, else the etcd user (ETCD_USER, or the client certificate's CN), else the
    hostname. A team grants each agent user read-write on `<status prefix><dir><user>` only
    (etcdadmin access team create), so an agent with its own user publishes under that name."""
    given = env.get("AGENT_ID", "").strip()
    login = user or (certificate_user(cert) if cert else None)
    if given and login and given != login:
        warnings.append(
            f"AGENT_ID={given} differs from the etcd user {login}: a team's agent may write "
            "only the status key named after its user; unset AGENT_ID or make them equal"
        )
    return given or login or socket.gethostname()


def read_config_file(path: Path) -> str:
    """The config file's text, refusing what cannot be a config (checked, never blocking).

    Opened non-blocking and checked with fstat: a FIFO would otherwise block the open (and the
    agent with it, deaf to SIGTERM) until something writes to it.
    """
    where = f"CONFIG={path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SettingsError(
            f"{where}: no such file; mount the service's config there (CONFIG names it)"
        ) from None
    except OSError as exc:
        raise SettingsError(f"{where}: cannot open it ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SettingsError(f"{where} is a directory; name the config file inside it")
        if not stat.S_ISREG(st.st_mode):
            raise SettingsError(
                f"{where} is not a regular file (a FIFO, socket or device); name the "
                "service's config file"
            )
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read it ({exc.strerror})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if not data.strip():
        raise SettingsError(
            f"{where} is empty; the agent renders onto the service's own config, so put it "
            "there first (a YAML mapping such as `version: 0.1`)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{where} is not UTF-8 text") from None


def load_private_keys(spec: str) -> list[LoadedKey]:
    """The keys PRIVATE_KEY names (a comma list of files, or a directory of them), all usable.

    One bad file stops the agent: running with part of its keys would leave some secrets
    unreadable and look like a broken secret rather than a broken setting. Each path is checked
    with stat first: reading a FIFO named there would block the agent before it can answer
    SIGTERM.
    """
    paths = key_paths(spec)
    if not paths:
        raise SettingsError(
            f"PRIVATE_KEY={spec}: no key file there; name the agent's private key file, a "
            "comma list of them, or a directory holding them"
        )
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise SettingsError(
                f"PRIVATE_KEY: {path} does not exist; mount the agent's private key there "
                "(`etcdadmin keys new` makes one)"
            ) from None
        except OSError as exc:
            raise SettingsError(f"PRIVATE_KEY: cannot read {path} ({exc.strerror})") from None
        if not stat.S_ISREG(mode):
            raise SettingsError(
                f"PRIVATE_KEY: {path} is not a regular file; name the private key file, or a "
                "directory holding key files"
            )
    try:
        return load_key_files(spec)
    except BadKeyFile as exc:
        raise SettingsError(f"PRIVATE_KEY: {exc}") from None


# The default debounce, from benchmarks/agent_latency.py on a busy 2-core machine (two runs of
# 5 bursts per window): 50 puts from one client (about 1 ms apart) were one apply from 50 ms on;
# from a shell loop of `etcdctl put` processes (gaps p50 30 ms, p99 72 ms) 75 ms still split
# two bursts of ten, 100 ms none. Put-to-written p50 with it: 115-131 ms.
DEFAULT_DEBOUNCE = 0.1


@dataclass(frozen=True)
class AgentSettings:
    etcd: ConnectionSettings
    watch_dir: str
    config_path: Path
    containers: tuple[str, ...]
    state_root: Path
    agent_id: str
    # PRIVATE_KEY as given: a comma list of key files or a directory (`load_private_keys`).
    private_key: str | None = None
    docker_host: str | None = None
    health_url: str | None = None
    health_timeout: float = 60.0
    health_stable: float = 2.0
    debounce: float = DEFAULT_DEBOUNCE
    debounce_max: float = 5.0
    resync_interval: float = 300.0
    render_timeout: float = 10.0
    render_memory: int = 1 << 30
    status_prefix: str = "/etcdadmin/agents/"
    status_ttl: int = 30
    metrics_addr: tuple[str, int] | None = None
    history_keep: int = 5
    log_level: str = "INFO"
    # AGENT_LABELS: what gray releases may target this agent by (`region=eu,tier=web`).
    labels: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def gray_prefix(self) -> str:
        """Where the gray releases of the watched directory live (followed too)."""
        return gray_prefix(self.watch_dir.encode("utf-8")).decode("utf-8")

    @property
    def watch_prefix(self) -> str:
        """The key prefix watched: the directory with exactly one trailing slash."""
        return directory_prefix(self.watch_dir)

    @property
    def status_key(self) -> str:
        prefix = status_prefix_for(self.watch_dir, self.status_prefix).decode("utf-8")
        return prefix + self.agent_id

    @property
    def state_dir(self) -> Path:
        """This config's own state: agents whose configs share a directory never share one."""
        return self.state_root / self.config_path.name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AgentSettings:
        env = os.environ if env is None else env
        warnings: list[str] = []

        def required(name: str, hint: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"{name} is not set: {hint}")
            return value

        def duration(name: str, default: float, low: float, high: float, zero: bool) -> float:
            raw = env.get(name, "").strip()
            seconds = parse_duration(raw, name) if raw else default
            if seconds == 0 and not zero:
                raise SettingsError(f"{name}={raw} must be more than zero")
            if seconds < low or seconds > high:
                raise SettingsError(
                    f"{name}={raw} is out of range: use {_describe(low)} to {_describe(high)}"
                )
            return seconds

        def whole(name: str, default: int, low: int, high: int) -> int:
            raw = env.get(name, "").strip() or str(default)
            if not re.fullmatch(r"-?[0-9]{1,30}", raw):
                raise SettingsError(f"{name}={raw[:40]!r} is not a whole number")
            if not low <= int(raw) <= high:
                raise SettingsError(f"{name}={raw} is out of range: use {low} to {high}")
            return int(raw)

        log_level = env.get("LOG_LEVEL", "INFO").strip().upper()
        if log_level not in LOG_LEVELS:
            raise SettingsError(
                f"LOG_LEVEL={env.get('LOG_LEVEL', '')!r} is not a level: use "
                + ", ".join(LOG_LEVELS)
            )
        hosts = required("ETCD_HOST", "give etcd as host:port, or a comma list of them")
        try:
            endpoints = parse_endpoint_list(hosts)
        except ConnectionSettingsError as exc:
            raise SettingsError(f"ETCD_HOST: {exc}") from None
        password = env.get("ETCD_PASSWORD") or None
        password_file = env.get("ETCD_PASSWORD_FILE", "").strip()
        if password_file:
            try:
                password = Path(password_file).read_bytes().decode("utf-8").rstrip("\n")
            except OSError as exc:
                raise SettingsError(
                    f"ETCD_PASSWORD_FILE={password_file}: cannot read it ({exc.strerror})"
                ) from None
            except UnicodeDecodeError:
                raise SettingsError(
                    f"ETCD_PASSWORD_FILE={password_file} is not UTF-8 text; write the password "
                    "as UTF-8"
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
        if bool(tls["ETCD_CERT"]) != bool(tls["ETCD_KEY"]):
            raise SettingsError(
                "ETCD_CERT and ETCD_KEY go together: the client certificate and its private key"
            )
        etcd = ConnectionSettings(
            endpoints=endpoints.addresses,
            user=user,
            password=password,
            ca_file=tls["ETCD_CACERT"],
            cert_file=tls["ETCD_CERT"],
            key_file=tls["ETCD_KEY"],
            timeout=duration("ETCD_TIMEOUT", 5.0, 0.01, 10 * MINUTE, zero=False),
            tls=endpoints.https,  # https:// is TLS even without ETCD_CACERT
        )

        watch_dir = required("WATCH_ETCD_DIR", "name the etcd directory to watch, e.g. hack")
        if directory_prefix(watch_dir) == "/":
            raise SettingsError(
                f"WATCH_ETCD_DIR={watch_dir} covers every key that starts with a slash, the "
                "agents' own status keys included: name a directory, not the whole key space"
            )
        config_path = Path(required("CONFIG", "give the path of the config file to render"))
        if not config_path.name or config_path.name in (".", ".."):
            raise SettingsError(f"CONFIG={config_path} names no file")

        containers = tuple(
            c.strip() for c in env.get("SERVE_CONTAINER", "").split(",") if c.strip()
        )
        if not containers:
            warnings.append("SERVE_CONTAINER is not set: the config is rendered, nothing restarted")

        private_key = env.get("PRIVATE_KEY", "").strip() or None

        state_raw = env.get("STATE_DIR", "").strip()
        state_root = Path(state_raw) if state_raw else cls.default_state_root(config_path)

        metrics = env.get("METRICS_ADDR", "").strip()
        metrics_addr = None
        if metrics:
            host, sep, port = metrics.rpartition(":")
            if not sep or not port.isdigit() or len(port) > 5 or not 1 <= int(port) <= 65535:
                raise SettingsError(
                    f"METRICS_ADDR={metrics}: use host:port with a port from 1 to 65535, "
                    "e.g. 127.0.0.1:9180"
                )
            metrics_addr = (host.strip("[]") or "127.0.0.1", int(port))

        debounce = duration("DEBOUNCE", DEFAULT_DEBOUNCE, 0.0, HOUR, zero=True)
        debounce_max = duration("DEBOUNCE_MAX", 5.0, 0.001, DAY, zero=False)
        if debounce_max < debounce:
            raise SettingsError(
                f"DEBOUNCE_MAX ({_describe(debounce_max)}) is shorter than DEBOUNCE "
                f"({_describe(debounce)}): it caps the wait, so make it at least as long"
            )
        memory_raw = env.get("RENDER_MEMORY", "").strip()
        render_memory = parse_size(memory_raw, "RENDER_MEMORY") if memory_raw else 1 << 30
        if not 256 << 20 <= render_memory <= 64 << 30:
            raise SettingsError(f"RENDER_MEMORY={memory_raw} is out of range: use 256M to 64G")

        try:
            labels = parse_labels(env.get("AGENT_LABELS", ""))
        except ReleaseError as exc:
            raise SettingsError(str(exc)) from None

        return cls(
            etcd=etcd,
            labels=labels,
            watch_dir=watch_dir,
            config_path=config_path,
            containers=containers,
            state_root=state_root,
            agent_id=_agent_id(env, user, tls["ETCD_CERT"], warnings),
            private_key=private_key,
            docker_host=env.get("DOCKER_HOST", "").strip() or None,
            health_url=env.get("HEALTH_URL", "").strip() or None,
            health_timeout=duration("HEALTH_TIMEOUT", 60.0, 0.1, DAY, zero=False),
            health_stable=duration("HEALTH_STABLE", 2.0, 0.0, HOUR, zero=True),
            debounce=debounce,
            debounce_max=debounce_max,
            resync_interval=duration("RESYNC_INTERVAL", 300.0, 1.0, 7 * DAY, zero=False),
            render_timeout=duration("RENDER_TIMEOUT", 10.0, 0.1, HOUR, zero=False),
            render_memory=render_memory,
            status_prefix=env.get("STATUS_PREFIX", "/etcdadmin/agents/"),
            # A lease outliving a dead agent by more than a day hides that it died.
            status_ttl=whole("STATUS_TTL", 30, 5, int(DAY)),
            metrics_addr=metrics_addr,
            history_keep=whole("HISTORY_KEEP", 5, 1, 1000),
            log_level=log_level,
            warnings=tuple(warnings),
        )

    @staticmethod
    def default_state_root(config_path: Path) -> Path:
        """Next to the config when its directory is a mount of its own, else /var/lib.

        A state directory beside the config survives container re-creation whenever the
        config's directory is mounted, which is the setup the README recommends.
        """
        parent = config_path.parent
        if parent != Path("/") and os.access(parent, os.W_OK):
            return parent / ".watcher-agent"
        return Path("/var/lib/watcher-agent")
