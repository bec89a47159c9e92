"""Teams on a real etcd with auth: each team reaches its directory and nothing else; agents
read theirs and write only their own status key (checked with etcdctl as well)."""

from __future__ import annotations

import uuid

import pytest

from etcdadmin.core.access.grants import grant_directory, revoke_directory
from etcdadmin.core.access.reach import what_user_reaches, who_can_reach
from etcdadmin.core.access.teams import create_team, list_teams, show_team
from etcdadmin.core.access.visible import visible_keys
from etcdadmin.core.errors import AccessError, EtcdPermissionDenied
from etcdadmin.core.etcd import prefix_end


@pytest.fixture
def two_teams(auth_etcd):
    """Teams a and b, each with an operator and two agents; names unique to the test."""
    tag = uuid.uuid4().hex[:6]
    names = {
        "a": f"a{tag}",
        "b": f"b{tag}",
        "dir_a": f"team-a-{tag}",
        "dir_b": f"team-b-{tag}",
    }
    with auth_etcd.connect() as root:
        for side in ("a", "b"):
            create_team(
                root,
                names[side],
                names[f"dir_{side}"],
                operators=[f"op-{side}-{tag}"],
                agents=[f"agent1-{side}-{tag}", f"agent2-{side}-{tag}"],
                passwords={
                    f"op-{side}-{tag}": f"pw-op-{side}",
                    f"agent1-{side}-{tag}": "pw-agent1",
                    f"agent2-{side}-{tag}": "pw-agent2",
                },
            )
    auth_etcd.root("put", f"{names['dir_a']}/http/addr", ":5000")
    auth_etcd.root("put", f"{names['dir_b']}/http/addr", ":6000")
    names["tag"] = tag
    return names


def test_a_team_operator_cannot_read_list_write_or_watch_another_teams_directory(
    auth_etcd, two_teams
):
    tag, dir_a, dir_b = two_teams["tag"], two_teams["dir_a"], two_teams["dir_b"]
    operator = f"op-a-{tag}"
    with auth_etcd.connect(operator, "pw-op-a") as conn:
        conn.put(f"{dir_a}/log/level", "debug")
        assert conn.get(f"{dir_a}/http/addr").value == b":5000"
        with pytest.raises(EtcdPermissionDenied) as refused:
            conn.put(f"{dir_b}/log/level", "debug")
        assert f"user '{operator}' lacks read-write on {dir_b}/" in str(refused.value)
        with pytest.raises(EtcdPermissionDenied, match=f"lacks read on {dir_b}/"):
            conn.get(f"{dir_b}/http/addr")
        with pytest.raises(EtcdPermissionDenied, match=f"lacks read on {dir_b}/"):
            conn.read_prefix(f"{dir_b}/", keys_only=True)
        stream = conn.watch_prefix(f"{dir_b}/", 1)
        try:
            with pytest.raises(EtcdPermissionDenied, match=f"lacks read on {dir_b}/"):
                next(iter(stream))
        finally:
            stream.close()
        # The operator manages its directory's secret recipients, not the other team's.
        conn.put(f"/etcdadmin/recipients/{dir_a}/alice", "{}")
        with pytest.raises(EtcdPermissionDenied):
            conn.put(f"/etcdadmin/recipients/{dir_b}/alice", "{}")
    # etcdctl sees the same walls.
    refused_cli = auth_etcd.etcdctl_as(operator, "pw-op-a", "put", f"{dir_b}/x", "1", check=False)
    assert refused_cli.returncode != 0 and "permission denied" in refused_cli.stderr
    assert auth_etcd.root("get", f"{dir_b}/log/level").stdout == ""


def test_an_agent_reads_its_directory_and_writes_only_its_own_status_key(auth_etcd, two_teams):
    tag, dir_a = two_teams["tag"], two_teams["dir_a"]
    me, other = f"agent1-a-{tag}", f"agent2-a-{tag}"
    with auth_etcd.connect(me, "pw-agent1") as conn:
        assert [kv.key for kv in conn.read_prefix(f"{dir_a}/").items] == [
            f"{dir_a}/http/addr".encode()
        ]
        conn.read_prefix(f"/etcdadmin/recipients/{dir_a}/")
        lease = conn.grant_lease(30)
        conn.put(f"/etcdadmin/agents/{dir_a}/{me}", '{"agent_id": "me"}', lease=lease)
        with pytest.raises(EtcdPermissionDenied, match=f"lacks read-write on {dir_a}/"):
            conn.put(f"{dir_a}/http/addr", ":1")
        with pytest.raises(
            EtcdPermissionDenied, match=f"lacks read-write on key /etcdadmin/agents/{dir_a}/{other}"
        ):
            conn.put(f"/etcdadmin/agents/{dir_a}/{other}", "{}")
        with pytest.raises(EtcdPermissionDenied):
            conn.put(f"/etcdadmin/recipients/{dir_a}/{me}", "{}")
        conn.revoke_lease(lease)
    assert auth_etcd.root("get", f"{dir_a}/http/addr", "--print-value-only").stdout == ":5000\n"
    assert auth_etcd.root("get", f"/etcdadmin/agents/{dir_a}/{other}").stdout == ""


def test_who_can_reach_a_directory_and_what_a_user_reaches(auth_etcd, two_teams):
    tag, a, dir_a = two_teams["tag"], two_teams["a"], two_teams["dir_a"]
    with auth_etcd.connect() as root:
        reach = {(g.user, g.role, g.permission.kind) for g in who_can_reach(root, dir_a)}
        assert (f"op-a-{tag}", f"{a}-operators", "readwrite") in reach
        assert (f"agent1-a-{tag}", f"{a}-agents", "read") in reach
        assert ("root", "root", "readwrite") in reach
        assert not any(user.startswith("op-b") for user, _, _ in reach)
        assert show_team(root, a).directory == f"{dir_a}/"
        assert show_team(root, a).agents == (f"agent1-a-{tag}", f"agent2-a-{tag}")
        assert a in {t.name for t in list_teams(root)}
    # A user may ask what it reaches itself, without the root role.
    with auth_etcd.connect(f"agent2-a-{tag}", "pw-agent2") as conn:
        mine = {
            (g.role, g.permission.kind, g.permission.key)
            for g in what_user_reaches(conn, f"agent2-a-{tag}")
        }
    assert (f"{a}-agents", "read", f"{dir_a}/".encode()) in mine
    assert (
        f"{a}-agent-agent2-a-{tag}",
        "readwrite",
        f"/etcdadmin/agents/{dir_a}/agent2-a-{tag}".encode(),
    ) in mine


def test_a_user_granted_some_directories_lists_only_those_from_the_top(auth_etcd, two_teams):
    tag, dir_a = two_teams["tag"], two_teams["dir_a"]
    with auth_etcd.connect(f"op-a-{tag}", "pw-op-a") as conn:
        conn.put(f"/etcdadmin/recipients/{dir_a}/bob", "{}")
        with pytest.raises(EtcdPermissionDenied, match="lacks read on the whole key space"):
            conn.read_prefix(b"", keys_only=True)
        top = visible_keys(conn, b"")
        slash = visible_keys(conn, b"/")
        own = visible_keys(conn, f"{dir_a}/".encode())
    assert top.partial and f"{dir_a}/http/addr".encode() in top.keys
    assert all(k.startswith((f"{dir_a}/".encode(), b"/etcdadmin/recipients/")) for k in top.keys)
    assert slash.keys == (f"/etcdadmin/recipients/{dir_a}/bob".encode(),)
    assert not own.partial and own.keys == (f"{dir_a}/http/addr".encode(),)


def test_a_grant_is_upgraded_downgraded_and_revoked_on_exactly_the_directory(auth_etcd):
    tag = uuid.uuid4().hex[:6]
    auth_etcd.root("role", "add", f"viewers-{tag}")
    auth_etcd.root("user", "add", f"v-{tag}:v-pw")
    auth_etcd.root("user", "grant-role", f"v-{tag}", f"viewers-{tag}")
    auth_etcd.root("put", f"dir-{tag}/k", "1")
    auth_etcd.root("put", f"dir-{tag}-2/k", "2")
    with auth_etcd.connect() as root:
        grant_directory(root, f"viewers-{tag}", f"dir-{tag}", "read")
        grant_directory(root, f"viewers-{tag}", f"dir-{tag}/", "readwrite")
        perms = root.role_permissions(f"viewers-{tag}")
        assert [(p.kind, p.key, p.range_end) for p in perms] == [
            ("readwrite", f"dir-{tag}/".encode(), prefix_end(f"dir-{tag}/".encode()))
        ]
        with pytest.raises(AccessError, match="no role"):
            grant_directory(root, f"nobody-{tag}", f"dir-{tag}", "read")
    assert auth_etcd.etcdctl_as(f"v-{tag}", "v-pw", "put", f"dir-{tag}/k", "3").returncode == 0
    # the grant on dir-X does not reach dir-X-2
    assert (
        auth_etcd.etcdctl_as(f"v-{tag}", "v-pw", "get", f"dir-{tag}-2/k", check=False).returncode
        != 0
    )
    with auth_etcd.connect() as root:
        revoke_directory(root, f"viewers-{tag}", f"dir-{tag}")
        assert root.role_permissions(f"viewers-{tag}") == []
        with pytest.raises(AccessError, match="holds no grant"):
            revoke_directory(root, f"viewers-{tag}", f"dir-{tag}")
