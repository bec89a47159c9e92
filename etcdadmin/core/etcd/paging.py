"""A prefix read in pages, every page pinned at the first page's revision: asked for one
after the other, or ahead.

etcd 3.4 counts every key from a page's first key to the end of the range on every Range
call, even with a limit (see `client.PAGE_SIZE`), so a read in small pages costs
O(keys^2 / page).

Ahead (`etcdadmin export`), each page is asked for before the caller works on the one
before, on a thread of its own, and the first one at once: etcd reads the next page while the
caller writes this one. `etcdadmin export` of 100,000 keys took 0.6-0.7 s so, against
0.75-0.9 s in one page asked for in turn (etcd 3.4.23, 2 cores, CPython 3.11). The first page
is of 25,000 keys; once its answer has said how many keys the range holds, the next are of a
quarter of them (at most the caller's page size), each ending where the keys read so far say
that many more end (`next_bound`), so that etcd counts the keys of the page, not all the
keys left (see `_ahead`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Generic, Protocol, TypeVar

from etcdadmin.core.etcd.keyvalue import shared_prefix

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
    def size(self) -> int: ...  # the keys in this answer
    @property
    def first_key(self) -> bytes | None: ...
    @property
    def last_key(self) -> bytes | None: ...


A = TypeVar("A", bound=Answer)

Fetch = Callable[[bytes, "bytes | None", "int | None", int], A]
"""One Range call: (first key, end or None for the end of the whole read, revision or None for
the current one, limit) -> answer."""


class _Ahead(Generic[A]):
    """A page asked for now on a thread of its own, its outcome kept for `result`.

    A daemon thread with a `concurrent.futures.Future` rather than a `ThreadPoolExecutor`:
    the pool's threads are not daemons, and one still waiting on etcd when a command is done
    would hold the process at exit (`etcdadmin.cli.main.run`).
    """

    def __init__(
        self, fetch: Fetch[A], first: bytes, end: bytes | None, pinned: int | None, limit: int
    ) -> None:
        self._future: Future[A] = Future()
        call = (fetch, first, end, pinned, limit)
        threading.Thread(target=self._run, args=call, daemon=True).start()

    def _run(
        self, fetch: Fetch[A], first: bytes, end: bytes | None, pinned: int | None, limit: int
    ) -> None:
        try:
            self._future.set_result(fetch(first, end, pinned, limit))
        except BaseException as exc:  # handed to the reader, which raises it
            self._future.set_exception(exc)

    def result(self) -> A:
        return self._future.result()


def pages(
    fetch: Fetch[A],
    start: bytes,
    end: bytes,
    page_size: int,
    *,
    revision: int | None = None,
    ahead: bool = False,
) -> Iterator[tuple[int, A]]:
    """(pinned revision, answer) of each page of the range from `start` to `end` (`fetch`'s
    own; `b"\\0"`: every key from `start` on), at `revision` or, when None, at the first
    page's. Ahead, the first page is asked for now, before the iteration starts, and the
    pages after it end where `next_bound` guesses (see `_ahead`)."""
    if not ahead:
        return _in_turn(fetch, start, page_size, revision)
    first = _Ahead(fetch, start, None, revision, min(FIRST_PAGE, page_size))
    return _ahead(first, fetch, end, page_size, revision)


def _in_turn(
    fetch: Fetch[A], start: bytes, page_size: int, revision: int | None
) -> Iterator[tuple[int, A]]:
    answer = fetch(start, None, revision, page_size)
    pinned = answer.revision if revision is None else revision
    while True:
        last = answer.last_key if answer.more else None
        yield pinned, answer
        if last is None:
            return
        answer = fetch(last + b"\0", None, pinned, page_size)


def _ahead(
    pending: _Ahead[A], fetch: Fetch[A], end: bytes, page_size: int, revision: int | None
) -> Iterator[tuple[int, A]]:
    """The pages after the first one are asked for with an end of their own, where
    `next_bound` guesses the next `limit` keys end: etcd 3.4 counts every key from a Range's
    first key to its end whatever the limit, so each page counted all the keys still to
    read (100,000 keys in four pages: 250,000 keys counted). With an end, it counts those of
    the page: etcd answered four pages of 100,000 keys, each with its end where it falls, in
    0.18 s, 0.21 s without, 0.17 s in one Range (medians of 25 runs in turn, etcd 3.4.23, 2
    cores); an export of 1,000,000 keys took 2.9 s so, 3.8 s before. The last keys, when
    no more than a page and a half, are read in one page to the range's end.

    The pages tile the range whatever the guesses: a guess too far gives a full page and the
    next goes on up to the same end; one too near, a smaller page. After one far too near
    (under a quarter of a page, or empty) no more guesses are made."""
    answer = pending.result()
    pinned = answer.revision if revision is None else revision
    total, first = answer.count, answer.first_key or b""  # b"": no key, no next page
    limit = min(page_size, max(FIRST_PAGE, -(-total // PAGES)))
    read, guessing = 0, True
    bound: bytes | None = None  # the end of the page asked for; None: the range's
    guessed = False  # the page asked for starts where a guess ends (not a guess's rest)
    while True:
        read += answer.size
        last = answer.last_key
        after: bytes | None = None  # where the next page starts; None: there is none
        if answer.more and last is not None:
            after = last + b"\0"  # the page stopped at its limit: the next goes on from there
        elif bound is not None:
            after = bound  # the page holds all the keys up to its end: the next starts there
            if guessed:  # (the rest of a guess too far may well be small)
                guessing = guessing and answer.size >= max(1, limit // 4)
        size, guessed = limit, False
        if after is not None and (bound is None or not answer.more):  # where does it end?
            left = total - read
            covered = last if bound is None else bound
            if left <= limit + limit // 2:
                bound, size = None, min(page_size, left)  # the rest: counted as they are read
            elif guessing and covered is not None:
                # A little short of a page: a guess a little too far costs a page more.
                bound = next_bound(first, covered, read, limit - limit // 16, after, end)
                guessed = bound is not None
            else:
                bound = None
        following = _Ahead(fetch, after, bound, pinned, size) if after and read < total else None
        yield pinned, answer
        if following is None:
            return
        answer = following.result()


# Bytes of a key, after the part the keys read so far share, taken as a number to guess where
# the next keys end: 8 hold most counters and names (`0249/key` of `svc0249/key99`).
_WIDTH = 8
_DIGITS = frozenset(b"0123456789")


def next_bound(
    first: bytes, covered: bytes, read: int, want: int, after: bytes, end: bytes
) -> bytes | None:
    """Where the `want` keys from `after` on may end, guessed from the `read` keys that lay
    from `first` up to `covered`, as if the keys went on as densely: a key past `after` and
    before the range's `end` (`b"\\0"`: none), or None when there is no guess (the keys read
    are too alike, or the guess runs past the part they share or the range).

    The keys are read as numbers: `_WIDTH` of their bytes after the prefix `first` and
    `covered` share, each a digit of base 10 where both keys hold a decimal digit and of base
    256 elsewhere, so that numbered keys (`svc0249`) are counted as numbers. Read in base 256
    throughout, the 40 keys after `k0000` to `k0039` were guessed to end at `k006r` (`:` to
    `r` follow `9`): 30 keys.
    """
    shared = len(shared_prefix(first, covered))
    while shared and first[shared - 1] in _DIGITS:
        shared -= 1  # a number is read whole, not from its first differing digit
    low = first[shared : shared + _WIDTH].ljust(_WIDTH, b"\0")
    high = covered[shared : shared + _WIDTH].ljust(_WIDTH, b"\0")
    bases = [10 if a in _DIGITS and b in _DIGITS else 256 for a, b in zip(low, high, strict=True)]
    start, reached = _number(low, bases), _number(high, bases)
    if read <= 0 or reached <= start:
        return None
    guess = reached + -(-(reached - start) * want // read)
    digits = bytearray()
    for base in reversed(bases):
        guess, digit = divmod(guess, base)
        digits.append(digit + 0x30 if base == 10 else digit)
    if guess:
        return None  # past the part the keys share
    bound = covered[:shared] + bytes(reversed(digits))
    return bound if after < bound and (end == b"\0" or bound < end) else None


def _number(key: bytes, bases: list[int]) -> int:
    number = 0
    for byte, base in zip(key, bases, strict=True):
        number = number * base + (byte - 0x30 if base == 10 else byte)
    return number
