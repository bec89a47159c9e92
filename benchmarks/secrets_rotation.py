"""Secrets at directory scale: apply -f with `!secret` values, and `keys rotate`, beside plain.

    .venv/bin/python -m benchmarks.secrets_rotation [--secrets 1000]

Starts a scratch etcd and a private gnome-keyring (for the operator's identity), publishes an
RSA-3072 agent key (as the seed demo's id_rsa) as the directory's recipient, then prints: the
first apply of a config whose `--secrets` values are all `!secret` (each sealed for the agent
and the operator), the plan of the same unchanged file (each envelope opened and compared: no
write), the same two for the config without the tag (plain values), and a rotation (open and
re-seal every secret, written in guarded batches of 128). Not a test; figures in the README.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from etcdadmin.core.changes.desired import apply_desired, plan_desired
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.secrets.identities import new_agent_key
from etcdadmin.core.secrets.recipients import Recipient, add_recipient
from etcdadmin.core.secrets.rotation import apply_rotation, plan_rotation
from etcdadmin.core.secrets.sealer import SecretSealer
from tests.stack.etcd import EtcdServer
from tests.stack.keyring_service import KeyringService


def config(count: int, tagged: bool) -> str:
    tag = "!secret " if tagged else ""
    lines = [f"service{n // 10:03d}:\n" if n % 10 == 0 else "" for n in range(count)]
    return "".join(
        f"{head}  password{n % 10}: {tag}pw-{n:06d}-value\n" for n, head in enumerate(lines)
    )


T = TypeVar("T")


def timed(label: str, work: Callable[[], T]) -> T:
    began = time.perf_counter()
    result = work()
    print(f"{label:<55} {time.perf_counter() - began:6.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=1000)
    count = parser.parse_args().secrets
    with tempfile.TemporaryDirectory(prefix="etcdadmin-bench-") as scratch:
        keyring = KeyringService(Path(scratch) / "keyring")
        keyring.start()
        server = EtcdServer(Path(scratch) / "etcd")
        server.start()
        os.environ.update(keyring.env)
        try:
            with EtcdConnection(ConnectionSettings((server.endpoint,))) as conn:
                run(conn, count)
        finally:
            server.stop()
            keyring.stop()


def one_directory(conn: EtcdConnection, directory: bytes, count: int, tagged: bool) -> None:
    text = config(count, tagged)
    what = "!secret" if tagged else "plain"
    sealing = " (seal each value)" if tagged else ""
    comparing = " (open and compare)" if tagged else ""
    plan = timed(
        f"{what}: first plan{sealing}",
        lambda: plan_desired(conn, directory, text, secrets=SecretSealer(conn)),
    )
    timed(f"{what}: apply ({len(plan.added)} keys)", lambda: apply_desired(conn, plan))
    again = timed(
        f"{what}: plan of the unchanged file{comparing}",
        lambda: plan_desired(conn, directory, text, secrets=SecretSealer(conn)),
    )
    assert again.empty


def run(conn: EtcdConnection, count: int) -> None:
    for directory in (b"secret/", b"plain/"):
        add_recipient(conn, directory, Recipient("agent", new_agent_key("rsa").public_key))
    print(f"{count} values, recipients: an RSA-3072 agent key and the operator (X25519)")
    one_directory(conn, b"secret/", count, tagged=True)
    one_directory(conn, b"plain/", count, tagged=False)
    rotation = timed(
        "rotation: plan (open and re-seal each secret)",
        lambda: plan_rotation(conn, b"secret/", SecretSealer(conn, join=False)),
    )
    timed(f"rotation: apply ({rotation.count} keys)", lambda: apply_rotation(conn, rotation))


if __name__ == "__main__":
    main()
