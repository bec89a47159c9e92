"""The agent on three TLS members with auth on, logged in as its own user by its client
certificate: when the member it is connected to stops while keys change, it applies every
change (its final config holds exactly the keys etcd holds)."""

from __future__ import annotations

import json
import re
import subprocess
import threading

from etcdadmin.core.errors import EtcdUnavailable
from tests.agent.test_sync import rendered, wait_config
from tests.stack.procs import wait_until
from tests.stack.secure import AGENT, DIRECTORY, OPERATOR, SecureCluster


def _members_connected_to(pid: int, ports: list[int]) -> list[int]:
    """Indexes of the members (by client port) process `pid` has a TCP connection to, as
    `ss` sees them: the agent's own view, not the connection's idea of it."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established"], capture_output=True, text=True, check=True
    ).stdout
    connected = set()
    for line in out.splitlines():
        if f"pid={pid}," not in line:
            continue
        peer = line.split()[3]  # Recv-Q Send-Q Local Peer Process
        port = int(re.sub(r".*:", "", peer))
        if port in ports:
            connected.add(ports.index(port))
    return sorted(connected)


def test_an_agent_whose_member_stops_while_keys_change_applies_every_change(
    secure_cluster: SecureCluster, make_agent
):
    pki = secure_cluster.client(AGENT)
    agent = make_agent(
        {
            "ETCD_HOST": secure_cluster.endpoints,
            "ETCD_CACERT": str(secure_cluster.ca),
            "ETCD_CERT": str(pki.cert),
            "ETCD_KEY": str(pki.key),
            "WATCH_ETCD_DIR": DIRECTORY,
            "DEBOUNCE": "50ms",
        }
    )
    secure_cluster.etcdctl_as(OPERATOR, "put", f"{DIRECTORY}/log/level", "debug")
    wait_config(agent, lambda c: c["log"]["level"] == "debug", "level from etcd")
    assert agent.proc is not None
    ports = [member.client_port for member in secure_cluster.cluster.members]
    wait_until(
        lambda: _members_connected_to(agent.proc.pid, ports) != [],
        10,
        "the agent connected to a member",
    )
    stopped = _members_connected_to(agent.proc.pid, ports)[0]

    written = 0
    done = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        # The operator, over TLS with her password, through the core's connection. A put made
        # while the cluster elects a new leader (its member may be the one stopped) can be
        # refused as unavailable: she puts the same value again, as anyone would.
        nonlocal written
        try:
            with secure_cluster.connect(OPERATOR, with_password=True) as alice:
                while not done.is_set() or written < 60:
                    key, value = f"{DIRECTORY}/failover/k{written:03d}", f"v{written}"
                    wait_until(lambda k=key, v=value: _put(alice, k, v), 30, f"put {key}")
                    written += 1
        except BaseException as exc:
            failures.append(exc)

    writer = threading.Thread(target=write, name="operator-writes")
    writer.start()
    try:
        wait_until(lambda: written >= 20 or bool(failures), 30, "the first writes")
        secure_cluster.cluster.stop_member(stopped)
        at_stop = written
        wait_until(lambda: written >= at_stop + 20 or bool(failures), 60, "writes after the stop")
        done.set()
        writer.join(timeout=60)
        assert not failures, failures
        in_etcd = {
            kv["key"]: kv["value"]
            for kv in _etcdctl_json(secure_cluster, "get", "--prefix", f"{DIRECTORY}/failover/")
        }
        expected = {key.rsplit("/", 1)[1]: value for key, value in in_etcd.items()}
        assert len(expected) == written
        wait_config(
            agent,
            lambda c: c.get("failover") == expected,
            f"all {written} keys rendered after the member stopped",
            timeout=60,
        )
        assert agent.proc.poll() is None, "the agent kept running"
        assert _members_connected_to(agent.proc.pid, ports) != [stopped]
        status = json.loads(
            secure_cluster.etcdctl(
                "get", f"/etcdadmin/agents/{DIRECTORY}/{AGENT}", "--print-value-only"
            )
        )
        assert status["agent_id"] == AGENT
        assert "Traceback" not in agent.log()
        assert rendered(agent)["log"]["level"] == "debug"
    finally:
        done.set()
        writer.join(timeout=60)
        secure_cluster.cluster.start_member(stopped)


def _put(conn, key: str, value: str) -> bool:
    try:
        conn.put(key, value)
    except EtcdUnavailable:
        return False
    return True


def _etcdctl_json(secure_cluster: SecureCluster, *args: str) -> list[dict[str, str]]:
    """etcdctl's JSON output with keys and values decoded (it prints them base64)."""
    import base64

    out = json.loads(secure_cluster.etcdctl(*args, "-w", "json"))
    return [
        {
            "key": base64.b64decode(kv["key"]).decode(),
            "value": base64.b64decode(kv["value"]).decode(),
        }
        for kv in out.get("kvs", [])
    ]
