"""Modules a command's start imports but no command uses, executed only when something touches
them (the standard library's `importlib.util.LazyLoader`).

grpc imports asyncio and its asyncio API (`grpc.aio`) when it is imported, and protobuf 7
imports its pure-Python message classes (`python_message`, which brings `text_format`) even
when its upb backend does the work. The commands use grpc's synchronous API on upb, so none of
it runs: deferring those three took `import grpc, pyetcd` from 0.157 to 0.114 s (medians of 20
processes, CPython 3.11.7, grpcio 1.85, protobuf 7.36, 2 cores), 0.04 s off every command's
start, and `etcdadmin export` asks etcd for its first page that much sooner.

A deferred module is still there on first use, by whatever touches it (an attribute, or a
plain `import asyncio`): it executes then. One limit: CPython 3.11's LazyLoader takes no lock,
so two threads touching a deferred module for the first time at once could see it half
executed; which is why only modules that no command uses are listed, and why the window, a
long-lived process with many threads, executes them before it starts (`load_now`).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType

UNUSED_BY_COMMANDS = ("asyncio", "grpc.aio", "google.protobuf.internal.python_message")


class _DeferringFinder:
    """Finds the listed modules where the import system would, with a lazy loader.

    Not a subclass of `importlib.abc.MetaPathFinder`, which the import system does not need:
    importing `importlib.abc` brings `importlib.resources`, pathlib and tempfile, 12 ms.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None  # not a plain module file: imported the usual way
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


@contextmanager
def deferred(names: Sequence[str] = UNUSED_BY_COMMANDS) -> Iterator[None]:
    """Within the block, a first import of one of `names` gives a module that executes on its
    first attribute access. Imports after the block are the usual ones."""
    finder = _DeferringFinder(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def load_now(names: Sequence[str] = UNUSED_BY_COMMANDS) -> None:
    """Execute every deferred module that is still waiting for its first use, on this thread."""
    for name in names:
        module = sys.modules.get(name)
        if module is not None:
            getattr(module, "__name__", None)  # any attribute access runs the lazy load
