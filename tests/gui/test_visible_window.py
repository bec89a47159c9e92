"""The client as an operator starts it: a real window on a real X server (Xvfb)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import _construct
from tests.stack.procs import ManagedProcess, require_binary, wait_until


def test_the_client_opens_a_window_on_an_x_server_and_loads_the_keys(tmp_path, etcd_server):
    xvfb = _construct(lambda: require_binary("Xvfb", "xvfb"))
    display = f":{90 + os.getpid() % 100}"
    server = ManagedProcess(
        "xvfb", [xvfb, display, "-screen", "0", "1280x800x24"], tmp_path / "x.log"
    )
    server.start()
    try:
        wait_until(lambda: os.path.exists(f"/tmp/.X11-unix/X{display[1:]}"), 10, "Xvfb socket")
        env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
        env.update(DISPLAY=display, XDG_CONFIG_HOME=str(tmp_path / "config"))
        log = tmp_path / "client.log"
        with log.open("wb") as out:
            client = subprocess.Popen(
                [sys.executable, "-m", "etcdadmin", "--endpoints", etcd_server.endpoint,
                 "--log-level", "INFO"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_until(
                lambda: "keys loaded at revision" in log.read_text() or client.poll() is not None,
                30,
                "the client to load keys",
            )
            assert client.poll() is None, f"the client died:\n{log.read_text()[-2000:]}"
        finally:
            client.terminate()
            client.wait(timeout=10)
    finally:
        server.stop()
