"""`etcdadmin access ...` and `etcdadmin certs init` on real etcd, read back with etcdctl."""

from __future__ import annotations

import stat
import uuid

import pytest

from tests.stack.access import ROOT_PASSWORD


@pytest.fixture
def as_root(run, auth_etcd):
    def invoke(*args: str, **env: str):
        return run(
            "--endpoints", auth_etcd.endpoint, "--user", "root", *args,
            ETCDADMIN_PASSWORD=ROOT_PASSWORD, **env,
        )  # fmt: skip

    return invoke


@pytest.fixture
def team_pair(as_root, tmp_path):
    """Two teams made through the CLI; their users' passwords in files under tmp_path."""
    tag = uuid.uuid4().hex[:6]
    made = {"tag": tag, "secrets": tmp_path / "secrets"}
    for side in ("a", "b"):
        done = as_root(
            "access", "team", "create", f"{side}{tag}", "--dir", f"cli-{side}-{tag}",
            "--operator", f"op-{side}-{tag}", "--agent", f"ag-{side}-{tag}",
            "--password-dir", str(made["secrets"]),
        )  # fmt: skip
        assert done.exit_code == 0, done.stderr
        assert f"user op-{side}-{tag} created" in done.stdout
    return made


def test_access_enable_and_disable_round_trip_twice_through_the_cli(run, private_etcd):
    at = ("--endpoints", private_etcd.endpoint)
    for _ in range(2):
        done = run(*at, "access", "enable", ETCDADMIN_ROOT_PASSWORD="cli-root-pw")
        assert done.exit_code == 0, done.stderr
        assert "auth enabled" in done.stdout
        assert private_etcd.etcdctl("get", "k", check=False).returncode != 0
        assert run(*at, "access", "status").stdout == "auth is enabled\n"
        off = run(*at, "--user", "root", "access", "disable", ETCDADMIN_PASSWORD="cli-root-pw")
        assert off.exit_code == 0, off.stderr
        assert private_etcd.etcdctl("get", "k").returncode == 0
    assert run(*at, "access", "status").stdout == "auth is disabled\n"


def test_a_team_made_in_one_step_gives_its_users_password_files_and_their_grants(
    as_root, auth_etcd, team_pair
):
    tag, secrets = team_pair["tag"], team_pair["secrets"]
    password_file = secrets / f"op-a-{tag}"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    auth_etcd.etcdctl_as(f"op-a-{tag}", password, "put", f"cli-a-{tag}/k", "v")
    shown = as_root("access", "team", "show", f"a{tag}")
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        f"team a{tag}: cli-a-{tag}/",
        f"  operators (a{tag}-operators): op-a-{tag}",
        f"  agents (a{tag}-agents): ag-a-{tag}",
    ]
    assert f"a{tag}\tcli-a-{tag}/" in as_root("access", "team", "ls").stdout
    who = as_root("access", "who", f"cli-a-{tag}").stdout
    assert f"op-a-{tag}\ta{tag}-operators\treadwrite\tcli-a-{tag}/" in who
    assert f"op-b-{tag}" not in who
    what = as_root("access", "what", f"ag-a-{tag}").stdout
    assert f"a{tag}-agent-ag-a-{tag}\treadwrite\tkey /etcdadmin/agents/cli-a-{tag}/ag-a-{tag}" in (
        what
    )


def test_another_teams_directory_is_refused_in_one_line_naming_user_and_directory(
    process, auth_etcd, team_pair
):
    tag, secrets = team_pair["tag"], team_pair["secrets"]
    user = f"op-a-{tag}"
    env = {"ETCDADMIN_PASSWORD": (secrets / user).read_text().strip()}
    auth_etcd.root("put", f"cli-b-{tag}/k", "b's")
    auth_etcd.root("put", f"cli-a-{tag}/k", "a's")
    at = ("--endpoints", auth_etcd.endpoint, "--user", user)
    for args, need in (
        # a write reads the key first (it is guarded by its revision): refused at the read
        (("put", f"cli-b-{tag}/k", "--value", "x"), "read"),
        (("get", f"cli-b-{tag}/k"), "read"),
        (("ls", f"cli-b-{tag}"), "read"),
        (("export", f"cli-b-{tag}"), "read"),
        (("history", f"cli-b-{tag}/k"), "read"),
    ):
        done = process(*at, *args, env=env)
        assert done.returncode == 3, (args, done.stderr)
        assert done.stderr.strip().splitlines() == [done.stderr.strip()]
        assert f"Error: etcd user '{user}' lacks {need} on cli-b-{tag}/" in done.stderr
        assert "Traceback" not in done.stderr
    assert auth_etcd.root("get", f"cli-b-{tag}/k", "--print-value-only").stdout == "b's\n"
    # An agent reads its directory but may not write it.
    agent = f"ag-a-{tag}"
    agent_env = {"ETCDADMIN_PASSWORD": (secrets / agent).read_text().strip()}
    as_agent = ("--endpoints", auth_etcd.endpoint, "--user", agent)
    assert process(*as_agent, "get", f"cli-a-{tag}/k", env=agent_env).stdout == "a's"
    write = process(*as_agent, "put", f"cli-a-{tag}/k", "--value", "x", env=agent_env)
    assert write.returncode == 3
    assert f"Error: etcd user '{agent}' lacks read-write on cli-a-{tag}/" in write.stderr
    assert "(etcdadmin access grant ROLE DIR --readwrite)" in write.stderr
    # The top level lists what the user may read, and says it is partial.
    top = process(*at, "ls", env=env)
    assert top.returncode == 0, top.stderr
    assert top.stdout.splitlines() == [f"cli-a-{tag}/"]
    assert top.stderr == (
        "showing only what this user may read: "
        f"/etcdadmin/gray/cli-a-{tag}/, /etcdadmin/recipients/cli-a-{tag}/, "
        f"/etcdadmin/releases/cli-a-{tag}/, cli-a-{tag}/\n"
    )


def test_users_roles_and_grants_are_managed_from_the_cli(as_root, auth_etcd, tmp_path):
    tag = uuid.uuid4().hex[:6]
    secret = tmp_path / "pw"
    secret.write_text("carol-pw\n")
    assert as_root("access", "role", "add", f"r{tag}").exit_code == 0
    added = as_root("access", "user", "add", f"carol{tag}", "--role", f"r{tag}",
                    "--password-file", str(secret))  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert as_root("access", "grant", f"r{tag}", f"g-{tag}", "--read").exit_code == 0
    assert f"r{tag}\tread g-{tag}/" in as_root("access", "role", "ls").stdout
    assert f"carol{tag}\tr{tag}" in as_root("access", "user", "ls").stdout
    auth_etcd.root("put", f"g-{tag}/k", "v")
    assert auth_etcd.etcdctl_as(f"carol{tag}", "carol-pw", "get", f"g-{tag}/k").returncode == 0
    missing = as_root("access", "grant", f"r{tag}", f"g-{tag}")
    assert missing.exit_code == 2 and "--read or --readwrite" in missing.stderr
    assert as_root("access", "revoke", f"r{tag}", f"g-{tag}").exit_code == 0
    refused = auth_etcd.etcdctl_as(f"carol{tag}", "carol-pw", "get", f"g-{tag}/k", check=False)
    assert refused.returncode != 0
    assert as_root("access", "user", "rm", f"carol{tag}").exit_code == 0
    assert f"carol{tag}" not in auth_etcd.root("user", "list").stdout
    no_password = as_root("access", "user", "add", f"dave{tag}")
    assert no_password.exit_code == 2 and "ETCDADMIN_NEW_PASSWORD" in no_password.stderr


def test_certs_init_writes_private_keys_and_prints_the_flags_for_each_member(run, tmp_path):
    done = run("certs", "init", str(tmp_path / "pki"), "--members", "3")
    assert done.exit_code == 0, done.stderr
    for name in ("etcd0", "etcd1", "etcd2"):
        assert f"etcd --name {name}" in done.stdout
        key = tmp_path / "pki" / f"{name}-server.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"--peer-trusted-ca-file {tmp_path / 'pki' / 'ca.crt'}" in done.stdout
    assert "--client-cert-auth" in done.stdout
    again = run("certs", "init", str(tmp_path / "pki"))
    assert again.exit_code == 2 and "already holds a CA" in again.stderr
