"""The desktop client on 1,000,000 keys, side by side with `etcdctl get --prefix --keys-only`.

    .venv/bin/python -m benchmarks.client_browse [--keys 1000000]

Loads the keys into a scratch etcd, then drives the real main window (offscreen) and prints:
time until the first level is shown, time until every key is indexed, time to expand a
directory, the longest UI-thread stall while loading and browsing and while 10,000 keys change
under a live view, and peak memory. Not a test: it prints figures for the README.
Targets (issue #3): first level < 2 s, expansion < 100 ms, no stall > 100 ms, < 600 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="etcdadmin-bench-config-")

from PySide6.QtCore import QElapsedTimer, QTimer
from PySide6.QtWidgets import QApplication

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection, TxnOp
from etcdadmin.gui.connections.profiles import ConnectionProfile
from etcdadmin.gui.mainwindow import MainWindow
from tests.stack.etcd import EtcdServer

TXN_OPS = 128


def key_names(n: int) -> list[bytes]:
    keys = []
    for i in range(n):
        team, env, service, k = i // 10_000, (i // 1000) % 10, (i // 10) % 100, i % 10
        keys.append(f"registry-team{team:03d}/env{env}/service{service:02d}/key{k}".encode())
    return keys


def load(endpoint: str, keys: list[bytes]) -> float:
    started = time.perf_counter()
    chunks = [keys[i : i + TXN_OPS] for i in range(0, len(keys), TXN_OPS)]

    def worker(part: list[list[bytes]]) -> None:
        with EtcdConnection(ConnectionSettings((endpoint,))) as conn:
            for chunk in part:
                conn.txn([], [TxnOp("put", k, b"value-0123456789") for k in chunk])

    threads = [threading.Thread(target=worker, args=(chunks[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class StallMeter:
    """A 10 ms timer on the UI thread: the longest gap between its ticks is the longest stall."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.worst = 0.0
        self.last = 0

    def start(self) -> None:
        self.worst = 0.0
        self.clock.start()
        self.last = 0
        self.timer.start()

    def _tick(self) -> None:
        now = self.clock.elapsed()
        self.worst = max(self.worst, (now - self.last - 10) / 1000)
        self.last = now

    def stop(self) -> float:
        self.timer.stop()
        return self.worst


def pump_until(app: QApplication, predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    while not predicate():
        app.processEvents()
        if time.perf_counter() - started > timeout:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.001)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument(
        "--write-changes", nargs=2, metavar=("ENDPOINT", "KEYS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.write_changes:
        endpoint, total = args.write_changes[0], int(args.write_changes[1])
        everything = key_names(total)
        load(endpoint, everything[:: max(1, total // 10_000)][:10_000])
        return
    app = QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="client-bench-") as tmp:
        etcd = EtcdServer(
            Path(tmp) / "etcd", "bench", extra_args=["--quota-backend-bytes", str(8 << 30)]
        )
        etcd.start()
        try:
            keys = key_names(args.keys)
            load_s = load(etcd.endpoint, keys)
            started = time.perf_counter()
            out = subprocess.run(
                [
                    etcd.etcdctl_bin,
                    "--endpoints",
                    etcd.client_url,
                    "get",
                    "",
                    "--prefix",
                    "--keys-only",
                ],
                env={**os.environ, "ETCDCTL_API": "3"},
                capture_output=True,
                check=True,
            )
            etcdctl_s = time.perf_counter() - started
            etcdctl_keys = sum(1 for line in out.stdout.splitlines() if line)

            window = MainWindow(sandbox_dir=Path(tmp) / "sandbox")
            window.resize(1400, 850)
            window.show()
            meter = StallMeter()
            meter.start()
            started = time.perf_counter()
            window.connect_profile(ConnectionProfile("bench", etcd.endpoint))
            first_level = pump_until(app, lambda: window.model.rowCount() > 0, 60)
            all_loaded = pump_until(
                app, lambda: "keys loaded" in window.statusBar().currentMessage(), 120
            )
            all_loaded += first_level
            # browse: expand a few directories deep down
            expand_times = []
            for team in (0, 50, 99):
                index = window.model.find(f"registry-team{team:03d}".encode())
                t0 = time.perf_counter()
                window.tree.view.expand(index)
                app.processEvents()
                child = window.model.index(5, 0, index)
                window.tree.view.expand(child)
                app.processEvents()
                expand_times.append((time.perf_counter() - t0) / 2)
            stall_browse = meter.stop()

            # 10,000 keys change under the live view (some in an expanded directory)
            meter.start()
            # The writer is another process, as another operator or a deploy script would be.
            writer = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.client_browse",
                    "--write-changes",
                    etcd.endpoint,
                    str(args.keys),
                ],
            )
            pump_until(app, lambda: writer.poll() is not None, 120)
            deadline = time.perf_counter() + 3
            while time.perf_counter() < deadline:
                app.processEvents()
                time.sleep(0.001)
            stall_live = meter.stop()
            peak = peak_rss_mib()
            window.close()
            app.processEvents()
        finally:
            etcd.stop()

    rows = [
        ("etcdctl get --prefix --keys-only", f"{etcdctl_s:.2f} s", f"({etcdctl_keys:,} keys)"),
        ("client: first level shown", f"{first_level:.2f} s", "target < 2 s"),
        ("client: every key indexed", f"{all_loaded:.2f} s", ""),
        (
            "client: expand a directory (median)",
            f"{sorted(expand_times)[1] * 1000:.1f} ms",
            "target < 100 ms",
        ),
        (
            "client: longest UI stall, loading+browsing",
            f"{stall_browse * 1000:.1f} ms",
            "target < 100 ms",
        ),
        (
            "client: longest UI stall, 10,000 changes",
            f"{stall_live * 1000:.1f} ms",
            "target < 100 ms",
        ),
        ("client: peak memory (VmHWM)", f"{peak:.0f} MiB", "target < 600 MB"),
    ]
    print(f"\n{args.keys:,} keys (loaded into etcd in {load_s:.1f} s)")
    for label, value, note in rows:
        print(f"  {label:<44}{value:>10}  {note}")


if __name__ == "__main__":
    main()
