"""The sandbox: a real etcd started from the binary on the machine, kept in a data dir."""

from __future__ import annotations

import os
import socket
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from etcdadmin.core.environments.compare import compare_directories, export_directory
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.local import sandbox as sandbox_module
from etcdadmin.core.local.example import seed_example
from etcdadmin.core.local.sandbox import Sandbox, SandboxUnavailable
from tests.stack.etcd import run_etcdctl
from tests.stack.procs import MissingBinary, require_binary

INSTALL_MESSAGE = (
    "etcd was not found on PATH: install it (Debian/Ubuntu: apt-get install etcd-server; "
    "macOS: brew install etcd)"
)


@pytest.fixture(scope="module")
def etcdctl_bin() -> str:
    """The sandbox tests run real etcd; without it they skip (fail under CI), as the stack does."""
    try:
        require_binary("etcd", "etcd-server")
        return require_binary("etcdctl", "etcd-client")
    except MissingBinary as exc:
        message = f"needs {exc.name}: apt-get install {exc.package}"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture
def make_sandbox(tmp_path: Path, etcdctl_bin: str) -> Iterator[Callable[..., Sandbox]]:
    """Sandboxes made by a test; every one is stopped at its end, whatever happened."""
    made: list[Sandbox] = []

    def make(data_dir: Path | None = None, **kwargs: object) -> Sandbox:
        box = Sandbox(data_dir or tmp_path / "sandbox", **kwargs)  # type: ignore[arg-type]
        made.append(box)
        return box

    yield make
    for box in made:
        box.stop()


def etcdctl(etcdctl_bin: str, endpoint: str, *args: str) -> str:
    return run_etcdctl(etcdctl_bin, [endpoint], args).stdout


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_sandbox_runs_a_real_etcd_that_etcdctl_can_use(make_sandbox, etcdctl_bin):
    box = make_sandbox()
    endpoint = box.start()

    assert endpoint.startswith("127.0.0.1:")
    assert box.endpoint == endpoint
    etcdctl(etcdctl_bin, endpoint, "put", "hello", "sandbox")
    assert etcdctl(etcdctl_bin, endpoint, "get", "hello", "--print-value-only") == "sandbox\n"
    assert box.log_path.is_file() and box.log_path.stat().st_size > 0
    pid = box.pid
    assert pid is not None

    box.stop()

    assert_gone(pid)
    assert box.pid is None and box.endpoint is None


def test_a_sandbox_comes_back_on_the_same_port_with_its_data(make_sandbox, tmp_path, etcdctl_bin):
    first = make_sandbox(tmp_path / "kept")
    endpoint = first.start()
    etcdctl(etcdctl_bin, endpoint, "put", "registry-test/http/addr", ":5000")
    pid = first.pid
    assert pid is not None
    first.stop()
    assert_gone(pid)

    second = make_sandbox(tmp_path / "kept")
    assert second.start() == endpoint
    assert second.pid != pid
    value = etcdctl(etcdctl_bin, endpoint, "get", "registry-test/http/addr", "--print-value-only")
    assert value == ":5000\n"


def test_a_taken_port_moves_the_sandbox_but_keeps_its_data(make_sandbox, tmp_path, etcdctl_bin):
    first = make_sandbox(tmp_path / "moved")
    endpoint = first.start()
    etcdctl(etcdctl_bin, endpoint, "put", "k", "v")
    first.stop()
    port = int(endpoint.rpartition(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        # the sandbox's own connections may linger in TIME_WAIT on that port
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()

        second = make_sandbox(tmp_path / "moved")
        moved = second.start()

    assert moved != endpoint
    assert etcdctl(etcdctl_bin, moved, "get", "k", "--print-value-only") == "v\n"


def test_a_sandbox_left_running_by_an_earlier_session_is_taken_over(make_sandbox, tmp_path):
    earlier = make_sandbox(tmp_path / "shared")
    endpoint = earlier.start()
    pid = earlier.pid
    assert pid is not None

    later = make_sandbox(tmp_path / "shared")
    assert later.start() == endpoint
    assert later.pid == pid

    later.stop()
    earlier.stop()  # reaps its child
    assert_gone(pid)


def test_the_context_manager_stops_the_sandbox(make_sandbox, etcdctl_bin):
    with make_sandbox() as box:
        endpoint, pid = box.endpoint, box.pid
        assert endpoint is not None and pid is not None
        etcdctl(etcdctl_bin, endpoint, "put", "k", "v")
    assert_gone(pid)


def test_without_etcd_on_path_the_message_says_what_to_install(monkeypatch, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sandbox_module, "EXTRA_BIN_DIRS", (str(empty),))
    with pytest.raises(SandboxUnavailable) as caught:
        Sandbox(tmp_path / "sandbox").start()
    assert str(caught.value) == INSTALL_MESSAGE


def test_an_explicit_binary_that_is_missing_says_what_to_install(tmp_path):
    missing = tmp_path / "no-such-etcd"
    with pytest.raises(SandboxUnavailable, match="apt-get install etcd-server") as caught:
        Sandbox(tmp_path / "sandbox", etcd_binary=str(missing)).start()
    assert str(missing) in str(caught.value)
    assert "brew install etcd" in str(caught.value)


def test_an_etcd_that_fails_to_start_is_reported_with_its_log(tmp_path):
    fake = tmp_path / "etcd"
    fake.write_text("#!/bin/sh\necho 'etcdmain: listen tcp: address already in use' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    box = Sandbox(tmp_path / "sandbox", etcd_binary=str(fake))
    with pytest.raises(SandboxUnavailable) as caught:
        box.start()
    message = str(caught.value)
    assert "exit code 3" in message
    assert "address already in use" in message
    assert box.pid is None


def test_the_example_is_seeded_only_into_an_empty_key_space(make_sandbox):
    box = make_sandbox()
    endpoint = box.start()
    with EtcdConnection(ConnectionSettings((endpoint,))) as conn:
        assert seed_example(conn) is True

        diff = compare_directories(conn, b"example-test/", b"example-production/")
        statuses = {entry.relative: entry.status for entry in diff.entries}
        assert statuses[b"log/level"] == "different"
        assert statuses[b"redis/addr"] == "only_right"
        assert statuses[b"storage/delete/enabled"] == "only_left"
        assert diff.identical > len(diff.entries)
        assert "addr: :5000" in export_directory(conn, b"example-test/")

        before = conn.read_prefix(b"")
        assert seed_example(conn) is False
        assert conn.read_prefix(b"") == before


def test_the_example_is_not_seeded_over_existing_keys(make_sandbox):
    box = make_sandbox()
    endpoint = box.start()
    with EtcdConnection(ConnectionSettings((endpoint,))) as conn:
        conn.put("team/app/key", "mine")
        assert seed_example(conn) is False
        assert [kv.key for kv in conn.read_prefix(b"").items] == [b"team/app/key"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG paths are Linux's")
def test_by_default_the_sandbox_lives_in_the_users_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Sandbox().data_dir == tmp_path / "xdg" / "etcdadmin" / "sandbox"
