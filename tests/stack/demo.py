"""The seed demo on the real stack: `python -m tests.stack.demo` (the README's first command).

Brings up etcd, Swift, a private dockerd, a registry whose Swift password is wrong (so it is
down) and the watcher agent container, prints how to set the password and watch the registry
come up, then waits until Ctrl-C and stops everything it started.

The password is a secret: the agent gets an `id_rsa` made with `ssh-keygen`, its public key is
published as the recipient of the demo's directory, and `etcdadmin secret put` stores the
password encrypted to it (etcd never holds the plaintext; the agent opens it to render the
registry's config). Without a desktop session (no D-Bus session bus) the demo starts a keyring
of its own for the operator's identity and prints how to reach it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.secrets.recipients import Recipient, add_recipient
from tests.stack.demo_secure import SecureDemo
from tests.stack.docker_daemon import STACK_LABELS, DockerDaemon
from tests.stack.etcd import EtcdServer
from tests.stack.images import (
    BASE_TAG,
    build_agent_image,
    build_base_image,
    build_registry_image,
)
from tests.stack.keyring_service import KeyringService
from tests.stack.procs import StackError, free_port, run_checked
from tests.stack.registry import (
    CONFIG_NAME,
    registry_config,
    run_registry,
    write_registry_config,
)
from tests.stack.secure import start_secure_cluster
from tests.stack.swift import SwiftAIO

REPO = Path(__file__).resolve().parents[2]
DIRECTORY = "hack"


def _port(preferred: int) -> int:
    with socket.socket() as probe:
        # etcd and the registry (Go) bind with SO_REUSEADDR: a port in TIME_WAIT is free to them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def _stop_client(client: subprocess.Popen[bytes]) -> None:
    client.terminate()
    try:
        client.wait(timeout=10)
    except subprocess.TimeoutExpired:
        client.kill()
        client.wait()


def agent_key(directory: Path) -> Path:
    """The agent's key pair, as an operator makes one: `ssh-keygen -t rsa` (3072 bits)."""
    directory.mkdir(mode=0o700)
    path = directory / "id_rsa"
    run_checked(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-C", "watcher", "-f", str(path)],
        "ssh-keygen of the agent's key",
    )
    return path


def publish_agent_key(settings: ConnectionSettings, directory: str, key: Path) -> None:
    """The agent's public key as the recipient of the directory's secrets."""
    public_key = key.with_name(key.name + ".pub").read_text()
    with EtcdConnection(settings) as conn:
        add_recipient(conn, directory, Recipient("watcher", public_key, "agent"))


def operator_keyring(root: Path, cleanup: contextlib.ExitStack) -> str:
    """What to put before `etcdadmin secret put` so it finds an OS keyring: nothing in a
    desktop session, else the bus of a keyring the demo starts (and stops) itself."""
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return ""
    try:
        keyring = KeyringService(root / "keyring")
        cleanup.callback(keyring.stop)
        keyring.start()
    except StackError as exc:
        print(f"no OS keyring for `etcdadmin secret put` ({exc})", flush=True)
        return ""
    return f"DBUS_SESSION_BUS_ADDRESS={keyring.address} "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--exit-after-start",
        action="store_true",
        help="stop everything as soon as the demo is up (for checking the command itself)",
    )
    parser.add_argument("--no-client", action="store_true", help="do not open the desktop client")
    parser.add_argument(
        "--secure",
        action="store_true",
        help="three etcd members with TLS and auth on, a team, the agent as its own user",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    # The state directory must outlive the services in it: entered first, left last.
    with (
        tempfile.TemporaryDirectory(prefix="etcdadmin-demo-") as tmp,
        contextlib.ExitStack() as cleanup,
    ):
        root = Path(tmp)
        print("starting etcd, Swift and a private dockerd on 127.0.0.1 ...", flush=True)
        secure: SecureDemo | None = None
        if args.secure:
            print("making certificates, three TLS members, auth and a team ...", flush=True)
            secure = SecureDemo(start_secure_cluster(root / "secure"), REPO)
            cleanup.callback(secure.stack.stop)
        else:
            etcd = EtcdServer(root / "etcd", "demo", client_port=_port(2379))
            etcd.start()
            cleanup.callback(etcd.stop)
        directory = secure.directory if secure else DIRECTORY
        swift = SwiftAIO(root / "swift")
        swift.start()
        cleanup.callback(swift.stop)
        dockerd = DockerDaemon(root / "docker")
        dockerd.start()
        cleanup.callback(dockerd.stop)
        client = dockerd.client()
        print("building images (the first run takes about a minute) ...", flush=True)
        registry_image = build_registry_image(client)
        build_base_image(client, BASE_TAG)
        agent_image = build_agent_image(client, REPO, BASE_TAG)

        key = agent_key(root / "agent-key")
        publish_agent_key(
            secure.stack.settings("root") if secure else ConnectionSettings((etcd.endpoint,)),
            directory,
            key,
        )
        keyring_env = operator_keyring(root, cleanup)

        port = _port(5000)
        config_dir = root / "registry"
        write_registry_config(
            config_dir, registry_config(swift, "wrong-password", container="registry", port=port)
        )
        registry = run_registry(client, registry_image, config_dir, "registry", port)
        cleanup.callback(registry.remove, force=True)
        agent = client.containers.run(
            agent_image,
            name="watcher",
            detach=True,
            network_mode="host",
            volumes={
                str(config_dir): {"bind": "/etc/docker/registry", "mode": "rw"},
                str(key): {"bind": "/id_rsa", "mode": "ro"},
                str(dockerd.socket_path): {"bind": "/var/run/docker.sock", "mode": "rw"},
                **(secure.agent_volumes() if secure else {}),
            },
            environment={
                **(secure.agent_environment() if secure else {"ETCD_HOST": etcd.endpoint}),
                "WATCH_ETCD_DIR": directory,
                "CONFIG": f"/etc/docker/registry/{CONFIG_NAME}",
                "PRIVATE_KEY": "/id_rsa",
                "SERVE_CONTAINER": "registry",
                "HEALTH_URL": f"http://127.0.0.1:{port}/v2/",
            },
            labels=STACK_LABELS,
        )
        cleanup.callback(agent.remove, force=True)

        client_cmd = (
            secure.client_command()
            if secure
            else [str(REPO / ".venv/bin/etcdadmin"), "--endpoints", etcd.endpoint, "--name", "demo"]
        )
        if not args.no_client and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            client = subprocess.Popen(client_cmd)
            cleanup.callback(_stop_client, client)
            client_line = "the desktop client is open, connected to the demo's etcd"
        else:
            client_line = "no display here: start the client on a desktop with\n    " + " ".join(
                client_cmd
            )
        etcdctl = "" if secure else f"ETCDCTL_API=3 etcdctl --endpoints {etcd.endpoint}"
        etcdadmin = (
            ""
            if secure
            else f"{keyring_env}{REPO / '.venv/bin/etcdadmin'} --endpoints {etcd.endpoint}"
        )
        password_key = f"{DIRECTORY}/storage/swift/password"
        print(
            secure.up_message(
                swift, port, config_dir / CONFIG_NAME, dockerd.host, client_line, keyring_env
            )
            if secure
            else f"""
The demo is up.
  etcd      {etcd.endpoint}
  Swift     {swift.auth_url}  (user {swift.user}, key {swift.key})
  registry  http://127.0.0.1:{port}/v2/  is DOWN: its Swift password is wrong
  agent     container 'watcher', watching {DIRECTORY}/ -> {config_dir / CONFIG_NAME}
            its key {key} (public key published as the recipient of {DIRECTORY}/)
  docker    docker -H {dockerd.host} ps -a   (logs: docker -H {dockerd.host} logs -f watcher)
  client    {client_line}

Set the right password in etcd, encrypted to the agent's key, and watch the registry come back:
  printf %s {swift.key} | {etcdadmin} secret put {password_key}
  {etcdctl} get {password_key}     # ciphertext only
  curl -i http://127.0.0.1:{port}/v2/
  {etcdctl} get --prefix /etcdadmin/agents/     # the agent's status

Press Ctrl-C to stop everything.""",
            flush=True,
        )
        if not args.exit_after_start:
            stop.wait()
        print("stopping ...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
