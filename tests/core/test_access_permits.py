"""What a connection's user may write, read once: checked against what etcd itself refuses."""

from __future__ import annotations

import uuid

import pytest

from etcdadmin.core.access.permits import read_permits
from etcdadmin.core.access.teams import create_team
from etcdadmin.core.errors import EtcdPermissionDenied
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection


def test_without_auth_everything_is_permitted(etcd_server):
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        permits = read_permits(conn)
    assert permits.everything and not permits.auth_enabled
    assert permits.may_write(b"anything/at/all") and permits.may_write_under(b"")


def test_root_may_write_everywhere(auth_etcd):
    with auth_etcd.connect() as conn:
        permits = read_permits(conn)
    assert permits.auth_enabled and permits.everything and permits.user == "root"


def test_an_operator_may_write_its_directory_only_as_etcd_agrees(auth_etcd):
    tag = uuid.uuid4().hex[:6]
    mine, other, user = f"team-{tag}", f"team-{tag}-2", f"op-{tag}"
    agent = f"agent-{tag}"
    with auth_etcd.connect() as root:
        create_team(
            root,
            f"t{tag}",
            mine,
            operators=[user],
            agents=[agent],
            passwords={user: "pw-op", agent: "pw-agent"},
        )
    with auth_etcd.connect(user, "pw-op") as conn:
        permits = read_permits(conn)
        assert not permits.everything
        assert permits.may_write(f"{mine}/http/addr".encode())
        assert permits.may_write_under(f"{mine}/".encode())
        assert permits.may_read(f"{mine}/".encode(), f"{mine}0".encode())
        # a grant on team-x covers team-x/..., never team-x-2/...
        assert not permits.may_write(f"{other}/http/addr".encode())
        assert not permits.may_write_under(b"")
        with pytest.raises(EtcdPermissionDenied) as refused_here:
            permits.check_writes(conn.settings, [f"{other}/http/addr".encode()], "stage a change")
        with pytest.raises(EtcdPermissionDenied) as refused_by_etcd:
            conn.put(f"{other}/http/addr", ":1")
    # the same words as etcd's own refusal: who, what they lack, and on which directory
    lacks = f"etcd user '{user}' lacks read-write on {other}/"
    assert lacks in str(refused_here.value) and lacks in str(refused_by_etcd.value)
    with auth_etcd.connect(agent, "pw-agent") as conn:
        permits = read_permits(conn)
    assert permits.may_read(f"{mine}/".encode(), f"{mine}0".encode())
    assert not permits.may_write(f"{mine}/http/addr".encode())
    assert f"lacks read-write on {mine}/" in permits.refusal(
        conn.settings, [f"{mine}/http/addr".encode()], "change this key"
    )
