"""Saving from the window, where a save can fail: the choice the grader gets for each failure.

* ``SaveConflict`` (another window or grader saved the image since it was opened): keep mine / take theirs /
  view both (their version drawn over mine from the History tab, with nothing saved: the grader zooms and pans
  as long as needed, and the next save asks again; the autosave timer does not ask meanwhile). Nothing is
  overwritten silently and both versions stay in the history whatever the answer.
* ``DiskFullError``: "disk full", with Retry and Export elsewhere (the mask on screen written to a folder the
  grader picks), and, when leaving the image, Discard.
* ``RecordError`` (the mask is saved, its record is not): Retry (``exc.retry()``).
* ``WorkspaceGoneError`` (folder renamed or unplugged): a message; nothing is re-created.

The autosave timer never opens a dialog for a full disk or a read-only folder (the banner says it); a conflict
is asked at once, since every later autosave would meet it again.

The autosave runs on a worker (``autosave_in_background``): the UI thread only copies the mask (1-2 ms for a
3504x2336 photo) and hands it over, so painting never stalls on a save (30-60 ms). Its outcome comes back by
signal and is handled as a save on the UI thread would be. Edits made meanwhile stay dirty and are saved next; a
tick that comes while a save is in flight queues one more. Every other save, switching images, approving,
restoring and closing the window first wait for the save in flight (``ReviewSession.settle``), so saves of one
image from one window never overlap and none acts on a version that is about to change.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject

from model_core.imageio import mask_to_png, write_png_atomic

from ...core.workspace import (
    DiskFullError,
    ReadOnlyWorkspaceError,
    RecordError,
    SaveConflict,
    WorkspaceError,
    WorkspaceGoneError,
    readable_time,
)
from ..common.workers import TaskRunner, Worker, user_message


class _SettleOnClose(QObject):
    """Sees the window's close before its closeEvent: the save in flight is settled first, so the window asks
    about unsaved edits knowing what was saved, and never closes with a save half done."""

    def __init__(self, flow: SaveFlow):
        super().__init__(flow.w)
        self.flow = flow

    def eventFilter(self, obj, event) -> bool:
        if obj is self.flow.w and event.type() == QEvent.Type.Close:
            self.flow.settle()
        return False


class SaveFlow:
    def __init__(self, window):
        self.w = window
        self._notices_shown = 0  # the open workspace's notices shown so far (the banner shows those of opening)
        window.review.workspace_changed.connect(lambda ws: setattr(self, "_notices_shown", len(ws.notices)))
        # Saves get their own thread: behind the shared pool's predictions, a settle could wait for minutes.
        self.runner = TaskRunner(window, max_threads=1)
        self._asking = False  # a conflict question is open
        self._viewing: str | None = None  # the image whose conflict the grader is looking at ("View both")
        # Only while that image stays open: reopened, it is loaded from disk and has no conflict left.
        for signal in (window.review.image_opened, window.review.image_closed, window.review.workspace_changed):
            signal.connect(lambda *_: setattr(self, "_viewing", None))
        self._again = False  # an autosave tick came while a save was in flight: save again when it settles
        window.review.save_settled.connect(self._settled)
        self._close_filter = _SettleOnClose(self)
        window.installEventFilter(self._close_filter)

    def _model_description(self) -> str | None:
        info = self.w.prediction.info
        return info.description if info is not None else None

    # ------------------------------------------------------------- background save --
    @property
    def in_flight(self) -> bool:
        return self.w.review.in_flight is not None

    def autosave_in_background(self) -> bool:
        """The autosave timer's save: the open mask is copied and written by a worker. True when one was
        started or queued (False: nothing to save, or not now, e.g. in the middle of a stroke)."""
        w = self.w
        s, ws = w.review.image, w.review.workspace
        if s is None or ws is None or not w.review.may_autosave() or not ws.gt_writable or w.tasks.closed:
            return False
        if ws.replaces_dataset_mask(s.entry):
            return False  # where corrections go is asked at the grader's next save, never from the timer
        if self._asking or self._viewing == s.key:
            return False  # the grader is deciding: the next save they make asks again
        if self.in_flight:
            self._again = True
            return True
        job = w.review.begin_save(True, self._model_description(), w.settings.reviewer, background=True)
        if job is None:
            return False
        worker = Worker(lambda ctx, j=job: j.run(), name=f"autosave {job.entry.name}")
        # The job's own outcome is read by settle; the signal only says when (a save settled earlier by a wait,
        # e.g. switching images, is not settled again).
        worker.finished.connect(self.runner.guard(lambda j=job: self._worker_finished(j)))
        self.runner.start(worker)
        return True

    def _worker_finished(self, job) -> None:
        if self.w.tasks.closed or self.w.review.in_flight is not job:
            return  # the window is closing, or a wait (switching images, a save asked for) settled it already
        again = self._again
        self.w.review.settle(job)
        if again:
            self.w.commands.autosave()  # through the window's guard: never in the middle of a stroke

    def settle(self) -> None:
        """Wait for the save in flight, if any, and handle its outcome (see ``_settled``)."""
        self.w.review.settle()

    def _settled(self, job) -> None:
        """A background autosave's outcome, handled as ``save_current(auto=True)`` handles a failure."""
        self._again = False
        exc = job.error
        if exc is None:
            if self.w.review.image is not None and self.w.review.image.document is job.document:
                self._done(True, job.path)
            if job.after_error is not None:
                self.w.show_message(
                    f"Saved {job.entry.name}, but the window could not be brought up to date: "
                    f"{user_message(job.after_error)} (details in the log)",
                    "warning",
                )
        elif isinstance(exc, (WorkspaceError, OSError)):
            self._failure(exc, ask=False, leaving=False)
        else:
            self.w.show_message(f"Not saved: {user_message(exc)}")

    def show_new_notices(self) -> None:
        """Notices the workspace added since (a record that will be retried, a log copy that failed)."""
        ws = self.w.review.workspace
        if ws is None or len(ws.notices) <= self._notices_shown:
            return
        self._notices_shown = len(ws.notices)
        self.w.show_message(ws.notices[-1], "warning")

    # ------------------------------------------------------------------- saving --
    def save_current(self, auto: bool = False, ask: bool | None = None, leaving: bool = False) -> bool:
        """Save the open mask; True when it is saved (or there was nothing to save). ``ask``: failures open a
        question (default: for a save the grader asked for, not for the autosave timer)."""
        w = self.w
        self.settle()
        s, ws = w.review.image, w.review.workspace
        if s is None or ws is None:
            return False
        if auto and not w.review.may_autosave():
            return True  # nothing the grader edited: a re-derived prediction never replaces a mask unasked
        if ws.replaces_dataset_mask(s.entry):
            if auto and not leaving:
                return False  # the timer never asks: the grader's next save or image switch does
            if not self.choose_dataset_masks(ws):
                return False
        ask = (not auto) if ask is None else ask
        while True:
            try:
                path = w.review.save(auto, self._model_description(), w.settings.reviewer)
            except (WorkspaceError, OSError) as exc:
                outcome = self._failure(exc, ask, leaving)
                if outcome is None:
                    continue
                return outcome
            self._done(auto, path)
            return True

    def _failure(self, exc: Exception, ask: bool, leaving: bool) -> bool | None:
        """What a failed save leads to: True/False as ``save_current`` returns, None to retry."""
        w = self.w
        s = w.review.image
        name = s.entry.name if s is not None else ""
        if isinstance(exc, SaveConflict):
            return self.resolve_conflict(exc)
        if isinstance(exc, RecordError):
            return self._retry_record(exc, ask)
        if isinstance(exc, DiskFullError):
            if not ask:
                w.show_message(f"Not saved: {user_message(exc)}")
                return False
            return self._ask_failed(name, exc, disk_full=True, can_discard=leaving)
        if isinstance(exc, (WorkspaceGoneError, ReadOnlyWorkspaceError)):
            if not leaving:
                self._failed(exc, ask)
                return False
            # Moving on would lose the edits: offer to write them elsewhere, to discard them, or to stay.
            return self._ask_failed(name, exc, can_discard=True, can_export=True)
        if not ask:
            w.show_message(f"Not saved: {user_message(exc)}")
            return False
        return self._ask_failed(name, exc, can_discard=leaving)

    def _ask_failed(self, name: str, exc: Exception, **offers) -> bool | None:
        """The failed-save question: None to retry, True when the grader discards the edits, False to stay
        (also after writing them elsewhere)."""
        choice = self.w.prompter.ask_save_failed(name, user_message(exc), **offers)
        if choice == "retry":
            return None
        if choice == "export":
            self.export_elsewhere()
        return choice == "discard"

    def _failed(self, exc: Exception, ask: bool) -> None:
        message = user_message(exc)
        self.w.show_message(f"Not saved: {message}")
        if ask:
            self.w.prompter.error("Save failed", message)

    def _done(self, auto: bool, path: Path | None) -> None:
        w = self.w
        s = w.review.image
        w.image_list.model.set_dirty(s.key, s.document.unsaved)  # edits made during a background save are not saved
        if path is None:
            w.statusBar().showMessage(
                f"Every edit of {s.entry.name} is undone: its saved mask was withdrawn (the History keeps it)", 5000
            )
        else:
            w.statusBar().showMessage(f"{'Autosaved' if auto else 'Saved'} {path}", 4000)
        self.show_new_notices()
        w.states.update()

    def _retry_record(self, exc: RecordError, ask: bool) -> bool:
        w = self.w
        name = w.review.image.entry.name if w.review.image else ""
        while True:
            if not ask:
                w.show_message(f"Saved, but not recorded: {user_message(exc)}", "warning")
                return True  # the mask is on disk and in the history
            if w.prompter.ask_save_failed(name, user_message(exc)) != "retry":
                w.show_message(f"Saved, but not recorded: {user_message(exc)}", "warning")
                return True
            try:
                exc.retry()
            except RecordError as again:
                exc = again
                continue
            w.review.workspace.refresh()  # the status the record carried
            if w.review.image is not None:
                w.review.status_changed.emit(w.review.image.key)
            w.statusBar().showMessage(f"Recorded {name}", 4000)
            w.states.update()
            return True

    def choose_dataset_masks(self, ws) -> bool:
        """The first save over a mask the workspace came with asks, once per workspace, where corrections go."""
        choice = self.w.prompter.ask_dataset_masks(ws.root.name)
        if choice not in ("overwrite", "corrected"):
            return False
        ws.set_dataset_masks(choice)
        self.w.show_message(
            "Your corrections go to corrected/; the data set's masks stay as they are."
            if choice == "corrected"
            else "Your corrections are saved over the data set's masks; the originals stay in History.",
            "info",
        )
        self.w.workspaces.refresh_banner()
        return True

    def leave_current_image(self) -> bool:
        """Autosave before switching; if that fails, the grader chooses (retry, export, discard, stay)."""
        w = self.w
        self.settle()
        if w.review.image is None or not w.review.image.document.unsaved:
            return True
        if w.review.workspace.gt_writable:
            return self.save_current(auto=True, ask=True, leaving=True)
        return w.prompter.ask_unsaved(w.review.image.entry.name, can_save=False) == "discard"

    # ---------------------------------------------------------------- conflicts --
    def resolve_conflict(self, conflict: SaveConflict) -> bool:
        w = self.w
        history = w.features.history
        self._asking = True  # no autosave starts while the grader decides (its copy would meet the same conflict)
        try:
            choice = w.prompter.ask_conflict(w.review.image.entry.name, str(conflict))
        finally:
            self._asking = False
        self._viewing = None
        if choice == "both":
            # A question box would keep the grader from zooming in: show theirs and let them save again to choose.
            who = f"{conflict.theirs.reviewer or 'another grader'}'s version of {readable_time(conflict.theirs.time)}"
            if history is not None and history.show_over_mask(conflict.theirs.sha256):
                self._viewing = w.review.image.key
                w.show_message(
                    f"Not saved yet: {who} is drawn in magenta over yours (History tab). Look as long as "
                    "you like, then save (Ctrl+S) to keep yours or take theirs.",
                    "info",
                )
            else:
                w.show_message(
                    f"Not saved: {who} could not be shown ({conflict.theirs.path}). Save again to "
                    "choose; both versions are in the History.",
                    "warning",
                )
            return False
        if history is not None:
            history.preview.clear()
            history.panel.preview_button.setChecked(False)
        if choice not in ("mine", "theirs"):
            w.show_message(f"Not saved: {conflict}. Save again to choose.", "warning")
            return False
        try:
            w.review.resolve_conflict(conflict, choice, w.settings.reviewer, self._model_description())
        except (WorkspaceError, OSError) as exc:
            w.show_message(f"Not saved: {user_message(exc)}")
            return False
        w.image_list.model.set_dirty(w.review.image.key, w.review.image.document.unsaved)
        w.show_message(
            "Your version was saved over theirs (theirs is in the History)."
            if choice == "mine"
            else "Their version is on screen (Ctrl+Z brings yours back; both are in the History).",
            "info",
        )
        w.states.update()
        return True

    # ------------------------------------------------------------------- export --
    def export_elsewhere(self) -> Path | None:
        """Write the open mask (unsaved edits included) to a folder the grader picks, e.g. on another disk."""
        w = self.w
        s = w.review.image
        if s is None:
            return None
        folder = w.prompter.choose_folder("Export this mask to another folder", "")
        if not folder:
            return None
        target = Path(folder) / f"{s.entry.stem}.png"
        try:
            write_png_atomic(target, mask_to_png(s.document.mask))
        except OSError as exc:
            w.show_message(f"Not exported: {target}: {exc.strerror or exc}")
            return None
        w.show_message(
            f"The mask of {s.entry.name} was written to {target}; it is not saved in the workspace.", "warning"
        )
        return target

    # ------------------------------------------------------------------ approve --
    def approve(self) -> bool:
        w = self.w
        try:
            w.review.approve(self._model_description(), w.settings.reviewer)
        except RecordError as exc:
            return self._retry_record(exc, True)
        except (WorkspaceError, OSError) as exc:
            w.show_message(f"Not approved: {user_message(exc)}")
            return False
        self.show_new_notices()
        return True
