"""A prefix read in pages, every page pinned at the first page's revision: asked for one
after the other, or ahead.

etcd 3.4 counts every key from a page's first key to the end of the range on every Range
call, even with a limit (see `client.PAGE_SIZE`), so a read in small pages costs
O(keys^2 / page).

Ahead (`etcdadmin export`), each page is asked for before the caller works on the one
before, on a thread of its own, and the first one at once: etcd reads the next page while the
caller writes this one. `etcdadmin export` of 100,000 keys took 0.6-0.7 s so, against
0.75-0.9 s in one page asked for in turn (etcd 3.4.23, 2 cores, CPython 3.11). Those pages
are of 25,000 keys and then, once the first answer has said how many keys the range holds, a
quarter of them (at most the caller's page size): at most five pages up to 400,000 keys
(with a page size of 100,000), one more than in turn beyond.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Generic, Protocol, TypeVar

FIRST_PAGE = 25_000
PAGES = 4


class Answer(Protocol):
    """What paging needs of one Range answer."""

    @property
    def revision(self) -> int: ...
    @property
    def more(self) -> bool: ...
    @property
    def count(self) -> int: ...
    @property
    def last_key(self) -> bytes | None: ...


A = TypeVar("A", bound=Answer)

Fetch = Callable[[bytes, "int | None", int], A]
"""One Range call: (first key, revision or None for the current one, limit) -> answer."""


class _InTurn(Generic[A]):
    """A page asked for when the caller wants it."""

    def __init__(self, fetch: Fetch[A], first: bytes, pinned: int | None, limit: int) -> None:
        self._call = (fetch, first, pinned, limit)

    def result(self) -> A:
        fetch, first, pinned, limit = self._call
        return fetch(first, pinned, limit)


class _Ahead(Generic[A]):
    """A page asked for now on a thread of its own, its outcome kept for `result`.

    A daemon thread with a `concurrent.futures.Future` rather than a `ThreadPoolExecutor`:
    the pool's threads are not daemons, and one still waiting on etcd when a command is done
    would hold the process at exit (`etcdadmin.cli.main.run`).
    """

    def __init__(self, fetch: Fetch[A], first: bytes, pinned: int | None, limit: int) -> None:
        self._future: Future[A] = Future()
        threading.Thread(target=self._run, args=(fetch, first, pinned, limit), daemon=True).start()

    def _run(self, fetch: Fetch[A], first: bytes, pinned: int | None, limit: int) -> None:
        try:
            self._future.set_result(fetch(first, pinned, limit))
        except BaseException as exc:  # handed to the reader, which raises it
            self._future.set_exception(exc)

    def result(self) -> A:
        return self._future.result()


def pages(
    fetch: Fetch[A],
    start: bytes,
    page_size: int,
    *,
    revision: int | None = None,
    ahead: bool = False,
) -> Iterator[tuple[int, A]]:
    """(pinned revision, answer) of each page from `start`, at `revision` or, when None,
    at the first page's. Ahead, the first page is asked for now, before the iteration
    starts."""
    if not ahead:
        return _pages(_InTurn(fetch, start, revision, page_size), fetch, page_size, revision)
    first = _Ahead(fetch, start, revision, min(FIRST_PAGE, page_size))
    return _pages(first, fetch, page_size, revision, ahead=True)


def _pages(
    pending: _InTurn[A] | _Ahead[A],
    fetch: Fetch[A],
    page_size: int,
    revision: int | None,
    *,
    ahead: bool = False,
) -> Iterator[tuple[int, A]]:
    answer = pending.result()
    pinned = answer.revision if revision is None else revision
    limit = page_size
    if ahead:
        limit = min(page_size, max(FIRST_PAGE, -(-answer.count // PAGES)))
    while True:
        last = answer.last_key if answer.more else None
        if last is not None:
            after = last + b"\0"
            pending = (
                _Ahead(fetch, after, pinned, limit)
                if ahead
                else _InTurn(fetch, after, pinned, limit)
            )
        yield pinned, answer
        if last is None:
            return
        answer = pending.result()
