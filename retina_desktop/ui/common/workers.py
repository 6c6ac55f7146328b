"""Background work in the superqt style: a worker only emits signals; widgets never leave the UI thread.

``Worker`` wraps a plain function ``fn(ctx, *args)`` and runs it on a ``QThreadPool``. The function
reports through ``ctx.progress(done, total, text)`` and ``ctx.emit(value)`` (one result of many,
e.g. one predicted image) and checks ``ctx.cancelled`` between units of work (cooperative cancel).
Errors become one-line messages in ``errored``; the traceback goes to the log file only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from model_core.errors import RetinaInputError

log = logging.getLogger("retina_desktop")


def user_message(exc: BaseException) -> str:
    """One line fit for a user: input errors already name the file; others name the error type."""
    if isinstance(exc, (RetinaInputError, ValueError)) and str(exc):
        text = str(exc)
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        text = f"{where}{exc.strerror or exc}"
    elif isinstance(exc, MemoryError):
        text = "not enough memory for this operation"
    else:
        text = f"unexpected {type(exc).__name__}: {exc}" if str(exc) else f"unexpected {type(exc).__name__}"
    return " ".join(text.split())


class WorkerSignals(QObject):
    started = Signal()
    progress = Signal(int, int, str)
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(str)
    failed = Signal(object)  # the exception itself, for handlers that route errors by type
    finished = Signal()


class WorkerContext:
    def __init__(self, signals: WorkerSignals, cancel_event: threading.Event):
        self._signals = signals
        self._cancel = cancel_event

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def progress(self, done: int, total: int, text: str = "") -> None:
        self._signals.progress.emit(int(done), int(total), text)

    def emit(self, value: Any) -> None:
        self._signals.yielded.emit(value)


class Worker(QRunnable):
    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "", **kwargs: Any):
        super().__init__()
        self.setAutoDelete(False)  # Python owns it; the runner drops it after ``finished``
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = name or getattr(fn, "__name__", "task")
        # Created on the UI thread, so its signals are delivered there (queued) from the pool thread.
        self.signals = WorkerSignals()
        self._cancel = threading.Event()
        self.done = threading.Event()

    @property
    def started(self):
        return self.signals.started

    @property
    def progress(self):
        return self.signals.progress

    @property
    def yielded(self):
        return self.signals.yielded

    @property
    def returned(self):
        return self.signals.returned

    @property
    def errored(self):
        return self.signals.errored

    @property
    def failed(self):
        return self.signals.failed

    @property
    def finished(self):
        return self.signals.finished

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:  # runs on a pool thread
        try:
            self.signals.started.emit()
            if self._cancel.is_set():
                return
            result = self.fn(WorkerContext(self.signals, self._cancel), *self.args, **self.kwargs)
            self.signals.returned.emit(result)
        except BaseException as exc:
            if isinstance(exc, (RetinaInputError, OSError)):
                log.warning("background task %s: %s", self.name, exc)  # bad input: no traceback needed
            else:
                log.exception("background task %s failed", self.name)
            self.signals.failed.emit(exc)
            self.signals.errored.emit(user_message(exc))
        finally:
            self.done.set()
            self.signals.finished.emit()


class TaskRunner(QObject):
    """Owns the thread pool and keeps workers alive until they finish; ``shutdown`` waits for all.

    The closing policy lives here, once: connect every worker signal through ``guard``, and results that
    arrive after ``shutdown`` (queued while the threads were joined) are dropped.
    """

    def __init__(self, parent: QObject | None = None, max_threads: int = 2):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._active: set[Worker] = set()
        self.closed = False

    def guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, dropped once the runner is shut down."""

        def call(*args: Any) -> None:
            if not self.closed:
                fn(*args)

        return call

    def start(self, worker: Worker, priority: int = 0) -> Worker:
        if self.closed:
            # Work asked for while closing (a timer or a result's follow-up) never starts: its signals'
            # owner is about to be destroyed, and a run that outlives it fails on every emit.
            worker.cancel()
            return worker
        self._active.add(worker)
        worker.finished.connect(lambda w=worker: self._active.discard(w))
        self.pool.start(worker, priority)
        return worker

    def run(self, fn: Callable[..., Any], *args: Any, priority: int = 0, **kwargs: Any) -> Worker:
        return self.start(Worker(fn, *args, **kwargs), priority)

    @property
    def active(self) -> list[Worker]:
        return list(self._active)

    def cancel_all(self) -> None:
        for w in list(self._active):
            w.cancel()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel everything and wait for the threads (a prediction in flight finishes its image)."""
        self.closed = True
        self.cancel_all()
        self.pool.clear()  # drop queued tasks that never started
        return self.pool.waitForDone(timeout_ms)
