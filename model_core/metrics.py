"""Segmentation metrics, all derived from one confusion count (tp, fp, fn, tn), per image and pooled.

AUC comes from per-bin histograms of positive and negative probabilities (65,536 bins, the
resolution of the 16-bit probability PNGs), which gives the exact Mann-Whitney statistic with ties
counted half, in linear time, and lets pooled AUC over a data set be accumulated image by image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import SupportsFloat

import numpy as np

from .skeleton import skeletonize

AUC_BINS = 65536
METRIC_NAMES = ("dice", "iou", "accuracy", "sensitivity", "specificity", "auc", "cldice")
# The thresholds validation and calibration choose from (0.05, 0.10, ... 0.95, exactly those decimals).
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


@dataclass
class Confusion:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @classmethod
    def of(cls, pred: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None) -> Confusion:
        pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
        if pred.shape != truth.shape:
            raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in size")
        if fov is not None:
            fov = np.asarray(fov, bool)
            pred, truth = pred[fov], truth[fov]
        tp = int(np.count_nonzero(pred & truth))
        fp = int(np.count_nonzero(pred & ~truth))
        fn = int(np.count_nonzero(~pred & truth))
        return cls(tp, fp, fn, int(pred.size) - tp - fp - fn)

    @classmethod
    def sweep(
        cls, prob: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None, thresholds: np.ndarray = THRESHOLD_GRID
    ) -> list[Confusion]:
        """One count per threshold of ``prob >= threshold``."""
        return [cls.of(prob >= t, truth, fov) for t in thresholds]

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def dice(self) -> float:
        # Two empty masks agree perfectly.
        return 1.0 if self.tp + self.fp + self.fn == 0 else _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def iou(self) -> float:
        return 1.0 if self.tp + self.fp + self.fn == 0 else _ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.tp + self.fp + self.fn + self.tn)

    @property
    def sensitivity(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float:
        return _ratio(self.tn, self.tn + self.fp)


@dataclass
class RocHistogram:
    """Counts of positive and negative pixels per probability bin."""

    pos: np.ndarray = field(default_factory=lambda: np.zeros(AUC_BINS, np.int64))
    neg: np.ndarray = field(default_factory=lambda: np.zeros(AUC_BINS, np.int64))

    @classmethod
    def of(cls, prob: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None) -> RocHistogram:
        prob, truth = np.asarray(prob, np.float32), np.asarray(truth, bool)
        if fov is not None:
            prob, truth = prob[np.asarray(fov, bool)], truth[np.asarray(fov, bool)]
        # NaN (a diverged model) scores as 0 rather than crashing the evaluation.
        prob = np.nan_to_num(prob, nan=0.0, posinf=1.0, neginf=0.0)
        bins = np.clip(np.rint(prob * (AUC_BINS - 1)), 0, AUC_BINS - 1).astype(np.int64)
        return cls(np.bincount(bins[truth], minlength=AUC_BINS), np.bincount(bins[~truth], minlength=AUC_BINS))

    def __add__(self, other: RocHistogram) -> RocHistogram:
        return RocHistogram(self.pos + other.pos, self.neg + other.neg)

    @property
    def auc(self) -> float:
        n_pos, n_neg = int(self.pos.sum()), int(self.neg.sum())
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        neg_below = np.cumsum(self.neg) - self.neg
        wins = (self.pos.astype(np.float64) * neg_below).sum() + 0.5 * (self.pos.astype(np.float64) * self.neg).sum()
        return float(wins / (n_pos * n_neg))


def roc_auc(prob: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None) -> float:
    return RocHistogram.of(prob, truth, fov).auc


@dataclass
class CenterlineCount:
    """The four counts of clDice (Shit et al., CVPR 2021), S the thinning skeleton (``model_core.skeleton``):
    |S(P)|, |S(P) & L|, |S(L)| and |S(L) & P| for a prediction P and a reference L. Topology precision is
    |S(P) & L| / |S(P)|, topology sensitivity |S(L) & P| / |S(L)|, clDice their harmonic mean. Counts add up
    over images, like Confusion, for a pooled clDice."""

    pred_skeleton: int = 0
    pred_skeleton_in_truth: int = 0
    truth_skeleton: int = 0
    truth_skeleton_in_pred: int = 0

    @classmethod
    def of(cls, pred: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None) -> CenterlineCount:
        pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
        if pred.shape != truth.shape:
            raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in size")
        if fov is not None:
            fov = np.asarray(fov, bool)
            pred, truth = pred & fov, truth & fov
        sp, st = skeletonize(pred), skeletonize(truth)
        return cls(
            int(np.count_nonzero(sp)),
            int(np.count_nonzero(sp & truth)),
            int(np.count_nonzero(st)),
            int(np.count_nonzero(st & pred)),
        )

    def __add__(self, other: CenterlineCount) -> CenterlineCount:
        return CenterlineCount(
            self.pred_skeleton + other.pred_skeleton,
            self.pred_skeleton_in_truth + other.pred_skeleton_in_truth,
            self.truth_skeleton + other.truth_skeleton,
            self.truth_skeleton_in_pred + other.truth_skeleton_in_pred,
        )

    @property
    def topology_precision(self) -> float:
        return _ratio(self.pred_skeleton_in_truth, self.pred_skeleton)

    @property
    def topology_sensitivity(self) -> float:
        return _ratio(self.truth_skeleton_in_pred, self.truth_skeleton)

    @property
    def cldice(self) -> float:
        """1 when both masks are empty; 0 when only one is, or when the skeletons miss each other's masks."""
        if self.pred_skeleton == 0 and self.truth_skeleton == 0:
            return 1.0
        tprec, tsens = self.topology_precision, self.topology_sensitivity
        if math.isnan(tprec) or math.isnan(tsens) or not (tprec + tsens):
            return 0.0
        return 2 * tprec * tsens / (tprec + tsens)


def cldice(pred: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Centerline Dice of a binary prediction against a reference (CenterlineCount)."""
    return CenterlineCount.of(pred, truth, fov).cldice


def segmentation_metrics(
    prob: np.ndarray, truth: np.ndarray, threshold: float = 0.5, fov: np.ndarray | None = None
) -> dict[str, float]:
    """Dice, IoU, accuracy, sensitivity, specificity, AUC and clDice of one probability map."""
    prob = np.asarray(prob, np.float32)
    truth = np.asarray(truth, bool)
    if prob.shape != truth.shape:
        raise ValueError(f"probability map {prob.shape} and truth {truth.shape} differ in size")
    pred = prob >= threshold
    return _metrics(
        Confusion.of(pred, truth, fov), RocHistogram.of(prob, truth, fov), CenterlineCount.of(pred, truth, fov)
    )


def _metrics(c: Confusion, roc: RocHistogram, centerline: CenterlineCount) -> dict[str, float]:
    return {
        "dice": c.dice,
        "iou": c.iou,
        "accuracy": c.accuracy,
        "sensitivity": c.sensitivity,
        "specificity": c.specificity,
        "auc": roc.auc,
        "cldice": centerline.cldice,
    }


@dataclass
class MetricAccumulator:
    """Per-image metrics plus pooled ones (from summed confusion counts and ROC histograms)."""

    threshold: float = 0.5
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: Confusion = field(default_factory=Confusion)
    roc: RocHistogram = field(default_factory=RocHistogram)
    centerline: CenterlineCount = field(default_factory=CenterlineCount)

    def add(self, name: str, prob: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None) -> dict[str, float]:
        prob, truth = np.asarray(prob, np.float32), np.asarray(truth, bool)
        if prob.shape != truth.shape:
            raise ValueError(f"probability map {prob.shape} and truth {truth.shape} differ in size")
        pred = prob >= self.threshold
        # Each image's counts once (the thinning is the slow part): its metrics and the pooled sums.
        c, roc, centerline = (
            Confusion.of(pred, truth, fov),
            RocHistogram.of(prob, truth, fov),
            CenterlineCount.of(pred, truth, fov),
        )
        self.confusion, self.roc, self.centerline = self.confusion + c, self.roc + roc, self.centerline + centerline
        m = self.per_image[name] = _metrics(c, roc, centerline)
        return m

    def pooled(self) -> dict[str, float]:
        return _metrics(self.confusion, self.roc, self.centerline)

    def mean(self) -> dict[str, float]:
        return self._over_images(np.nanmean)

    def std(self) -> dict[str, float]:
        return self._over_images(np.nanstd)

    def _over_images(self, reduce: Callable[[np.ndarray], SupportsFloat]) -> dict[str, float]:
        """``reduce`` of each metric over the images that have it (an image without vessels has no AUC): NaN,
        not a RuntimeWarning, when none has it."""
        out = {}
        for k in METRIC_NAMES:
            values = np.array([m[k] for m in self.per_image.values()], dtype=np.float64)
            out[k] = float(reduce(values)) if np.isfinite(values).any() else float("nan")
        return out if self.per_image else {}

    def summary(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "images": len(self.per_image),
            "mean": self.mean(),
            "std": self.std(),
            "pooled": self.pooled(),
            "per_image": self.per_image,
        }


# --- a mask against a reference (compare mode, agreement between graders) ---------------------------------------

DIFF_TN, DIFF_TP, DIFF_FP, DIFF_FN = 0, 1, 2, 3
# Okabe & Ito (2008), "Color Universal Design": sky blue, vermillion and yellow. Of all triples of their palette
# these three stay farthest apart (CIELAB distance at least 34) under simulated protanopia, deuteranopia and
# tritanopia (Machado, Oliveira & Fernandes 2009), and they differ in lightness too, so they survive greyscale.
DIFFERENCE_COLOURS = {DIFF_TP: "#56B4E9", DIFF_FP: "#D55E00", DIFF_FN: "#F0E442"}
DIFFERENCE_NAMES = {
    DIFF_TP: "in both (true positive)",
    DIFF_FP: "only in the mask (false positive)",
    DIFF_FN: "only in the reference (false negative)",
}


def difference_labels(mask: np.ndarray, reference: np.ndarray, fov: np.ndarray | None = None) -> np.ndarray:
    """uint8 labels per pixel: DIFF_TN 0, DIFF_TP 1, DIFF_FP 2 (mask only), DIFF_FN 3 (reference only);
    0 outside ``fov``."""
    mask, reference = np.asarray(mask, bool), np.asarray(reference, bool)
    if mask.shape != reference.shape:
        raise ValueError(f"mask {mask.shape} and reference {reference.shape} differ in size")
    code = mask.view(np.uint8) + 2 * reference.view(np.uint8)  # 0 neither, 1 mask, 2 reference, 3 both
    labels: np.ndarray = np.array([DIFF_TN, DIFF_FP, DIFF_FN, DIFF_TP], np.uint8)[code]
    if fov is not None:
        labels[~np.asarray(fov, bool)] = DIFF_TN
    return labels


def difference_rgba(labels: np.ndarray, alpha: int = 255) -> np.ndarray:
    """An (H, W, 4) uint8 overlay of difference_labels: the DIFFERENCE_COLOURS, transparent where both agree
    on background."""
    lut = np.zeros((4, 4), np.uint8)
    for label, colour in DIFFERENCE_COLOURS.items():
        lut[label] = [int(colour[i : i + 2], 16) for i in (1, 3, 5)] + [alpha]
    rgba: np.ndarray = lut[np.asarray(labels, np.uint8)]
    return rgba


@dataclass(frozen=True)
class Agreement:
    """``mask`` against ``reference``: sensitivity and specificity take the reference as the truth; Dice and
    clDice are symmetric, so they also serve as the agreement between two graders."""

    dice: float
    cldice: float
    sensitivity: float
    specificity: float

    def as_dict(self) -> dict[str, float]:
        return {
            "dice": self.dice,
            "cldice": self.cldice,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
        }


def agreement(mask: np.ndarray, reference: np.ndarray, fov: np.ndarray | None = None) -> Agreement:
    c = Confusion.of(mask, reference, fov)
    return Agreement(c.dice, cldice(mask, reference, fov), c.sensitivity, c.specificity)
