"""The review of one workspace, Qt-free: the open image, its mask document, the threshold, save/approve/log.

The main window only wires views to a ``ReviewSession``: it asks it to open, save, approve and re-threshold,
and redraws on its events. Workers run elsewhere; the session only hands out *load requests*, so that a
photo that finishes decoding after the grader moved on is recognised as stale and dropped.

The threshold has one owner, this class. Its policy (README, "How to review"):

* a workspace keeps the threshold the grader chose; it is reused when the workspace is reopened;
* a workspace that never chose one follows the model's calibrated threshold;
* when another model is *activated* (a fine-tuned version, or one chosen in Models…), its calibrated
  threshold wins, and the user is told which threshold it replaced; the open mask is re-derived at it
  unless it has edits (strokes or a saved ground truth), which are never replaced without asking.

The mask on screen is either the probabilities cut at ``threshold`` or, when ``threshold_overridden`` is true, a
mask the grader edited or saved, which the threshold label says.

Saving goes through one call, ``Workspace.save_ground_truth`` (mask, status and review-log entry in one
transaction, checked against the version this window loaded), and raises its typed errors for the window to
offer a choice: ``SaveConflict`` (``resolve_conflict``), ``DiskFullError``, ``RecordError`` (``retry()``),
``WorkspaceGoneError``. Undo survives switching images: the mask documents of recent images are kept (within
one byte budget) and reused when the image is reopened, if the mask on disk is still the version they were
built on. When every edit is undone, the image gets back the status it had when it was opened, and an image
that had no mask file gets none (so it is not exported as a correction; the history keeps what was saved).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from psygnal import Signal

from ..model.tasks import LoadedImage, PredictionResult
from ..workspace import ImageEntry, RecordError, SaveConflict, Workspace, read_mask_or_none
from .mask_document import MaskDocument

log = logging.getLogger("retina_desktop")

KEEP_DOCUMENTS = 8  # recent images whose undo history survives switching images
KEEP_HISTORY_BYTES = 64 * 1024 * 1024  # their undo steps together, the same cap as one document's history


@dataclass
class OpenImage:
    """The image open in the canvas and its editable mask."""

    entry: ImageEntry
    loaded: LoadedImage
    document: MaskDocument
    probability: np.ndarray | None
    disk_sha: str | None = None  # the mask file version the document was built on (None: no file)
    baseline: np.ndarray | None = field(default=None, repr=False)  # the mask as first opened (or last approved)
    baseline_status: str = "new"
    baseline_had_file: bool = False
    edit_confirmed: bool = False  # the grader agreed to edit this approved image

    @property
    def key(self) -> str:
        return self.entry.key


@dataclass
class _Kept:
    """What is kept of a closed image for its undo history: the document and its baseline, bit-packed (the
    photo and its probabilities are not: they are read again, and would cost ~80 MB per full-size image)."""

    document: MaskDocument
    disk_sha: str | None
    baseline_bits: np.ndarray | None
    baseline_status: str
    baseline_had_file: bool

    @classmethod
    def of(cls, s: OpenImage) -> _Kept:
        bits = np.packbits(s.baseline, axis=None) if s.baseline is not None else None
        return cls(s.document, s.disk_sha, bits, s.baseline_status, s.baseline_had_file)

    def baseline(self) -> np.ndarray | None:
        if self.baseline_bits is None:
            return None
        shape = self.document.shape
        return np.unpackbits(self.baseline_bits, count=shape[0] * shape[1]).astype(bool).reshape(shape)


def save_source(document: MaskDocument, tools: tuple[str, ...], auto: bool) -> str:
    """The version's source (records.SOURCES): the prediction as derived, else the tool that changed the most
    pixels since the last save; "autosave" (or "brush" for a save by hand) when no step says which tool."""
    if document.source == "prediction" and not document.edited:
        return "prediction"
    if tools:
        return tools[0]
    return "autosave" if auto else "brush"


@dataclass(eq=False)
class SaveJob:
    """One save of the open mask: ``ReviewSession.begin_save`` takes it on the UI thread (a copy of the mask for a
    background save, and the document's state then), ``run`` writes it (on a worker, or at once), and
    ``ReviewSession.finish_save`` applies the outcome to the document on the UI thread. Everything ``run`` reads
    is a snapshot or an array that is replaced, never changed in place (baseline, probabilities)."""

    workspace: Workspace
    entry: ImageEntry
    document: MaskDocument
    mask: np.ndarray  # what is saved
    point: (
        tuple[object, ...] | None
    )  # the document's state ``mask`` was copied at (None: saved at once, on this thread)
    auto: bool
    model: str | None
    reviewer: str | None
    expected_sha: str | None
    source: str
    probability: np.ndarray | None
    threshold: float
    baseline: np.ndarray | None
    baseline_status: str
    baseline_had_file: bool
    path: Path | None = None
    error: BaseException | None = None
    # The file was written, but bringing the session up to date afterwards failed (a listener): the mask is
    # on disk, so this is not "not saved"; the window warns, and the log has the details.
    after_error: BaseException | None = None
    withdrawn: bool = False  # every edit undone: the file this window wrote was removed
    tools: tuple[str, ...] = ()  # what made the changes saved, the one that changed the most pixels first
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def key(self) -> str:
        return self.entry.key

    def run(self) -> None:
        """Write the mask (thread-safe: the workspace serialises saves). The outcome is kept in ``path`` /
        ``error``; ``done`` is set last."""
        try:
            self.path = self._save()
        except BaseException as exc:  # noqa: BLE001 - handed to the UI thread, which says what went wrong
            self.error = exc
        finally:
            self.done.set()

    def _save(self) -> Path | None:
        ws, entry = self.workspace, self.entry
        back = self.baseline is not None and np.array_equal(self.mask, self.baseline)
        if back and self.auto and not self.baseline_had_file:
            # Every edit undone on an image that had no mask: the file this window wrote is withdrawn, in the
            # records' transaction and after its content is checked in the history. A file somebody else saved
            # meanwhile is not this window's to remove: the save below meets it as a conflict.
            if entry.existing_gt() is None:
                ws.set_status(entry.key, self.baseline_status)
                self.withdrawn = True
                return None
            if ws.withdraw(
                entry, self.expected_sha, status=self.baseline_status, reviewer=self.reviewer, model=self.model
            ):
                self.withdrawn = True
                return None
        status = self.baseline_status if back and self.baseline_had_file else "edited"
        prediction = self.probability >= self.threshold if self.probability is not None else None
        return ws.save_ground_truth(
            entry,
            self.mask,
            expected_sha=self.expected_sha,
            source=self.source,
            reviewer=self.reviewer,
            model=self.model,
            prediction=prediction,
            status=status,
            action="autosave" if self.auto else "save",
            threshold=round(self.threshold, 4),
            **({"tools": list(self.tools)} if self.tools else {}),
        )


MessageLevel = Literal["info", "warning", "error"]


class _ReviewState:
    """What the parts of the review session share: its events, the workspace, the open image, the threshold."""

    workspace_changed = Signal(object)
    image_opened = Signal(object)
    image_closed = Signal()
    prediction_shown = Signal(str)
    threshold_changed = Signal(float)
    saved = Signal(str, str)
    status_changed = Signal(str)
    approved = Signal(str)  # after status_changed, once the approval is recorded (Keep learning counts them)
    message = Signal(str, str)
    save_settled = Signal(object)

    workspace: Workspace | None
    image: OpenImage | None
    threshold: float
    model_threshold: float | None
    in_flight: SaveJob | None
    _conflict_job: SaveJob | None

    def _prediction_mask(self) -> np.ndarray | None:
        s = self.image
        return s.probability >= self.threshold if s is not None and s.probability is not None else None

    def _open_workspace(self) -> Workspace:
        """The workspace, for the calls that are only made with one open."""
        if self.workspace is None:
            raise RuntimeError("no workspace is open")
        return self.workspace

    def _open_image(self) -> tuple[OpenImage, Workspace]:
        """The open image and its workspace, for the calls that are only made with an image open."""
        if self.image is None:
            raise RuntimeError("no image is open")
        return self.image, self._open_workspace()


class _Saving(_ReviewState):
    """Saving, approving, restoring and conflicts of the open image (one background save in flight at most)."""

    # --------------------------------------------------------------------- saving --
    def may_autosave(self) -> bool:
        """Whether the autosave may write the open mask: only what the grader edited. A mask re-derived from the
        prediction (a threshold moved) is not a correction, and must not replace a mask on disk (a data set's own)
        unasked; an explicit save still writes it."""
        s = self.image
        if s is None or not s.document.unsaved:
            return False
        return s.document.can_undo or s.entry.existing_gt() is None

    def start_from_prediction(self) -> bool:
        """Replace the mask on screen by the model's prediction at the current threshold, as one undo step (the
        mask on disk stays until the grader saves). False when there is no prediction to start from."""
        s, prediction = self.image, self._prediction_mask()
        if s is None or prediction is None:
            return False
        s.document.end_stroke()
        return s.document.replace("Start from the prediction", prediction) is not None

    def save(self, auto: bool, model: str | None, reviewer: str | None) -> Path | None:
        """Write the open mask as ground truth and log it, in one transaction. Raises the workspace's typed
        errors (SaveConflict, DiskFullError, RecordError, WorkspaceGoneError, ...; all WorkspaceError).

        When every edit is undone the image gets back the status it was opened with; an autosave of an image
        that had no mask file then removes the file this window wrote (it stays in the history) and returns
        None, so the prediction is not taken for a correction."""
        job = self.begin_save(auto, model, reviewer)
        assert job is not None  # only a background save is ever refused
        job.run()
        return self.finish_save(job)

    def begin_save(
        self, auto: bool, model: str | None, reviewer: str | None, background: bool = False
    ) -> SaveJob | None:
        """A save of the open mask, to ``run``. ``background``: the mask is copied and its state noted, so the
        grader may go on editing while a worker runs it; the job is then in flight until ``settle``. None when
        a background save cannot be taken now (in the middle of a stroke)."""
        self.settle()
        s, ws = self._open_image()
        doc = s.document
        point = None
        if background:
            point = doc.save_point()
            if point is None:
                return None
        tools = tuple(doc.tools_since_save())
        job = SaveJob(
            ws,
            s.entry,
            doc,
            doc.mask.copy() if background else doc.mask,
            point,
            auto,
            model,
            reviewer,
            s.disk_sha,
            save_source(doc, tools, auto),
            s.probability,
            self.threshold,
            s.baseline,
            s.baseline_status,
            s.baseline_had_file,
            tools=tools,
        )
        if background:
            self.in_flight = job
        return job

    def settle(self, job: SaveJob | None = None) -> None:
        """Wait for the background save in flight (only ``job``, if given) and apply its outcome; then
        ``save_settled(job)`` lets the window say how it went. Does nothing when none is in flight."""
        job = job or self.in_flight
        if job is None or job is not self.in_flight:
            return
        self.in_flight = None
        job.done.wait()
        try:
            self.finish_save(job)
        except Exception as e:
            # Usually job.error re-raised. Anything else failed after the file was written (marking the document,
            # a listener): not a failed save, but it must not vanish either.
            if e is not job.error:
                job.after_error = e
                log.error("after the background save of %s", job.key, exc_info=e)
        self.save_settled.emit(job)

    def finish_save(self, job: SaveJob) -> Path | None:
        """Apply a finished save to the document (if its image is still open) and return its path, or raise its
        error. A background save marks saved the state it copied: edits made since stay unsaved."""
        s = self.image
        s = s if s is not None and s.document is job.document else None
        if job.withdrawn:
            if s is not None:
                s.disk_sha = None
                self._mark_saved(s, job)
            self.status_changed.emit(job.key)
            return None
        if isinstance(job.error, RecordError):
            self._saved(job)  # the mask is on disk; only its record waits for a retry
        if isinstance(job.error, SaveConflict):
            self._conflict_job = job  # "keep mine" saves the copy this job wrote to the history
        if job.error is not None:
            raise job.error
        self._saved(job)
        return job.path

    def _mark_saved(self, s: OpenImage, job: SaveJob | None) -> None:
        if job is None or job.point is None:
            s.document.mark_saved()
        else:
            s.document.mark_saved_at(job.point, job.mask)

    def _saved(self, done: SaveJob | OpenImage, mark: bool = True) -> None:
        s: OpenImage | None
        if isinstance(done, OpenImage):
            s, job = done, None
        else:
            s = self.image if self.image is not None and self.image.document is done.document else None
            job = done
        if s is not None:
            if mark:
                self._mark_saved(s, job)
            s.document.source = "ground truth"
            s.disk_sha = self._open_workspace().loaded_sha(s.entry)
        key = s.key if s is not None else done.key
        path = s.entry.gt_path if s is not None else done.entry.gt_path
        self.saved.emit(key, str(path))
        self.status_changed.emit(key)

    def resolve_conflict(
        self, conflict: SaveConflict, keep: str, reviewer: str | None, model: str | None = None
    ) -> Path | None:
        """After a SaveConflict on the open image: "mine" saves this window's version over theirs, "theirs"
        puts their version on screen (as an undoable step, so Ctrl+Z gets yours back). Both stay in the history.
        "mine" is logged like any save: the model (the failed save's, else ``model``), the threshold and the
        pixels changed against the prediction."""
        self.settle()
        s, ws = self._open_image()
        job = self._conflict_job
        job = job if job is not None and job.error is conflict and job.document is s.document else None
        self._conflict_job = None
        if keep == "mine":
            probability, threshold = (
                (job.probability, job.threshold) if job is not None else (s.probability, self.threshold)
            )
            prediction = probability >= threshold if probability is not None else None
            path = ws.resolve_conflict(
                conflict,
                "mine",
                reviewer=reviewer,
                model=job.model if job is not None else model,
                prediction=prediction,
                threshold=round(threshold, 4),
            )
            ws.set_status(s.key, "edited")
            # The version written is the one the save copied, not edits made since; without that save at hand, the
            # document is marked saved only if it is what was written.
            written = read_mask_or_none(path) if path is not None else None
            self._saved(
                job or s, mark=job is not None or (written is not None and np.array_equal(written, s.document.mask))
            )
            return path
        ws.resolve_conflict(conflict, "theirs")
        theirs = read_mask_or_none(conflict.theirs.path)
        if theirs is not None and theirs.shape == s.document.shape:
            s.document.replace("Take their version", theirs)
        s.document.mark_saved()
        s.document.source = "ground truth"
        s.disk_sha = conflict.theirs.sha256
        s.baseline_had_file = True
        ws.refresh()
        self.status_changed.emit(s.key)
        return None

    def restore(self, sha256: str, reviewer: str | None) -> Path:
        """Make an earlier version of the open image its newest version (save unsaved edits first). The mask on
        screen changes as one undo step, so Ctrl+Z, or restoring again, takes it back."""
        self.settle()
        s, ws = self._open_image()
        path = ws.restore(s.entry, sha256, reviewer=reviewer, expected_sha=s.disk_sha)
        mask = read_mask_or_none(path)
        if mask is not None and mask.shape == s.document.shape:
            s.document.replace(f"Restore version {sha256[:8]}", mask)
        self._saved(s)
        s.baseline_had_file = True
        return path

    def needs_edit_confirmation(self) -> bool:
        """True before the first edit of an approved image (the grader is asked; its status never changes silently)."""
        s = self.image
        return (
            s is not None
            and self.workspace is not None
            and not s.edit_confirmed
            and self.workspace.status(s.key) == "approved"
        )

    def confirm_edit(self) -> None:
        if self.image is not None:
            self.image.edit_confirmed = True

    def needs_save_before_approve(self) -> bool:
        # Approving means "the mask on screen is the ground truth": save it whenever the file on disk is not that
        # mask, including a saved mask that could not be used (wrong size, unreadable; the history keeps it).
        # Also when another window or grader saved since: approving must never vouch for a mask not seen here
        # (the save then raises SaveConflict and the grader chooses).
        self.settle()
        s, ws = self._open_image()
        return (
            s.document.unsaved
            or s.entry.existing_gt() is None
            or bool(s.loaded.ground_truth_problem)
            or ws.current_sha(s.entry) != s.disk_sha
        )

    def approve(self, model: str | None, reviewer: str | None) -> dict[str, Any]:
        """Mark the open image approved (save first if ``needs_save_before_approve``), logged with the pixels
        changed against the prediction and the last approval. Raises WorkspaceError / RecordError."""
        self.settle()
        s, ws = self._open_image()
        counts = ws.approve(s.entry, reviewer=reviewer, model=model, prediction=self._prediction_mask())
        s.baseline, s.baseline_status, s.baseline_had_file = s.document.mask.copy(), "approved", True
        s.edit_confirmed = False
        self.status_changed.emit(s.key)
        self.approved.emit(s.key)
        return counts

    def unreviewed(self) -> list[ImageEntry]:
        """The images nobody edited or approved yet (what a new model may re-predict)."""
        ws = self.workspace
        if ws is None:
            return []
        return [e for e in ws.entries if ws.status(e.key) in ("new", "predicted")]


class _Threshold(_Saving):
    """The threshold policy: who may re-derive the mask from the probabilities, and when."""

    # ------------------------------------------------------------------ threshold --
    @property
    def threshold_overridden(self) -> bool:
        """There are probabilities, and the mask on screen is not simply them cut at ``threshold`` (it is edited, or
        a mask painted before they came): the threshold label says so. False without probabilities."""
        s = self.image
        if s is None or s.probability is None:
            return False
        return s.document.edited or s.document.source != "prediction"

    def _set_threshold(self, t: float) -> None:
        self.threshold = float(t)
        self.threshold_changed.emit(self.threshold)

    def threshold_question(self, t: float) -> str | None:
        """The question to ask before re-deriving the mask at ``t``, or None when nothing is lost."""
        s = self.image
        if s is None or s.probability is None or not self.changes_mask(t):
            return None
        if not (s.document.edited or s.document.unsaved):
            return None
        # ``edited`` counts a saved ground truth on screen as somebody's work: replacing it by the prediction is
        # never silent, and the question says that the next save or autosave (switching images) writes over it.
        edits = s.document.unsaved or s.document.can_undo  # by hand, since the mask was loaded or derived
        if s.document.source == "ground truth" and s.entry.existing_gt() is not None:
            return (
                f"Thresholding the probabilities at {t:.2f} replaces the saved ground truth of {s.entry.name} "
                f"on screen by the prediction{', discarding your edits,' if edits else ''} and writes it over "
                "the ground-truth file at the next save or autosave (the workspace history keeps the old file)."
            )
        return f"Thresholding the probabilities at {t:.2f} replaces the mask of {s.entry.name} and discards its edits."

    def changes_mask(self, t: float) -> bool:
        return abs(t - self.threshold) > 1e-9

    def apply_threshold(self, t: float) -> None:
        """Cut the probabilities at ``t`` (ask ``threshold_question`` first) and remember it for the workspace."""
        self.settle()  # whether a mask file exists decides if the re-derived mask is unsaved
        s = self.image
        if s is not None and s.probability is not None and self.changes_mask(t):
            saved = s.entry.existing_gt() is None
            s.document.reset(s.probability >= t, "prediction", saved=saved)
        if self.workspace is not None:
            self.workspace.threshold = t
        self._set_threshold(t)

    def model_loaded(self, calibrated: float, activated: bool, name: str | None = None) -> None:
        """A model is ready. ``activated``: the user switched to it (the policy above), else it is the first load.
        ``name``: what the message calls it (a rolled-back-to version is no "new model")."""
        self.model_threshold = float(calibrated)
        ws = self.workspace
        if not activated:
            if ws is None or ws.threshold is None:
                self._rethreshold_unedited(calibrated)
            return
        old = self.threshold
        if abs(old - calibrated) <= 1e-9:
            return
        kept = self._rethreshold_unedited(calibrated)
        if ws is not None:
            ws.threshold = calibrated
        note = " Your edited mask on screen was kept; move the slider to re-derive it." if kept else ""
        who = f"{name[0].upper()}{name[1:]} is in use" if name else "The model now in use"
        self.message.emit(f"{who}: its calibrated threshold {calibrated:.2f} replaces {old:.2f}.{note}", "info")

    def _rethreshold_unedited(self, t: float) -> bool:
        """Set the threshold and re-derive the open mask if it has no edits; True when an edited mask was kept."""
        s = self.image
        kept = s is not None and s.probability is not None and (s.document.edited or s.document.unsaved)
        if s is not None and s.probability is not None and not kept and s.document.source == "prediction":
            s.document.reset(s.probability >= t, "prediction", saved=s.entry.existing_gt() is None)
        self._set_threshold(t)
        return kept


class ReviewSession(_Threshold):
    """Events (psygnal signals, emitted on the caller's thread; views connect to them):

    ``workspace_changed(ws)``, ``image_opened(OpenImage)``, ``image_closed()``, ``prediction_shown(key)``,
    ``threshold_changed(value)``, ``saved(key, path)``, ``status_changed(key)``, ``approved(key)``,
    ``message(text, level)``, ``save_settled(SaveJob)`` (a background save's outcome was applied: ``job.error`` /
    ``job.path``).

    A background save (``begin_save(..., background=True)``, run on a worker, then ``settle``) is in flight
    until settled; every call that reads or changes what is on disk for the open image, or closes it, settles
    it first, so one window never runs two saves of an image at once and never acts on a stale version.
    """

    def __init__(self) -> None:
        self.workspace: Workspace | None = None
        self.image: OpenImage | None = None
        self.threshold = 0.5
        self.model_threshold: float | None = None  # the calibrated threshold of the model in use
        self._load_request = 0
        self.loading_key: str | None = None  # asked for, not yet decoded
        self.current_key: str | None = None  # the last image asked for, even if it failed to open
        self._kept: OrderedDict[str, _Kept] = OrderedDict()  # recent images' documents, for undo
        self.in_flight: SaveJob | None = None  # a background save not settled yet
        self._conflict_job: SaveJob | None = None  # the save whose SaveConflict waits for the grader's choice

    # ----------------------------------------------------------------- workspace --
    def set_workspace(self, ws: Workspace) -> None:
        self.settle()
        self.close_image()
        self._kept.clear()
        if self.workspace is not None and self.workspace is not ws:
            self.workspace.close()  # ends this window's "already open" record
        self.workspace = ws
        self.current_key = self.loading_key = None
        self._load_request += 1  # whatever was loading belongs to the previous workspace
        if ws.threshold is not None:
            self._set_threshold(ws.threshold)
        elif self.model_threshold is not None:
            self._set_threshold(self.model_threshold)
        self.workspace_changed.emit(ws)

    def has_key(self, key: str) -> bool:
        return self.workspace is not None and any(e.key == key for e in self.workspace.entries)

    # --------------------------------------------------------------------- images --
    def begin_load(self, key: str) -> tuple[int, ImageEntry]:
        """Close the open image and hand out a load request for ``key``; only the newest is ever shown."""
        self.settle()
        self.close_image()
        self._load_request += 1
        self.loading_key = self.current_key = key
        return self._load_request, self._open_workspace().entry(key)

    def is_current(self, request: int) -> bool:
        return request == self._load_request and self.workspace is not None

    def load_failed(self, request: int) -> bool:
        """True when the failed request is the current one (the caller then says so)."""
        if not self.is_current(request):
            return False
        self.loading_key = None
        return True

    def finish_load(self, request: int, loaded: LoadedImage) -> OpenImage | None:
        """Make ``loaded`` the open image, unless a newer request superseded it (then None)."""
        if not self.is_current(request):
            return None
        self.loading_key = None
        ws = self._open_workspace()
        h, w = loaded.rgb.shape[:2]
        disk_sha = ws.loaded_sha(loaded.entry)
        kept = self._kept.pop(loaded.entry.key, None)
        if kept is not None and self._still_valid(kept, loaded, disk_sha):
            self.image = OpenImage(
                loaded.entry,
                loaded,
                kept.document,
                loaded.probability,
                disk_sha,
                kept.baseline(),
                kept.baseline_status,
                kept.baseline_had_file,
            )
            self.image_opened.emit(self.image)
            return self.image
        if loaded.ground_truth is not None:
            doc = MaskDocument(loaded.ground_truth, source="ground truth")
        elif loaded.probability is not None:
            doc = MaskDocument(loaded.probability >= self.threshold, source="prediction")
        else:
            doc = MaskDocument(np.zeros((h, w), bool), source="empty")
        self.image = OpenImage(
            loaded.entry,
            loaded,
            doc,
            loaded.probability,
            disk_sha,
            doc.mask.copy(),
            ws.status(loaded.entry.key),
            loaded.ground_truth is not None,
        )
        self.image_opened.emit(self.image)
        return self.image

    @staticmethod
    def _still_valid(kept: _Kept, loaded: LoadedImage, disk_sha: str | None) -> bool:
        """A kept document is reused only if the mask on disk is still the version it was built on."""
        doc = kept.document
        if doc.shape != loaded.rgb.shape[:2] or doc.unsaved or kept.disk_sha != disk_sha:
            return False
        if loaded.ground_truth is not None:
            return np.array_equal(doc.mask, loaded.ground_truth)
        return doc.can_undo or doc.can_redo  # no file: only worth keeping for its undo steps

    def close_image(self) -> None:
        self.settle()
        if self.image is not None:
            s, self.image = self.image, None
            self._keep(s)
            self.image_closed.emit()

    def _keep(self, s: OpenImage) -> None:
        doc = s.document
        if doc.unsaved or not (doc.can_undo or doc.can_redo):
            return  # unsaved edits being discarded, or nothing to undo
        self._kept[s.key] = _Kept.of(s)
        self._kept.move_to_end(s.key)
        while len(self._kept) > KEEP_DOCUMENTS or (
            len(self._kept) > 1 and sum(k.document.history_bytes for k in self._kept.values()) > KEEP_HISTORY_BYTES
        ):
            self._kept.popitem(last=False)

    def kept_keys(self) -> list[str]:
        """Images whose undo history is kept for when they are reopened, oldest first."""
        return list(self._kept)

    # ----------------------------------------------------------------- prediction --
    def prediction_arrived(self, result: PredictionResult) -> str:
        """Record a prediction; show it if it is for the open image. Returns "shown", "kept" or "other"."""
        ws = self.workspace
        if ws is None or not self.has_key(result.key):
            return "other"  # from a workspace that is no longer open
        ws.set_prediction_info(result.key, result.uncertainty)
        s = self.image
        if s is None or s.key != result.key or result.probability.shape != s.document.shape:
            return "other"
        s.probability = result.probability
        doc = s.document
        outcome = "shown"
        if doc.source in ("empty", "prediction") and not doc.edited and not doc.unsaved:
            # Nothing by hand on screen: a first prediction, or a new model's, replaces it.
            doc.reset(result.probability >= self.threshold, "prediction", saved=True)
            if not s.baseline_had_file:
                s.baseline = doc.mask.copy()  # what "every edit undone" returns to
                s.baseline_status = ws.status(s.key)
        elif doc.source == "empty":
            outcome = "kept"
            self.message.emit(
                "The prediction arrived after you started painting; your mask was kept. "
                "Move the threshold slider to replace it with the prediction.",
                "info",
            )
        self.prediction_shown.emit(result.key)
        return outcome
