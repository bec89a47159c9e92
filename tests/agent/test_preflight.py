"""Pre-flight on the real stack: a config that breaks the registry is caught by a canary before
the live registry sees it; PREFLIGHT_CMD as the lighter check; nothing left behind.

Checked as an operator would: `GET /v2/` polled throughout, `docker events` of the live
registry, the status record, the config file, `docker ps` of canaries, the staging directory.
"""

from __future__ import annotations

import shlex
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tests.agent import test_restart
from tests.agent.harness import AgentProcess, status
from tests.agent.test_restart import Served, agent_env, put
from tests.stack.procs import wait_until
from tests.stack.registry import registry_up
from watcher_agent.canary import CANARY_LABEL, TEST_CANARY_DELAY

WRONG_PASSWORD = "wr0ng-swift-p4ss-9d2"
# A registry up on the right Swift password, its config in a mounted directory.
served_registry = test_restart.served_registry


def first(etcd_server, directory: str) -> dict[str, Any]:
    records = status(etcd_server.endpoint, directory)
    return records[0] if records else {}


def canaries(docker_daemon) -> list[Any]:
    return docker_daemon.client().containers.list(all=True, filters={"label": CANARY_LABEL})


def staged(agent: AgentProcess) -> list[Path]:
    staging = agent.state_dir / "preflight"
    return sorted(staging.iterdir()) if staging.exists() else []


def wait_result(agent: AgentProcess, etcd_server, directory: str, result: str, timeout=90) -> None:
    wait_until(
        lambda: first(etcd_server, directory).get("last_result") == result,
        timeout,
        f"{result} in the status\n--- agent log:\n{agent.log()[-3000:]}",
    )


def wait_applied(agent: AgentProcess, etcd_server, directory: str, revision: int) -> None:
    def applied() -> bool:
        now = first(etcd_server, directory)
        return now.get("last_result") == "ok" and now.get("applied_revision", 0) >= revision

    wait_until(applied, 90, f"revision {revision} applied\n--- agent log:\n{agent.log()[-3000:]}")


class Poller:
    """`GET /v2/` every 50 ms on its own thread; counts the answers that were not 200."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.polls = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.polls += 1
            if not registry_up(self.port):
                self.failures += 1


def live_events(docker_daemon, container: Any, since: float) -> list[str]:
    """The container's events from the moment `since` (a time.time()), to the nanosecond:
    docker's own `since` counts whole seconds, which let the fixture's own create and start,
    a second earlier, in (seen once in CI)."""
    events = docker_daemon.client().events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        filters={"container": container.id},
        decode=True,
    )
    return [
        event["status"]
        for event in events
        if event.get("Type") == "container" and event.get("timeNano", 0) >= since * 1e9
    ]


def test_a_wrong_swift_password_fails_preflight_and_the_live_registry_never_stops(
    etcd_server,
    swift,
    docker_daemon,
    served_registry,
    make_agent,
):
    served: Served = served_registry
    good = served.config.read_bytes()
    agent = make_agent(agent_env(etcd_server, docker_daemon, served), config=served.config)
    wait_result(agent, etcd_server, served.directory, "ok", 30)
    started = served.started_at()
    since = time.time()

    with Poller(served.port) as poller:
        put(etcd_server, f"{served.directory}/storage/swift/password", WRONG_PASSWORD)
        wait_result(agent, etcd_server, served.directory, "preflight_failed")
        polls_during = poller.polls
    record = first(etcd_server, served.directory)
    assert poller.failures == 0 and polls_during > 0, "GET /v2/ answered 200 throughout"
    assert live_events(docker_daemon, served.container, since) == [], "the live one untouched"
    assert served.started_at() == started
    assert served.config.read_bytes() == good, "a config that fails pre-flight is never written"
    assert "exit code 2" in record["last_error"]
    assert WRONG_PASSWORD not in record["last_error"] and WRONG_PASSWORD not in agent.log()
    assert canaries(docker_daemon) == [] and staged(agent) == []

    # The same keys again are quarantined: no second canary.
    put(etcd_server, f"{served.directory}/storage/swift/password", WRONG_PASSWORD)
    wait_result(agent, etcd_server, served.directory, "quarantined", 30)

    # The right password, with a change that shows the new config is the one running.
    put(etcd_server, f"{served.directory}/log/level", "debug")
    revision = put(etcd_server, f"{served.directory}/storage/swift/password", swift.key)
    wait_applied(agent, etcd_server, served.directory, revision)
    assert "level: debug" in served.config.read_text()
    assert served.started_at() != started, "the good config restarted the live registry"
    wait_until(lambda: registry_up(served.port), 30, "registry up on the new config")
    assert canaries(docker_daemon) == [] and staged(agent) == []


def test_killing_the_agent_during_a_preflight_leaves_nothing_behind_after_its_restart(
    etcd_server,
    docker_daemon,
    served_registry,
    make_agent,
):
    served: Served = served_registry
    env = agent_env(etcd_server, docker_daemon, served, **{TEST_CANARY_DELAY: "60"})
    agent = make_agent(env, config=served.config)
    wait_result(agent, etcd_server, served.directory, "ok", 30)
    started = served.started_at()
    revision = put(etcd_server, f"{served.directory}/log/level", "debug")
    wait_until(
        lambda: canaries(docker_daemon) != [] and staged(agent) != [],
        30,
        f"a canary running\n--- agent log:\n{agent.log()[-3000:]}",
    )
    agent.stop(sig=9)
    assert canaries(docker_daemon) != [], "killed mid-pre-flight, the canary is still there"

    del agent.env[TEST_CANARY_DELAY]
    agent.start()
    wait_applied(agent, etcd_server, served.directory, revision)
    assert canaries(docker_daemon) == [], "the restarted agent removed the leftover canary"
    assert staged(agent) == [], "and the staged config"
    assert "level: debug" in served.config.read_text()
    assert served.started_at() != started


def check_command(tmp_path: Path) -> str:
    """A check as an operator would write one: rejects an unknown log level, quoting the file
    (which holds the password) as a careless checker might."""
    script = tmp_path / "check.py"
    script.write_text(
        "import sys\n"
        "text = open(sys.argv[1]).read()\n"
        "if 'level: bogus' in text:\n"
        "    print(text)\n"
        "    print('unknown log level', file=sys.stderr)\n"
        "    sys.exit(3)\n"
    )
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {{}}"


def test_preflight_cmd_failure_writes_nothing_and_reports_its_output_masked(
    tmp_path, etcd_server, make_agent
):
    directory = f"cmd-{uuid.uuid4().hex[:8]}"
    agent = make_agent(
        {
            "ETCD_HOST": etcd_server.endpoint,
            "WATCH_ETCD_DIR": directory,
            "PREFLIGHT_CMD": check_command(tmp_path),
        }
    )
    put(etcd_server, f"{directory}/storage/swift/password", WRONG_PASSWORD)
    revision = put(etcd_server, f"{directory}/log/level", "warn")
    wait_applied(agent, etcd_server, directory, revision)
    before = agent.config.read_bytes()

    put(etcd_server, f"{directory}/log/level", "bogus")
    wait_result(agent, etcd_server, directory, "preflight_failed", 30)
    record = first(etcd_server, directory)
    assert "exit code 3" in record["last_error"]
    assert "unknown log level" in record["last_error"]
    assert "password: (secret)" in record["last_error"], "the secret is masked, not dropped"
    assert WRONG_PASSWORD not in record["last_error"]
    assert agent.config.read_bytes() == before
    assert staged(agent) == []

    revision = put(etcd_server, f"{directory}/log/level", "debug")
    wait_applied(agent, etcd_server, directory, revision)
    assert "level: debug" in agent.config.read_text()


def test_preflight_cmd_gets_the_staged_file_in_config_staged(tmp_path, etcd_server, make_agent):
    directory = f"cmd-{uuid.uuid4().hex[:8]}"
    seen = tmp_path / "seen.yml"
    command = f"sh -c 'cp \"$CONFIG_STAGED\" {shlex.quote(str(seen))}'"
    agent = make_agent(
        {"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": directory, "PREFLIGHT_CMD": command}
    )
    revision = put(etcd_server, f"{directory}/log/level", "debug")
    wait_applied(agent, etcd_server, directory, revision)
    assert seen.read_text() == agent.config.read_text(), "the command checked the exact file"
