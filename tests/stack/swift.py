"""A real OpenStack Swift "all in one" for tests: memcached, three storage servers and a proxy.

Everything (configs, rings, storage, logs) lives under the given state directory, except
``/etc/swift/swift.conf``: Swift reads that fixed path whatever ``swift_dir`` says.
"""

from __future__ import annotations

import getpass
import os
import socket
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tests.stack.procs import (
    ManagedProcess,
    StackError,
    free_port,
    require_binary,
    run_checked,
    wait_until,
)

if TYPE_CHECKING:
    import swiftclient

START_TIMEOUT = 60.0
SWIFT_CONF = Path("/etc/swift/swift.conf")
STORAGE_SERVERS = ("account", "container", "object")

# Debian's swift package ships this file; only a broken install lacks it. The hash prefix and
# suffix only salt object placement, so fixed values are fine for throw-away test storage.
_FALLBACK_SWIFT_CONF = """\
# Written by etcdadmin's test stack (tests/stack/swift.py) because the file was missing.
[swift-hash]
swift_hash_path_suffix = etcdadmin-stack
swift_hash_path_prefix = etcdadmin-stack

[storage-policy:0]
name = Policy-0
default = yes
"""


class SwiftAIO:
    """Swift all-in-one under ``state_dir``, authenticated with tempauth as ``test:tester``.

    Tempauth keeps its tokens in memcached: without it every auth request hangs and then
    answers 503, so our own memcached runs on a private port. Servers log to syslog by default;
    they run with ``--verbose`` so their log also reaches stderr, which goes to a file here.
    """

    user = "test:tester"
    key = "testing"

    def __init__(self, state_dir: Path) -> None:
        self.memcached_bin = require_binary("memcached", "memcached")
        self.ring_builder_bin = require_binary("swift-ring-builder", "swift")
        self.server_bins = {
            kind: require_binary(f"swift-{kind}-server", f"swift-{kind}")
            for kind in (*STORAGE_SERVERS, "proxy")
        }
        self.state_dir = Path(state_dir)
        self.devices_dir = self.state_dir / "devices"
        self.memcached_port = free_port()
        self.proxy_port = free_port()
        self.ports = {kind: free_port() for kind in STORAGE_SERVERS}
        # Syslog datagrams go to a loopback port nobody reads: the --verbose copy is the log.
        self.syslog_port = free_port()
        self._processes: list[ManagedProcess] = []

    def __repr__(self) -> str:
        return f"SwiftAIO({self.auth_url})"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}/auth/v1.0"

    @property
    def memcache_server(self) -> str:
        return f"127.0.0.1:{self.memcached_port}"

    def connection(self) -> swiftclient.Connection:
        """A fresh authenticated client; swiftclient re-authenticates on its own when needed."""
        import swiftclient

        return swiftclient.Connection(
            authurl=self.auth_url,
            user=self.user,
            key=self.key,
            retries=1,
            timeout=30,
        )

    def start(self) -> None:
        """Write configs, build rings, start every process and wait for an authenticated HEAD."""
        ensure_swift_conf()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.devices_dir / "d1").mkdir(parents=True, exist_ok=True)
        try:
            self._build_rings()
            self._start_memcached()
            # All four boot side by side; the proxy needs its backends only when the first
            # request arrives. Start-up is CPU-bound (Python imports, ring builds) on two cores.
            servers = {kind: self._start_server(kind) for kind in (*STORAGE_SERVERS, "proxy")}
            proxy = servers.pop("proxy")
            for kind, process in servers.items():
                url = f"http://127.0.0.1:{self.ports[kind]}/healthcheck"
                process.wait_ready(partial(_http_ok, url), START_TIMEOUT, f"{kind} {url}")
            proxy.wait_ready(self._account_reachable, START_TIMEOUT, f"swift auth {self.auth_url}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the proxy first, then storage servers, then memcached; safe to call twice."""
        # Signal everyone first so the shutdowns overlap instead of adding up.
        for process in self._processes:
            process.terminate()
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()

    def stop_proxy(self) -> None:
        """Stop the proxy alone, as an outage of Swift's front door: clients get refused
        connections, in-flight uploads are cut; storage servers and memcached keep running."""
        self._proxy().stop()

    def start_proxy(self) -> None:
        """Start the proxy again on its port and wait until it authenticates."""
        proxy = self._proxy()
        proxy.start()
        proxy.wait_ready(self._account_reachable, START_TIMEOUT, f"swift auth {self.auth_url}")

    def _proxy(self) -> ManagedProcess:
        for process in self._processes:
            if process.name == "swift-proxy-server":
                return process
        raise StackError("the Swift proxy was never started: call start() first")

    def log_tails(self, n: int = 20) -> str:
        """Recent log lines of every process, for a failing test's message."""
        return "\n".join(f"== {p.name}\n{p.log_tail(n)}" for p in self._processes)

    def _account_reachable(self) -> bool:
        connection = self.connection()
        try:
            connection.head_account()
        finally:
            connection.close()
        return True

    def _build_rings(self) -> None:
        # Each swift-ring-builder call is a 0.7 s Python start-up; the three rings are
        # independent, so they are built side by side (9 calls: 6 s in a row, 3 s this way).
        with ThreadPoolExecutor(max_workers=len(STORAGE_SERVERS)) as pool:
            for future in [pool.submit(self._build_ring, kind) for kind in STORAGE_SERVERS]:
                future.result()

    def _build_ring(self, kind: str) -> None:
        # swift-ring-builder writes X.ring.gz next to X.builder; the servers read rings from
        # their swift_dir, so both are the state dir.
        builder = self.state_dir / f"{kind}.builder"
        if (self.state_dir / f"{kind}.ring.gz").exists():
            return
        builder.unlink(missing_ok=True)
        device = f"r1z1-127.0.0.1:{self.ports[kind]}/d1"
        for args in (["create", "6", "1", "1"], ["add", device, "1"], ["rebalance"]):
            run_checked(
                [self.ring_builder_bin, str(builder), *args],
                f"swift-ring-builder {kind} {args[0]}",
                cwd=self.state_dir,
            )

    def _start_memcached(self) -> None:
        # memcached refuses to run as root unless told which user to be.
        argv = [
            self.memcached_bin,
            "-l", "127.0.0.1",
            "-p", str(self.memcached_port),
            "-U", "0",
            "-u", getpass.getuser(),
            "-v",
        ]  # fmt: skip
        process = self._spawn("memcached", argv)
        process.wait_ready(
            lambda: _tcp_open(self.memcached_port),
            START_TIMEOUT,
            f"memcached on {self.memcache_server}",
        )

    def _start_server(self, kind: str) -> ManagedProcess:
        conf = self.state_dir / f"{kind}-server.conf"
        conf.write_text(self._config(kind))
        return self._spawn(f"swift-{kind}-server", [self.server_bins[kind], str(conf), "--verbose"])

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        # The servers are /usr/bin/python3 scripts: keep a venv's or a test run's Python
        # settings away from them.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        process = ManagedProcess(name, argv, self.state_dir / f"{name}.log", env=env)
        process.start()
        self._processes.append(process)
        return process

    def _config(self, kind: str) -> str:
        port = self.proxy_port if kind == "proxy" else self.ports[kind]
        common = _COMMON_CONF.format(
            port=port,
            user=getpass.getuser(),
            swift_dir=self.state_dir,
            devices=self.devices_dir,
            recon=self.state_dir / "recon",
            kind=kind,
            syslog_port=self.syslog_port,
        )
        if kind == "proxy":
            account, _, user = self.user.partition(":")
            return common + _PROXY_CONF.format(
                tempauth_user=f"user_{account}_{user} = {self.key} .admin",
                memcache=self.memcache_server,
            )
        return common + _STORAGE_CONF.format(kind=kind)


_COMMON_CONF = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 1
user = {user}
swift_dir = {swift_dir}
devices = {devices}
mount_check = false
disable_fallocate = true
recon_cache_path = {recon}
log_name = swift-{kind}
log_udp_host = 127.0.0.1
log_udp_port = {syslog_port}
"""

_PROXY_CONF = """
[pipeline:main]
pipeline = catch_errors proxy-logging cache tempauth slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
# tempauth users own no account until their first write: let the proxy create it.
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
{tempauth_user}

[filter:cache]
use = egg:swift#memcache
memcache_servers = {memcache}

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
"""

_STORAGE_CONF = """
[pipeline:main]
pipeline = healthcheck {kind}-server

[app:{kind}-server]
use = egg:swift#{kind}

[filter:healthcheck]
use = egg:swift#healthcheck
"""


def ensure_swift_conf() -> None:
    """Make sure ``/etc/swift/swift.conf`` exists: Swift ignores any other location."""
    if SWIFT_CONF.exists():
        return
    try:
        SWIFT_CONF.parent.mkdir(parents=True, exist_ok=True)
        SWIFT_CONF.write_text(_FALLBACK_SWIFT_CONF)
    except OSError as exc:
        raise StackError(
            f"{SWIFT_CONF} is missing and cannot be written ({exc}): apt-get install swift"
        ) from exc


def _tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def wait_for_objects(connection: swiftclient.Connection, container: str, timeout: float) -> None:
    """Wait until ``container`` exists and holds at least one object."""

    def has_objects() -> bool:
        _, objects = connection.get_container(container, limit=1)
        return bool(objects)

    wait_until(has_objects, timeout, f"objects in Swift container {container!r}")
