"""Background work for the GUI: every etcd call runs here, never on the UI thread.

`run_task` hands a plain function to Qt's global thread pool and delivers its result or its
exception back on the UI thread through a signal. The function gets a `Task` it may poll for
cancellation and use to report progress.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class Task(QObject):
    """One background job.

    Signals:
        finished(object): the function's return value, on the UI thread.
        failed(object): the exception it raised, on the UI thread.
        progress(int, int): done, total, as reported by the function.
        partial(object): a chunk of results streamed before the end (search hits).
    """

    finished = Signal(object)
    failed = Signal(object)
    progress = Signal(int, int)
    partial = Signal(object)

    def __init__(self, description: str) -> None:
        super().__init__()
        self.description = description
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def report(self, done: int, total: int) -> None:
        self.progress.emit(done, total)

    def stream(self, chunk: Any) -> None:
        self.partial.emit(chunk)


class TaskCancelled(Exception):
    """A superseded task's end: never shown, only counted."""


class _Runner(QRunnable):
    def __init__(self, task: Task, fn: Callable[[Task], Any]) -> None:
        super().__init__()
        self.task = task
        self.fn = fn

    def run(self) -> None:
        try:
            result = self.fn(self.task)
        except Exception as exc:  # delivered to the UI, which owns turning it into a message
            self.task.failed.emit(exc)
            return
        if self.task.cancelled:
            self.task.failed.emit(TaskCancelled(self.task.description))
        else:
            self.task.finished.emit(result)


class Activity(QObject):
    """Counts running tasks so the window can show that something takes time.

    Signals:
        changed(int): the number of tasks running now.
    """

    changed = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.running = 0

    def started(self) -> None:
        self.running += 1
        self.changed.emit(self.running)

    def ended(self) -> None:
        self.running = max(0, self.running - 1)
        self.changed.emit(self.running)


activity = Activity()
_live: set[Task] = set()


def run_task(
    description: str,
    fn: Callable[[Task], Any],
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_partial: Callable[[Any], None] | None = None,
    owner: QObject | None = None,
) -> Task:
    """Run `fn(task)` on the thread pool; callbacks run on the UI thread.

    Every callback is connected before the work starts: a signal emitted before its
    connection would be lost. With `owner` (the widget the callbacks update), nothing is
    delivered once it is destroyed: a window closed while its panel's read was in flight.
    """
    task = Task(description)

    def owner_gone(*_: object) -> None:
        task.cancel()

    if owner is not None:
        owner.destroyed.connect(owner_gone)
    if on_partial is not None:
        partial = on_partial
        task.partial.connect(lambda chunk: None if task.cancelled else partial(chunk))
    _live.add(task)  # keep the QObject alive until it has delivered
    if on_result is not None:
        callback = on_result
        # Checked at delivery: a task cancelled after it finished (a newer selection
        # superseded it) must not overwrite what the newer one shows.
        task.finished.connect(lambda value: None if task.cancelled else callback(value))
    if on_error is not None:
        handler = on_error
        task.failed.connect(
            lambda exc: None if isinstance(exc, TaskCancelled) or task.cancelled else handler(exc)
        )

    def done(_: object) -> None:
        if task in _live:
            _live.discard(task)
            activity.ended()
        if owner is not None:
            # one connection per task would pile up on a panel that reads every few seconds
            with contextlib.suppress(RuntimeError, TypeError):  # owner already destroyed
                owner.destroyed.disconnect(owner_gone)

    task.finished.connect(done)
    task.failed.connect(done)
    activity.started()
    QThreadPool.globalInstance().start(_Runner(task, fn))
    return task
