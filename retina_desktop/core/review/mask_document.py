"""The editable vessel mask of one image, with a bounded, diff-based undo history.

One undo step per gesture (a brush stroke from press to release, a fill, a clean-up). A step stores
only the rectangle the gesture touched, as bit-packed, zlib-compressed before/after planes, so 200
strokes on a 3504x2336 mask cost kilobytes rather than 200 copies of an 8 MB mask. The history is
capped both in steps and in bytes; the oldest steps are dropped first.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from psygnal import Signal

from ..painting import BBox, paint_segment, segment_footprint, union_bbox


def _pack(region: np.ndarray) -> bytes:
    return zlib.compress(np.packbits(region, axis=None).tobytes(), 1)


def _unpack(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    bits = np.frombuffer(zlib.decompress(data), dtype=np.uint8)
    return np.unpackbits(bits, count=shape[0] * shape[1]).astype(bool).reshape(shape)


@dataclass(frozen=True)
class MaskEdit:
    """One undoable gesture: the rectangle it touched and the mask there before and after."""

    label: str
    bbox: BBox
    old: bytes
    new: bytes
    added: int  # pixels turned on by the gesture
    removed: int  # pixels turned off
    tool: str = "brush"  # what made it, as the History names it (records.SOURCES)

    @property
    def nbytes(self) -> int:
        return len(self.old) + len(self.new) + 128

    @property
    def shape(self) -> tuple[int, int]:
        return self.bbox[1] - self.bbox[0], self.bbox[3] - self.bbox[2]

    @classmethod
    def between(cls, label: str, bbox: BBox, old: np.ndarray, new: np.ndarray, tool: str = "brush") -> MaskEdit:
        added = int(np.count_nonzero(new & ~old))
        removed = int(np.count_nonzero(old & ~new))
        return cls(label, bbox, _pack(old), _pack(new), added, removed, tool)


DocumentSource = Literal["ground truth", "prediction", "empty"]


class MaskDocument:
    """A boolean mask plus its history. Views listen to the psygnal signals ``changed(bbox or None)`` and
    ``state_changed()``."""

    changed = Signal(object)
    state_changed = Signal()

    def __init__(
        self,
        mask: np.ndarray,
        source: DocumentSource = "empty",
        max_steps: int = 1000,
        max_history_bytes: int = 64 * 1024 * 1024,
    ):
        self._mask = np.array(mask, dtype=bool, order="C")  # always exactly one copy
        self.source: DocumentSource = source  # where the mask came from
        self.max_steps = max_steps
        self.max_history_bytes = max_history_bytes
        self._undo: list[MaskEdit] = []
        self._redo: list[MaskEdit] = []
        self._history_bytes = 0
        # Index into the undo stack at which the mask equals what is on disk (None: never).
        self._clean_index: int | None = 0
        self._dropped_before_clean = False
        self._stroke_before: np.ndarray | None = None
        self._stroke_bbox: BBox | None = None
        self._stroke_label = ""
        self._stroke_tool = "brush"

    # -- reading ---------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        """The live mask. Read it freely; change it only through this class."""
        return self._mask

    @property
    def shape(self) -> tuple[int, int]:
        return self._mask.shape

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) and self._stroke_before is None

    @property
    def can_redo(self) -> bool:
        return bool(self._redo) and self._stroke_before is None

    @property
    def undo_count(self) -> int:
        return len(self._undo)

    @property
    def history_bytes(self) -> int:
        return self._history_bytes

    @property
    def unsaved(self) -> bool:
        """The mask differs from what was last saved or loaded (what is on disk): a save or autosave writes it."""
        return self._stroke_before is not None or self._clean_index != len(self._undo)

    @property
    def edited(self) -> bool:
        """The mask is somebody's work, not what the app derived: changed by hand since it was derived or loaded (an
        undo step, or steps dropped from a full history), or a saved ground truth. Never replaced unasked."""
        return bool(self._undo) or self._dropped_before_clean or self.source == "ground truth"

    # -- saving ----------------------------------------------------------------------------
    def unsaved_edits(self) -> list[MaskEdit]:
        """The steps between what is on disk and the mask on screen: done since the last save, or (after undoing
        past it) the saved steps undone. All steps when the saved state is no longer in the history."""
        n, clean = len(self._undo), self._clean_index
        if clean is None:
            return list(self._undo)
        if clean <= n:
            return self._undo[clean:]
        return self._redo[len(self._redo) - (clean - n) :]  # the redo stack's top is its end

    def tools_since_save(self) -> list[str]:
        """The tools that made the unsaved changes, the one that changed the most pixels first."""
        pixels: dict[str, int] = {}
        for e in self.unsaved_edits():
            pixels[e.tool] = pixels.get(e.tool, 0) + e.added + e.removed
        return sorted(pixels, key=lambda t: -pixels[t])

    def mark_saved(self) -> None:
        self._clean_index = len(self._undo)
        self.state_changed.emit()

    # -- strokes ---------------------------------------------------------------------------
    def begin_stroke(self, label: str = "Brush", tool: str | None = None) -> None:
        """``tool``: what the History will say made the change (default: "eraser" for a label that says so,
        else "brush")."""
        if self._stroke_before is not None:
            self.end_stroke()
        # One copy per gesture (a few ms even for 3504x2336) lets every segment draw directly.
        self._stroke_before = self._mask.copy()
        self._stroke_bbox = None
        self._stroke_label = label
        self._stroke_tool = tool or ("eraser" if label.lower().startswith("eraser") else "brush")

    def stroke_to(self, p0: tuple[float, float], p1: tuple[float, float], radius: float, value: bool) -> BBox | None:
        if self._stroke_before is None:
            self.begin_stroke("Brush" if value else "Eraser")
        bbox = paint_segment(self._mask, p0, p1, radius, value)
        if bbox is not None:
            self._stroke_bbox = union_bbox(self._stroke_bbox, bbox)
            self.changed.emit(bbox)
        return bbox

    def copy_stroke_to(
        self, p0: tuple[float, float], p1: tuple[float, float], radius: float, source: np.ndarray
    ) -> BBox | None:
        """Inside the brush footprint the mask takes ``source``'s pixels, vessel and background alike (the
        brush that copies from another grader's or the model's mask). Part of the open stroke, like
        ``stroke_to``."""
        if source.shape != self._mask.shape:
            raise ValueError(f"source mask {source.shape} does not match the document {self._mask.shape}")
        if self._stroke_before is None:
            self.begin_stroke("Brush from another mask")
        found = segment_footprint(self._mask.shape, p0, p1, radius)
        if found is None:
            return None
        bbox, foot = found
        win = (slice(bbox[0], bbox[1]), slice(bbox[2], bbox[3]))
        self._mask[win][foot] = source[win][foot]
        self._stroke_bbox = union_bbox(self._stroke_bbox, bbox)
        self.changed.emit(bbox)
        return bbox

    def end_stroke(self) -> MaskEdit | None:
        before, bbox = self._stroke_before, self._stroke_bbox
        self._stroke_before, self._stroke_bbox = None, None
        if before is None:
            return None
        edit = None
        if bbox is not None:
            window = (slice(bbox[0], bbox[1]), slice(bbox[2], bbox[3]))
            old, new = before[window], self._mask[window]
            if not np.array_equal(old, new):
                edit = MaskEdit.between(self._stroke_label, bbox, old, new, self._stroke_tool)
                self._push(edit)
        self.state_changed.emit()
        return edit

    def apply(self, label: str, operation: Callable[[np.ndarray], BBox | None], tool: str = "brush") -> MaskEdit | None:
        """Run ``operation(mask) -> bbox`` as one undoable step (fill, clean-up, a trace); ``tool`` is what the
        History will say made it."""
        if self._stroke_before is not None:
            self.end_stroke()
        before = self._mask.copy()
        bbox = operation(self._mask)
        if bbox is None:
            return None
        window = (slice(bbox[0], bbox[1]), slice(bbox[2], bbox[3]))
        if np.array_equal(before[window], self._mask[window]):
            return None
        edit = MaskEdit.between(label, bbox, before[window], self._mask[window], tool)
        self._push(edit)
        self.changed.emit(bbox)
        self.state_changed.emit()
        return edit

    def replace(self, label: str, mask: np.ndarray, tool: str = "restore") -> MaskEdit | None:
        """Replace the whole mask as one undoable step."""
        new = np.asarray(mask, dtype=bool)
        if new.shape != self._mask.shape:
            raise ValueError(f"mask {new.shape} does not match the document {self._mask.shape}")

        def op(m: np.ndarray) -> BBox:
            m[...] = new
            return 0, m.shape[0], 0, m.shape[1]

        return self.apply(label, op, tool)

    def reset(self, mask: np.ndarray, source: DocumentSource, saved: bool) -> None:
        """Start over from ``mask`` (a new prediction or threshold): history is cleared.

        ``saved`` says whether the new content equals what is on disk; if not, the document is
        unsaved and autosave will write it.
        """
        new = np.asarray(mask, dtype=bool)
        if new.shape != self._mask.shape:
            raise ValueError(f"mask {new.shape} does not match the document {self._mask.shape}")
        self._stroke_before, self._stroke_bbox = None, None
        self._mask[...] = new  # in place: views hold this very array
        self.source = source
        self._undo.clear()
        self._redo.clear()
        self._history_bytes = 0
        self._dropped_before_clean = False
        self._clean_index = 0 if saved else None
        self.changed.emit(None)
        self.state_changed.emit()

    # -- undo/redo -------------------------------------------------------------------------
    def undo(self) -> bool:
        if not self.can_undo:
            return False
        edit = self._undo.pop()
        self._history_bytes -= edit.nbytes
        self._redo.append(edit)
        self._write(edit, edit.old)
        return True

    def redo(self) -> bool:
        if not self.can_redo:
            return False
        edit = self._redo.pop()
        self._undo.append(edit)
        self._history_bytes += edit.nbytes
        self._write(edit, edit.new)
        return True

    def _write(self, edit: MaskEdit, data: bytes) -> None:
        y0, y1, x0, x1 = edit.bbox
        self._mask[y0:y1, x0:x1] = _unpack(data, edit.shape)
        self.changed.emit(edit.bbox)
        self.state_changed.emit()

    def _push(self, edit: MaskEdit) -> None:
        if self._clean_index is not None and self._clean_index > len(self._undo):
            self._clean_index = None  # the saved state was in the redo branch we are discarding
        self._redo.clear()
        self._undo.append(edit)
        self._history_bytes += edit.nbytes
        while self._undo and (
            len(self._undo) > self.max_steps or (self._history_bytes > self.max_history_bytes and len(self._undo) > 1)
        ):
            dropped = self._undo.pop(0)
            self._history_bytes -= dropped.nbytes
            self._dropped_before_clean = True
            if self._clean_index is not None:
                self._clean_index = self._clean_index - 1 if self._clean_index > 0 else None

    # -- saving a copy on another thread ----------------------------------------------------
    def save_point(self) -> tuple[object, ...] | None:
        """The state on screen now (None during a stroke, whose end is not known yet). A copy of the mask taken
        now may be saved on a worker while the grader goes on editing; ``mark_saved_at`` then makes this state,
        not the one on screen by then, the saved one."""
        if self._stroke_before is not None:
            return None
        return (self._undo[-1] if self._undo else None,)

    def mark_saved_at(self, point: tuple[object, ...], saved: np.ndarray) -> None:
        """``point`` (from ``save_point``) is what is on disk now; ``saved`` is the copy that was written.
        Edits made since stay unsaved; undoing them back to ``point`` makes the document clean again."""
        top = point[0]
        if top is None:  # an empty history then: only an unchanged mask is known to equal the copy
            clean = 0 if not self._undo and np.array_equal(self._mask, saved) else None
        else:  # a step is found by identity: a reset or a new branch never brings an old step object back
            at = next((i for i, e in enumerate(self._undo) if e is top), None)
            if at is not None:
                clean = at + 1
            else:
                j = next((j for j, e in enumerate(self._redo) if e is top), None)
                clean = None if j is None else len(self._undo) + len(self._redo) - j
        self._clean_index = clean
        self.state_changed.emit()
