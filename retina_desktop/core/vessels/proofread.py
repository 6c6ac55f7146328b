"""Proofread: a queue of proposed fixes to a vessel mask, surest first, each accepted or rejected with one key.

Three kinds of proposal, each with the pixels it would add or remove, a score in [0, 1] (the app's
confidence; the queue is ordered by it) and the box a view shows it in:

- **bridge** a break: one proposal per break (``topology.find_breaks`` reports a break seen from both of its
  ends once), the path along the probability / tubeness ridge between the two ends (``TraceCost.route``),
  at the vessels' width there;
- **add** a candidate vessel piece: a ridge of the model's probability below the threshold, or of the
  green channel's multi-scale vesselness (``tracing.green_vesselness``), at least ``min_length`` px long,
  drawn along the cheapest path between its ends at the width measured across it on the green channel
  (``TraceCost.local_radius``, which falls back to ``tracing.profile_radius`` where the model saw no vessel);
- **remove** a spurious piece: a segment of low mean probability, an isolated fragment or a short spur.

The skeleton and its graph are the project's one vessel geometry (``model_core.skeleton`` via
``VesselGraph``). Candidates depend only on the photo and the prediction, so they are found once per image;
after an edit only the structural proposals (breaks, fragments, spurs, low-probability segments) are found
again and the candidates the mask now covers are dropped. On a 3504x2336 photo that update takes longer
than a frame (the mask's skeleton alone is 0.3-0.6 s; ``benchmarks/bench_vessel_tools.py``, figure
``proofread``), so it is meant to run in a worker: ``ProofreadQueue.compute`` is pure (it reads the queue's
fixed inputs and its rejections, writes nothing) and ``ProofreadQueue.replace`` installs its result on the
UI thread.

A rejected proposal stays rejected for that image: it is matched by kind and centroid (within
``REJECT_RADIUS`` px), so it does not come back when the queue is found again after an unrelated edit.
Rejections are kept as JSON-serialisable records (``ProofreadQueue.rejections``) for the caller to
persist, e.g. as review-log entries of action ``"proposal rejected"`` (``ReviewLog.add(key, action,
**record)``), and restored with ``ProofreadQueue.restore``. Records of accepts and rejects carry the proposal's
features: they are the training data of the ranking (``proposal_ranking``): a queue given a learned ``ranker``
orders by P(accepted) and holds back the proposals under its show-bar (``held_back``, counted).

Use from a UI (a few lines)::

    queue = ProofreadQueue(probability, rgb, fov, threshold)       # once per image
    queue.replace(queue.compute(document.mask))                    # in a worker after each edit
    p = queue.current()                                            # draw p.patch dashed, zoom to p.view
    queue.show(p)
    document.apply("Proofread", lambda m: queue.accept(p, m))      # Enter: one undo step
    log.add(image_key, "proposal rejected", **queue.reject(p))     # Backspace
    status = queue.counter()                                       # "12 of 40, 9 accepted"
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from model_core.skeleton import skeletonize

from ..painting import BBox
from .proposal_ranking import FeatureMaps, ProposalRanker, proposal_features
from .topology import Finding, TopologyParams, find_breaks, find_fragments, find_spurs
from .tracing import TraceCost, green_vesselness, path_stroke
from .vessel_graph import VesselGraph

ProposalKind = Literal["bridge", "add", "remove"]
BoolArray = NDArray[np.bool_]

# A rejection covers the proposals of its kind whose centroid lies this close to the rejected one's: an edit
# elsewhere moves a centroid by a pixel or so at most (the piece's own pixels do not change).
REJECT_RADIUS = 3.0
# The view shows the piece at about a third of its side, and never less than a sixth of the photo's shorter
# side (nor 48 px): a 2-px gap alone at 1,200 % zoom, as first tried on the demo, has no context.
MIN_VIEW = 48
MIN_VIEW_SHARE = 1 / 6


@dataclass(frozen=True)
class ProofreadParams:
    """What is proposed. The defaults were chosen on the DRIVE training photos (``benchmarks/
    bench_correction.py ../shared/data/drive/train``) and reported on the test sets."""

    topology: TopologyParams = field(default_factory=TopologyParams)
    # Candidate pixels: outside the mask, a probability of at least this, or a vesselness of at least
    # ``candidate_vesselness`` where the probability is at least ``candidate_support``.
    candidate_probability: float = 0.2
    candidate_vesselness: float = 0.35
    candidate_support: float = 0.05
    min_length: float = 10.0  # px of centre line: shorter candidates and segments are not proposed
    # Fragments smaller than this are specks, not proposed. Measured on 10 DRIVE and 10 STARE training photos
    # with the bundled model (isolated pieces of the prediction by area): 476 of 1-5 px and 134 of 6-11 px,
    # about half of them off the reference (dilated 1 px), but only 2 of those 610 with more than 10 px of
    # centre line, the least piece the grader fixes; of 12-30 px, 79 of 152 have more. Proposing the
    # specks would cost a look (M) each for a change the grader would not make.
    speck_pixels: int = 12
    low_probability: float = 0.6  # a segment whose mean probability along its centre line is below this
    min_score: float = 0.0  # proposals scoring below this are not shown

    def scaled(self, factor: float) -> ProofreadParams:
        return ProofreadParams(
            self.topology.scaled(factor),
            self.candidate_probability,
            self.candidate_vesselness,
            self.candidate_support,
            self.min_length * factor,
            round(self.speck_pixels * factor * factor),
            self.low_probability,
            self.min_score,
        )


@dataclass(frozen=True)
class Proposal:
    kind: ProposalKind
    reason: str  # "break", "candidate", "low probability", "fragment", "spur"
    bbox: BBox  # of ``patch``
    patch: BoolArray  # the pixels it adds (bridge, add) or removes (remove), within ``bbox``
    centre_line: NDArray[np.int64]  # (n, 2) row, col: the piece's centre line (what the grader checks)
    score: float  # the hand-made confidence in [0, 1]; the queue shows the highest first unless a ranker learned
    view: BBox  # the box a view zooms to: the piece fills about a third of it
    chance: float | None = None  # P(accepted) where a ranker learned it (``proposal_ranking``)
    held_back: bool = False  # its chance is below the show-bar: not shown, counted

    @property
    def centroid(self) -> tuple[float, float]:
        """(x, y) of the patch's pixels' centres."""
        ys, xs = np.nonzero(self.patch)
        return float(xs.mean()) + self.bbox[2] + 0.5, float(ys.mean()) + self.bbox[0] + 0.5

    @property
    def key(self) -> tuple[str, int, int]:
        x, y = self.centroid
        return self.kind, round(x), round(y)

    @property
    def pixels(self) -> int:
        return int(np.count_nonzero(self.patch))

    def apply(self, mask: np.ndarray) -> BBox:
        """Add or remove the proposal's pixels in ``mask`` in place; an operation for ``MaskDocument.apply``."""
        y0, y1, x0, x1 = self.bbox
        if self.kind == "remove":
            mask[y0:y1, x0:x1] &= ~self.patch
        else:
            mask[y0:y1, x0:x1] |= self.patch
        return self.bbox


def view_box(bbox: BBox, shape: tuple[int, int], share: float = 1 / 3, minimum: int | None = None) -> BBox:
    """A square box around ``bbox`` whose side is 1 / ``share`` times the piece's longer side (at least
    ``minimum``: by default a sixth of the photo's shorter side, and 48 px), moved inside the image where it fits."""
    y0, y1, x0, x1 = bbox
    if minimum is None:
        minimum = max(MIN_VIEW, round(min(shape) * MIN_VIEW_SHARE))
    side = int(min(max(minimum, np.ceil(max(y1 - y0, x1 - x0) / share)), max(shape)))
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    out = []
    for c, n in ((cy, shape[0]), (cx, shape[1])):
        s = min(side, n)
        lo = int(np.clip(round(c - s / 2), 0, n - s))
        out += [lo, lo + s]
    return out[0], out[1], out[2], out[3]


def _proposal(
    kind: ProposalKind,
    reason: str,
    bbox: BBox,
    patch: BoolArray,
    centre_line: np.ndarray,
    score: float,
    shape: tuple[int, int],
) -> Proposal | None:
    """A proposal of ``patch`` trimmed to its pixels; None when it has none."""
    ys, xs = np.nonzero(patch)
    if ys.size == 0:
        return None
    y0, x0 = bbox[0] + int(ys.min()), bbox[2] + int(xs.min())
    y1, x1 = bbox[0] + int(ys.max()) + 1, bbox[2] + int(xs.max()) + 1
    tight = patch[y0 - bbox[0] : y1 - bbox[0], x0 - bbox[2] : x1 - bbox[2]].copy()
    line = np.asarray(centre_line, np.int64).reshape(-1, 2)
    return Proposal(
        kind, reason, (y0, y1, x0, x1), tight, line, float(np.clip(score, 0, 1)), view_box((y0, y1, x0, x1), shape)
    )


def _path_cells(path: np.ndarray, shape: tuple[int, int]) -> NDArray[np.int64]:
    """(n, 2) row, col of the cells an (x, y) path of pixel centres passes through, without repeats."""
    rows = np.clip(np.floor(path[:, 1]).astype(np.int64), 0, shape[0] - 1)
    cols = np.clip(np.floor(path[:, 0]).astype(np.int64), 0, shape[1] - 1)
    cells = np.stack([rows, cols], axis=1)
    _, first = np.unique(cells, axis=0, return_index=True)
    return cells[np.sort(first)]


@dataclass
class _Candidate:
    """A candidate vessel piece, found once per image: its centre line and the stroke along it."""

    line: NDArray[np.int64]  # (n, 2) row, col
    bbox: BBox
    patch: BoolArray
    score: float


@dataclass
class ProofreadQueue:
    """The proposals for one image, the grader's decisions on them, and the counters."""

    probability: NDArray[np.float32]
    rgb: np.ndarray | None = None
    fov: np.ndarray | None = None
    threshold: float = 0.5
    params: ProofreadParams = field(default_factory=ProofreadParams)
    cost: TraceCost | None = None
    proposals: list[Proposal] = field(default_factory=list)
    accepted: int = 0
    # Learned from the workspace's decisions (``ProposalRanker.fit``); unlearned, the hand-made score ranks.
    ranker: ProposalRanker = field(default_factory=ProposalRanker)
    held_back: list[Proposal] = field(default_factory=list)  # of the installed queue, not shown
    show_held_back: bool = False  # the grader asked to see them too: listed after the others, least likely last
    _maps: FeatureMaps | None = None
    _rejected: list[dict[str, Any]] = field(default_factory=list)
    _shown: set[tuple[str, int, int]] = field(default_factory=set)
    # The proposal the grader went to in the list (N, or a row of the Topology panel); None: the surest.
    _chosen: tuple[str, int, int] | None = None
    _candidates: list[_Candidate] | None = None
    _vessel_cache: NDArray[np.float32] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.probability = np.asarray(self.probability, np.float32)
        if self.cost is None:
            self.cost = TraceCost.from_prediction(self.probability, self.rgb, self.threshold, fov=self.fov)

    @property
    def trace_cost(self) -> TraceCost:
        assert self.cost is not None  # set in __post_init__
        return self.cost

    # -- finding ---------------------------------------------------------------------------
    def compute(self, mask: np.ndarray, graph: VesselGraph | None = None) -> list[Proposal]:
        """Every proposal on ``mask`` that is not rejected and scores at least ``min_score``, surest first (by
        ``ranker``: the held-back ones last). Safe to run in a worker: it changes nothing but per-image caches."""
        mask = np.asarray(mask, bool)
        if graph is None:
            graph = VesselGraph.from_mask(mask)
        breaks = find_breaks(mask, graph, self.probability, self.params.topology)
        found = self._bridges(mask, breaks) + self._removals(mask, graph, breaks)
        found += self._candidate_proposals(mask, found)
        keep = [p for p in found if p.score >= self.params.min_score and not self.is_rejected(p)]
        self._feature_maps()  # made here, in the worker: the decision records read them on the UI thread
        return self.ranker.order(keep, self.features)

    def features(self, p: Proposal) -> dict[str, float]:
        """``p``'s features for the ranking (``proposal_features``)."""
        return proposal_features(p, self._feature_maps())

    def _feature_maps(self) -> FeatureMaps:
        if self._maps is None:  # 70 ms on a 3504x2336 photo, once per image
            self._maps = FeatureMaps.of(self.probability, self._vesselness(), self.fov)
        return self._maps

    def _bridges(self, mask: BoolArray, breaks: list[Finding]) -> list[Proposal]:
        out = []
        gap_max = self.params.topology.max_gap
        for f in breaks:
            assert f.ends is not None  # every break has its bridge's ends
            path = self.trace_cost.route(*f.ends)
            stroke = path_stroke(path, f.radius, mask.shape)
            if stroke is None:
                continue
            y0, y1, x0, x1 = stroke.bbox
            patch = stroke.patch & ~mask[y0:y1, x0:x1]
            cells = _path_cells(path, mask.shape)
            outside = ~mask[cells[:, 0], cells[:, 1]]
            ridge = float(self._ridge(cells[outside]).mean()) if outside.any() else 1.0
            # A short gap along a visible ridge is the surest fix in the queue.
            score = 0.5 + 0.25 * (1 - min(f.score, gap_max) / gap_max) + 0.25 * ridge
            p = _proposal("bridge", "break", stroke.bbox, patch, cells[outside], score, mask.shape)
            if p is not None:
                out.append(p)
        return out

    def _removals(self, mask: BoolArray, graph: VesselGraph, breaks: list[Finding]) -> list[Proposal]:
        params = self.params
        out: list[Proposal] = []
        for f in find_fragments(mask, breaks, params.topology):
            assert f.region is not None  # a fragment carries its pixels
            box, patch = f.region
            if np.count_nonzero(patch) < params.speck_pixels:
                continue
            prob = self.probability[box[0] : box[1], box[2] : box[3]][patch]
            line = np.argwhere(skeletonize(patch)) + np.array([box[0], box[2]])
            p = _proposal("remove", "fragment", box, patch, line, 1 - float(prob.mean()), mask.shape)
            if p is not None:
                out.append(p)
        # A fragment is one proposal, not also one per low-probability segment of it.
        fragments = np.zeros(mask.shape, bool)
        for p in out:
            fragments[p.bbox[0] : p.bbox[1], p.bbox[2] : p.bbox[3]] |= p.patch
        spurs = {f.segment for f in find_spurs(graph, params.topology)}
        for seg in graph.segments.values():
            if fragments[seg.pixels[0, 0], seg.pixels[0, 1]]:
                continue
            mean = float(self.probability[seg.pixels[:, 0], seg.pixels[:, 1]].mean())
            low = seg.length >= params.min_length and mean < params.low_probability
            if seg.id not in spurs and not low:
                continue
            territory = graph.segment_territory(mask, seg.id)
            if territory is None:
                continue
            reason = "spur" if seg.id in spurs else "low probability"
            score = 1 - mean if reason == "low probability" else 0.6 * (1 - mean)
            q = _proposal("remove", reason, territory[0], territory[1], seg.pixels, score, mask.shape)
            if q is not None:
                out.append(q)
        return out

    def _ridge(self, cells: np.ndarray) -> NDArray[np.float64]:
        """The ridge under ``cells`` (row, col): probability relative to the threshold, or vesselness."""
        r, c = cells[:, 0], cells[:, 1]
        prob = np.minimum(self.probability[r, c] / max(self.threshold, 1e-6), 1.0)
        out: NDArray[np.float64] = np.maximum(prob, self._vesselness()[r, c]).astype(np.float64)
        return out

    # -- candidates ------------------------------------------------------------------------
    def _vesselness(self) -> NDArray[np.float32]:
        if self._vessel_cache is None:
            if self.rgb is None:
                self._vessel_cache = np.zeros(self.probability.shape, np.float32)
            else:
                self._vessel_cache = np.asarray(green_vesselness(self.rgb, self.fov), np.float32)
        return self._vessel_cache

    def candidates(self, mask: np.ndarray) -> list[_Candidate]:
        """The candidate vessel pieces of this image (found on the first call, from its ``mask``)."""
        with self._lock:
            if self._candidates is None:
                self._candidates = self._find_candidates(np.asarray(mask, bool))
            return self._candidates

    @property
    def vesselness(self) -> NDArray[np.float32]:
        """The green channel's multi-scale vesselness in [0, 1] (found on first use; zeros without a photo)."""
        return self._vesselness()

    def signal(self) -> BoolArray:
        """The pixels a candidate vessel piece may run through: below the threshold, a probability of at least
        ``candidate_probability``, or a vesselness of at least ``candidate_vesselness`` where the probability is
        at least ``candidate_support``; inside the FOV. Nothing outside it can ever be proposed as a vessel."""
        params = self.params
        prob = self.probability
        weak = (prob >= params.candidate_probability) & (prob < self.threshold)
        weak |= (self._vesselness() >= params.candidate_vesselness) & (prob >= params.candidate_support)
        if self.fov is not None:
            weak &= np.asarray(self.fov, bool)
        out: BoolArray = weak
        return out

    def _find_candidates(self, mask: BoolArray) -> list[_Candidate]:
        params = self.params
        weak = self.signal()
        near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        weak &= ~near
        graph = VesselGraph.from_skeleton(skeletonize(weak))
        out = []
        for seg in graph.segments.values():
            if seg.length < params.min_length:
                continue
            c = self._candidate(seg.pixels, mask.shape)
            if c is not None:
                out.append(c)
        return out

    def _candidate(self, pixels: NDArray[np.int64], shape: tuple[int, int]) -> _Candidate | None:
        """The stroke along a candidate segment's skeleton ``pixels``: the cheapest path between its two
        farthest pixels, at the width measured across it."""
        d0 = np.hypot(*(pixels - pixels[0]).T)
        a = pixels[int(np.argmax(d0))]
        b = pixels[int(np.argmax(np.hypot(*(pixels - a).T)))]
        cost = self.trace_cost
        path = cost.route((a[1] + 0.5, a[0] + 0.5), (b[1] + 0.5, b[0] + 0.5))
        stroke = path_stroke(path, cost.local_radius(path), shape)
        if stroke is None:
            return None
        cells = _path_cells(path, shape)
        return _Candidate(cells, stroke.bbox, stroke.patch, float(self._ridge(cells).mean()))

    def _candidate_proposals(self, mask: BoolArray, found: list[Proposal]) -> list[Proposal]:
        """The candidates the mask does not cover yet and no bridge already proposes."""
        claimed = np.zeros(mask.shape, bool)
        for p in found:
            if p.kind == "bridge":
                y0, y1, x0, x1 = p.bbox
                claimed[y0:y1, x0:x1] |= p.patch
        out = []
        for c in self.candidates(mask):
            r, col = c.line[:, 0], c.line[:, 1]
            free = ~mask[r, col] & ~claimed[r, col]
            if free.sum() < self.params.min_length:
                continue
            y0, y1, x0, x1 = c.bbox
            patch = c.patch & ~mask[y0:y1, x0:x1]
            q = _proposal("add", "candidate", c.bbox, patch, c.line[free], c.score, mask.shape)
            if q is not None:
                out.append(q)
        return out

    # -- deciding --------------------------------------------------------------------------
    def replace(self, proposals: list[Proposal]) -> None:
        """Install a ``compute`` result (on the thread that owns the queue), dropping what was rejected
        meanwhile."""
        self.proposals = [p for p in proposals if not self.is_rejected(p) and not p.held_back]
        self.held_back = [p for p in proposals if p.held_back and not self.is_rejected(p)]
        if self.show_held_back:  # nothing is hidden from a grader who asks
            self.proposals, self.held_back = self.proposals + self.held_back, []

    def current(self) -> Proposal | None:
        """The proposal the grader went to, while it is still proposed; otherwise the surest one."""
        for p in self.proposals:
            if p.key == self._chosen:
                return p
        return self.proposals[0] if self.proposals else None

    def index(self) -> int:
        """Where ``current()`` stands in ``proposals`` (-1 when there is none)."""
        p = self.current()
        return self.proposals.index(p) if p is not None else -1

    def choose(self, index: int) -> Proposal | None:
        """Go to ``proposals[index]`` (a skipped one included); it stays current while it is proposed."""
        if not 0 <= index < len(self.proposals):
            return self.current()
        self._chosen = self.proposals[index].key
        return self.proposals[index]

    def step(self, step: int) -> Proposal | None:
        """Skip to the next (``+1``) or previous (``-1``) proposal, round the list, deciding nothing."""
        if not self.proposals:
            return None
        return self.choose((self.index() + step) % len(self.proposals))

    def _decided(self, p: Proposal, remaining: list[Proposal]) -> None:
        """After ``p`` is decided the list goes on from where it stood: the proposal that followed it (the surest
        one when ``p`` was the surest, as before any skipping)."""
        was_current = p is self.current()
        i = self.proposals.index(p) if p in self.proposals else 0
        self.proposals = remaining
        if not was_current:  # decided from elsewhere (a script): the grader's place in the list stays
            return
        following = remaining[min(i, len(remaining) - 1)] if remaining else None
        self._chosen = following.key if following is not None and i > 0 else None

    def show(self, p: Proposal) -> None:
        """Count ``p`` as looked at (the "shown" counter counts each proposal once)."""
        self._shown.add(p.key)

    @property
    def shown(self) -> int:
        return len(self._shown)

    def accept(self, p: Proposal, mask: np.ndarray) -> BBox:
        """Apply ``p`` to ``mask`` in place (wrap in ``MaskDocument.apply``: one undo step) and count it."""
        self.show(p)
        self.accepted += 1
        self._decided(p, [q for q in self.proposals if q is not p])
        return p.apply(mask)

    def record(self, p: Proposal, accepted: bool, **extra: Any) -> dict[str, Any]:
        """The JSON-serialisable record of a decision on ``p``, its features included (a decision record for
        ``ProposalRanker.fit``)."""
        x, y = p.centroid
        where = {"x": round(x, 1), "y": round(y, 1), "score": round(p.score, 4), "pixels": p.pixels}
        return {"kind": p.kind, "reason": p.reason, **where, "bbox": list(p.bbox), "accepted": accepted,
                "features": self.features(p), **extra}  # fmt: skip

    def reject(self, p: Proposal, **extra: Any) -> dict[str, Any]:
        """Reject ``p`` for this image; returns the JSON-serialisable record the caller persists."""
        self.show(p)
        record = self.record(p, False, **extra)
        self._rejected.append(record)
        self._decided(p, [q for q in self.proposals if q is not p and not self.is_rejected(q)])
        return record

    def is_rejected(self, p: Proposal) -> bool:
        x, y = p.centroid
        return any(r["kind"] == p.kind and np.hypot(r["x"] - x, r["y"] - y) <= REJECT_RADIUS for r in self._rejected)

    @property
    def rejections(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rejected]

    def restore(self, records: list[dict[str, Any]]) -> None:
        """Take back the rejections persisted for this image (``rejections`` records)."""
        for r in records:
            if {"kind", "x", "y"} <= r.keys():
                self._rejected.append(dict(r))
        self.proposals = [p for p in self.proposals if not self.is_rejected(p)]

    def counter(self) -> str:
        """E.g. "12 of 40, 9 accepted, 5 held back": proposals looked at, of all there were to show, accepted, and
        not shown for a learned chance below the show-bar."""
        total = self.shown + sum(p.key not in self._shown for p in self.proposals)
        held = f", {len(self.held_back)} held back" if self.held_back else ""
        return f"{self.shown} of {total}, {self.accepted} accepted{held}"
