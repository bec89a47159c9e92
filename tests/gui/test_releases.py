"""The Agents tab's gray releases and release history, against a real etcd."""

from __future__ import annotations

import json
import uuid

from etcdadmin.core.changes.desired import apply_desired, plan_desired
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.releases.history import PublishNote
from etcdadmin.core.releases.publish import create_release, draft_release
from tests.gui.conftest import connect
from tests.gui.dialogs import answer_next_dialog


def _values(etcd_server, prefix: str) -> dict[str, str]:
    out = etcd_server.etcdctl("get", prefix, "--prefix").stdout.splitlines()
    return dict(zip(out[::2], out[1::2], strict=True))


def test_promote_from_the_agents_tab_writes_the_release_into_the_directory(
    qtbot, window, etcd_server
):
    directory = f"gui-gray-{uuid.uuid4().hex[:8]}"
    etcd_server.etcdctl("put", f"{directory}/log/level", "info")
    etcd_server.etcdctl(
        "put",
        f"/etcdadmin/agents/{directory}/eu-1",
        json.dumps({"agent_id": "eu-1", "labels": {"region": "eu"}, "releases": ["r-eu"]}),
    )
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        draft = draft_release(
            conn,
            directory.encode(),
            "log:\n  level: debug\n",
            labels={"region": "eu"},
            who="tester@host",
            release_id="r-eu",
        )
        create_release(conn, draft)
    connect(qtbot, window, etcd_server.endpoint)
    window.tabs.setCurrentWidget(window.agents)
    window.agents.set_directory(f"{directory}/".encode())
    box = window.agents.releases
    qtbot.waitUntil(lambda: box.release_table.rowCount() == 1, timeout=10_000)
    qtbot.waitUntil(lambda: window.agents.table.rowCount() == 1, timeout=10_000)
    assert window.agents.table.item(0, 1).text() == "region=eu"
    assert window.agents.table.item(0, 2).text() == "r-eu"
    assert box.release_table.item(0, 1).text() == "labels region=eu"

    box.release_table.selectRow(0)
    assert box.promote_button.isEnabled()
    box.promote_button.click()
    qtbot.waitUntil(lambda: box.release_table.rowCount() == 0, timeout=10_000)
    assert _values(etcd_server, f"{directory}/") == {f"{directory}/log/level": "debug"}
    assert _values(etcd_server, f"/etcdadmin/gray/{directory}/") == {}
    qtbot.waitUntil(lambda: box.history_table.rowCount() == 2, timeout=10_000)
    assert box.history_table.item(0, 1).text().startswith("gray-promote r-eu")


def test_roll_back_to_this_shows_the_diff_and_restores_the_keys(qtbot, window, etcd_server):
    directory = f"gui-rb-{uuid.uuid4().hex[:8]}"
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        for text in ("level: info\n", "level: debug\n"):
            plan = plan_desired(conn, directory.encode(), text)
            apply_desired(
                conn, plan, record=PublishNote("apply", "tester", directory=plan.directory)
            )
    connect(qtbot, window, etcd_server.endpoint, name="prod", production=True)
    window.tabs.setCurrentWidget(window.agents)
    window.agents.set_directory(f"{directory}/".encode())
    box = window.agents.releases
    qtbot.waitUntil(lambda: box.history_table.rowCount() == 2, timeout=10_000)
    box.history_table.selectRow(1)  # the older publish
    seen: list[str] = []
    answer_next_dialog("Roll back", seen)
    box.rollback_button.click()
    qtbot.waitUntil(lambda: box.history_table.rowCount() == 3, timeout=10_000)
    assert "PRODUCTION" in seen[0] and "level" in seen[0]
    assert _values(etcd_server, f"{directory}/") == {f"{directory}/level": "info"}
    assert box.history_table.item(0, 1).text().startswith("rollback")
