"""Connection options a user gets wrong, in real processes against real etcd members: each ends
with its exit code and one line on stderr, never an abort, a gRPC log line or a plaintext
connection where TLS was asked for."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cli.conftest import Finished, save_profile
from tests.conftest import REPO_ROOT, _construct
from tests.stack.etcd import EtcdServer, ServerTLS
from tests.stack.tls import TLSFiles, make_tls_files


@dataclass(frozen=True)
class TLSMember:
    """A TLS-only etcd whose certificate a test CA signed (a CA no system trusts)."""

    server: EtcdServer
    files: TLSFiles

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def client_files(self) -> list[str]:
        return [
            "--cacert",
            str(self.files.ca),
            "--cert",
            str(self.files.client_cert),
            "--key",
            str(self.files.client_key),
        ]


@pytest.fixture(scope="module")
def tls_member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSMember]:
    root = tmp_path_factory.mktemp("tls-member")
    files = make_tls_files(root / "pki")
    tls = ServerTLS(
        files.ca, files.server_cert, files.server_key, files.client_cert, files.client_key
    )
    server = _construct(lambda: EtcdServer(root / "etcd", "tls", tls=tls))
    server.start()
    try:
        yield TLSMember(server, files)
    finally:
        server.stop()


def etcdadmin(*args: str, env: dict[str, str] | None = None) -> Finished:
    """`python -m etcdadmin ARGS` as a user's shell runs it: no GRPC_VERBOSITY of the test
    run's own (so what gRPC logs by default would show), `env` added."""
    environment = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    environment.update({"PYTHONPATH": str(REPO_ROOT), **(env or {})})
    done = subprocess.run(
        [sys.executable, "-m", "etcdadmin", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    return Finished(done.returncode, done.stdout, done.stderr)


def one_line(done: Finished) -> str:
    """The one line on stderr (asserted), without its newline."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n"), done.stderr
    return done.stderr.rstrip("\n")


# 1. A client certificate without its key (or a key without its certificate)


def test_a_client_certificate_without_its_key_is_bad_usage_however_it_is_given(
    config_dir, profiles, tls_member
):
    files = tls_member.files
    at = ["--endpoints", tls_member.endpoint, "--cacert", str(files.ca)]
    half = {"ca_file": str(files.ca), "cert_file": str(files.client_cert)}
    save_profile(profiles, "half", tls_member.endpoint, **half)
    cases = {
        "--cert alone": etcdadmin(*at, "--cert", str(files.client_cert), "get", "k"),
        "--key alone": etcdadmin(*at, "--key", str(files.client_key), "get", "k"),
        "ETCDADMIN_CERT alone": etcdadmin(
            *at, "get", "k", env={"ETCDADMIN_CERT": str(files.client_cert)}
        ),
        "a profile with a certificate only": etcdadmin("--profile", "half", "get", "k"),
    }
    for case, done in cases.items():
        assert done.returncode == 2, (case, done.returncode, done.stderr)
        line = one_line(done)
        assert "--cert" in line and "--key" in line, (case, line)
        assert "private key" in line, (case, line)


# 2. An empty password typed at the prompt


def _on_a_terminal(argv: list[str], answer: bytes) -> tuple[int, str]:
    """`python -m etcdadmin ARGV` with a pseudo-terminal as its controlling terminal (where
    getpass reads), `answer` typed once the password prompt shows; the exit code and all the
    terminal showed."""
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    pid, terminal = pty.fork()
    if pid == 0:  # the child: becomes the command, the pseudo-terminal its terminal
        try:
            os.execve(sys.executable, [sys.executable, "-m", "etcdadmin", *argv], environment)
        finally:
            os._exit(127)
    shown = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if not answered and b"Password for etcd user" in shown:
                os.write(terminal, answer)
                answered = True
        else:
            os.kill(pid, 9)
            raise AssertionError(f"the command did not end; the terminal showed {shown!r}")
    finally:
        os.close(terminal)
        _, status = os.waitpid(pid, 0)
    assert answered, shown
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_an_empty_password_typed_at_the_prompt_is_bad_usage_like_an_empty_password_option(
    config_dir, etcd_server
):
    code, shown = _on_a_terminal(
        ["--endpoints", etcd_server.endpoint, "--user", "root", "get", "k"], b"\n"
    )
    lines = [line for line in shown.replace("\r", "").split("\n") if line.strip()]
    assert code == 2, shown
    assert lines[0].startswith("Password for etcd user root:"), shown
    assert "[]" not in lines[0], shown  # no empty default offered
    assert len(lines) == 2 and "Traceback" not in shown, shown
    assert lines[1].startswith("Error: etcd user 'root' needs a password"), shown
    assert "internal error" not in shown


# 3. TLS failures: one line, no gRPC log lines


def test_a_key_file_that_is_not_a_key_is_one_line_exit_3(tmp_path, config_dir, tls_member):
    garbage = tmp_path / "garbage.key"
    garbage.write_text("this is not a private key\n")
    files = tls_member.files
    done = etcdadmin(
        "--endpoints", tls_member.endpoint, "--cacert", str(files.ca),
        "--cert", str(files.client_cert), "--key", str(garbage), "get", "k",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    line = one_line(done)
    assert str(garbage) in line and "private key" in line, line


def test_a_key_that_does_not_match_the_certificate_is_one_line_exit_3(config_dir, tls_member):
    files = tls_member.files
    done = etcdadmin(
        "--endpoints", tls_member.endpoint, "--cacert", str(files.ca),
        "--cert", str(files.client_cert), "--key", str(files.server_key), "get", "k",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    line = one_line(done)
    assert "does not match" in line and "--key" in line, line


def test_grpcs_own_log_lines_show_with_log_level_debug_or_the_users_grpc_verbosity(
    tmp_path, config_dir, tls_member
):
    files = tls_member.files
    argv = [
        "--endpoints", tls_member.endpoint, "--cacert", str(files.ca),
        "--cert", str(files.client_cert), "--key", str(files.server_key),
    ]  # fmt: skip
    debug = etcdadmin(*argv, "--log-level", "debug", "get", "k")
    assert debug.returncode == 3
    assert "ssl_transport_security" in debug.stderr, debug.stderr
    chosen = etcdadmin(*argv, "get", "k", env={"GRPC_VERBOSITY": "ERROR"})
    assert chosen.returncode == 3
    assert "ssl_transport_security" in chosen.stderr, chosen.stderr


# 4. https:// always means TLS


def test_an_https_endpoint_without_cacert_verifies_against_the_system_roots_and_fails(
    config_dir, tls_member
):
    files = tls_member.files
    for extra in ([], ["--cert", str(files.client_cert), "--key", str(files.client_key)]):
        done = etcdadmin("--endpoints", f"https://{tls_member.endpoint}", *extra, "get", "k")
        assert done.returncode == 3, (extra, done.stderr)
        line = one_line(done)
        assert "not trusted" in line and "--cacert" in line, line


def test_an_https_endpoint_never_talks_plaintext_to_a_plaintext_etcd(config_dir, etcd_server, top):
    etcd_server.etcdctl("put", f"{top}/k", "over plaintext")
    plain = etcdadmin("--endpoints", f"http://{etcd_server.endpoint}", "get", f"{top}/k")
    assert (plain.returncode, plain.stdout) == (0, "over plaintext"), plain.stderr
    done = etcdadmin("--endpoints", f"https://{etcd_server.endpoint}", "get", f"{top}/k")
    assert done.returncode == 3, done.stdout
    assert done.stdout == ""
    line = one_line(done)
    assert "TLS" in line, line


def test_an_https_endpoint_with_the_ca_file_works(config_dir, profiles, tls_member):
    https = f"https://{tls_member.endpoint}"
    put = etcdadmin("--endpoints", https, *tls_member.client_files(), "put", "t/k", "--value", "v")
    assert put.returncode == 0, put.stderr
    got = etcdadmin("--endpoints", https, *tls_member.client_files(), "get", "t/k")
    assert (got.returncode, got.stdout) == (0, "v"), got.stderr
    # A saved profile (the window's connections) follows the same rule.
    save_profile(profiles, "no-ca", https)
    done = etcdadmin("--profile", "no-ca", "get", "t/k")
    assert done.returncode == 3
    assert "not trusted" in one_line(done)


# 5. Endpoints that cannot work


def test_an_empty_endpoint_list_is_bad_usage_not_the_default(config_dir):
    for given in ("", " , "):
        done = etcdadmin("--endpoints", given, "--timeout", "1", "get", "k")
        assert done.returncode == 2, (given, done.stderr)
        assert "no etcd endpoint given" in one_line(done)


def test_an_endpoint_with_another_scheme_is_bad_usage_naming_it(config_dir):
    done = etcdadmin("--endpoints", "ftp://127.0.0.1:1", "get", "k")
    assert done.returncode == 2, done.stderr
    line = one_line(done)
    assert "'ftp'" in line and "http://" in line and "https://" in line, line
    for malformed in ("localhost", "::1:2379", "etcd :2379", "etcd:\u00b2"):
        done = etcdadmin("--endpoints", malformed, "get", "k")
        assert done.returncode == 2, (malformed, done.stderr)
        assert "host:port" in one_line(done)


def test_an_endpoint_holding_a_password_is_refused_without_repeating_it(config_dir):
    done = etcdadmin("--endpoints", "https://root:hunter2@127.0.0.1:1", "get", "k")
    assert done.returncode == 2, done.stderr
    assert "holds a user name" in one_line(done) and "hunter2" not in done.stderr


def test_a_bad_endpoint_in_a_profile_or_the_environment_names_where_it_came_from(
    config_dir, profiles
):
    save_profile(profiles, "odd", "unix://socket:1")
    done = etcdadmin("--profile", "odd", "ls")
    assert done.returncode == 2
    assert "profile 'odd'" in one_line(done)
    env = etcdadmin("ls", env={"ETCDADMIN_ENDPOINTS": "ftp://127.0.0.1:1"})
    assert env.returncode == 2
    assert "ETCDADMIN_ENDPOINTS" in one_line(env)
