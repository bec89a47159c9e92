"""agents and cluster status."""

from __future__ import annotations

import json


def test_agents_lists_each_agent_and_whether_it_is_behind(at, etcd_server, top):
    etcd_server.etcdctl("put", f"{top}/http/addr", ":5000")
    record = {"applied_revision": 1, "last_result": "applied", "containers": ["registry"]}
    etcd_server.etcdctl("put", f"/etcdadmin/agents/{top}/host-1", json.dumps(record))
    view = json.loads(at("agents", top, "--json").stdout)
    assert [a["agent_id"] for a in view["agents"]] == ["host-1"]
    assert view["agents"][0]["behind"] is True
    assert view["agents"][0]["containers"] == ["registry"]
    assert at("agents", top).stdout.startswith("host-1\tbehind, applied 1, applied")

    failed = {
        "applied_revision": 1,
        "last_result": "render_failed",
        "last_error": "bad key a//b\n\x1b[31mcontainer log\n",
    }
    etcd_server.etcdctl("put", f"/etcdadmin/agents/{top}/host-2", json.dumps(failed))
    lines = at("agents", top).stdout.splitlines()
    assert lines[1] == "host-2\tbehind, applied 1, render_failed (bad key a//b)"


def test_cluster_status_names_the_member_its_leader_and_version(at, etcd_server):
    report = json.loads(at("cluster", "status", "--json").stdout)
    [member] = report["members"]
    assert member["leader"] is True
    assert member["version"].startswith("3.")
    assert member["db_size"] > 0
    assert report["alarms"] == []
    text = at("cluster", "status").stdout
    assert "\tleader\tv3." in text
