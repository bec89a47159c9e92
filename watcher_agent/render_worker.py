"""Rendering in a child process, bounded in time and memory, so no value can stall the agent.

Every value under the watched directory is untrusted input: a few hundred bytes of nested YAML
aliases once held a render for 80 s and grew it past 3 GB, and parser bugs surfaced as
ValueError, KeyError or RecursionError with parts of the value in their message. The parser
refuses what it knows to be dangerous; this is the defence for what it does not know yet:

- the render runs in a long-lived child process (spawned, not forked: the agent has gRPC and
  HTTP threads that a fork would copy mid-flight) whose address space is capped by
  RLIMIT_AS, so a memory bomb ends as a MemoryError in the child, not in the agent;
- the agent waits at most `RENDER_TIMEOUT`; past it the child is killed and a new one is
  started for the next render;
- whatever the child raises comes back as a `Rendered` with the key at fault when it can be
  found, and, for an exception that is not the project's own, only the exception's type and
  the code locations of its traceback: exception messages may quote the value and are dropped.

Why a process and not a thread: a thread cannot be stopped nor its memory capped, and a long
call into libyaml holds the GIL. Cost, measured on 2 cores: a one-key render took 0.4 ms
through the child against 0.2 ms in-process, 20,000 keys 0.64 s against 0.68 s (the render
itself dominates), a 1 MB value 19-29 ms against 24 ms.
"""

from __future__ import annotations

import ctypes
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import resource
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from etcdadmin.core.errors import EtcdAdminError, MappingError

log = logging.getLogger(__name__)

# Past this a render is abnormal (20,000 keys render in under 1 s): the status says `rendering`
# with its start time and /healthz answers 503 until it ends or is killed at RENDER_TIMEOUT.
SLOW_RENDER = 2.0
_POLL = 0.05
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Test hooks, read by the child only; nothing outside tests/agent sets them. DELAY: seconds the
# child sleeps before each render of keys (a render that blocks). BUG: a value containing this
# text makes the child raise a ValueError quoting the value, as parser bugs seen in the field did.
TEST_RENDER_DELAY = "WATCHER_AGENT_TEST_RENDER_DELAY"
TEST_RENDER_BUG = "WATCHER_AGENT_TEST_RENDER_BUG"
_GO_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
MIN_STOP_TIMEOUT = 10
# Docker's stop timeout is an int32 of seconds; a drain timeout past a day is a typo.
MAX_STOP_TIMEOUT = 86400


@dataclass(frozen=True)
class Rendered:
    """What a render gave: the config, or why there is none (never a value)."""

    config: bytes | None
    stop_timeout: int = 0
    error: str | None = None
    key: str | None = None
    # For an exception that is not the project's own: its type and code locations, no message.
    bug: tuple[str, ...] = ()
    timed_out: bool = False
    interrupted: bool = False
    out_of_memory: bool = False


def stop_timeout_for(rendered: bytes) -> int:
    """Seconds Docker waits before SIGKILL: at least the registry's `http.draintimeout`.

    Go durations (`60s`, `1m30s`) as distribution writes them; anything unparsable keeps the
    minimum rather than failing the apply. Runs in the render child: the config is untrusted.
    """
    if b"draintimeout" not in rendered:
        return MIN_STOP_TIMEOUT  # skip parsing the whole config again (20,000 keys: ~100 ms)
    from etcdadmin.core.config.documents import load_yaml  # the one parser, in the child

    try:
        doc = load_yaml(rendered.decode("utf-8"), "the rendered config")
        http = doc.get("http") if isinstance(doc, dict) else None
        drain = str(http.get("draintimeout", "")) if isinstance(http, dict) else ""
        seconds = sum(float(n) * _GO_UNITS[u] for n, u in _GO_DURATION.findall(drain[:100]))
        return min(MAX_STOP_TIMEOUT, max(MIN_STOP_TIMEOUT, math.ceil(seconds) + 5))
    except (EtcdAdminError, UnicodeDecodeError, ValueError, OverflowError):
        return MIN_STOP_TIMEOUT


def key_name(key: bytes) -> str:
    """A key as an operator can type it back: non-UTF-8 bytes escaped as \\xNN."""
    return key.decode("utf-8", "backslashreplace")


class RenderWorker:
    """The parent's handle on the child; one render at a time, from the sync loop's thread."""

    def __init__(self, timeout: float, memory_limit: int) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: multiprocessing.connection.Connection | None = None

    def start(self) -> None:
        """Start the child now, so the first render does not pay for the interpreter start."""
        if self._process is not None and self._process.is_alive():
            return
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=serve,
            args=(child, self.memory_limit, os.getpid()),
            name="render",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent

    def render(
        self,
        base_text: str,
        entries: Mapping[bytes, bytes],
        directory: str,
        *,
        stop: threading.Event | None = None,
        on_slow: Callable[[], None] | None = None,
    ) -> Rendered:
        self.start()
        assert self._conn is not None
        started = time.monotonic()
        try:
            self._conn.send((base_text, dict(entries), directory))
            slow_reported = False
            while not self._conn.poll(_POLL):
                elapsed = time.monotonic() - started
                if stop is not None and stop.is_set():
                    self._kill()
                    return Rendered(None, error="the agent is stopping", interrupted=True)
                if elapsed >= self.timeout:
                    self._kill()
                    return Rendered(
                        None,
                        error=f"rendering took longer than RENDER_TIMEOUT ({self.timeout:g} s) "
                        "and was stopped; find the key whose value is huge or deeply nested "
                        "and fix or delete it",
                        timed_out=True,
                    )
                if not slow_reported and elapsed >= SLOW_RENDER and on_slow is not None:
                    slow_reported = True
                    on_slow()
            result = self._conn.recv()
        except (EOFError, OSError):
            code = self._process.exitcode if self._process is not None else None
            self._kill()
            return Rendered(
                None,
                error=f"the render process died (exit code {code}); the running config stays",
                bug=(f"render process exit code {code}",),
            )
        if not isinstance(result, Rendered):  # cannot happen: the child sends nothing else
            self._kill()
            return Rendered(None, error="the render process answered nonsense", bug=("protocol",))
        if result.out_of_memory:
            self._kill()  # the child exits after a MemoryError: the next render starts a new one
        return result

    def _kill(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
        self._process, self._conn = None, None

    def close(self) -> None:
        self._kill()


# -- the child ---------------------------------------------------------------------------------


def serve(conn: multiprocessing.connection.Connection, memory_limit: int, agent_pid: int) -> None:
    """The child's loop: one job in, one `Rendered` out, until the pipe closes."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    # The agent stops its child itself; Ctrl-C in a terminal reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(agent_pid)
    delay = float(os.environ.get(TEST_RENDER_DELAY) or 0)
    while True:
        try:
            base_text, entries, directory = conn.recv()
        except EOFError:
            return
        if delay and entries:  # the start-up check of the base config (no keys) is not delayed
            time.sleep(delay)
        result = render_job(base_text, entries, directory)
        conn.send(result)
        if result.out_of_memory:
            return  # start afresh after a MemoryError: the heap may be fragmented or huge


def _die_with_parent(agent_pid: int) -> None:
    """Ask Linux to kill this child when the agent dies, even mid-render (prctl
    PR_SET_PDEATHSIG): a render the agent no longer waits for must not keep a core busy. The
    standard library has no binding for it; elsewhere the closed pipe ends the child after it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != agent_pid:  # the agent died before the request took effect
        os._exit(0)


def render_job(base_text: str, entries: Mapping[bytes, bytes], directory: str) -> Rendered:
    """Render, turning every exception into a `Rendered` that names the key and no value."""
    from etcdadmin.core.config.mapping import render  # only the child needs the parser

    text_entries: dict[str, bytes] = {}
    for key, value in entries.items():
        try:
            text_entries[key.decode("utf-8")] = value
        except UnicodeDecodeError:
            return Rendered(
                None,
                error=f"etcd key `{key_name(key)}` is not UTF-8 text; rename or delete it "
                "(etcdctl del with the bytes written as shown)",
                key=key_name(key),
            )
    try:
        _test_bug(text_entries)
        config = render(base_text, text_entries, directory)
        return Rendered(config, stop_timeout=stop_timeout_for(config))
    except MappingError as exc:
        return Rendered(None, error=str(exc), key=exc.key)
    except MemoryError:
        return Rendered(
            None,
            error="rendering needs more memory than RENDER_MEMORY allows; find the key whose "
            "value expands to a huge document and fix or delete it",
            out_of_memory=True,
        )
    except EtcdAdminError as exc:
        return Rendered(None, error=str(exc))
    except Exception as exc:
        frames = scrubbed_traceback(exc)
        culprit = _culprit(text_entries)
        where = f" at etcd key `{culprit}`" if culprit else ""
        return Rendered(
            None,
            error=f"the value{where} could not be rendered ({type(exc).__name__}); fix or "
            "delete the key, and report this as a bug with the agent's log",
            key=culprit,
            bug=frames,
        )


def scrubbed_traceback(exc: BaseException) -> tuple[str, ...]:
    """The exception chain's types and code locations, without any message (values hide there)."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines.append(f"{type(current).__module__}.{type(current).__qualname__}")
        for frame in traceback.extract_tb(current.__traceback__):
            lines.append(f"  {frame.filename}:{frame.lineno} in {frame.name}")
        current = current.__cause__ or current.__context__
    return tuple(lines)


def _culprit(entries: Mapping[str, bytes]) -> str | None:
    """The first key whose value alone fails to parse, or None when every value parses."""
    from etcdadmin.core.config.values import parse_value

    for key in sorted(entries):
        try:
            _test_bug({key: entries[key]})
            parse_value(entries[key], key)
        except Exception:
            return key
    return None


def _test_bug(entries: Mapping[str, bytes]) -> None:
    marker = os.environ.get(TEST_RENDER_BUG)
    if not marker:
        return
    for value in entries.values():
        if marker.encode() in value:
            raise ValueError(f"cannot render {value!r}")  # quotes the value, as real bugs did
