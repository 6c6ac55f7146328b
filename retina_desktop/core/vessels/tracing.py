"""Trace a vessel between clicks: a minimal-cost path along the ridge of the vessel probability.

The cost of a pixel is ``1 / (eps + ridge)``. The ridge is the model's probability, smoothed a little
and weighted towards the centre of the predicted vessel (its distance transform), so a path keeps to
the middle of wide vessels. Where the model is unsure, a vesselness filter of the green channel
(``skimage.filters.sato``, dark ridges) carries the path on, so faint vessels the model missed can still
be traced. The cost map is computed once per image (``TraceCost.from_prediction``, a second or two for
a 3504x2336 photo: run it off the UI thread); each query then searches only a box around its two
points (``skimage.graph.MCP_Geometric``), so the live preview of a 300-px path takes milliseconds
(``benchmarks/bench_vessel_tools.py``).

Use from a UI (a few lines)::

    cost = TraceCost.from_prediction(probability, rgb, threshold=0.5)    # once per image
    tracer = Tracer(cost)
    tracer.click(x, y)                       # each click adds an anchor (snapped onto the ridge);
                                             # click(x, y, search=False) + tracer.search() in a worker
                                             # keeps a large photo's UI thread free
    points = tracer.preview(x, y)            # on mouse move: (n, 2) x, y of pixel centres to draw
    tracer.radius_offset += 0.5              # ']' / '[' adjust the width
    stroke = tracer.finish()                 # Enter / double-click; Esc: tracer.cancel()
    if stroke is not None:
        document.apply("Trace", stroke.paint)    # one undo step

Coordinates follow ``painting``: (x, y) with pixel (i, j) covering [j, j+1) x [i, i+1).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi
from skimage.graph import MCP_Geometric

from model_core.late_import import late_import

from ..painting import BBox, clip_bbox, paint_segment

# Where the prediction gives no width (a vessel the model missed) and there is no photo to measure one on,
# a 1-px vessel: 96 % of the missed pieces on DRIVE's training photos (67 % on STARE's) are 1 px wide in
# the reference. A radius of 1 painted them 3 px wide. With the photo, ``profile_radius`` measures it.
DEFAULT_RADIUS = 0.5
SNAP_FLOOR = 0.05  # the weakest ridge (probability or scaled vesselness) a click snaps onto


@dataclass
class TraceCost:
    """The per-image cost map plus what the width estimate needs."""

    cost: NDArray[np.float64]  # (H, W), > 0
    distance: NDArray[np.float32]  # (H, W): distance to the edge of the predicted vessel (0 outside)
    probability: NDArray[np.float32] | None = None
    eps: float = 0.1  # cost = 1 / (eps + ridge)
    green: NDArray[np.float32] | None = None  # the photo's green channel in [0, 1], for widths off the prediction

    @property
    def shape(self) -> tuple[int, int]:
        return self.cost.shape

    @classmethod
    def from_prediction(
        cls,
        probability: np.ndarray,
        rgb: np.ndarray | None = None,
        threshold: float = 0.5,
        vesselness_weight: float = 1.0,
        eps: float = 0.1,
        centre_reach: float = 6.0,
        fov: np.ndarray | None = None,
    ) -> TraceCost:
        prob = np.asarray(probability, dtype=np.float32)
        mask = prob >= threshold
        distance = np.asarray(cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5), dtype=np.float32)
        smooth = cv2.GaussianBlur(prob, (0, 0), 1.0)
        # Inside a vessel the probability is flat; the distance to its edge peaks on the centre line.
        centre = np.minimum(distance, centre_reach) / centre_reach
        ridge = smooth * (0.5 + 0.5 * centre)
        if rgb is not None and vesselness_weight > 0:
            ridge = np.maximum(ridge, vesselness_weight * green_vesselness(rgb, fov))
        cost = 1.0 / (eps + ridge.astype(np.float64))
        green = None if rgb is None else np.asarray(rgb)[..., 1].astype(np.float32) / 255.0
        return cls(cost, distance, prob, eps, green)

    # -- queries ---------------------------------------------------------------------------
    def route(self, p0: tuple[float, float], p1: tuple[float, float], margin: int | None = None) -> np.ndarray:
        """Cheapest 8-connected path from p0 to p1 (x, y), as (n, 2) x, y pixel centres.

        The search is limited to the box around both points plus ``margin`` (default: a third of their
        distance, at least 16 px), which keeps the search fast and the path near the straight line.
        """
        h, w = self.shape
        c0 = _to_cell(p0, (h, w))
        c1 = _to_cell(p1, (h, w))
        if c0 == c1:
            return np.array([[c0[1] + 0.5, c0[0] + 0.5]])
        if margin is None:
            margin = max(16, int(np.hypot(c0[0] - c1[0], c0[1] - c1[1]) / 3))
        box = _window(
            (
                min(c0[0], c1[0]) - margin,
                max(c0[0], c1[0]) + margin + 1,
                min(c0[1], c1[1]) - margin,
                max(c0[1], c1[1]) + margin + 1,
            ),
            (h, w),
        )
        y0, _, x0, _ = box
        sub = self.cost[box[0] : box[1], box[2] : box[3]]
        mcp = MCP_Geometric(sub, fully_connected=True)
        start, end = (c0[0] - y0, c0[1] - x0), (c1[0] - y0, c1[1] - x0)
        mcp.find_costs([start], [end], find_all_ends=True)
        path = np.asarray(mcp.traceback(end), dtype=np.float64)
        return np.stack([path[:, 1] + x0 + 0.5, path[:, 0] + y0 + 0.5], axis=1)

    def snap(self, p: tuple[float, float], radius: float = 3.0, floor: float = SNAP_FLOOR) -> tuple[float, float]:
        """The nearest ridge pixel within ``radius`` of ``p`` (x, y), as its centre: a click near a thin
        vessel lands on it, so the grader need not hit a 1-px line exactly.

        Outside the predicted vessels, the nearest ridge pixel wins, not the cheapest: a click on a faint
        vessel the model missed must stay on it rather than jump to a stronger vessel beside it (on DRIVE's
        missed vessels the cheapest pixel within 3 px moved an exact click more than 1 px away two times
        in three; the nearest ridge, 3 in 100). A ridge pixel is cheaper than both of its neighbours
        across some direction (a local minimum of the cost across a line) with a ridge of at least
        ``floor``. Inside a predicted vessel, and where no ridge is in reach, the cheapest pixel.
        """
        if radius <= 0:
            return p
        h, w = self.shape
        cy, cx = _to_cell(p, (h, w))
        r = int(np.ceil(radius))
        box = _window((cy - r, cy + r + 1, cx - r, cx + r + 1), (h, w))
        sub = self.cost[box[0] : box[1], box[2] : box[3]]
        yy, xx = np.mgrid[box[0] : box[1], box[2] : box[3]]
        dist = np.hypot(yy - cy, xx - cx)
        inside = dist <= radius
        # Inside a predicted vessel its centre line is the cheapest pixel; the nearest ridge there would
        # be a bump of the probability off the centre of a wide vessel.
        in_vessel = self.distance[cy, cx] > 0
        ridge = _ridge_pixels(self.cost, box) & (1.0 / sub - self.eps >= floor) & inside
        if ridge.any() and not in_vessel:
            # Among equally near ridge pixels, the cheapest.
            k = int(np.argmin(np.where(ridge, dist + 1e-3 * sub / sub.max(), np.inf)))
        else:
            # Among equally cheap pixels (along a vessel), the nearest.
            k = int(np.argmin(np.where(inside, sub * (1 + 0.01 * dist), np.inf)))
        y, x = np.unravel_index(k, sub.shape)
        return float(x + box[2]) + 0.5, float(y + box[0]) + 0.5

    def field(self, anchor: tuple[float, float], reach: int = 320) -> CostField:
        """All cheapest paths from ``anchor`` within ``reach`` px, so that each later mouse move only
        walks one path back (about a millisecond). Targets outside the window fall back to ``route``."""
        h, w = self.shape
        c = _to_cell(anchor, (h, w))
        box = _window((c[0] - reach, c[0] + reach + 1, c[1] - reach, c[1] + reach + 1), (h, w))
        mcp = MCP_Geometric(self.cost[box[0] : box[1], box[2] : box[3]], fully_connected=True)
        cum, _ = mcp.find_costs([(c[0] - box[0], c[1] - box[2])])
        return CostField(self, anchor, box, mcp, np.isfinite(cum))

    def local_radius(self, points: np.ndarray, default: float = DEFAULT_RADIUS) -> float:
        """Half the predicted vessel's width along the path (the median over the points that lie in it).

        A vessel of odd width w has a distance of (w + 1) / 2 on its centre line, and a stroke of radius
        w / 2 paints it. With fewer than a third of the points inside the prediction (the model saw no
        vessel there), the width is measured across the path on the green channel (``profile_radius``),
        or, without a photo, ``default``.
        """
        cells = _cells(points, self.shape)
        d = self.distance[cells[:, 0], cells[:, 1]]
        inside = d[d > 0]
        if inside.size < max(1, len(d) / 3):
            if self.green is not None:
                return profile_radius(self.green, points, default)
            return default
        return max(0.5, float(np.median(inside)) - 0.5)


@dataclass
class CostField:
    """Cheapest paths from one anchor (``TraceCost.field``)."""

    cost: TraceCost
    anchor: tuple[float, float]
    box: BBox
    mcp: MCP_Geometric
    reached: NDArray[np.bool_]  # the box's size: cells the search reached

    def path_to(self, p: tuple[float, float]) -> np.ndarray:
        """Path from the anchor to ``p`` (x, y) as (n, 2) x, y pixel centres."""
        y0, y1, x0, x1 = self.box
        cy, cx = _to_cell(p, self.cost.shape)
        if not (y0 <= cy < y1 and x0 <= cx < x1) or not self.reached[cy - y0, cx - x0]:
            return self.cost.route(self.anchor, p)
        path = np.asarray(self.mcp.traceback((cy - y0, cx - x0)), dtype=np.float64)
        return np.stack([path[:, 1] + x0 + 0.5, path[:, 0] + y0 + 0.5], axis=1)


@dataclass
class Stroke:
    """A rasterised trace: the polyline, its radius, and the pixels it covers (bbox + boolean patch)."""

    points: np.ndarray  # (n, 2) x, y
    radius: float
    bbox: BBox
    patch: NDArray[np.bool_]  # the bbox's size

    def paint(self, mask: np.ndarray, value: bool = True) -> BBox:
        """Set the stroke's pixels in ``mask`` (in place); an operation for ``MaskDocument.apply``."""
        y0, y1, x0, x1 = self.bbox
        if value:
            mask[y0:y1, x0:x1] |= self.patch
        else:
            mask[y0:y1, x0:x1] &= ~self.patch
        return self.bbox


def rasterise(points: np.ndarray, radius: float, shape: tuple[int, int]) -> Stroke | None:
    """The pixels a round brush of ``radius`` covers along the polyline ``points`` (x, y)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if pts.size == 0:
        return None
    pad = int(np.ceil(radius)) + 2
    box = clip_bbox(
        (
            int(np.floor(pts[:, 1].min())) - pad,
            int(np.ceil(pts[:, 1].max())) + pad + 1,
            int(np.floor(pts[:, 0].min())) - pad,
            int(np.ceil(pts[:, 0].max())) + pad + 1,
        ),
        shape,
    )
    if box is None:
        return None
    y0, y1, x0, x1 = box
    patch = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    local = pts - np.array([x0, y0])
    prev = local[0]
    paint_segment(patch, tuple(prev), tuple(prev), radius, True)
    for p in local[1:]:
        paint_segment(patch, tuple(prev), tuple(p), radius, True)
        prev = p
    return Stroke(pts, float(radius), box, patch)


def smooth_path(points: np.ndarray, window: int = 5) -> np.ndarray:
    """A moving average of an 8-connected pixel path (ends kept): the staircase of a diagonal becomes
    the straight line it stands for, so a stroke along it keeps its width at every angle."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3 or window < 2:
        return pts
    k = min(window, len(pts) if len(pts) % 2 else len(pts) - 1)
    half = k // 2
    padded = np.concatenate([np.repeat(pts[:1], half, axis=0), pts, np.repeat(pts[-1:], half, axis=0)])
    kernel = np.ones(k) / k
    out = np.stack([np.convolve(padded[:, i], kernel, mode="valid") for i in range(2)], axis=1)
    out[0], out[-1] = pts[0], pts[-1]
    return out


def path_stroke(path: np.ndarray, radius: float, shape: tuple[int, int]) -> Stroke | None:
    """The stroke that paints a traced 8-connected ``path`` (x, y pixel centres) at ``radius``.

    A 1-px vessel (radius 0.5) is painted as the traced pixels themselves: a round brush of 0.5 along
    the path's own polyline covers exactly them (the corner pixels of a diagonal step lie 0.71 px off).
    Wider strokes follow the smoothed path, so a staircase keeps its width at every angle; smoothed and
    painted back at 0.5 px, a curved path left a few of its pixels (4 of 216 on a sine) for others."""
    if radius <= 0.5:
        return rasterise(path, 0.5, shape)
    return rasterise(smooth_path(path), radius, shape)


def trace(cost: TraceCost, anchors: list[tuple[float, float]], radius: float | None = None) -> Stroke | None:
    """One stroke through all ``anchors`` (x, y) along the ridge; ``radius`` None: the local vessel width."""
    if not anchors:
        return None
    pts = [np.array([[anchors[0][0], anchors[0][1]]])]
    for a, b in itertools.pairwise(anchors):
        pts.append(cost.route(a, b)[1:])
    path = np.concatenate(pts)
    r = cost.local_radius(path) if radius is None else radius
    return path_stroke(path, r, cost.shape)


@dataclass
class Tracer:
    """The state of one trace gesture: anchors clicked so far, the live preview, the width offset.

    Each click searches the cheapest paths from the new anchor once (``TraceCost.field``: 0.2-0.6 s
    on a 3504x2336 photo here, ~10 ms on a DRIVE-sized one); mouse moves then only walk one path back
    (~2 ms). Until that search is done, a preview is a box search around the two points (~30-70 ms).
    """

    cost: TraceCost
    radius_offset: float = 0.0  # added to the automatic width ('[' / ']')
    reach: int = 320
    snap: float = 3.0  # px: a click this close to the ridge lands on it (0: exactly where clicked)
    anchors: list[tuple[float, float]] = field(default_factory=list)
    _committed: list[np.ndarray] = field(default_factory=list)
    _field: CostField | None = None

    def click(self, x: float, y: float, search: bool = True) -> None:
        """Add an anchor at (x, y), moved onto the ridge within ``snap`` px.

        ``search`` also finds the cheapest paths from it (``search()``); a UI that cannot spend that
        time on its thread passes False and runs ``search()`` in a worker: until it is done, previews
        use the slower box search.
        """
        x, y = self.cost.snap((x, y), self.snap)
        if self.anchors:
            self._committed.append(self._route_to((x, y))[1:])
        else:
            self._committed.append(np.array([[float(int(x)) + 0.5, float(int(y)) + 0.5]]))
        self.anchors.append((x, y))
        self._field = None
        if search:
            self.search()

    def search(self) -> CostField | None:
        """Cheapest paths from the last anchor (``TraceCost.field``); safe to run in a worker thread."""
        try:
            anchor = self.anchors[-1]
        except IndexError:  # cancelled on the UI thread meanwhile
            return None
        f = self.cost.field(anchor, self.reach)
        if self.anchors and self.anchors[-1] == anchor:  # not overtaken by another click meanwhile
            self._field = f
        return f

    def _route_to(self, p: tuple[float, float]) -> np.ndarray:
        f = self._field
        if f is not None and self.anchors and f.anchor == self.anchors[-1]:
            return f.path_to(p)
        return self.cost.route(self.anchors[-1], p)

    def path(self) -> np.ndarray:
        return np.concatenate(self._committed) if self._committed else np.zeros((0, 2))

    def preview(self, x: float, y: float) -> np.ndarray:
        """The committed path plus the route from the last anchor to (x, y); (n, 2) x, y."""
        if not self.anchors:
            return np.zeros((0, 2))
        return np.concatenate([self.path(), self._route_to(self.cost.snap((x, y), self.snap))[1:]])

    @property
    def radius(self) -> float:
        path = self.path()
        base = self.cost.local_radius(path) if len(path) else DEFAULT_RADIUS
        return max(0.5, base + self.radius_offset)

    def finish(self) -> Stroke | None:
        path = self.path()
        stroke = path_stroke(path, self.radius, self.cost.shape) if len(path) else None
        self.cancel()
        return stroke

    def cancel(self) -> None:
        self.anchors.clear()
        self._committed.clear()
        self._field = None


# The width of a vessel the model missed, read off the green channel across the path: at every
# PROFILE_STEP-th point, the profile along the normal (+-PROFILE_REACH px, 0.5-px samples, bilinear); the
# vessel is the dark dip around the centre, its width the run of samples darker than halfway between the
# dip's floor and the background (the median of the profile's outer thirds): the full width at half depth.
# The median over the points is the width; a profile with no dip of PROFILE_MIN_DEPTH (in [0, 1] units of
# green) gives none, and fewer than a third of the points with a dip give ``default``.
PROFILE_REACH = 6.0
PROFILE_STEP = 3
PROFILE_MIN_DEPTH = 0.01


def profile_radius(green: np.ndarray, points: np.ndarray, default: float = DEFAULT_RADIUS) -> float:
    """Half the width of the dark vessel along ``points`` (x, y pixel centres) in ``green`` ([0, 1]), in
    0.5-px steps: the full width at half depth of the profiles across the path (module comment above)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return default
    smooth = smooth_path(pts, 5)
    tangent = np.gradient(smooth, axis=0)
    norm = np.hypot(tangent[:, 0], tangent[:, 1])
    keep = np.arange(0, len(pts), PROFILE_STEP)
    keep = keep[norm[keep] > 1e-6]
    if keep.size == 0:
        return default
    t = tangent[keep] / norm[keep, None]
    normal = np.stack([-t[:, 1], t[:, 0]], axis=1)  # (x, y)
    offsets = np.arange(-PROFILE_REACH, PROFILE_REACH + 0.25, 0.5)
    # Sample positions (k, m, 2) in x, y; pixel centres are at +0.5.
    pos = pts[keep, None, :] + offsets[None, :, None] * normal[:, None, :] - 0.5
    prof = ndi.map_coordinates(green, [pos[..., 1].ravel(), pos[..., 0].ravel()], order=1, mode="nearest")
    prof = prof.reshape(len(keep), len(offsets))
    third = len(offsets) // 3
    background = np.median(np.concatenate([prof[:, :third], prof[:, -third:]], axis=1), axis=1)
    centre = len(offsets) // 2
    bottom = centre - 2 + np.argmin(prof[:, centre - 2 : centre + 3], axis=1)  # the dip within 1 px of the path
    depth = background - prof[np.arange(len(keep)), bottom]
    ok = depth >= PROFILE_MIN_DEPTH
    if ok.sum() < max(1, len(keep) / 3):
        return default
    dark = prof[ok] <= (background[ok] - depth[ok] / 2)[:, None]
    widths = []
    for row, start in zip(dark, bottom[ok], strict=True):
        lo = hi = int(start)
        while lo > 0 and row[lo - 1]:
            lo -= 1
        while hi < len(row) - 1 and row[hi + 1]:
            hi += 1
        widths.append((hi - lo) * 0.5)  # the span between the first and the last dark sample
    width = float(np.median(widths))
    return max(0.5, round(width) / 2)


def green_vesselness(
    rgb: np.ndarray, fov: np.ndarray | None = None, sigmas: tuple[float, ...] = (1.0, 2.0), max_side: int = 1200
) -> np.ndarray:
    """Sato tubeness of the (dark) vessels in the green channel, scaled to [0, 1] by its 99.5th percentile.

    Photos larger than ``max_side`` are filtered at that size and the result scaled back: at full
    3504x2336 the filter takes tens of seconds, at 1200 px about one.
    """
    sato = late_import("skimage.filters").sato  # imported here: only the cost map needs it

    green = np.asarray(rgb)[..., 1].astype(np.float32) / 255.0
    h, w = green.shape
    f = min(1.0, max_side / max(h, w))
    small = cv2.resize(green, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA) if f < 1 else green
    v: np.ndarray = np.asarray(sato(small, sigmas=sigmas, black_ridges=True), np.float32)
    if f < 1:
        v = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR)
    if fov is not None:
        # The FOV rim is a strong dark edge; its response is not a vessel.
        inner = ndi.binary_erosion(np.asarray(fov, bool), iterations=4)
        v[~inner] = 0
        ref = v[inner]
    else:
        ref = v
    scale = float(np.percentile(ref, 99.5)) if ref.size else 0.0
    return np.clip(v / scale, 0, 1) if scale > 0 else np.zeros_like(v)


def _ridge_pixels(cost: np.ndarray, box: BBox) -> np.ndarray:
    """Within ``box``: pixels cheaper than both neighbours across one of the four directions (equal to
    one and cheaper than the other counts; equal to both, a flat stretch, does not)."""
    y0, y1, x0, x1 = box
    h, w = cost.shape
    c = cost[max(y0 - 1, 0) : min(y1 + 1, h), max(x0 - 1, 0) : min(x1 + 1, w)]
    c = np.pad(
        c,
        (
            (1 - (y0 - max(y0 - 1, 0)), 1 - (min(y1 + 1, h) - y1)),
            (1 - (x0 - max(x0 - 1, 0)), 1 - (min(x1 + 1, w) - x1)),
        ),
        mode="edge",
    )
    mid = c[1:-1, 1:-1]
    out = np.zeros(mid.shape, bool)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = c[1 + dy : c.shape[0] - 1 + dy, 1 + dx : c.shape[1] - 1 + dx]
        b = c[1 - dy : c.shape[0] - 1 - dy, 1 - dx : c.shape[1] - 1 - dx]
        out |= (mid <= a) & (mid <= b) & ((mid < a) | (mid < b))
    return out


def _window(bbox: BBox, shape: tuple[int, int]) -> BBox:
    """``clip_bbox`` of a box around cells of the image (``_to_cell``), which is never empty."""
    box = clip_bbox(bbox, shape)
    assert box is not None
    return box


def _to_cell(p: tuple[float, float], shape: tuple[int, int]) -> tuple[int, int]:
    x, y = p
    return min(max(int(np.floor(y)), 0), shape[0] - 1), min(max(int(np.floor(x)), 0), shape[1] - 1)


def _cells(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    rows = np.clip(np.floor(pts[:, 1]).astype(int), 0, shape[0] - 1)
    cols = np.clip(np.floor(pts[:, 0]).astype(int), 0, shape[1] - 1)
    return np.stack([rows, cols], axis=1)
