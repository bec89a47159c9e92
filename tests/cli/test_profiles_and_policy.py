"""Saved profiles drive the CLI: endpoints, production confirmation, read-only, the keyring."""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys

from tests.cli.conftest import save_profile
from tests.conftest import REPO_ROOT


def test_profile_endpoints_come_from_profiles_json(run, profiles, etcd_server, top):
    save_profile(profiles, "shared", etcd_server.endpoint)
    etcd_server.etcdctl("put", f"{top}/k", "from the profile's etcd")
    done = run("--profile", "shared", "get", f"{top}/k")
    assert done.exit_code == 0, done.stderr
    assert done.stdout == "from the profile's etcd"
    assert run("get", f"{top}/k", ETCDADMIN_PROFILE="shared").exit_code == 0
    assert stat.S_IMODE(profiles.path.stat().st_mode) == 0o600


def test_an_unknown_profile_is_a_usage_error_naming_the_saved_ones(run, profiles, etcd_server):
    save_profile(profiles, "shared", etcd_server.endpoint)
    done = run("--profile", "nope", "ls")
    assert done.exit_code == 2
    assert "no connection profile named 'nope'" in done.stderr
    assert "saved profiles: shared" in done.stderr


def test_a_production_profile_refuses_to_write_without_yes_when_not_on_a_terminal(
    run, profiles, etcd_server, top
):
    save_profile(profiles, "prod", etcd_server.endpoint, production=True)
    etcd_server.etcdctl("put", f"{top}/level", "info")
    refused = run("--profile", "prod", "put", f"{top}/level", "--value", "debug")
    assert refused.exit_code == 2
    assert f"set {top}/level" in refused.stderr
    assert "pass --yes" in refused.stderr
    assert etcd_server.etcdctl("get", f"{top}/level", "--print-value-only").stdout == "info\n"
    done = run("--profile", "prod", "put", f"{top}/level", "--value", "debug", "--yes")
    assert done.exit_code == 0, done.stderr
    assert etcd_server.etcdctl("get", f"{top}/level", "--print-value-only").stdout == "debug\n"


def test_a_read_only_profile_or_flag_refuses_every_write(run, profiles, etcd_server, top):
    save_profile(profiles, "viewer", etcd_server.endpoint, read_only=True)
    etcd_server.etcdctl("put", f"{top}/a/k", "v")
    for args in (
        ("put", f"{top}/a/k", "--value", "w"),
        ("del", f"{top}/a/k"),
        ("del", "--prefix", f"{top}/a"),
        ("copy", f"{top}/a", f"{top}/b"),
        ("restore", f"{top}/a/k", "--revision", "1"),
    ):
        done = run("--profile", "viewer", *args)
        assert done.exit_code == 2, (args, done.stderr)
        assert "viewer is read-only" in done.stderr
    flagged = run("--endpoints", etcd_server.endpoint, "--read-only", "del", f"{top}/a/k")
    assert flagged.exit_code == 2
    assert etcd_server.etcdctl("get", "--prefix", f"{top}/", "--keys-only").stdout.split() == [
        f"{top}/a/k"
    ]
    assert run("--profile", "viewer", "get", f"{top}/a/k").stdout == "v"


def test_a_profile_password_from_the_os_keyring_opens_an_etcd_with_auth(
    os_keyring, run, profiles, private_etcd, process
):
    private_etcd.etcdctl("user", "add", "root:rootpw")
    private_etcd.etcdctl("auth", "enable")
    save_profile(profiles, "secured", private_etcd.endpoint, user="root", password="rootpw")
    assert "rootpw" not in profiles.path.read_text()
    done = run("--profile", "secured", "put", "auth/k", "--value", "v")
    assert done.exit_code == 0, done.stderr
    assert run("--profile", "secured", "get", "auth/k").stdout == "v"

    # A wrong password, in a real process: exit 3, one line, no traceback, no password shown.
    wrong = process(
        "--endpoints", private_etcd.endpoint, "--user", "root", "get", "auth/k",
        env={"ETCDADMIN_PASSWORD": "not-the-password"},
    )  # fmt: skip
    assert wrong.returncode == 3
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert "refused the credentials of user 'root'" in wrong.stderr
    assert "Traceback" not in wrong.stderr and "not-the-password" not in wrong.stderr

    # A user without any password and no terminal to ask on: told how to give one.
    missing = run("--endpoints", private_etcd.endpoint, "--user", "root", "get", "auth/k")
    assert missing.exit_code == 2
    assert missing.stderr.strip().splitlines() == [
        "Error: etcd user 'root' needs a password: set ETCDADMIN_PASSWORD, pass --password, "
        "or run in a terminal to be asked"
    ]
    assert json.loads(
        run("--endpoints", private_etcd.endpoint, "--user", "root:rootpw", "get", "auth/k",
            "--json").stdout
    )["value"] == "v"  # fmt: skip


def test_a_production_profile_shows_the_change_and_asks_on_a_terminal(profiles, etcd_server, top):
    save_profile(profiles, "prod", etcd_server.endpoint, production=True)
    etcd_server.etcdctl("put", f"{top}/level", "info")
    argv = ["--profile", "prod", "put", f"{top}/level", "--value", "debug"]
    declined = _on_a_terminal(argv, answer="n")
    assert declined.returncode == 2
    assert "-info" in declined.stderr and "+debug" in declined.stderr
    assert "Write these changes to prod?" in declined.stderr
    assert etcd_server.etcdctl("get", f"{top}/level", "--print-value-only").stdout == "info\n"
    accepted = _on_a_terminal(argv, answer="y")
    assert accepted.returncode == 0, accepted.stderr
    assert etcd_server.etcdctl("get", f"{top}/level", "--print-value-only").stdout == "debug\n"


def _on_a_terminal(argv: list[str], answer: str) -> subprocess.CompletedProcess[str]:
    """`python -m etcdadmin ARGV` with a pseudo-terminal as stdin, answering the question."""
    main, terminal = pty.openpty()
    try:
        os.write(main, f"{answer}\n".encode())
        return subprocess.run(
            [sys.executable, "-m", "etcdadmin", *argv],
            stdin=terminal,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(main)


def test_the_window_opens_with_the_tls_files_user_and_profile_the_command_line_gives(
    run, profiles, monkeypatch
):
    opened: list[tuple] = []
    monkeypatch.setattr(
        "etcdadmin.app.run_window", lambda *args: opened.append(args) or 0, raising=True
    )
    result = run(
        "--endpoints",
        "127.0.0.1:1,127.0.0.1:2",
        "--cacert",
        "ca.crt",
        "--cert",
        "me.crt",
        "--key",
        "me.key",
        "--user",
        "alice",
        ETCDADMIN_PASSWORD="pw",
    )
    assert result.exit_code == 0, result.output
    assert opened[-1] == (
        "127.0.0.1:1,127.0.0.1:2",
        "",
        False,
        {
            "ca_file": "ca.crt",
            "cert_file": "me.crt",
            "key_file": "me.key",
            "user": "alice",
            "password": "pw",
        },
    )

    save_profile(profiles, "tls", "127.0.0.1:3", ca_file="saved-ca.crt")
    assert run("--profile", "tls").exit_code == 0
    assert opened[-1] == ("127.0.0.1:3", "tls", False, {"ca_file": "saved-ca.crt"})
