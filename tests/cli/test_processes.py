"""The CLI as scripts run it: real processes, exit codes, one line on stderr, no Qt needed."""

from __future__ import annotations

import os
import subprocess
import sys

from etcdadmin.cli import exits
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, TxnOp
from tests.conftest import REPO_ROOT
from tests.stack.procs import free_port

# The CLI with PySide6 made unimportable, as on a host without the `gui` extra.
WITHOUT_QT = (
    "import sys; sys.modules['PySide6'] = None\n"
    "from etcdadmin.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "assert not [m for m in sys.modules if m.startswith('etcdadmin.gui')], 'gui imported'\n"
    "raise SystemExit(code)\n"
)


def test_an_unreachable_endpoint_exits_3_with_one_line_and_no_traceback(process):
    endpoint = f"127.0.0.1:{free_port()}"
    done = process("--endpoints", endpoint, "--timeout", "1", "get", "k")
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1
    assert f"unreachable at {endpoint}" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_usage_exits_2(process):
    assert process("get").returncode == 2
    assert process("--no-such-option", "ls").returncode == 2
    malformed = process("--endpoints", "localhost", "ls")
    assert malformed.returncode == 2
    assert "host:port" in malformed.stderr and "Traceback" not in malformed.stderr


def test_diff_with_differences_exits_1_in_a_real_process(process, etcd_server, top):
    etcd_server.etcdctl("put", f"{top}-a/k", "1")
    etcd_server.etcdctl("put", f"{top}-b/k", "2")
    done = process("--endpoints", etcd_server.client_url, "diff", f"{top}-a", f"{top}-b")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "~ k"


def test_help_and_a_real_get_work_without_pyside6(process, etcd_server, top):
    helped = process("--help", code=WITHOUT_QT)
    assert helped.returncode == 0, helped.stderr
    for command in ("ls", "get", "put", "del", "history", "restore", "export", "diff", "copy"):
        assert f"  {command} " in helped.stdout
    etcd_server.etcdctl("put", f"{top}/k", "no Qt here")
    got = process("--endpoints", etcd_server.endpoint, "get", f"{top}/k", code=WITHOUT_QT)
    assert (got.returncode, got.stdout) == (0, "no Qt here"), got.stderr


def test_without_a_subcommand_and_without_pyside6_the_window_says_what_to_install(process):
    done = process(code=WITHOUT_QT)
    assert done.returncode == 2
    assert "pip install 'etcdadmin[gui]'" in done.stderr


def test_python_dash_m_etcdadmin_is_the_same_command(process):
    done = process("--version")
    assert done.returncode == 0
    assert "etcdadmin" in done.stdout
    assert sys.executable


def test_an_unexpected_error_is_one_line_naming_a_bug_with_exit_70(run):
    import click

    from etcdadmin.cli.main import cli

    @click.command(name="broken")
    def broken() -> None:
        raise ZeroDivisionError("division by zero")

    cli.add_command(broken)
    try:
        done = run("broken")
    finally:
        cli.commands.pop("broken")
    assert done.exit_code == 70
    assert done.stderr.strip().splitlines() == [
        "Error: internal error, a bug in etcdadmin: ZeroDivisionError: division by zero "
        "(run with --log-level debug for the traceback, and report it)"
    ]


def test_a_large_export_reaches_a_pipe_whole_before_the_process_ends(process, etcd_server, top):
    # The command leaves without tearing the interpreter down: what it wrote must all be out.
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        for start in range(0, 3000, 100):
            conn.txn(
                [],
                [
                    TxnOp("put", f"{top}/svc{i // 50:02d}/key{i % 50:02d}", f"value-{i}")
                    for i in range(start, start + 100)
                ],
            )
    done = process("--endpoints", etcd_server.endpoint, "export", top)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 3000 + 60
    assert done.stdout.endswith("  key49: value-2999\n")


def test_a_failing_command_still_exits_with_its_code_and_message(process, etcd_server, top):
    done = process("--endpoints", etcd_server.endpoint, "get", f"{top}/missing")
    assert done.returncode == exits.NOT_FOUND
    assert done.stderr.strip() == f"Error: key {top}/missing not found"


def test_a_command_never_executes_the_modules_grpc_and_protobuf_import_for_nothing(
    process, etcd_server, top
):
    """`etcdadmin.cli.deferred`: asyncio, grpc.aio and protobuf's pure-Python messages are
    imported by grpc and protobuf and used by no command; a real export leaves them unrun."""
    etcd_server.etcdctl("put", f"{top}/http/addr", ":5000")
    done = process(
        "--endpoints",
        etcd_server.endpoint,
        "export",
        top,
        env={"PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert (done.returncode, done.stdout) == (0, "http:\n  addr: :5000\n"), done.stderr
    executed = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()}
    assert "grpc" in executed, "no import times printed: the check looks at nothing"
    for module in ("asyncio.base_events", "grpc.aio._call", "google.protobuf.text_format"):
        assert module not in executed


def test_a_deferred_module_still_works_when_something_uses_it(process):
    done = process(
        code=(
            "import etcdadmin.cli.main, asyncio, grpc.aio\n"
            "async def answer(): return 42\n"
            "print(asyncio.run(answer()), grpc.aio.insecure_channel.__name__)\n"
        )
    )
    assert (done.returncode, done.stdout) == (0, "42 insecure_channel\n"), done.stderr


def test_a_reader_that_stops_early_ends_the_command_with_141_and_no_message(etcd_server, top):
    """`etcdadmin ls -r DIR | head -1`: 141, as a shell reports for a C tool, never 1 (which
    says "conflict or differences"), and nothing on stderr."""
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        for start in range(0, 5000, 100):
            conn.txn(
                [], [TxnOp("put", f"{top}/k{i:05d}", "v" * 100) for i in range(start, start + 100)]
            )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for command in (["ls", "-r", top], ["export", top]):
        reader = subprocess.Popen(
            [sys.executable, "-m", "etcdadmin", "--endpoints", etcd_server.endpoint, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert reader.stdout is not None and reader.stderr is not None
        assert reader.stdout.readline()
        reader.stdout.close()  # as `head -1` does after its line
        stderr = reader.stderr.read()
        assert reader.wait(timeout=60) == exits.CLOSED_PIPE, stderr
        assert stderr == b""
