"""Gray releases seen by real agents (processes rendering their config, no container): two
agents labelled region=eu and region=us watch one directory."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.releases.publish import (
    abandon_release,
    create_release,
    draft_release,
    promote_release,
)
from tests.agent.harness import status
from tests.stack.procs import wait_until

WHO = "tester@host"


def level(agent) -> str:
    return yaml.safe_load(Path(agent.env["CONFIG"]).read_text())["log"]["level"]


def wait_level(agent, wanted: str, what: str) -> None:
    wait_until(
        lambda: level(agent) == wanted,
        30,
        f"{what}: log.level {wanted}\n--- agent log:\n{agent.log()[-3000:]}",
    )


def releases_of(endpoint: str, directory: str) -> dict[str, tuple[list[str], dict]]:
    return {
        r["agent_id"]: (r.get("releases"), r.get("labels")) for r in status(endpoint, directory)
    }


def test_a_release_to_eu_changes_only_eu_and_promote_and_abandon_settle_both(
    etcd_server, make_agent
):
    directory = f"gray-{uuid.uuid4().hex[:8]}"
    etcd_server.etcdctl("put", f"{directory}/log/level", "warn")
    common = {"ETCD_HOST": etcd_server.endpoint, "WATCH_ETCD_DIR": directory, "DEBOUNCE": "50ms"}
    eu = make_agent({**common, "AGENT_ID": "eu-1", "AGENT_LABELS": "region=eu,tier=web"})
    us = make_agent({**common, "AGENT_ID": "us-1", "AGENT_LABELS": "region=us"})
    wait_level(eu, "warn", "eu renders the directory")
    wait_level(us, "warn", "us renders the directory")

    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:

        def release(text: str) -> str:
            draft = draft_release(conn, directory.encode(), text, who=WHO, labels={"region": "eu"})
            create_release(conn, draft)
            return draft.release.release_id

        first = release("log:\n  level: debug\n")
        wait_level(eu, "debug", "eu applies the gray release")
        wait_until(
            lambda: releases_of(etcd_server.endpoint, directory)["eu-1"][0] == [first],
            20,
            "eu's status names the release",
        )
        assert level(us) == "warn", "us is not targeted"
        assert releases_of(etcd_server.endpoint, directory)["us-1"] == ([], {"region": "us"})

        # The eu agent is replaced by a new one (another id, the same labels): it keeps it.
        eu.stop()
        Path(eu.env["CONFIG"]).write_text(Path(us.env["CONFIG"]).read_text())
        eu2 = make_agent({**common, "AGENT_ID": "eu-2", "AGENT_LABELS": "region=eu"})
        wait_level(eu2, "debug", "the replacement eu agent applies the release")

        promote_release(conn, first, who=WHO)
        wait_level(us, "debug", "us follows the promoted directory")
        assert etcd_server.etcdctl("get", f"{directory}/log/level", "--print-value-only").stdout
        assert level(eu2) == "debug"
        wait_until(
            lambda: releases_of(etcd_server.endpoint, directory)["eu-2"][0] == [],
            20,
            "eu's status runs no release after the promote",
        )

        second = release("log:\n  level: error\n")
        wait_level(eu2, "error", "eu applies the second release")
        abandon_release(conn, second, who=WHO)
        wait_level(eu2, "debug", "eu returns to the directory's config")
        assert level(us) == "debug"
