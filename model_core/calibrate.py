"""Choosing a checkpoint's threshold on held-out training photos, scored the way photos are used.

Validation during training scores at the model's working scale. A photo stored smaller than that scale
(public data sets ship DRIVE resized to 512x512) is enlarged, predicted, and its probabilities are
mapped back, and its best threshold differs. Here every held-out photo is predicted through the
public predictor, at its native size (inside its FOV mask when the data set has one) and as renderings
resized to given sizes (image area-averaged; mask resized linearly and cut at one half, as public
resized data sets were made), and the threshold with the best mean of the per-rendering pooled Dice is
chosen. Only images the checkpoint's training held out are used, never a test split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .checkpoint import Checkpoint
from .data import Sample, load_sample, render_resized
from .errors import DatasetError
from .metrics import THRESHOLD_GRID as THRESHOLDS, Confusion
from .predictor import VesselPredictor


@dataclass
class Calibration:
    threshold: float
    renderings: list[str]
    images: list[str]
    curves: dict[str, list[float]] = field(default_factory=dict)  # rendering -> pooled Dice per threshold
    mean_curve: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "thresholds": THRESHOLDS.tolist(),
            "renderings": self.renderings,
            "images": self.images,
            "pooled_dice": self.curves,
            "mean_pooled_dice": self.mean_curve,
            "rule": "best mean over renderings of the pooled Dice on held-out training photos",
        }


def held_out(samples: list[Sample], checkpoint: Checkpoint) -> list[Sample]:
    names = set(checkpoint.metadata.get("val_images") or [])
    chosen = [s for s in samples if s.name in names]
    if not chosen:
        raise DatasetError(
            None,
            "none of the checkpoint's held-out validation images is in this data set "
            "(calibrate on the data set it was trained on)",
        )
    return chosen


def calibrate(
    predictor: VesselPredictor,
    samples: list[Sample],
    sizes: list[tuple[int, int]],
    progress: Callable[[list[Sample]], Iterable[Sample]] | None = None,
) -> Calibration:
    keys = ["native"] + [f"{w}x{h}" for w, h in sizes]
    conf = {k: [Confusion() for _ in THRESHOLDS] for k in keys}

    def add(key: str, prob: np.ndarray, truth: np.ndarray, fov: np.ndarray | None) -> None:
        conf[key] = [a + b for a, b in zip(conf[key], Confusion.sweep(prob, truth, fov, THRESHOLDS), strict=True)]

    for s in progress(samples) if progress else samples:
        rgb, vessels, fov, fov_given = load_sample(s)
        add("native", predictor.predict(rgb), vessels, fov if fov_given else None)
        for key, size in zip(keys[1:], sizes, strict=True):
            small, mask = render_resized(rgb, vessels, size)
            add(key, predictor.predict(small), mask, None)
    curves = {k: [float(c.dice) for c in v] for k, v in conf.items()}
    mean = np.mean([curves[k] for k in keys], axis=0)
    best = int(np.nanargmax(mean))
    return Calibration(float(THRESHOLDS[best]), keys, [s.name for s in samples], curves, [float(x) for x in mean])
