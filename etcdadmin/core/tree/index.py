r"""An in-memory index of every key in etcd, so the desktop client can browse a million keys.

Why not ask etcd per directory: etcd counts every key in the requested range on every Range
call, even with a limit, so a ``limit=1`` probe over 1M keys costs ~150 ms and a tree that probes
each directory it draws is unusable. Reading all keys once (keys-only, pages of 100k in key order,
~2.7 s for 1M) and answering "what are the children of this directory" from memory costs
milliseconds. Values are fetched per key on demand elsewhere.

The key space is shown as a tree split on ``/``. A key's segments are its pieces between
slashes, empty pieces included: ``/a/b`` has the segments ``""``, ``a``, ``b`` (the GUI shows the
empty first segment as ``/``) and ``a//b`` has an empty middle segment. etcd allows a key to be a
directory too (``a`` and ``a/b`` may both exist): such a child has ``is_key`` and ``is_dir``.

Children are ordered by segment bytes, which is *not* the order of their keys: ``-`` and ``.``
sort before ``/``, so ``svc-a/x`` comes before ``svc/x`` although the segment ``svc`` comes
before ``svc-a``. The listing below corrects for that without sorting a whole directory.

Threads: the initial load (`KeyIndex.extend_sorted`) and the watch (`KeyIndex.apply`) write
from background threads while the GUI thread reads; every method holds the index's lock, and a
big batch builds its new list outside it so readers wait only for a pointer swap.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import attrgetter

# Below this many changes a batch is applied with in-place bisect inserts and deletes, each an
# O(N) memmove of pointers (~0.1 ms at 1M keys); above it one rebuild of the list is cheaper.
SMALL_BATCH = 64

# How many keys `KeyIndex.search` scans per call at most, so a background search over 1M keys
# returns (and can be cancelled) every few milliseconds even when the needle is rare.
SEARCH_SCAN = 65_536

_SLASH = 0x2F
# Leaf runs are checked and listed in blocks once this many leaves came in a row; blocks grow
# from the first size to the largest while runs hold. A block that fails costs one pass over it.
_STREAK = 8
_FIRST_BLOCK = 64
_MAX_BLOCK = 8192
# Bytes that sort before "/": a segment continuing with one of these sorts after its own
# directory's keys in key order ("a-b" < "a/x"), so a directory's keys can come late.
_BEFORE_SLASH = re.compile(rb"[\x00-\x2e]")


@dataclass(frozen=True, slots=True)
class Child:
    """One entry of a directory listing in the key tree.

    ``path`` is the full key for a key, and the directory without its trailing slash for a
    directory (``path + b"/"`` is the prefix of its descendants; see `prefix`). ``count`` is the
    number of keys at or below it: the key itself, if it exists, plus its descendants.
    """

    segment: bytes
    path: bytes
    is_key: bool
    is_dir: bool
    count: int

    @property
    def prefix(self) -> bytes:
        """The prefix of this child's descendants: what `KeyIndex.children_under` takes.

        Use it rather than ``path`` to expand a child: the empty first segment of ``/a/b`` has
        the path ``b""``, which `KeyIndex.children` reads as the root.
        """
        return self.path + b"/"


_SEGMENT = attrgetter("segment")
# Child() costs ~0.6 us in its frozen __init__ (object.__setattr__ per field); the listing of a
# 100k-leaf directory builds 100k of them, so the walk fills the slots directly (~0.3 us).
_SET_SEGMENT, _SET_PATH, _SET_IS_KEY, _SET_IS_DIR, _SET_COUNT = (
    Child.__dict__[name].__set__ for name in ("segment", "path", "is_key", "is_dir", "count")
)


def _leaf(key: bytes, segment: bytes) -> Child:
    """``Child(segment, key, True, False, 1)``, built without the frozen ``__init__``."""
    child = object.__new__(Child)
    _SET_SEGMENT(child, segment)
    _SET_PATH(child, key)
    _SET_IS_KEY(child, True)
    _SET_IS_DIR(child, False)
    _SET_COUNT(child, 1)
    return child


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix``; None: no such bound."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _range(keys: list[bytes], prefix: bytes) -> tuple[int, int]:
    """Positions [lo, hi) of the keys starting with ``prefix``."""
    lo = bisect_left(keys, prefix)
    end = _prefix_end(prefix)
    hi = len(keys) if end is None else bisect_left(keys, end, lo)
    return lo, hi


class KeyIndex:
    """The sorted, unique keys of the cluster (bytes), answering tree and search questions.

    A plain list of the key objects themselves: 1M keys of ~37 bytes are 77 MB of objects and
    ~100 MB of resident memory this way (``benchmarks/keyindex.py``), where a trie of dicts
    would take several times that, and `bisect` on the list gives every prefix range in
    O(log N). The cyclic GC walks this list on each full collection (~3 ms at 1M keys): a GUI
    that minds its pauses can ``gc.freeze()`` after the initial load.
    """

    def __init__(self, keys: Iterable[bytes] = ()) -> None:
        self._keys: list[bytes] = sorted(set(keys))
        # Readers and in-place writes hold _lock; _write_lock keeps writers from rebuilding the
        # list from a state another writer is changing.
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes):
            return False
        with self._lock:
            keys = self._keys
            i = bisect_left(keys, key)
            return i < len(keys) and keys[i] == key

    # -- writing -----------------------------------------------------------------------------

    def extend_sorted(self, page: Sequence[bytes]) -> None:
        """Append one page of the initial load: ascending keys, all after the current last one.

        Only the page's first key is checked against the last key (etcd returns a Range in key
        order and the next page starts after the last key read); a page that does not follow on
        (a reload racing the watch, say) is merged instead.
        """
        if not page:
            return
        with self._write_lock:
            with self._lock:
                keys = self._keys
                if not keys or page[0] > keys[-1]:
                    keys.extend(page)
                    return
            self._apply_locked(page, ())

    def apply(self, puts: Iterable[bytes] = (), deletes: Iterable[bytes] = ()) -> None:
        """Apply one batch of watch events: keys created or updated, and keys deleted.

        Putting a key that exists and deleting one that does not change nothing. A key in both
        ends up deleted, so the caller collapses a watch response's events per key (last wins).
        """
        with self._write_lock:
            self._apply_locked(puts, deletes)

    def _apply_locked(self, puts: Iterable[bytes], deletes: Iterable[bytes]) -> None:
        gone = set(deletes)
        new = sorted({key for key in puts if key not in gone})
        keys = self._keys
        if len(new) + len(gone) < SMALL_BATCH:
            with self._lock:
                for key in new:
                    i = bisect_left(keys, key)
                    if i == len(keys) or keys[i] != key:
                        keys.insert(i, key)
                for key in gone:
                    i = bisect_left(keys, key)
                    if i < len(keys) and keys[i] == key:
                        del keys[i]
            return
        rebuilt = _rebuild(keys, new, gone)
        with self._lock:
            self._keys = rebuilt

    # -- reading -----------------------------------------------------------------------------

    def count(self, prefix: bytes) -> int:
        """How many keys start with ``prefix`` (``b""``: all of them)."""
        with self._lock:
            lo, hi = _range(self._keys, prefix)
            return hi - lo

    def keys_under(self, prefix: bytes) -> list[bytes]:
        """The keys starting with ``prefix``, in key order."""
        with self._lock:
            lo, hi = _range(self._keys, prefix)
            return self._keys[lo:hi]

    def children(
        self, directory: bytes, *, after: bytes | None = None, limit: int | None = None
    ) -> list[Child]:
        """The direct children of ``directory`` (no trailing slash; ``b""`` is the root).

        The directory named by the empty first segment of ``/a/b`` has the path ``b""`` too,
        which means the root here: expand children with `children_under` and `Child.prefix`.
        """
        return self.children_under(directory + b"/" if directory else b"", after=after, limit=limit)

    def children_under(
        self, prefix: bytes, *, after: bytes | None = None, limit: int | None = None
    ) -> list[Child]:
        """The direct children of the directory whose descendants start with ``prefix``.

        Ordered by segment; ``after``/``limit`` page through a huge directory (Qt's fetchMore
        asks 1000 at a time): only children whose segment sorts after ``after``, at most
        ``limit`` of them. Costs O(children listed · log N), not O(keys below the directory).
        """
        with self._lock:
            keys = self._keys
            lo, hi = _range(keys, prefix)
            if after is not None:
                # Every key of a child after `after` sorts at or after prefix+after+"\0".
                lo = bisect_left(keys, prefix + after + b"\x00", lo, hi)
            return _list_children(keys, prefix, lo, hi, after, limit)

    def search(
        self,
        needle: bytes,
        *,
        under: bytes = b"",
        start: int = 0,
        limit: int = 500,
        scan: int = SEARCH_SCAN,
    ) -> tuple[list[bytes], int]:
        """Keys starting with ``under`` that contain ``needle``, ignoring ASCII case.

        Scans from position ``start`` of that range, at most ``scan`` keys and until ``limit``
        matches, and returns the matches with the position to continue from, or -1 when the
        range is exhausted: a background search calls it in a loop, streaming each chunk and
        checking for cancellation in between. A call may return fewer than ``limit`` matches
        (even none) before the end, so only -1 means done. Positions shift when the index
        changes between calls; the search then skips or repeats a few keys.
        """
        lowered = needle.lower()
        limit = max(limit, 1)
        with self._lock:
            keys = self._keys
            lo, hi = _range(keys, under)
            begin = lo + max(start, 0)
            stop = min(hi, begin + max(scan, 1))
            chunk = keys[begin:stop]
        found, scanned = _find(chunk, lowered, limit)
        if scanned < len(chunk):
            return found, begin - lo + scanned
        return found, -1 if stop >= hi else stop - lo


def _find(chunk: list[bytes], lowered: bytes, limit: int) -> tuple[list[bytes], int]:
    """The keys of ``chunk`` containing ``lowered`` ignoring ASCII case, at most ``limit``,
    and how many keys of the chunk that took.

    Searches the chunk joined into one string, with C-level ``lower`` and ``find``: 3-4x
    faster than testing key by key (~70 ms against ~250 ms for a rare needle over 1M keys). A
    hit can straddle the newline joining two keys (keys may hold newlines), so each hit is
    confirmed on its own key.
    """
    data = b"\n".join(chunk)
    if lowered != lowered.upper():
        data = data.lower()
    at = data.find(lowered)
    if at < 0:
        return [], len(chunk)
    starts = list(accumulate([len(key) + 1 for key in chunk], initial=0))
    found: list[bytes] = []
    while at >= 0:
        n = bisect_right(starts, at) - 1
        if lowered in chunk[n].lower():
            found.append(chunk[n])
            if len(found) == limit:
                return found, n + 1
        at = data.find(lowered, starts[n + 1])
    return found, len(chunk)


def _rebuild(keys: list[bytes], new: list[bytes], gone: set[bytes]) -> list[bytes]:
    """``keys`` with ``new`` (sorted) inserted and ``gone`` removed, in one O(N) pass.

    Copying the runs between changes with list slices keeps the per-key work in C: a 10k batch
    over 1M keys costs a few milliseconds, where 10k `list.insert` calls would move ~10^10
    pointers.
    """
    edits: list[tuple[int, int, bytes]] = []
    for key in new:
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            edits.append((i, 0, key))
    for key in gone:
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            edits.append((i, 1, key))
    if not edits:
        return keys
    # At one position the insertion goes before the deleted key it precedes.
    edits.sort()
    out: list[bytes] = []
    done = 0
    for i, is_delete, key in edits:
        out += keys[done:i]
        if is_delete:
            done = i + 1
        else:
            out.append(key)
            done = i
    out += keys[done:]
    return out


def _list_children(
    keys: list[bytes], prefix: bytes, lo: int, hi: int, after: bytes | None, limit: int | None
) -> list[Child]:
    """List the children whose keys lie in ``keys[lo:hi]`` (see `KeyIndex.children_under`).

    Walks the range in key order: a directory costs one bisect over its subtree, and once a
    streak of leaf keys shows up, whole runs of leaves are taken in blocks (one C-level check
    that no key in the run holds a ``/`` or prefixes the next) so a directory of 100k leaves
    lists in tens of milliseconds.

    Key order and segment order differ only where a segment continues with a byte below
    ``/``: the keys of directory ``a`` (``a/...``) come after those of ``a-b`` and ``a.c``. An
    exact key whose subtree comes late is counted when met (one bisect); a whole listing is
    sorted at the end if anything came out of order. A page stops early, and a directory that
    comes late but belongs in the page is always a prefix, ending before such a byte, of a
    segment listed in it, so those prefixes are probed before the page is cut.
    """
    plen = len(prefix)
    slashes = prefix.count(b"/")
    want = hi - lo if limit is None else limit
    listed: list[Child] = []
    append = listed.append
    new_child = object.__new__
    set_segment, set_path, set_is_key = _SET_SEGMENT, _SET_PATH, _SET_IS_KEY
    set_is_dir, set_count = _SET_IS_DIR, _SET_COUNT
    # Exact keys met before their subtree (siblings such as "a-b" came in between): already
    # counted, so the subtree is skipped when the walk reaches it.
    counted: set[bytes] = set()
    in_order = True
    last = b""
    streak = 0
    block = _FIRST_BLOCK
    i = lo
    while i < hi and len(listed) < want:
        if streak >= _STREAK:
            j = min(hi, i + block, i + want - len(listed))
            run = keys[i:j]
            if b"".join(run).count(b"/") == slashes * len(run) and not (
                any(map(bytes.startswith, run[1:], run)) or (j < hi and keys[j].startswith(run[-1]))
            ):
                if run[0][plen:] < last:
                    in_order = False
                # _leaf inlined: a call per child is a fifth of this loop.
                for key in run:
                    child = new_child(Child)
                    set_segment(child, key[plen:])
                    set_path(child, key)
                    set_is_key(child, True)
                    set_is_dir(child, False)
                    set_count(child, 1)
                    append(child)
                last = run[-1][plen:]
                i = j
                block = min(2 * block, _MAX_BLOCK)
                continue
            streak = 0
            block = _FIRST_BLOCK
        key = keys[i]
        slash = key.find(b"/", plen)
        if slash >= 0:
            streak = 0
            seg = key[plen:slash]
            path = key[:slash]
            end = i + 1
            if end < hi and keys[end].startswith(path + b"/"):
                end = bisect_left(keys, path + b"0", end, hi)
            if seg in counted or (after is not None and seg <= after):
                i = end
                continue
            child = Child(seg, path, False, True, end - i)
        else:
            seg = key[plen:]
            end = i + 1
            below = 0
            if end < hi and keys[end].startswith(key):
                subtree = key + b"/"
                first = (
                    end if keys[end][len(key)] == _SLASH else bisect_left(keys, subtree, end, hi)
                )
                if first < hi and keys[first].startswith(subtree):
                    last_below = bisect_left(keys, key + b"0", first, hi)
                    below = last_below - first
                    if first == end:
                        end = last_below
                    else:
                        counted.add(seg)
            streak = 0 if below else streak + 1
            child = _leaf(key, seg) if not below else Child(seg, key, True, True, below + 1)
        if seg < last:
            in_order = False
        last = seg
        append(child)
        i = end
    if limit is not None and i < hi:
        in_order = _add_late_directories(listed, keys, prefix, after) and in_order
    if not in_order:
        listed.sort(key=_SEGMENT)
    return listed[:want]


def _add_late_directories(
    listed: list[Child], keys: list[bytes], prefix: bytes, after: bytes | None
) -> bool:
    """Add the directories a page cut short missed; False when it added any.

    A child missing from the walk so far yet sorting before a listed segment ``q`` can only be
    a directory whose keys come later: a prefix of ``q`` ending before a byte below ``/``.
    """
    have = {child.segment for child in listed}
    probed: set[bytes] = set()
    added = False
    for child in list(listed):
        segment = child.segment
        if segment.isalnum():
            continue
        for low in _BEFORE_SLASH.finditer(segment):
            late = segment[: low.start()]
            if late in have or late in probed or (after is not None and late <= after):
                continue
            probed.add(late)
            lo, hi = _range(keys, prefix + late + b"/")
            if hi > lo:
                listed.append(Child(late, prefix + late, False, True, hi - lo))
                added = True
    return not added
