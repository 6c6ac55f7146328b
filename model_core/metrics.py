"""Segmentation metrics, all derived from one confusion count (tp, fp, fn, tn), per image and pooled.

AUC comes from per-bin histograms of positive and negative probabilities (65,536 bins, the
resolution of the 16-bit probability PNGs), which gives the exact Mann-Whitney statistic with ties
counted half, in linear time, and lets pooled AUC over a data set be accumulated image by image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

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
    def of(cls, pred: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None) -> "Confusion":
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
    def sweep(cls, prob: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None,
              thresholds: np.ndarray = THRESHOLD_GRID) -> list["Confusion"]:
        """One count per threshold of ``prob >= threshold``."""
        return [cls.of(prob >= t, truth, fov) for t in thresholds]

    def __add__(self, other: "Confusion") -> "Confusion":
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
    def of(cls, prob: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None) -> "RocHistogram":
        prob, truth = np.asarray(prob, np.float32), np.asarray(truth, bool)
        if fov is not None:
            prob, truth = prob[np.asarray(fov, bool)], truth[np.asarray(fov, bool)]
        # NaN (a diverged model) scores as 0 rather than crashing the evaluation.
        prob = np.nan_to_num(prob, nan=0.0, posinf=1.0, neginf=0.0)
        bins = np.clip(np.rint(prob * (AUC_BINS - 1)), 0, AUC_BINS - 1).astype(np.int64)
        return cls(np.bincount(bins[truth], minlength=AUC_BINS), np.bincount(bins[~truth], minlength=AUC_BINS))

    def __add__(self, other: "RocHistogram") -> "RocHistogram":
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


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Morphological skeleton (Lantuéjoul): the union over k of erode^k(X) minus its opening."""
    img = np.asarray(mask, np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    skel = np.zeros_like(img)
    # Outside the image is background: OpenCV's default border counts as foreground for erosion, so a mask
    # touching every edge (an all-vessel mask, a threshold of 0) never eroded away and this looped for ever.
    border = dict(borderType=cv2.BORDER_CONSTANT, borderValue=0)
    while img.any():
        eroded = cv2.erode(img, cross, **border)
        skel |= img & (1 - cv2.dilate(eroded, cross, **border))
        img = eroded
    return skel.astype(bool)


def cldice(pred: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Centerline Dice (Shit et al., 2021): harmonic mean of topology precision and sensitivity."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if fov is not None:
        pred, truth = pred & fov, truth & fov
    sp, st = skeleton(pred), skeleton(truth)
    if not sp.any() and not st.any():
        return 1.0
    tprec = _ratio(np.count_nonzero(sp & truth), np.count_nonzero(sp))
    tsens = _ratio(np.count_nonzero(st & pred), np.count_nonzero(st))
    if not (tprec + tsens) or math.isnan(tprec) or math.isnan(tsens):
        return 0.0
    return 2 * tprec * tsens / (tprec + tsens)


def segmentation_metrics(prob: np.ndarray, truth: np.ndarray, threshold: float = 0.5,
                         fov: np.ndarray | None = None) -> dict[str, float]:
    """Dice, IoU, accuracy, sensitivity, specificity, AUC and clDice of one probability map."""
    prob = np.asarray(prob, np.float32)
    truth = np.asarray(truth, bool)
    if prob.shape != truth.shape:
        raise ValueError(f"probability map {prob.shape} and truth {truth.shape} differ in size")
    pred = prob >= threshold
    c = Confusion.of(pred, truth, fov)
    return {
        "dice": c.dice, "iou": c.iou, "accuracy": c.accuracy, "sensitivity": c.sensitivity,
        "specificity": c.specificity, "auc": roc_auc(prob, truth, fov), "cldice": cldice(pred, truth, fov),
    }


@dataclass
class MetricAccumulator:
    """Per-image metrics plus pooled ones (from summed confusion counts and ROC histograms)."""

    threshold: float = 0.5
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: Confusion = field(default_factory=Confusion)
    roc: RocHistogram = field(default_factory=RocHistogram)
    _cl_pred: int = 0
    _cl_pred_hit: int = 0
    _cl_truth: int = 0
    _cl_truth_hit: int = 0

    def add(self, name: str, prob: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None) -> dict[str, float]:
        m = segmentation_metrics(prob, truth, self.threshold, fov)
        self.per_image[name] = m
        pred = np.asarray(prob, np.float32) >= self.threshold
        self.confusion = self.confusion + Confusion.of(pred, truth, fov)
        self.roc = self.roc + RocHistogram.of(prob, truth, fov)
        p, t = (pred & fov, truth & fov) if fov is not None else (pred, truth)
        sp, st = skeleton(p), skeleton(t)
        self._cl_pred += int(sp.sum()); self._cl_pred_hit += int((sp & t).sum())
        self._cl_truth += int(st.sum()); self._cl_truth_hit += int((st & p).sum())
        return m

    def pooled(self) -> dict[str, float]:
        c = self.confusion
        tprec, tsens = _ratio(self._cl_pred_hit, self._cl_pred), _ratio(self._cl_truth_hit, self._cl_truth)
        if self._cl_pred == 0 and self._cl_truth == 0:
            cl = 1.0
        elif math.isnan(tprec) or math.isnan(tsens) or not (tprec + tsens):
            cl = 0.0
        else:
            cl = 2 * tprec * tsens / (tprec + tsens)
        return {"dice": c.dice, "iou": c.iou, "accuracy": c.accuracy, "sensitivity": c.sensitivity,
                "specificity": c.specificity, "auc": self.roc.auc, "cldice": cl}

    def mean(self) -> dict[str, float]:
        return self._over_images(np.nanmean)

    def std(self) -> dict[str, float]:
        return self._over_images(np.nanstd)

    def _over_images(self, reduce) -> dict[str, float]:
        """``reduce`` of each metric over the images that have it (an image without vessels has no AUC): NaN,
        not a RuntimeWarning, when none has it."""
        out = {}
        for k in METRIC_NAMES:
            values = np.array([m[k] for m in self.per_image.values()], dtype=np.float64)
            out[k] = float(reduce(values)) if np.isfinite(values).any() else float("nan")
        return out if self.per_image else {}

    def summary(self) -> dict:
        return {"threshold": self.threshold, "images": len(self.per_image), "mean": self.mean(), "std": self.std(),
                "pooled": self.pooled(), "per_image": self.per_image}


# --- a mask against a reference (compare mode, agreement between graders) ---------------------------------------

DIFF_TN, DIFF_TP, DIFF_FP, DIFF_FN = 0, 1, 2, 3
# Okabe & Ito (2008), "Color Universal Design": sky blue, vermillion and yellow. Of all triples of their palette
# these three stay farthest apart (CIELAB distance at least 34) under simulated protanopia, deuteranopia and
# tritanopia (Machado, Oliveira & Fernandes 2009), and they differ in lightness too, so they survive greyscale.
DIFFERENCE_COLOURS = {DIFF_TP: "#56B4E9", DIFF_FP: "#D55E00", DIFF_FN: "#F0E442"}
DIFFERENCE_NAMES = {DIFF_TP: "in both (true positive)", DIFF_FP: "only in the mask (false positive)",
                    DIFF_FN: "only in the reference (false negative)"}


def difference_labels(mask: np.ndarray, reference: np.ndarray, fov: np.ndarray | None = None) -> np.ndarray:
    """uint8 labels per pixel: DIFF_TN 0, DIFF_TP 1, DIFF_FP 2 (mask only), DIFF_FN 3 (reference only);
    0 outside ``fov``."""
    mask, reference = np.asarray(mask, bool), np.asarray(reference, bool)
    if mask.shape != reference.shape:
        raise ValueError(f"mask {mask.shape} and reference {reference.shape} differ in size")
    code = mask.view(np.uint8) + 2 * reference.view(np.uint8)  # 0 neither, 1 mask, 2 reference, 3 both
    labels = np.array([DIFF_TN, DIFF_FP, DIFF_FN, DIFF_TP], np.uint8)[code]
    if fov is not None:
        labels[~np.asarray(fov, bool)] = DIFF_TN
    return labels


def difference_rgba(labels: np.ndarray, alpha: int = 255) -> np.ndarray:
    """An (H, W, 4) uint8 overlay of difference_labels: the DIFFERENCE_COLOURS, transparent where both agree
    on background."""
    lut = np.zeros((4, 4), np.uint8)
    for label, colour in DIFFERENCE_COLOURS.items():
        lut[label] = [int(colour[i:i + 2], 16) for i in (1, 3, 5)] + [alpha]
    return lut[np.asarray(labels, np.uint8)]


@dataclass(frozen=True)
class Agreement:
    """``mask`` against ``reference``: sensitivity and specificity take the reference as the truth; Dice and
    clDice are symmetric, so they also serve as the agreement between two graders."""

    dice: float
    cldice: float
    sensitivity: float
    specificity: float

    def as_dict(self) -> dict[str, float]:
        return {"dice": self.dice, "cldice": self.cldice, "sensitivity": self.sensitivity,
                "specificity": self.specificity}


def agreement(mask: np.ndarray, reference: np.ndarray, fov: np.ndarray | None = None) -> Agreement:
    c = Confusion.of(mask, reference, fov)
    return Agreement(c.dice, cldice(mask, reference, fov), c.sensitivity, c.specificity)
