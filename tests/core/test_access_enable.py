"""Enabling and disabling etcd auth never locks anyone out (checked with etcdctl)."""

from __future__ import annotations

import pytest

from etcdadmin.core.access.enabling import auth_enabled, disable_auth, enable_auth
from etcdadmin.core.errors import AccessError
from etcdadmin.core.etcd import ConnectionSettings


def _settings(server, user=None, password=None) -> ConnectionSettings:
    return ConnectionSettings((server.endpoint,), user=user, password=password, timeout=5)


def _open(server) -> bool:
    """Whether etcdctl without a user may read."""
    return server.etcdctl("get", "any", check=False).returncode == 0


def test_enabling_auth_on_a_cluster_with_no_users_keeps_root_in_and_round_trips_twice(
    private_etcd,
):
    assert private_etcd.etcdctl("user", "list").stdout.strip() == ""
    outcome = enable_auth(_settings(private_etcd), "first-root-pw")
    assert outcome.root_created and not outcome.already_enabled
    assert not _open(private_etcd)
    listed = private_etcd.etcdctl("--user=root:first-root-pw", "user", "list")
    assert listed.stdout.split() == ["root"]
    assert "root" in private_etcd.etcdctl("--user=root:first-root-pw", "user", "get", "root").stdout

    assert disable_auth(_settings(private_etcd, "root", "first-root-pw"))
    assert _open(private_etcd)

    # Second round: root exists already; its password is set to the one given now.
    outcome = enable_auth(_settings(private_etcd), "second-root-pw")
    assert not outcome.root_created
    assert auth_enabled(_settings(private_etcd))
    private_etcd.etcdctl("--user=root:second-root-pw", "put", "k", "v")
    again = enable_auth(_settings(private_etcd, "root", "second-root-pw"), "second-root-pw")
    assert again.already_enabled
    assert disable_auth(_settings(private_etcd, "root", "second-root-pw"))
    assert _open(private_etcd)
    assert not disable_auth(_settings(private_etcd, "root", "second-root-pw"))


def test_enabling_as_a_user_without_the_root_role_is_refused_before_anything_changes(
    private_etcd,
):
    private_etcd.etcdctl("user", "add", "alice:alice-pw")
    with pytest.raises(AccessError, match="lacks the root role"):
        enable_auth(_settings(private_etcd, "alice", "alice-pw"), "root-pw")
    assert _open(private_etcd)


def test_a_login_that_fails_after_enabling_turns_auth_off_again(private_etcd):
    private_etcd.etcdctl("user", "add", "alice:alice-pw")
    private_etcd.etcdctl("user", "grant-role", "alice", "root")
    with pytest.raises(AccessError, match="auth is disabled again, nothing is locked"):
        enable_auth(_settings(private_etcd, "alice", "not-alices-password"), "root-pw")
    assert _open(private_etcd)
    assert not auth_enabled(_settings(private_etcd))
    # With the right password, alice enables it and stays in.
    enable_auth(_settings(private_etcd, "alice", "alice-pw"), "root-pw")
    assert private_etcd.etcdctl("--user=alice:alice-pw", "user", "list").returncode == 0
