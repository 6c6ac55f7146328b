"""The Proofread queue's ranking learned from the grader's decisions: P(accepted) of a proposal.

Every accepted or rejected proposal is a decision record, ``{"features": {name: value}, "accepted": bool}`` (JSON,
kept in the review log as actions ``"proposal accepted"`` and ``"proposal rejected"``). ``ProposalRanker.fit``
trains a logistic regression (L2, on standardised features) on them; with fewer than ``MIN_DECISIONS`` records, or
only one of the two decisions among them, it ranks by the hand-made score as before and holds nothing back.

The features are what the queue already has, cheap to read off a proposal (``proposal_features``): its reason
(which fixes the kind), its hand-made score, its size, the model's probability and the green channel's
vesselness along its centre line, its width and its distance to the FOV's edge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

if TYPE_CHECKING:
    from .proofread import Proposal

# Fewer decisions than this, or only one kind of decision among them, and the hand-made score ranks. Measured with
# ``benchmarks/bench_correction.py ../shared/data/{drive,stare}/train --rank-study`` (leave one photo out; the area
# under the ROC curve of the photo's simulated decisions): a ranker learned from 20 random decisions of the other
# photos orders a photo better than the hand score on 2 of 20 DRIVE and 3 of 10 STARE training photos, from 50 on
# 8 of 20 and 5 of 10, from 200 on 12 of 20 and 4 of 10. Below 200 it is worse than the hand score more often
# than not on DRIVE; even at 200 not on STARE, where these features hardly separate the decisions.
MIN_DECISIONS = 200
# A proposal whose P(accepted) is below this is held back: not shown, counted. The same study, pooled over the
# left-out photos: on DRIVE train bars of 0.3 / 0.4 / 0.5 / 0.6 give a precision of 0.65 / 0.70 / 0.75 / 0.77 and keep
# 92 / 86 / 78 / 68 % of the right proposals; on STARE train 0.46 / 0.47 / 0.47 / 0.49, keeping 91 / 72 / 30 / 8 %.
# 0.5: a proposal under it is more likely wrong than right, and a wrong one costs the grader a look for nothing.
SHOW_BAR = 0.5
# The regression's L2 penalty on the standardised weights (the prior that no feature matters much).
L2 = 1.0

REASONS = ("break", "candidate", "low probability", "fragment", "spur")
FEATURES = (
    *(f"reason {r}" for r in REASONS),
    "score",
    "log length",  # px of centre line
    "log pixels",
    "width",  # pixels per px of centre line
    "probability mean",  # along the centre line
    "probability max",
    "probability min",
    "vesselness mean",
    "vesselness max",
    "fov distance",  # of the centroid to the FOV's edge, a share of the photo's shorter side (capped at 0.5)
)


@dataclass(frozen=True)
class FeatureMaps:
    """The per-image maps the features are read from, made once per queue."""

    probability: NDArray[np.float32]
    vesselness: NDArray[np.float32]
    fov_distance: NDArray[np.float32]  # px to the nearest pixel outside the FOV (or the image's edge)

    @classmethod
    def of(cls, probability: np.ndarray, vesselness: np.ndarray, fov: np.ndarray | None) -> FeatureMaps:
        inside = np.ones(probability.shape, np.uint8) if fov is None else np.asarray(fov, np.uint8)
        inside = np.pad(inside, 1)  # the image's edge is an edge too
        distance = np.asarray(cv2.distanceTransform(inside, cv2.DIST_L2, 3)[1:-1, 1:-1], np.float32)
        return cls(np.asarray(probability, np.float32), np.asarray(vesselness, np.float32), distance)


def proposal_features(p: Proposal, maps: FeatureMaps) -> dict[str, float]:
    """The features of ``p`` by name (``FEATURES``), JSON-ready."""
    line = p.centre_line
    if len(line) == 0:  # a proposal with no centre line: read its pixels instead
        ys, xs = np.nonzero(p.patch)
        line = np.stack([ys + p.bbox[0], xs + p.bbox[2]], axis=1)
    r, c = line[:, 0], line[:, 1]
    prob, vessel = maps.probability[r, c], maps.vesselness[r, c]
    x, y = p.centroid
    h, w = maps.fov_distance.shape
    edge = float(maps.fov_distance[min(int(y), h - 1), min(int(x), w - 1)]) / min(h, w)
    out = {f"reason {r_}": float(p.reason == r_) for r_ in REASONS}
    out.update(
        {
            "score": p.score,
            "log length": float(np.log1p(len(p.centre_line))),
            "log pixels": float(np.log1p(p.pixels)),
            "width": p.pixels / max(len(p.centre_line), 1),
            "probability mean": float(prob.mean()),
            "probability max": float(prob.max()),
            "probability min": float(prob.min()),
            "vesselness mean": float(vessel.mean()),
            "vesselness max": float(vessel.max()),
            "fov distance": min(edge, 0.5),
        }
    )
    return {k: round(v, 5) for k, v in out.items()}


def decision_record(features: Mapping[str, float], accepted: bool) -> dict[str, Any]:
    return {"features": dict(features), "accepted": bool(accepted)}


def _usable(records: Iterable[Mapping[str, Any]]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(X, y) of the records that carry every feature (older log rows carry none) and a decision."""
    rows, labels = [], []
    for rec in records:
        feats = rec.get("features")
        if not isinstance(feats, Mapping) or not isinstance(rec.get("accepted"), bool):
            continue
        try:
            rows.append([float(feats[name]) for name in FEATURES])
        except (KeyError, TypeError, ValueError):
            continue
        labels.append(float(rec["accepted"]))
    x = np.asarray(rows, np.float64).reshape(-1, len(FEATURES))
    ok = np.isfinite(x).all(axis=1)
    return x[ok], np.asarray(labels, np.float64)[ok]


def _loss(wb: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[float, np.ndarray]:
    """Mean log-loss plus the L2 penalty on the weights (not the bias), and its gradient."""
    z = x @ wb[:-1] + wb[-1]
    # log(1 + e^z) - y z, stable for large |z|
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z)) + 0.5 * L2 * float(wb[:-1] @ wb[:-1]) / len(y)
    err = (1.0 / (1.0 + np.exp(-z)) - y) / len(y)
    grad = np.append(x.T @ err + L2 * wb[:-1] / len(y), err.sum())
    return loss, grad


@dataclass(frozen=True)
class ProposalRanker:
    """P(accepted) of a proposal's features; ``learned`` False: too few decisions, the hand score ranks."""

    weights: NDArray[np.float64] | None = None  # per standardised feature, then the bias
    mean: NDArray[np.float64] | None = None
    scale: NDArray[np.float64] | None = None
    decisions: int = 0  # the records it learned from

    @property
    def learned(self) -> bool:
        return self.weights is not None

    @classmethod
    def fit(cls, records: Iterable[Mapping[str, Any]]) -> ProposalRanker:
        """Learn from decision records (``decision_record``); unlearned with too few of them or one class."""
        x, y = _usable(records)
        if len(y) < MIN_DECISIONS or y.min() == y.max():
            return cls(decisions=len(y))
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale < 1e-9] = 1.0  # a feature that never varies carries no weight
        xs = (x - mean) / scale
        res = minimize(_loss, np.zeros(len(FEATURES) + 1), args=(xs, y), jac=True, method="L-BFGS-B")
        return cls(np.asarray(res.x, np.float64), mean, scale, len(y))

    def probability(self, features: Sequence[Mapping[str, float]]) -> NDArray[np.float64]:
        """P(accepted) per feature dict; the hand-made score where nothing was learned."""
        x = np.asarray([[float(f[name]) for name in FEATURES] for f in features], np.float64)
        x = x.reshape(-1, len(FEATURES))
        if self.weights is None or self.mean is None or self.scale is None:
            return x[:, FEATURES.index("score")]
        z = ((x - self.mean) / self.scale) @ self.weights[:-1] + self.weights[-1]
        out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-z))
        return out

    def order(self, proposals: list[Proposal], features: Callable[[Proposal], Mapping[str, float]]) -> list[Proposal]:
        """``proposals`` surest first: by the hand-made score where nothing was learned; else by P(accepted) (set
        as their ``chance``), those under ``SHOW_BAR`` marked ``held_back`` and put last."""
        if not self.learned or not proposals:
            return sorted(proposals, key=lambda p: -p.score)
        chance = self.probability([features(p) for p in proposals])
        ranked = [
            replace(p, chance=float(c), held_back=bool(c < SHOW_BAR)) for p, c in zip(proposals, chance, strict=True)
        ]
        return sorted(ranked, key=lambda p: -(p.chance or 0.0))  # the held-back ones, under the bar, come last


def decisions_of_log(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The decision records among review-log rows (``"proposal accepted"`` / ``"proposal rejected"`` with
    features)."""
    actions = {"proposal accepted": True, "proposal rejected": False}
    out = []
    for r in rows:
        accepted = actions.get(str(r.get("action")))
        if accepted is not None and isinstance(r.get("features"), Mapping):
            out.append(decision_record(r["features"], accepted))
    return out
