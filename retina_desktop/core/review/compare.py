"""Compare mode, Qt-free: which mask is the reference, where a second grader's masks are, and the scores.

* The **reference** of an image is the mask that came with the data set: the oldest version recorded as
  imported (the app keeps the file it found on disk before the first save writes over it), or, before any
  save, the mask file on disk. In a workspace where the grader saved masks from the app itself, it is the
  saved ground truth as it was when the image was opened.
* The **second grader** is a folder beside the first grader's masks: ``masks_2nd_observer/`` (this project's
  data sets) or DRIVE's ``2nd_manual/`` (``01_manual2.gif``), paired by file stem.
* Scores are computed over the whole image, as the review panel's other measures are: Dice and clDice are
  symmetric (they serve as the agreement between two graders); sensitivity and specificity take the
  reference as the truth.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from model_core.data import IMAGE_STEM_SUFFIXES, mask_stems
from model_core.errors import ImageReadError
from model_core.imageio import IMAGE_SUFFIXES, read_mask
from model_core.metrics import Agreement, Confusion, agreement

from ..model.tasks import TaskContext
from ..workspace import ImageEntry, Workspace

SECOND_GRADER_DIRS = ("masks_2nd_observer", "mask_2nd_observer", "2nd_manual", "2nd_observer")
# DRIVE names the second observer's masks 01_manual2.gif.
SECOND_GRADER_SUFFIXES = ("_manual2", "_2nd_manual")

# What compare mode can show in place of the editable mask, in the order the key cycles through them.
CompareView = Literal["mask", "reference", "prediction", "second"]
VIEWS: tuple[CompareView, ...] = ("mask", "reference", "prediction", "second")
REFERENCE_FROM_HISTORY = "reference (saved over; from History)"
VIEW_NAMES: dict[CompareView, str] = {
    "mask": "your mask (editable)",
    "reference": "reference",
    "prediction": "model prediction",
    "second": "second grader",
}


def second_grader_dir(entry: ImageEntry) -> Path | None:
    """The folder of a second grader's masks beside the first grader's (None: there is none)."""
    for name in SECOND_GRADER_DIRS:
        d = entry.gt_dir.parent / name
        if d.is_dir() and d != entry.gt_dir:
            return d
    return None


def second_grader_path(entry: ImageEntry) -> Path | None:
    folder = second_grader_dir(entry)
    if folder is None:
        return None
    bases = [entry.stem] + [
        entry.stem[: -len(s)] for s in IMAGE_STEM_SUFFIXES if entry.stem.endswith(s) and len(entry.stem) > len(s)
    ]
    stems = mask_stems(entry.stem) + [b + suffix for b in bases for suffix in SECOND_GRADER_SUFFIXES]
    for s in stems:
        for suffix in IMAGE_SUFFIXES:
            p = folder / f"{s}{suffix}"
            try:
                if p.is_file():
                    return p
            except OSError:  # a name too long for the filesystem: no such file
                continue
    return None


def reference_source(ws: Workspace, entry: ImageEntry) -> tuple[Path | None, str]:
    """(the reference mask's file, what it is). (None, "") when the image has no reference."""
    imported = next((v for v in ws.versions(entry) if v.source == "import" and v.path.is_file()), None)
    if imported is not None:
        # Kept in the History when the first save wrote over it (the file is named by its hash there).
        return imported.path, REFERENCE_FROM_HISTORY
    on_disk = entry.existing_gt()
    if on_disk is None:
        return None, ""
    if ws.versions(entry):
        return on_disk, "saved ground truth"
    return on_disk, "reference (the data set's mask)"


def has_reference(ws: Workspace, entry: ImageEntry) -> bool:
    """Cheap (no decoding): a mask file on disk or an imported version."""
    return entry.existing_gt() is not None or any(v.source == "import" for v in ws.versions(entry))


@dataclass
class CompareMasks:
    """The masks compare mode shows beside the editable one, read on a worker thread."""

    key: str
    reference: np.ndarray | None = None
    reference_label: str = ""
    reference_path: Path | None = None
    second: np.ndarray | None = None
    second_path: Path | None = None
    problems: list[str] = field(default_factory=list)  # one line per file that could not be used

    @property
    def reference_from_history(self) -> bool:
        """The reference is the data set's mask kept in the History (the file on disk was saved over)."""
        return self.reference_label == REFERENCE_FROM_HISTORY


def _read(path: Path, shape: tuple[int, int], what: str, problems: list[str]) -> np.ndarray | None:
    try:
        mask = read_mask(path)
    except (ImageReadError, OSError) as exc:
        problems.append(f"{path}: the {what} could not be read ({exc})")
        return None
    if mask.shape != tuple(shape):
        problems.append(
            f"{path}: the {what} is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}; not used"
        )
        return None
    return mask


def load_compare_masks(
    ctx: TaskContext | None, ws: Workspace, entry: ImageEntry, shape: tuple[int, int]
) -> CompareMasks:
    out = CompareMasks(entry.key)
    path, label = reference_source(ws, entry)
    if path is not None:
        out.reference = _read(path, shape, "reference", out.problems)
        out.reference_label, out.reference_path = label, path
    second = second_grader_path(entry)
    if second is not None:
        out.second = _read(second, shape, "second grader's mask", out.problems)
        out.second_path = second
    return out


@dataclass(frozen=True)
class CompareScores:
    """Each pair is (what, against what): ``prediction`` and ``mask`` against the reference, and the two
    graders against each other."""

    prediction_vs_reference: Agreement | None
    mask_vs_reference: Agreement | None
    second_vs_reference: Agreement | None

    def rows(self) -> list[tuple[str, Agreement | None]]:
        return [
            ("Model prediction vs reference", self.prediction_vs_reference),
            ("Your mask vs reference", self.mask_vs_reference),
            ("Second grader vs reference", self.second_vs_reference),
        ]


def compare_scores(
    prediction: np.ndarray | None,
    mask: np.ndarray | None,
    reference: np.ndarray | None,
    second: np.ndarray | None = None,
) -> CompareScores:
    if reference is None:
        return CompareScores(None, None, None)

    def score(m: np.ndarray | None) -> Agreement | None:
        return agreement(m, reference) if m is not None else None

    return CompareScores(score(prediction), score(mask), score(second))


def dice_against_reference(ws: Workspace, entry: ImageEntry, model_key: str, threshold: float) -> float | None:
    """The Dice of the cached prediction (cut at ``threshold``) against the reference, or None when either is
    missing: what the image list sorts by, worst first."""
    if not ws.predictions.has(entry, model_key):
        return None  # checked first: a workspace of thousands of references, few predicted, stays quick
    path, _label = reference_source(ws, entry)
    if path is None:
        return None
    try:
        reference = read_mask(path)
    except (ImageReadError, OSError):
        return None
    prob = ws.predictions.load(entry, model_key, reference.shape)
    if prob is None:
        return None
    return Confusion.of(prob >= threshold, reference, None).dice


def workspace_dice(
    ctx: TaskContext | None, ws: Workspace, model_key: str, threshold: float, keys: list[str] | None = None
) -> int:
    """Emit ``(key, dice or None)`` for each image (or each of ``keys``); returns how many had a score."""
    entries = ws.entries if keys is None else [ws.entry(k) for k in keys]
    scored = 0
    for _i, e in enumerate(entries):
        if ctx is not None and ctx.cancelled:
            break
        d = dice_against_reference(ws, e, model_key, threshold)
        scored += d is not None
        if ctx is not None:
            ctx.emit((e.key, d))
    return scored


# --- the workspace summary window's data -------------------------------------------------------------------

EDIT_ACTIONS = ("save", "autosave", "restore")


def edit_burden(log: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(time in seconds since the epoch, pixels the grader changed) of each save in the review log, oldest
    first: how much correcting each save took. Records without a readable time are left out."""
    import datetime as dt

    times, pixels = [], []
    for rec in log:
        if rec.get("action") not in EDIT_ACTIONS:
            continue
        try:
            t = dt.datetime.fromisoformat(str(rec.get("time"))).timestamp()
        except ValueError:
            continue
        times.append(t)
        pixels.append(int(rec.get("pixels_added") or 0) + int(rec.get("pixels_removed") or 0))
    order = np.argsort(np.asarray(times, float), kind="stable")
    return np.asarray(times, float)[order], np.asarray(pixels, np.int64)[order]


def histogram(
    values: Iterable[float | None], bins: int = 10, span: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(bin edges, counts) of the finite values, over ``span`` or their own range (widened around a single
    value)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if v.size == 0:
        return np.zeros(0), np.zeros(0, int)
    if span is not None:
        counts, edges = np.histogram(np.clip(v, *span), bins=bins, range=span)
        return edges, counts
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5 * max(abs(lo) * 0.01, 1e-3), hi + 0.5 * max(abs(hi) * 0.01, 1e-3)
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    return edges, counts
