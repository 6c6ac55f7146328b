"""Topology review: likely breaks, isolated fragments and short spurs of a vessel mask, each with a fix.

A *break* starts at a free end of the skeleton. It is found when, within ``max_gap`` px ahead of the
end (inside a cone of ``max_angle`` around the direction the vessel was going), lies the skeleton of
another vessel that does not already meet this one at a junction (and, with ``ridge_min`` > 0, the
mean probability along the gap reaches it: the model saw something there, below its threshold). The
fix is a trace between the two points along the ridge (``tracing``), at the vessels' width there.
A *fragment* is a connected piece under ``fragment_pixels`` that no break joins to anything: fix,
remove it. A *spur* is a segment from a junction to a free end shorter than ``spur_length`` (and at
least ``spur_min_length``: shorter ones are a pixel or two of edge noise that changes nothing): fix,
remove it (``VesselGraph.delete_segment``). Every finding can also be dismissed; ``Finding.key`` stays
the same when the review is run again after an unrelated edit, so a UI can keep its dismissed set.

Use from a UI (a few lines)::

    findings = review(document.mask, probability)        # after each edit, off the UI thread if slow
    f = findings[i]                                      # N / Shift+N: f.position is where to zoom
    document.apply(f.label, lambda m: apply_fix(f, m, cost))   # one click, one undo step
    dismissed.add(f.key)                                 # dismiss

The default parameters were chosen on the 20 DRIVE training photos (``benchmarks/bench_correction.py
../shared/data/drive/train --tune``: the best F1 of recall and precision on the bundled model's
predictions) and reported on the test sets; ``TopologyParams.scaled(f)`` scales the pixel lengths for
photos f times the size of DRIVE's (565x584).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ..painting import BBox, clip_bbox
from .tracing import TraceCost, rasterise, smooth_path
from .vessel_graph import EndPoint, VesselGraph

FindingKind = Literal["break", "fragment", "spur"]
FixKind = Literal["bridge", "remove"]
Point = tuple[float, float]  # (x, y)


@dataclass(frozen=True)
class TopologyParams:
    max_gap: float = 12.0  # px between a free end and the vessel it should join
    max_angle: float = 50.0  # degrees off the direction the vessel was going
    # Mean probability along the gap. 0 (off) scored best on DRIVE training photos: requiring 0.05
    # cost more recall (0.84 against 0.89) than it gained precision (0.57 against 0.55).
    ridge_min: float = 0.0
    fragment_pixels: int = 60  # pieces smaller than this, joined by no break, are fragments
    spur_length: float = 8.0  # px of skeleton from a junction to a free end
    # Shorter spurs are not marked: on 10 DRIVE and 10 STARE training photos, removing a spur under
    # 3 px took about one pixel and changed clDice by 1e-5 or less on average, and these 98 were a
    # third of the spur markers (a spur of 3-8 px: 3-8 pixels, a mean change 2 to 30 times larger).
    spur_min_length: float = 3.0

    def scaled(self, factor: float) -> TopologyParams:
        return replace(
            self,
            max_gap=self.max_gap * factor,
            spur_length=self.spur_length * factor,
            spur_min_length=self.spur_min_length * factor,
            fragment_pixels=round(self.fragment_pixels * factor * factor),
        )


@dataclass
class Finding:
    kind: FindingKind
    position: Point  # where the marker goes and the view zooms to
    fix: FixKind
    ends: tuple[Point, Point] | None = None  # bridge: trace from, to
    radius: float = 1.0  # bridge: the stroke's radius
    segment: int | None = None  # spur: the segment to delete
    region: tuple[BBox, NDArray[np.bool_]] | None = None  # fragment: its pixels (bbox, patch)
    score: float = 0.0  # smaller is surer (breaks: gap length)
    graph: VesselGraph | None = None
    gap: tuple[Point, Point] | None = None  # break: the skeleton ends

    @property
    def key(self) -> tuple[str, int, int]:
        return self.kind, round(self.position[0]), round(self.position[1])

    @property
    def label(self) -> str:
        return {"bridge": "Bridge break", "remove": f"Remove {self.kind}"}[self.fix]


def review(
    mask: np.ndarray,
    probability: np.ndarray | None = None,
    params: TopologyParams = TopologyParams(),
    graph: VesselGraph | None = None,
) -> list[Finding]:
    """Every finding on ``mask``: breaks first (shortest gap first), then fragments, then spurs."""
    mask = np.asarray(mask, dtype=bool)
    if graph is None:
        graph = VesselGraph.from_mask(mask)
    breaks = find_breaks(mask, graph, probability, params)
    return breaks + find_fragments(mask, breaks, params) + find_spurs(graph, params)


@dataclass(frozen=True)
class _Skeleton:
    """The skeleton pixels a break may reach: coordinates, their graph labels, and a k-d tree over them."""

    y: np.ndarray
    x: np.ndarray
    labels: np.ndarray
    tree: cKDTree


def _break_target(
    e: EndPoint, graph: VesselGraph, sk: _Skeleton, neighbours: dict[int, set[int]], max_gap: float, cos_max: float
) -> tuple[np.ndarray, float] | None:
    """The skeleton pixel an end's break most likely leads to, and its distance; None when there is none: the
    nearest pixel within ``max_gap`` ahead of the end (or within 2 px), on no segment the end already joins, with a
    little preference for straight on."""
    idx = sk.tree.query_ball_point(e.position, max_gap)
    if not idx:
        return None
    idx = np.asarray(idx)
    lab = sk.labels[idx]
    own = neighbours.get(e.segment, set()) | {e.segment}
    junctions_of_own = {-j for s in own for j in graph.segments[s].junctions} if own else set()
    keep = np.array(
        [
            lab_i == 0 or (lab_i > 0 and lab_i not in own) or (lab_i < 0 and lab_i not in junctions_of_own)
            for lab_i in lab
        ]
    )
    if not keep.any():
        return None
    idx = idx[keep]
    v = np.stack([sk.y[idx], sk.x[idx]], axis=1) - e.position
    d = np.hypot(v[:, 0], v[:, 1])
    cos = (v @ e.direction) / np.maximum(d, 1e-9)
    ok = (cos >= cos_max) | (d <= 2.0)
    if not ok.any():
        return None
    score = d / (0.5 + 0.5 * np.clip(cos, 0, 1))
    score[~ok] = np.inf
    k = int(np.argmin(score))
    return np.array([sk.y[idx[k]], sk.x[idx[k]]], dtype=float), float(d[k])


def _at_segment_end(graph: VesselGraph, target: np.ndarray) -> bool:
    """Whether the skeleton pixel ``target`` is (within 2 px of) the end of its segment."""
    t_label = int(graph.labels[int(target[0]), int(target[1])])
    t_seg = graph.segments.get(t_label)
    # A lone skeleton pixel is all the skeleton of its piece: as good as an end.
    return t_label == 0 or (
        t_seg is not None and len(t_seg.ends) > 0 and bool(np.hypot(*(t_seg.ends - target).T).min() <= 2)
    )


def _seen_from_other_end(found: Iterable[Finding], a: Point, b: Point) -> bool:
    """Whether the break from ``a`` to ``b`` is already among ``found``, seen from its other end: one there ends
    within 3 px of ``a`` or starts within 3 px of ``b``."""
    return any(
        f.gap is not None
        and min(np.hypot(f.gap[1][0] - a[0], f.gap[1][1] - a[1]), np.hypot(f.gap[0][0] - b[0], f.gap[0][1] - b[1])) <= 3
        for f in found
    )


def find_breaks(
    mask: np.ndarray, graph: VesselGraph, probability: np.ndarray | None, params: TopologyParams = TopologyParams()
) -> list[Finding]:
    """Likely breaks, shortest gap first; a break seen from both of its ends is reported once."""
    ends = graph.end_points()
    # Targets: the whole skeleton, with the lone pixels that are no segment (the skeleton of a dot) too.
    sk_y, sk_x = np.nonzero(graph.skeleton)
    if not ends or sk_y.size == 0:
        return []
    skeleton = _Skeleton(sk_y, sk_x, graph.labels[sk_y, sk_x], cKDTree(np.stack([sk_y, sk_x], axis=1)))
    neighbours = _segment_neighbours(graph)
    cos_max = np.cos(np.radians(params.max_angle))
    found: dict[tuple[tuple[int, int], ...], Finding] = {}
    for e in ends:
        if not e.direction.any():
            continue
        hit = _break_target(e, graph, skeleton, neighbours, params.max_gap, cos_max)
        if hit is None:
            continue
        target, distance = hit
        ridge = _gap_ridge(mask, probability, e.position, target)
        if ridge < params.ridge_min:
            continue
        a = (e.position[1] + 0.5, e.position[0] + 0.5)
        b = (target[1] + 0.5, target[0] + 0.5)
        radius = _bridge_radius(mask, graph.skeleton, e.position, target)
        # The bridge starts a little inside each vessel: a skeleton ends short of a cut face, and an
        # oblique cut leaves a flank that the centre line alone would not refill.
        back = 2 * radius + 2
        u = (target - e.position) / max(float(np.hypot(*(target - e.position))), 1e-9)
        a_in = _inside(mask, e.position - u * back, e.position)
        b_in = _inside(mask, target + u * back, target) if _at_segment_end(graph, target) else target
        key = tuple(sorted([(int(a[0]), int(a[1])), (int(b[0]), int(b[1]))]))
        if _seen_from_other_end(found.values(), a, b):
            continue  # the same break seen from its other end is one finding
        bridge = ((a_in[1] + 0.5, a_in[0] + 0.5), (b_in[1] + 0.5, b_in[0] + 0.5))
        found[key] = Finding(
            "break",
            ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2),
            "bridge",
            bridge,
            radius,
            score=distance,
            graph=graph,
            gap=(a, b),
        )
    return sorted(found.values(), key=lambda f: f.score)


def find_fragments(mask: np.ndarray, breaks: list[Finding], params: TopologyParams = TopologyParams()) -> list[Finding]:
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    joined: set[int] = set()
    for f in breaks:
        for x, y in f.gap or ():
            joined.add(int(labels[min(int(y), mask.shape[0] - 1), min(int(x), mask.shape[1] - 1)]))
    out: list[Finding] = []
    for i in range(1, n):
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area >= params.fragment_pixels or i in joined:
            continue
        x0, y0 = int(stats[i, cv2.CC_STAT_LEFT]), int(stats[i, cv2.CC_STAT_TOP])
        x1, y1 = x0 + int(stats[i, cv2.CC_STAT_WIDTH]), y0 + int(stats[i, cv2.CC_STAT_HEIGHT])
        patch = labels[y0:y1, x0:x1] == i
        cx, cy = centroids[i]
        out.append(
            Finding(
                "fragment",
                (float(cx) + 0.5, float(cy) + 0.5),
                "remove",
                region=((y0, y1, x0, x1), patch),
                score=float(area),
            )
        )
    return out


def find_spurs(graph: VesselGraph, params: TopologyParams = TopologyParams()) -> list[Finding]:
    out: list[Finding] = []
    for s in graph.segments.values():
        if len(s.junctions) == 1 and len(s.ends) >= 1 and params.spur_min_length <= s.length < params.spur_length:
            y, x = s.ends[0]
            out.append(
                Finding("spur", (float(x) + 0.5, float(y) + 0.5), "remove", segment=s.id, score=s.length, graph=graph)
            )
    return out


def apply_fix(finding: Finding, mask: np.ndarray, cost: TraceCost | None = None) -> BBox | None:
    """Apply ``finding``'s one-click fix to ``mask`` in place; an operation for ``MaskDocument.apply``.

    A bridge follows the probability ridge when ``cost`` is given, a straight line otherwise.
    """
    if finding.fix == "bridge":
        assert finding.ends is not None  # find_breaks gives every bridge its ends
        a, b = finding.ends
        if cost is not None:
            pts = cost.route(a, b)
        else:
            n = int(np.ceil(np.hypot(b[0] - a[0], b[1] - a[1]))) + 1
            pts = np.linspace(a, b, n)
        stroke = rasterise(smooth_path(pts), finding.radius, mask.shape)
        return stroke.paint(mask) if stroke is not None else None
    if finding.kind == "spur":
        assert finding.graph is not None and finding.segment is not None  # find_spurs sets both
        return finding.graph.delete_segment(mask, finding.segment)
    if finding.region is not None:
        (y0, y1, x0, x1), patch = finding.region
        mask[y0:y1, x0:x1] &= ~patch
        return y0, y1, x0, x1
    return None


def _segment_neighbours(graph: VesselGraph) -> dict[int, set[int]]:
    by_junction: dict[int, set[int]] = {}
    for s in graph.segments.values():
        for j in s.junctions:
            by_junction.setdefault(j, set()).add(s.id)
    out: dict[int, set[int]] = {}
    for segs in by_junction.values():
        for seg_id in segs:
            out.setdefault(seg_id, set()).update(segs - {seg_id})
    return out


def _gap_ridge(mask: np.ndarray, probability: np.ndarray | None, p: np.ndarray, q: np.ndarray) -> float:
    """Mean probability over the pixels of the straight gap p -> q (row, col) that are not vessel yet."""
    if probability is None:
        return 1.0
    n = int(np.ceil(np.hypot(*(q - p)))) + 1
    rr = np.clip(np.round(np.linspace(p[0], q[0], n)).astype(int), 0, mask.shape[0] - 1)
    cc = np.clip(np.round(np.linspace(p[1], q[1], n)).astype(int), 0, mask.shape[1] - 1)
    outside = ~mask[rr, cc]
    if not outside.any():
        return 1.0
    return float(np.asarray(probability)[rr[outside], cc[outside]].mean())


def _inside(mask: np.ndarray, p: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """``p`` (row, col) rounded, if it lies on the mask; else ``fallback``."""
    y, x = round(p[0]), round(p[1])
    if 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1] and mask[y, x]:
        return np.array([y, x], dtype=float)
    return fallback


def _bridge_radius(mask: np.ndarray, skeleton: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """Half the width of the thinner of the two vessels a gap separates, from the median distance to
    the vessel's edge along the skeleton within 8 px of each end (at the very end it tapers)."""
    radii: list[float] = []
    for y, x in (p, q):
        y, x = int(y), int(x)
        box = clip_bbox((y - 8, y + 9, x - 8, x + 9), mask.shape)
        assert box is not None  # a box around a pixel of the mask
        dt = ndi.distance_transform_edt(mask[box[0] : box[1], box[2] : box[3]])
        on = dt[skeleton[box[0] : box[1], box[2] : box[3]]]
        radii.append(float(np.median(on)) if on.size else float(dt[y - box[0], x - box[2]]))
    return max(0.5, min(radii) - 0.5)
