"""`bash .ci/demo --secure`: the seed demo on the README's production setup.

Three etcd members with TLS for clients and between members, auth on, team `registry` on
`registry-test` (operator `alice`, agent `agent-1`), made by `tests.stack.secure` with the
product's own functions. The agent container logs in as `agent-1` with a client certificate
whose CN names it; the operator fixes the password as `alice`, over TLS.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.stack.secure import AGENT, DIRECTORY, OPERATOR, TEAM, SecureCluster

if TYPE_CHECKING:
    from tests.stack.swift import SwiftAIO

# Where the agent container finds its TLS files (mounted read-only, one by one).
_AGENT_PKI = "/etc/watcher-agent/pki"


@dataclass(frozen=True)
class SecureDemo:
    stack: SecureCluster
    repo: Path

    @property
    def directory(self) -> str:
        return DIRECTORY

    def agent_environment(self) -> dict[str, str]:
        """No ETCD_USER: the certificate's CN (`agent-1`) is the agent's etcd user and id."""
        return {
            "ETCD_HOST": self.stack.endpoints,
            "ETCD_CACERT": f"{_AGENT_PKI}/ca.crt",
            "ETCD_CERT": f"{_AGENT_PKI}/{AGENT}.crt",
            "ETCD_KEY": f"{_AGENT_PKI}/{AGENT}.key",
        }

    def agent_volumes(self) -> dict[str, dict[str, Any]]:
        pair = self.stack.client(AGENT)
        return {
            str(self.stack.ca): {"bind": f"{_AGENT_PKI}/ca.crt", "mode": "ro"},
            str(pair.cert): {"bind": f"{_AGENT_PKI}/{AGENT}.crt", "mode": "ro"},
            str(pair.key): {"bind": f"{_AGENT_PKI}/{AGENT}.key", "mode": "ro"},
        }

    def etcdadmin(self, user: str) -> str:
        """The `etcdadmin` connection options that log in as `user` with its certificate."""
        pair = self.stack.client(user)
        return " ".join(
            shlex.quote(part)
            for part in (
                str(self.repo / ".venv/bin/etcdadmin"),
                "--endpoints",
                self.stack.endpoints,
                "--cacert",
                str(self.stack.ca),
                "--cert",
                str(pair.cert),
                "--key",
                str(pair.key),
            )
        )

    def etcdctl(self, user: str) -> str:
        pair = self.stack.client(user)
        urls = ",".join(self.stack.cluster.client_urls)
        return (
            f"ETCDCTL_API=3 etcdctl --endpoints {urls} --cacert {self.stack.ca} "
            f"--cert {pair.cert} --key {pair.key}"
        )

    def client_command(self) -> list[str]:
        """The desktop client as root (the window follows the whole key space)."""
        return [*shlex.split(self.etcdadmin("root")), "--name", "demo-secure"]

    def up_message(
        self,
        swift: SwiftAIO,
        port: int,
        config: Path,
        docker_host: str,
        client_line: str,
        keyring_env: str = "",
    ) -> str:
        stack = self.stack
        pki = stack.certs.directory
        alice = stack.client(OPERATOR)
        etcdadmin = shlex.quote(str(self.repo / ".venv/bin/etcdadmin"))
        key = f"{DIRECTORY}/storage/swift/password"
        return f"""
The secure demo is up.
  etcd      three members, TLS for clients and between members, auth on:
            {", ".join(stack.cluster.client_urls)}
  certs     {pki}
            made by the core's certs authority: ca.crt, etcdN-server and etcdN-peer, and
            client-root, client-{OPERATOR}, client-{AGENT} (a client certificate logs in as
            the etcd user its CN names)
  users     root; {OPERATOR}, operator of team {TEAM} (read-write on {DIRECTORY}/);
            {AGENT}, its agent (reads {DIRECTORY}/, writes only its own status);
            passwords in {stack.passwords}/<user> (0600)
  Swift     {swift.auth_url}  (user {swift.user}, key {swift.key})
  registry  http://127.0.0.1:{port}/v2/  is DOWN: its Swift password is wrong
  agent     container 'watcher', etcd user {AGENT} by its client certificate, following
            {DIRECTORY}/ on all three members -> {config}
  docker    docker -H {docker_host} ps -a   (logs: docker -H {docker_host} logs -f watcher)
  client    {client_line}
            (saved as profile demo-secure)

Fix the password as the team's operator {OPERATOR}, over TLS (her certificate is her login),
stored encrypted to the agent's key (published as the recipient of {DIRECTORY}/):
  export ETCDADMIN_ENDPOINTS={stack.endpoints}
  export ETCDADMIN_CACERT={stack.ca}
  export ETCDADMIN_CERT={alice.cert} ETCDADMIN_KEY={alice.key}
  printf %s {swift.key} | {keyring_env}{etcdadmin} secret put {key}   # encrypted to the agent
  curl -i http://127.0.0.1:{port}/v2/            # 200 once the agent restarted the registry
  {etcdadmin} put hack/x --value 1               # refused: {OPERATOR} may change {DIRECTORY}/ only
With {OPERATOR}'s password (a token) instead of her certificate's CN:
  export ETCDADMIN_PASSWORD="$(cat {stack.password_file(OPERATOR)})"
  {etcdadmin} --user {OPERATOR} get {key}
The agent's status, as root with etcdctl (the reference client):
  {self.etcdctl("root")} get --prefix /etcdadmin/agents/{DIRECTORY}/

Press Ctrl-C to stop everything."""
