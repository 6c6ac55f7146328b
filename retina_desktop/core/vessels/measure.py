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

        return [
            ("Dice", f(self.dice)),
            ("IoU", f(self.iou)),
            ("Accuracy", f(self.accuracy)),
            ("AUC", f(self.auc)),
            ("Pixels added", f"{self.pixels_added:,}"),
            ("Pixels removed", f"{self.pixels_removed:,}"),
            ("Vessel pixels", f"{self.vessel_pixels:,}"),
        ]


def measure_correction(
    prob: np.ndarray, corrected: np.ndarray, threshold: float, fov: np.ndarray | None = None
) -> CorrectionMeasure:
    """Dice, IoU and the pixel counts cover the whole image, as the saved mask and the review log do: a stroke
    outside the field of view is still an edit. Accuracy and AUC stay inside the FOV, where the dark surround
    would otherwise make them near 1 whatever the vessels look like."""
    pred = prob >= threshold
    whole = Confusion.of(pred, corrected, None)
    inside = Confusion.of(pred, corrected, fov)
    truth = corrected if fov is None else corrected[fov]
    has_both = truth.any() and not truth.all()
    auc = roc_auc(prob, corrected, fov) if has_both else float("nan")
    return CorrectionMeasure(
        whole.dice, whole.iou, inside.accuracy, auc, int(whole.fn), int(whole.fp), int(np.count_nonzero(corrected))
    )
