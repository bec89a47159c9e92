"""The key space as a tree: a lazy `QAbstractItemModel` over the in-memory `KeyIndex`.

Children are listed only when Qt asks (`canFetchMore`/`fetchMore`, 1,000 rows at a time, as in
Qt's "Fetch More" example), so a directory with 100,000 keys costs the first thousand rows
when opened. The model never talks to etcd: the session feeds it pages and index swaps.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QIcon

from etcdadmin.core.tree.index import Child, KeyIndex
from etcdadmin.core.tree.names import display_segment

FETCH_BATCH = 1000
COLUMNS = ("Key", "Keys below")
# What a secret key's row shows instead of anything of its value (even its ciphertext).
SECRET_MARK = "••••• secret"

_Index = QModelIndex | QPersistentModelIndex


class Node:
    """One row: a key, a directory, or both (etcd allows `a` and `a/b` side by side)."""

    __slots__ = ("child", "children", "complete", "parent")

    def __init__(self, child: Child | None, parent: Node | None) -> None:
        self.child = child
        self.parent = parent
        self.children: list[Node] | None = None  # None: never listed
        self.complete = False

    @property
    def path(self) -> bytes:
        return self.child.path if self.child is not None else b""

    @property
    def prefix(self) -> bytes:
        """What its descendants start with (the root: everything)."""
        return self.child.prefix if self.child is not None else b""

    @property
    def is_dir(self) -> bool:
        return self.child is None or self.child.is_dir


def _segment(node: Node) -> bytes:
    assert node.child is not None
    return node.child.segment


def display_name(child: Child) -> str:
    # An empty segment is what a leading slash makes (`/a` splits into "" and "a").
    return display_segment(child.segment) if child.segment else "/"


class KeyTreeModel(QAbstractItemModel):
    """Signals: the standard model signals only; rows change as the index grows or changes."""

    def __init__(self, icons: dict[str, QIcon] | None = None) -> None:
        super().__init__()
        self.index_data = KeyIndex()
        self.root = Node(None, None)
        self.icons = icons or {}
        # Keys known to hold a secret (an envelope): marked with a lock, never shown.
        self.secret_keys: set[bytes] = set()

    # -- feeding ----------------------------------------------------------------------------

    def reset(self, index: KeyIndex | None = None) -> None:
        self.beginResetModel()
        self.index_data = index if index is not None else KeyIndex()
        self.root = Node(None, None)
        self.secret_keys = set()
        self.endResetModel()

    def refresh_listed(self) -> None:
        """The index grew (a page of the initial load): every listed directory may gain rows,
        including one the operator opened before its later pages arrived."""
        self._refresh_tree(self.root, QModelIndex(), None)

    def keys_changed(self, changed: set[bytes]) -> None:
        """Refresh only the listed directories the changed keys lie in."""
        touched = {b""}
        for key in changed:
            parts = key.split(b"/")
            for i in range(1, len(parts)):
                touched.add(b"/".join(parts[:i]) + b"/")
        self._refresh_tree(self.root, QModelIndex(), touched)

    def _refresh_tree(self, node: Node, qindex: QModelIndex, touched: set[bytes] | None) -> None:
        """Refresh the listed directories whose prefix is in `touched` (None: all of them)."""
        if node.children is None:
            return
        if touched is None or node.prefix in touched:
            self._refresh_node(node, qindex)
        for row, child in enumerate(node.children):
            if child.children is not None and (touched is None or child.prefix in touched):
                self._refresh_tree(child, self.index(row, 0, qindex), touched)

    def _refresh_node(self, node: Node, qindex: QModelIndex) -> None:
        """Bring a listed node's rows in line with the index, with minimal row signals."""
        if node.children is None:
            return
        old = node.children
        index = self.index_data
        if node.complete:
            fresh = index.children_under(node.prefix)
            complete = True
        elif old:
            # Keep the rows shown so far (up to the last fetched one); the rest stays behind
            # canFetchMore, so a huge directory never lists itself whole here.
            shown_to = old[-1].child.segment  # type: ignore[union-attr]
            fresh = [
                c
                for c in index.children_under(node.prefix, limit=len(old) + FETCH_BATCH)
                if c.segment <= shown_to
            ]
            complete = not index.children_under(node.prefix, after=shown_to, limit=1)
        else:
            fresh = index.children_under(node.prefix, limit=FETCH_BATCH)
            complete = len(fresh) < FETCH_BATCH
        i = j = 0
        while i < len(node.children) or j < len(fresh):
            current = node.children[i] if i < len(node.children) else None
            wanted = fresh[j] if j < len(fresh) else None
            assert current is None or current.child is not None
            if current is not None and (wanted is None or current.child.segment < wanted.segment):  # type: ignore[union-attr]
                # remove a run of vanished rows at once: a directory deleted elsewhere can
                # take thousands of rows with it
                end = i + 1
                while end < len(node.children) and (
                    wanted is None or node.children[end].child.segment < wanted.segment  # type: ignore[union-attr]
                ):
                    end += 1
                self.beginRemoveRows(qindex, i, end - 1)
                del node.children[i:end]
                self.endRemoveRows()
            elif current is None or (
                wanted is not None and wanted.segment < current.child.segment  # type: ignore[union-attr]
            ):
                assert wanted is not None
                # insert a run of new rows at once: pages add thousands of rows at a time
                run = [wanted]
                k = j + 1
                limit = current.child.segment if current is not None else None  # type: ignore[union-attr]
                while k < len(fresh) and (limit is None or fresh[k].segment < limit):
                    run.append(fresh[k])
                    k += 1
                self.beginInsertRows(qindex, i, i + len(run) - 1)
                node.children[i:i] = [Node(c, node) for c in run]
                self.endInsertRows()
                i += len(run)
                j = k
            else:
                assert wanted is not None and current is not None
                if current.child != wanted:
                    current.child = wanted
                    self.dataChanged.emit(self.index(i, 0, qindex), self.index(i, 1, qindex))
                i += 1
                j += 1
        node.complete = complete

    # -- Qt model contract ------------------------------------------------------------------

    def node(self, index: _Index) -> Node:
        if not index.isValid():
            return self.root
        return index.internalPointer()  # type: ignore[no-any-return]

    def index(self, row: int, column: int, parent: _Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        node = self.node(parent)
        if node.children is None or not 0 <= row < len(node.children):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row])

    def parent(self, index: _Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid():
            return QModelIndex()
        node: Node = index.internalPointer()
        parent = node.parent
        if parent is None or parent.parent is None:
            return QModelIndex()
        siblings = parent.parent.children
        assert siblings is not None and parent.child is not None
        # rows are sorted by segment: O(log n), where list.index was O(n) per call
        row = bisect_left(siblings, parent.child.segment, key=_segment)
        return self.createIndex(row, 0, parent)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() and parent.column() != 0:
            return 0
        children = self.node(parent).children
        return len(children) if children is not None else 0

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def hasChildren(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        node = self.node(parent)
        if node.children is not None and node.children:
            return True
        return node.is_dir and not node.complete

    def canFetchMore(self, parent: _Index) -> bool:
        node = self.node(parent)
        return node.is_dir and not node.complete

    def fetchMore(self, parent: _Index) -> None:
        node = self.node(parent)
        if node.children is None:
            node.children = []
        after = node.children[-1].child.segment if node.children else None  # type: ignore[union-attr]
        batch = self.index_data.children_under(node.prefix, after=after, limit=FETCH_BATCH)
        if len(batch) < FETCH_BATCH:
            node.complete = True
        if batch:
            start = len(node.children)
            self.beginInsertRows(parent, start, start + len(batch) - 1)
            node.children.extend(Node(c, node) for c in batch)
            self.endInsertRows()

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = 0) -> Any:
        if not index.isValid():
            return None
        child = self.node(index).child
        assert child is not None
        secret = child.is_key and child.path in self.secret_keys
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() == 0:
                return display_name(child)
            if child.is_dir:
                return f"{child.count:,}"
            return SECRET_MARK if secret else ""
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
            return self.icons.get("dir" if child.is_dir else "secret" if secret else "key")
        if role == Qt.ItemDataRole.ToolTipRole:
            return display_segment(child.path)
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    # -- helpers for views ------------------------------------------------------------------

    def mark_secrets(self, probed: set[bytes], secret: set[bytes]) -> None:
        """Of the `probed` keys, those in `secret` hold a secret now and the others do not."""
        before = self.secret_keys
        self.secret_keys = (before - probed) | secret
        for key in before.symmetric_difference(self.secret_keys):
            row = self.listed_row(key)
            if row.isValid():
                self.dataChanged.emit(row, self.index(row.row(), 1, row.parent()))

    def listed_keys(self, parent: _Index, first: int, last: int) -> list[bytes]:
        """The keys among rows `first`..`last` of `parent` (directory-only rows left out)."""
        children = self.node(parent).children or []
        return [
            node.child.path
            for node in children[first : last + 1]
            if node.child is not None and node.child.is_key
        ]

    def listed_row(self, key: bytes) -> QModelIndex:
        """The row of `key` if the tree has listed it, without listing anything more."""
        node, qindex = self.root, QModelIndex()
        parts = key.split(b"/")
        for depth in range(len(parts)):
            path = b"/".join(parts[: depth + 1])
            children = node.children or []
            row = bisect_left(children, parts[depth], key=_segment)
            if row >= len(children) or children[row].path != path:
                return QModelIndex()
            node, qindex = children[row], self.index(row, 0, qindex)
        return qindex

    def key_at(self, index: _Index) -> bytes | None:
        """The etcd key of a row, or None for a row that is only a directory."""
        if not index.isValid():
            return None
        child = self.node(index).child
        return child.path if child is not None and child.is_key else None

    def directory_at(self, index: _Index) -> bytes | None:
        """The prefix (with trailing slash) of a directory row."""
        if not index.isValid():
            return None
        child = self.node(index).child
        return child.prefix if child is not None and child.is_dir else None

    def find(self, key: bytes) -> QModelIndex:
        """Fetch down to `key` and return its row (for search results and after edits)."""
        parts = key.split(b"/")
        qindex = QModelIndex()
        path = b""
        for depth, part in enumerate(parts):
            path = part if depth == 0 else path + b"/" + part
            node = self.node(qindex)
            while True:
                children = node.children or []
                row = next((r for r, c in enumerate(children) if c.path == path), None)
                if row is not None:
                    break
                if not self.canFetchMore(qindex):
                    return QModelIndex()
                self.fetchMore(qindex)
            qindex = self.index(row, 0, qindex)
        return qindex
