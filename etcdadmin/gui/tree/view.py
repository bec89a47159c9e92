"""The tree panel: the key tree, and a key search that runs in the background and streams."""

from __future__ import annotations

import logging

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from etcdadmin.core.secrets.envelope import is_envelope
from etcdadmin.core.tree.names import display_segment
from etcdadmin.gui.errors import describe
from etcdadmin.gui.session import Session
from etcdadmin.gui.tree.model import KeyTreeModel
from etcdadmin.gui.workers import Task, run_task

log = logging.getLogger(__name__)

SEARCH_CHUNK = 500
MAX_RESULTS = 2_000


class TreePanel(QWidget):
    """Signals:
    key_selected(bytes): a key row became current.
    directory_selected(bytes): a directory row became current (prefix with trailing slash).
    """

    key_selected = Signal(bytes)
    directory_selected = Signal(bytes)

    def __init__(self, model: KeyTreeModel) -> None:
        super().__init__()
        self.setObjectName("treePanel")
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.search = QLineEdit()
        self.search.setObjectName("searchBox")
        self.search.setPlaceholderText("Search keys (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._search_changed)
        # Return in the search box opens the first hit: a search ends on the keyboard too
        self.search.returnPressed.connect(self._open_first_result)
        row = QHBoxLayout()
        row.addWidget(self.search, 1)
        self.in_values = QCheckBox("in values")
        self.in_values.setObjectName("searchValues")
        self.in_values.setToolTip("Search the values of the selected directory (read from etcd)")
        self.in_values.toggled.connect(lambda _: self._search_changed(self.search.text()))
        row.addWidget(self.in_values)
        layout.addLayout(row)
        self.session: Session | None = None
        self.directory = b""
        self._search_task: Task | None = None
        self.view = QTreeView()
        self.view.setObjectName("keyTree")
        self.view.setModel(model)
        self.view.setUniformRowHeights(True)  # constant-time layout for huge directories
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # "Keys below" as wide as its numbers and the secret mark, the rest for the names.
        self.view.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.view.header().setStretchLastSection(False)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        layout.addWidget(self.view, 1)
        self.results = QListWidget()
        self.results.setObjectName("searchResults")
        self.results.hide()
        self.results.itemActivated.connect(self._result_chosen)
        self.results.itemClicked.connect(self._result_chosen)
        layout.addWidget(self.results, 1)
        self.search_status = QLabel("")
        self.search_status.hide()
        layout.addWidget(self.search_status)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)
        self._search_timer.timeout.connect(self._start_search)
        self._needle = b""

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        key = self.model.key_at(current)
        if key is not None:
            self.key_selected.emit(key)
        directory = self.model.directory_at(current)
        if directory is not None:
            self.directory = directory
            self.directory_selected.emit(directory)

    def select_key(self, key: bytes) -> None:
        index = self.model.find(key)
        if index.isValid():
            self.view.setCurrentIndex(index)
            self.view.scrollTo(index)

    # -- search: on workers, streaming hits; a new search cancels the previous one ---------

    def _search_changed(self, text: str) -> None:
        if self._search_task is not None:
            self._search_task.cancel()
            self._search_task = None
        if not text:
            self.results.hide()
            self.search_status.hide()
            self.view.show()
            # back where the operator was: the key last chosen from the results, or the
            # row selected before searching
            if self.view.currentIndex().isValid():
                self.view.scrollTo(self.view.currentIndex())
            return
        self._search_timer.start()

    def _start_search(self) -> None:
        self._needle = self.search.text().encode("utf-8")
        self.results.clear()
        self.view.hide()
        self.results.show()
        self.search_status.show()
        self.search_status.setText("searching …")
        if self.in_values.isChecked():
            self._start_value_search()
        else:
            self._start_key_search()

    def _start_key_search(self) -> None:
        """Keys are in the in-memory index (thread-safe): scan it on a worker, in chunks,
        streaming hits, so typing stays fluid even over a million keys."""
        index, needle = self.model.index_data, self._needle

        def scan(task: Task) -> int:
            found, position = 0, 0
            while position >= 0 and not task.cancelled and found < MAX_RESULTS:
                hits, position = index.search(needle, start=position, limit=SEARCH_CHUNK)
                hits = hits[: MAX_RESULTS - found]
                found += len(hits)
                if hits:
                    task.stream(hits)
            return found

        def done(found: int) -> None:
            more = " (first results only)" if found >= MAX_RESULTS else ""
            self.search_status.setText(f"{found:,} keys match{more}")
            log.info("searched keys: %d match", found)

        self._search_task = run_task(
            "search keys",
            scan,
            done,
            lambda exc: self.search_status.setText(describe(exc)),
            self._add_results,
        )

    def _start_value_search(self) -> None:
        """Values live in etcd, not in the index: read the directory page by page in the
        background and stream the keys whose value contains the text."""
        if self.session is None:
            return
        conn, needle, directory = self.session.conn, self._needle.lower(), self.directory
        where = display_segment(directory) if directory else "everything"

        def scan(task: Task) -> int:
            found = 0
            for page in conn.iter_pages(directory, page_size=10_000):
                if task.cancelled:
                    break
                # a secret's ciphertext matches nothing the operator means, and its
                # plaintext is never searched: opening every secret is not a search
                hits = [
                    kv.key
                    for kv in page.items
                    if needle in kv.value.lower() and not is_envelope(kv.value)
                ]
                found += len(hits)
                if hits:
                    task.stream(hits)
                if found >= MAX_RESULTS:
                    break
            return found

        self._search_task = run_task(
            "search values",
            scan,
            lambda found: self.search_status.setText(f"{found:,} values in {where} match"),
            lambda exc: self.search_status.setText(describe(exc)),
            self._add_results,
        )

    def _add_results(self, keys: list[bytes]) -> None:
        for key in keys:
            item = QListWidgetItem(display_segment(key))
            item.setData(Qt.ItemDataRole.UserRole, key)
            self.results.addItem(item)

    def _open_first_result(self) -> None:
        if self.results.isVisible() and self.results.count():
            self.results.setCurrentRow(0)
            self._result_chosen(self.results.item(0))

    def _result_chosen(self, item: QListWidgetItem) -> None:
        key = bytes(item.data(Qt.ItemDataRole.UserRole))
        index = self.model.find(key)
        if index.isValid() and index != self.view.currentIndex():
            # the tree's place follows the result, so clearing the search lands on it
            self.view.setCurrentIndex(index)  # which opens it (currentChanged)
        else:
            self.key_selected.emit(key)
