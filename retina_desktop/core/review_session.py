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

The mask on screen is either the probabilities cut at ``threshold`` or, when ``mask_edited`` is true, a mask
the grader edited or saved, which the threshold label says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .events import Event
from .mask_document import MaskDocument
from .tasks import LoadedImage, PredictionResult
from .workspace import ImageEntry, Workspace


@dataclass
class OpenImage:
    """The image open in the canvas and its editable mask."""

    entry: ImageEntry
    loaded: LoadedImage
    document: MaskDocument
    probability: np.ndarray | None
    # The mask file's content as this session last loaded or saved it (None: no file yet): the review log
    # counts the grader's changes against it, not against the prediction.
    saved_mask: np.ndarray | None = None

    @property
    def key(self) -> str:
        return self.entry.key


class ReviewSession:
    """Events (callbacks, see ``core.events``):

    ``workspace_changed(ws)``, ``image_opened(OpenImage)``, ``image_closed()``, ``prediction_shown(key)``,
    ``threshold_changed(value)``, ``saved(key, path)``, ``status_changed(key)``, ``message(text, level)``.
    """

    def __init__(self) -> None:
        self.workspace: Workspace | None = None
        self.image: OpenImage | None = None
        self.threshold = 0.5
        self.model_threshold: float | None = None  # the calibrated threshold of the model in use
        self._load_request = 0
        self.loading_key: str | None = None  # asked for, not yet decoded
        self.current_key: str | None = None  # the last image asked for, even if it failed to open
        self.workspace_changed = Event()
        self.image_opened = Event()
        self.image_closed = Event()
        self.prediction_shown = Event()
        self.threshold_changed = Event()
        self.saved = Event()
        self.status_changed = Event()
        self.message = Event()

    # ----------------------------------------------------------------- workspace --
    def set_workspace(self, ws: Workspace) -> None:
        if self.workspace is not None:
            self.workspace.flush()
        self.workspace = ws
        self.close_image()
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
        self.close_image()
        self._load_request += 1
        self.loading_key = self.current_key = key
        return self._load_request, self.workspace.entry(key)

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
        h, w = loaded.rgb.shape[:2]
        if loaded.ground_truth is not None:
            doc = MaskDocument(loaded.ground_truth, source="ground truth")
        elif loaded.probability is not None:
            doc = MaskDocument(loaded.probability >= self.threshold, source="prediction")
        else:
            doc = MaskDocument(np.zeros((h, w), bool), source="empty")
        self.image = OpenImage(loaded.entry, loaded, doc, loaded.probability, loaded.ground_truth)
        self.image_opened.emit(self.image)
        return self.image

    def close_image(self) -> None:
        if self.image is not None:
            self.image = None
            self.image_closed.emit()

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
        if doc.source in ("empty", "prediction") and not doc.has_edits and not doc.is_dirty:
            # Nothing by hand on screen: a first prediction, or a new model's, replaces it.
            doc.reset(result.probability >= self.threshold, "prediction", saved=True)
        elif doc.source == "empty":
            outcome = "kept"
            self.message.emit("The prediction arrived after you started painting; your mask was kept. "
                              "Move the threshold slider to replace it with the prediction.", "info")
        self.prediction_shown.emit(result.key)
        return outcome

    # ------------------------------------------------------------------ threshold --
    @property
    def mask_edited(self) -> bool:
        """True when the mask on screen is not simply the probabilities cut at ``threshold``."""
        s = self.image
        if s is None or s.probability is None:
            return False
        return s.document.has_edits or s.document.source != "prediction"

    def _set_threshold(self, t: float) -> None:
        self.threshold = float(t)
        self.threshold_changed.emit(self.threshold)

    def threshold_question(self, t: float) -> str | None:
        """The question to ask before re-deriving the mask at ``t``, or None when nothing is lost."""
        s = self.image
        if s is None or s.probability is None or not self.changes_mask(t):
            return None
        if not (s.document.has_edits or s.document.is_dirty):
            return None
        # has_edits counts a saved ground truth on screen as somebody's work: replacing it by the prediction is
        # never silent, and the question says that the next save or autosave (switching images) writes over it.
        edits = s.document.is_dirty or s.document.can_undo  # by hand, since the mask was loaded or derived
        if s.document.source == "ground truth" and s.entry.existing_gt() is not None:
            return (f"Thresholding the probabilities at {t:.2f} replaces the saved ground truth of {s.entry.name} "
                    f"on screen by the prediction{', discarding your edits,' if edits else ''} and writes it over "
                    "the ground-truth file at the next save or autosave (the workspace history keeps the old file).")
        return f"Thresholding the probabilities at {t:.2f} replaces the mask of {s.entry.name} and discards its edits."

    def changes_mask(self, t: float) -> bool:
        return abs(t - self.threshold) > 1e-9

    def apply_threshold(self, t: float) -> None:
        """Cut the probabilities at ``t`` (ask ``threshold_question`` first) and remember it for the workspace."""
        s = self.image
        if s is not None and s.probability is not None and self.changes_mask(t):
            saved = s.entry.existing_gt() is None
            s.document.reset(s.probability >= t, "prediction", saved=saved)
        if self.workspace is not None:
            self.workspace.threshold = t
        self._set_threshold(t)

    def model_loaded(self, calibrated: float, activated: bool) -> None:
        """A model is ready. ``activated``: the user switched to it (the policy above), else it is the first load."""
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
        note = (" Your edited mask on screen was kept; move the slider to re-derive it." if kept else "")
        self.message.emit(f"The new model's calibrated threshold {calibrated:.2f} replaces {old:.2f}.{note}", "info")

    def _rethreshold_unedited(self, t: float) -> bool:
        """Set the threshold and re-derive the open mask if it has no edits; True when an edited mask was kept."""
        s = self.image
        kept = s is not None and s.probability is not None and (s.document.has_edits or s.document.is_dirty)
        if s is not None and s.probability is not None and not kept and s.document.source == "prediction":
            s.document.reset(s.probability >= t, "prediction", saved=s.entry.existing_gt() is None)
        self._set_threshold(t)
        return kept

    # --------------------------------------------------------------------- saving --
    def save(self, auto: bool, model: str | None, reviewer: str | None) -> Path:
        """Write the open mask as ground truth and log it; raises WorkspaceError / OSError."""
        s, ws = self.image, self.workspace
        doc = s.document
        changed = doc.is_dirty
        path = ws.save_ground_truth(s.entry, doc.mask)
        doc.mark_saved()
        doc.source = "ground truth"
        added = removed = 0
        extra = {}
        pred = s.probability >= self.threshold if s.probability is not None else None
        if pred is not None:
            extra = {"added_vs_prediction": int(np.count_nonzero(doc.mask & ~pred)),
                     "removed_vs_prediction": int(np.count_nonzero(pred & ~doc.mask))}
        # The grader's changes: against the mask file as loaded or last saved, or, before the first save of an
        # image without one, against the prediction the mask started from.
        base = s.saved_mask if s.saved_mask is not None else pred
        if base is not None and base.shape == doc.mask.shape:
            added = int(np.count_nonzero(doc.mask & ~base))
            removed = int(np.count_nonzero(base & ~doc.mask))
        s.saved_mask = doc.mask.copy()
        # An approved mask that changed (a stroke, or a re-threshold, which leaves no undo step) needs review again.
        if ws.status(s.key) != "approved" or changed:
            ws.set_status(s.key, "edited")
        ws.log_review(s.key, "autosave" if auto else "save", model=model, added=added, removed=removed,
                      reviewer=reviewer, threshold=round(self.threshold, 4), **extra)
        self.saved.emit(s.key, str(path))
        self.status_changed.emit(s.key)
        return path

    def needs_save_before_approve(self) -> bool:
        # Approving means "the mask on screen is the ground truth": save it whenever the file on disk is not that
        # mask, including a saved mask that could not be used (wrong size, unreadable; the history keeps it).
        s = self.image
        return s.document.is_dirty or s.entry.existing_gt() is None or bool(s.loaded.ground_truth_problem)

    def approve(self, model: str | None, reviewer: str | None) -> None:
        """Mark the open image approved (save first if ``needs_save_before_approve``)."""
        s, ws = self.image, self.workspace
        ws.set_status(s.key, "approved")
        ws.log_review(s.key, "approve", model=model, reviewer=reviewer)
        self.status_changed.emit(s.key)

    def unreviewed(self) -> list[ImageEntry]:
        """The images nobody edited or approved yet (what a new model may re-predict)."""
        ws = self.workspace
        if ws is None:
            return []
        return [e for e in ws.entries if ws.status(e.key) in ("new", "predicted")]
