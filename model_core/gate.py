"""The fine-tuning gate: accept, ask or reject a fine-tuned model on evidence a grader can read.

Evidence is a paired comparison of parent and child on the held-out corrections. Each held-out photo is cut
into tiles (a ``TILE_GRID`` × ``TILE_GRID`` grid over its field of view); both models are scored on the same
tiles, and a bootstrap over the tiles gives an interval for the child's gain in pooled Dice (the tiles' true
positives, false positives and false negatives summed, as the metrics count them). Tiles of one photo are not
independent, so tiles alone never make the evidence enough: accepting also needs ``MIN_PHOTOS_TO_ACCEPT``
held-out photos. Beside the gain the gate weighs what the child does elsewhere: how much of the vessel map it
changes on the workspace's unreviewed photos (drift: the pixels whose vessel/background decision flips, as a
share of the two maps' union, 1 − IoU; ``forgetting.prediction_drift``) and how far its threshold moved.

Verdicts:
- **reject**: the run failed or was cancelled, there is no score, or the child is worse (its mean gain is below
  zero). The version is kept, unused.
- **accept**: the gain's interval lies above zero, on enough photos, with drift and threshold change within
  their limits. The version becomes active by itself.
- **ask**: anything in between. The version becomes active only when the grader says so, after reading
  :meth:`GateEvidence.sentence`.

Every limit is a constant here, with the measurement that chose it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Verdict = Literal["accept", "ask", "reject"]

# One photo is no evidence (the new-user trial: judged on one held-out photo, 0.7657 -> 0.7846, the child fell
# from 0.825 to 0.737 on an unreviewed photo). Two photos are the least on which a gain can show twice.
MIN_PHOTOS_TO_ACCEPT = 2
# The 12 benchmark fine-tunes that raised the target camera's Dice (+0.037 to +0.141, docs/benchmarks.md,
# "Fine-tuning") flipped 14.1 % to 23.4 % of the decisions on their unreviewed photos; the new-user child that
# fell by 0.088 on an unreviewed photo flipped 28.7 %. The limit sits between the two.
DRIFT_LIMIT = 0.25
# Those 12 runs moved the threshold by 0.05 to 0.30 (0.50 -> 0.55 ... 0.80); the new-user child by 0.45.
THRESHOLD_STEP_LIMIT = 0.30
TILE_GRID = 4  # 16 tiles a photo: enough units for an interval, each still holding several vessels
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass
class GateEvidence:
    """What the verdict was decided on; stored in the version's metadata and shown to the grader."""

    photos: int  # held-out photos compared
    tiles: int  # tiles compared (the bootstrap's units)
    parent_dice: float  # pooled over the held-out photos, each model at its own threshold
    child_dice: float
    gain: float  # child - parent
    gain_low: float  # the bootstrap interval of the gain (CONFIDENCE)
    gain_high: float
    drift: float | None  # share of decisions flipped on photos outside the corrections
    drift_source: str
    threshold_before: float
    threshold_after: float
    shared: bool = False  # the one correction both trained and validated: the gain is only a fit

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    def sentence(self) -> str:
        """The evidence in one sentence a grader understands, e.g. "judged on 1 photo (16 tiles): Dice 0.766 ->
        0.785 (+0.019, interval +0.004 to +0.031); changes 29 % of predictions on your other photos; threshold
        0.50 -> 0.95"."""
        photos = f"{self.photos} photo{'s' if self.photos != 1 else ''}"
        parts = [
            f"judged on {photos} ({self.tiles} tiles"
            + (", the one it was trained on" if self.shared else "")
            + f"): Dice {self.parent_dice:.3f} -> {self.child_dice:.3f} ({self.gain:+.3f}, "
            f"interval {self.gain_low:+.3f} to {self.gain_high:+.3f})"
        ]
        if self.drift is not None:
            where = "your other photos" if self.drift_source == "unreviewed photos" else self.drift_source
            parts.append(f"changes {self.drift:.0%} of predictions on {where}")
        parts.append(f"threshold {self.threshold_before:.2f} -> {self.threshold_after:.2f}")
        return "; ".join(parts)


@dataclass
class GateResult:
    verdict: Verdict
    reason: str  # why, in words; starts with the deciding fact
    evidence: GateEvidence | None

    @property
    def accepted(self) -> bool:
        return self.verdict == "accept"


def tile_counts(masks: list[np.ndarray], truths: list[np.ndarray], fovs: list[np.ndarray]) -> np.ndarray:
    """(tiles, 3) true positives, false positives and false negatives of ``masks`` against ``truths`` inside the
    FOV, per tile of a ``TILE_GRID`` grid over each FOV's bounding box. Tiles with neither a reference nor a
    predicted vessel say nothing and are left out by the caller (they are kept here so that two models' tiles
    line up)."""
    rows = []
    for mask, truth, fov in zip(masks, truths, fovs, strict=True):
        inside = fov > 0
        ys, xs = np.nonzero(inside)
        if len(ys) == 0:
            continue
        y_edges = np.linspace(ys.min(), ys.max() + 1, TILE_GRID + 1).astype(int)
        x_edges = np.linspace(xs.min(), xs.max() + 1, TILE_GRID + 1).astype(int)
        m, t = (mask > 0) & inside, (truth > 0) & inside
        for y0, y1 in itertools.pairwise(y_edges):
            for x0, x1 in itertools.pairwise(x_edges):
                mm, tt = m[y0:y1, x0:x1], t[y0:y1, x0:x1]
                tp = int(np.count_nonzero(mm & tt))
                rows.append((tp, int(np.count_nonzero(mm)) - tp, int(np.count_nonzero(tt)) - tp))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def _dice(counts: np.ndarray) -> np.ndarray:
    """Pooled Dice of (..., 3) summed counts."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def paired_gain(parent: np.ndarray, child: np.ndarray, seed: int = 0) -> tuple[float, float, float, float, int]:
    """(parent Dice, child Dice, interval low, interval high, tiles used) of two (tiles, 3) count arrays of the
    same tiles: a paired bootstrap, resampling tiles, of the gain in pooled Dice."""
    used = (parent.sum(axis=1) + child.sum(axis=1)) > 0
    parent, child = parent[used], child[used]
    n = len(parent)
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan, 0
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
    gains = _dice(child[pick].sum(axis=1)) - _dice(parent[pick].sum(axis=1))
    tail = (1 - CONFIDENCE) / 2
    low, high = np.nanquantile(gains, [tail, 1 - tail])
    return float(_dice(parent.sum(axis=0))), float(_dice(child.sum(axis=0))), float(low), float(high), n


def decide(evidence: GateEvidence | None, stop_reason: str) -> GateResult:
    """The verdict on ``evidence`` for a run that ended with ``stop_reason``."""
    if stop_reason.startswith("non-finite"):
        return GateResult("reject", f"training failed ({stop_reason})", evidence)
    if stop_reason == "cancelled":
        return GateResult("reject", "cancelled before it finished", evidence)
    if evidence is None or math.isnan(evidence.child_dice) or math.isnan(evidence.parent_dice):
        return GateResult("reject", "no validation score", evidence)
    said = evidence.sentence()
    if evidence.gain < 0:
        return GateResult("reject", f"worse on the held-out corrections: {said}", evidence)
    doubts = []
    if evidence.shared:
        doubts.append("it was judged on the photo it was trained on")
    elif evidence.photos < MIN_PHOTOS_TO_ACCEPT:
        doubts.append(f"fewer than {MIN_PHOTOS_TO_ACCEPT} held-out photos")
    if not evidence.gain_low > 0:
        doubts.append("the gain is not clear of zero")
    if evidence.drift is not None and evidence.drift > DRIFT_LIMIT:
        doubts.append(f"it changes more than {DRIFT_LIMIT:.0%} of the predictions elsewhere")
    if abs(evidence.threshold_after - evidence.threshold_before) > THRESHOLD_STEP_LIMIT + 1e-9:
        doubts.append(f"its threshold moved by more than {THRESHOLD_STEP_LIMIT:.2f}")
    if doubts:
        return GateResult("ask", f"{'; '.join(doubts)}: {said}", evidence)
    return GateResult("accept", f"better on the held-out corrections: {said}", evidence)
