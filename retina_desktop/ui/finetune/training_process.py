"""The fine-tune run's child process, supervised from the UI thread: started, its messages polled with a timer,
cancelled (cooperatively first, then terminated), and its end told as exactly one of ``cancelled``, ``failed``
or ``finished``. What the messages mean to the grader is the controller's (``finetune_panel``)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue as queue_mod
import time
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ...core.model.finetune_job import ChildMessage, Done, Failed, FinetuneJobDict, child_main

log = logging.getLogger("retina_desktop")

POLL_MS = 100
CANCEL_GRACE_S = 1.5  # cooperative cancel first; then the process is terminated
EXIT_GRACE_MS = 5000  # a child that said its last word gets this long to exit on its own


class TrainingProcess(QObject):
    message = Signal(object)  # a Started, Plan, Note, Step or Epoch from the child, as it comes
    cancelled = Signal(float)  # seconds from the cancel to the process gone; nothing is to be activated
    failed = Signal(str)  # one line for the grader: the child's Failed, or how the process died
    finished = Signal(object)  # the child's DoneOutcome
    stopped = Signal()  # the process is gone (before cancelled / failed / finished, and on shutdown)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: BaseProcess | None = None
        self._queue: Queue[Any] | None = None
        self._cancel_event: Event | None = None
        self._cancel_t0: float | None = None
        self._terminal: Done | Failed | None = None
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self._poll)

    @property
    def running(self) -> bool:
        return self.process is not None

    @property
    def cancelling(self) -> bool:
        return self._cancel_t0 is not None

    def start(self, job: FinetuneJobDict) -> None:
        """Start the child on ``job``; raises what starting the process raised (nothing then runs)."""
        ctx = mp.get_context("spawn")  # never fork a process that runs Qt threads
        self._queue, self._cancel_event = ctx.Queue(), ctx.Event()
        self._terminal, self._cancel_t0 = None, None
        proc = ctx.Process(
            target=child_main, args=(job, self._queue, self._cancel_event), name="retina-finetune", daemon=True
        )
        try:
            proc.start()
        except Exception:
            self._queue = self._cancel_event = None
            raise
        self.process = proc
        self.poll_timer.start()

    def cancel(self) -> bool:
        """Ask the child to stop; terminated if it has not after ``CANCEL_GRACE_S``. False if nothing to cancel."""
        if self._cancel_event is None or self._cancel_t0 is not None:
            return False
        self._cancel_t0 = time.monotonic()
        self._cancel_event.set()
        QTimer.singleShot(int(CANCEL_GRACE_S * 1000), self._force_stop)
        return True

    def _force_stop(self) -> None:
        proc = self.process
        if proc is not None and proc.is_alive():
            log.info("fine-tune process did not stop within %.1f s of cancel: terminating it", CANCEL_GRACE_S)
            proc.terminate()
            proc.join(0.5)
            if proc.is_alive():
                proc.kill()

    def shutdown(self) -> None:
        """The app is closing: stop the child at once (no outcome is told)."""
        self.poll_timer.stop()
        proc = self.process
        if proc is None:
            return
        if self._cancel_event is not None:
            self._cancel_event.set()
        if proc.is_alive():
            proc.terminate()
            proc.join(2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        self._cleanup()

    def _cleanup(self) -> None:
        self.poll_timer.stop()
        if self._queue is not None:
            self._queue.close()
            self._queue.cancel_join_thread()
        self.process = self._queue = self._cancel_event = None
        self.stopped.emit()

    def _take(self, msg: ChildMessage) -> None:
        if isinstance(msg, (Done, Failed)):
            self._terminal = msg
        else:
            self.message.emit(msg)

    def _drain(self) -> None:
        q = self._queue
        while q is not None:
            try:
                msg = q.get_nowait()
            except (queue_mod.Empty, EOFError, OSError, ValueError):
                return
            self._take(msg)

    def _poll(self) -> None:
        proc = self.process
        if proc is None:
            return
        self._drain()
        if self._terminal is None and proc.is_alive():
            return
        if self._terminal is None:
            # The process has ended without its last word: it may still be in the pipe.
            try:
                while self._queue is not None and self._terminal is None:
                    self._take(self._queue.get(timeout=0.2))
            except (queue_mod.Empty, EOFError, OSError, ValueError):
                pass
        terminal, cancel_t0 = self._terminal, self._cancel_t0
        if proc.is_alive():
            # It has said all it will say; what is left is interpreter shutdown (~1-2 s with torch loaded).
            # After a cancel there is nothing to wait for: end it now. Otherwise let it exit on its own.
            if cancel_t0 is not None:
                proc.terminate()
                proc.join(0.5)
            else:
                QTimer.singleShot(EXIT_GRACE_MS, lambda p=proc: _reap(p))
        exitcode = proc.exitcode
        self._cleanup()
        if cancel_t0 is not None:
            # Whatever the child got to (even a run that finished just before the cancel reached it),
            # nothing is activated: the grader cancelled.
            self.cancelled.emit(time.monotonic() - cancel_t0)
        elif terminal is None:
            self.failed.emit(f"the training process stopped unexpectedly ({_death(exitcode)})")
        elif isinstance(terminal, Failed):
            log.error("fine-tune failed in the training process (%s):\n%s", terminal.kind, terminal.traceback)
            self.failed.emit(terminal.message)
        else:
            self.finished.emit(terminal.outcome)


def _death(exitcode: int | None) -> str:
    """How a process that never said it was done ended, in words."""
    how = f"killed by signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
    return how + (" (often the system running out of memory)" if exitcode == -9 else "")


def _reap(proc: BaseProcess) -> None:
    if proc.is_alive():
        proc.terminate()
    proc.join(0.5)
