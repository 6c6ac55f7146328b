"""How far the grader moved from the model: the prediction scored against the corrected mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model_core.metrics import Confusion, roc_auc


@dataclass(frozen=True)
class CorrectionMeasure:
    dice: float
    iou: float
    accuracy: float
    auc: float
    pixels_added: int  # vessel in the corrected mask, not in the thresholded prediction
    pixels_removed: int  # vessel in the thresholded prediction, not in the corrected mask
    vessel_pixels: int

    def as_rows(self) -> list[tuple[str, str]]:
        def f(v: float) -> str:
            return "n/a" if v != v else f"{v:.4f}"

        return [("Dice", f(self.dice)), ("IoU", f(self.iou)), ("Accuracy", f(self.accuracy)), ("AUC", f(self.auc)),
                ("Pixels added", f"{self.pixels_added:,}"), ("Pixels removed", f"{self.pixels_removed:,}"),
                ("Vessel pixels", f"{self.vessel_pixels:,}")]


def measure_correction(prob: np.ndarray, corrected: np.ndarray, threshold: float,
                       fov: np.ndarray | None = None) -> CorrectionMeasure:
    pred = prob >= threshold
    c = Confusion.of(pred, corrected, fov)
    truth = corrected if fov is None else corrected[fov]
    has_both = truth.any() and not truth.all()
    auc = roc_auc(prob, corrected, fov) if has_both else float("nan")
    return CorrectionMeasure(c.dice, c.iou, c.accuracy, auc, int(c.fn), int(c.fp), int(np.count_nonzero(corrected)))
