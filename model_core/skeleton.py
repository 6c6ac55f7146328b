"""The one vessel geometry: a mask's skeleton and its graph of segments, junctions and ends.

clDice (``model_core.metrics``), the measurements (``model_core.morphometry``) and the app's vessel tools
(``retina_desktop.core.vessels.vessel_graph``: segment delete, the topology review) all take their geometry from
here, so the Measurements panel and the Segment and Topology tools count the same segments in one window.

- **Skeleton**: scikit-image's thinning (``skimage.morphology.skeletonize``: Zhang & Suen 1984, with a table
  that also removes staircase corners); outside the image is background.
- **Adjacency**: m-adjacency (Gonzalez & Woods): two skeleton pixels are neighbours when they are
  4-neighbours, or diagonal neighbours that share no 4-neighbour on the skeleton. It has no triangles, so
  every pixel along a thin curve has exactly two neighbours, whatever its staircase corners.
- **End**: a skeleton pixel with one neighbour.
- **Junction** (a branch point): a cluster of neighbouring skeleton pixels that each have three or more
  neighbours.
- **Segment**: a connected run of the other pixels (one or two neighbours each): from an end or a junction to
  an end or a junction, or a closed ring. It reaches into the junction pixels beside it: its length and
  chord are measured from them. A pixel without neighbours is noise: no segment, no end.

Everything is vectorised over the skeleton's pixels (tens of thousands), never over the image's millions
and never a Python loop per pixel: NumPy and SciPy's sparse graph routines rather than ``skan``, which took
0.29-0.85 s warm on a 3504x2336 skeleton and 8-18 s on its first call in each process while numba compiles
(``benchmarks/bench_vessel_tools.py``); this graph takes about 0.06 s (``benchmarks/bench_measure.py``).
The thinning is the slow part: 0.3-0.6 s of CPU on that size, well within the measurements' 1 s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .late_import import late_import

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Arc length (for tortuosity) is the length of a polygon through every ARC_STEP-th pixel of a segment (the
# vertices spread evenly along it, both ends kept). A local chain-code estimator cannot serve tortuosity:
# Kulpa's 0.948 (n_even + sqrt(2) n_odd) is unbiased only on average over orientations, and gives 0.948 for
# a horizontal or diagonal straight line, whose tortuosity must be exactly 1. A polygon through pixels
# ARC_STEP apart is within 1 / (2 ARC_STEP^2) = 0.5 % of the true length of a digital straight line at any
# angle (the pixels lie within half a pixel of the line) and underestimates a circle of radius r by about
# ARC_STEP^2 / (24 r^2) (0.2 % at r = 50); wiggles shorter than ARC_STEP pixels, which are digitisation
# noise at vessel scale, are ignored. Coeurjolly & Klette (2004) compare such estimators.
ARC_STEP = 10


def skeletonize(mask: NDArray[np.generic]) -> BoolArray:
    """The one-pixel-wide skeleton of a 2-D mask (scikit-image's thinning)."""
    # Imported on the first skeleton, not with every importer of model_core.metrics: scikit-image's morphology
    # takes about a third of a second to import.
    morphology = late_import("skimage.morphology")
    thin: Callable[[BoolArray], NDArray[np.generic]] = morphology.skeletonize  # scikit-image has no types
    binary = np.asarray(mask, np.bool_)
    if binary.ndim != 2:
        raise ValueError(f"a mask must be 2-D, not {binary.shape}")
    if not binary.any():
        return np.zeros(binary.shape, np.bool_)
    return np.asarray(thin(binary), np.bool_)


@dataclass(frozen=True)
class SkeletonGraph:
    """A skeleton as a graph (the module's definitions), held as arrays over its pixels.

    Pixel arrays are in raster order. Segments are numbered 1..segments and junctions 1..branch_points;
    ``label`` gives each pixel its segment k (> 0), its junction as -j (< 0), or 0 (a pixel without
    neighbours).
    """

    shape: tuple[int, int]
    rows: IntArray  # (n,) row of each skeleton pixel
    cols: IntArray  # (n,) column
    degree: IntArray  # (n,) neighbours under m-adjacency
    label: NDArray[np.int32]  # (n,)
    segment_junction: IntArray  # (p, 2) each (segment, junction) pair that touch, sorted, no repeats
    length: FloatArray  # (segments,) length along the skeleton: 1 per 4-step, sqrt(2) per diagonal step
    arc: FloatArray  # per open segment (loops, closed or from a junction back to it, are left out)
    chord: FloatArray

    @property
    def segments(self) -> int:
        return int(self.length.size)

    @property
    def branch_points(self) -> int:
        return int(-self.label.min()) if self.label.size and self.label.min() < 0 else 0

    @property
    def end_points(self) -> int:
        return int(np.count_nonzero(self.degree == 1))

    @property
    def tortuosity(self) -> float:
        """Arc-length-weighted mean of arc / chord over the open segments; NaN without any."""
        ok = self.chord > 0
        if not ok.any():
            return float("nan")
        arc, chord = self.arc[ok], self.chord[ok]
        return float(np.sum(arc * (arc / chord)) / np.sum(arc))

    def label_image(self) -> NDArray[np.int32]:
        """``label`` painted into an image of ``shape`` (0 off the skeleton)."""
        out = np.zeros(self.shape, np.int32)
        out[self.rows, self.cols] = self.label
        return out


def skeleton_graph(skel: NDArray[np.generic]) -> SkeletonGraph:
    """The graph of a skeleton (``skeletonize``'s result, or any one-pixel-wide mask)."""
    skel = np.asarray(skel, bool)
    if skel.ndim != 2:
        raise ValueError(f"a skeleton must be 2-D, not {skel.shape}")
    h, w = skel.shape
    pad = np.zeros((h + 2, w + 2), np.uint8)  # a border of background: no neighbour test leaves the array
    pad[1:-1, 1:-1] = skel
    return _graph(pad, np.flatnonzero(pad), (h, w))


def _m_edges(flat: NDArray[np.uint8], idx: IntArray, width: int) -> tuple[IntArray, IntArray, FloatArray]:
    """Edges of the m-adjacency graph as (from, to, step length), flat indices into the padded skeleton."""
    src, dst, step = [], [], []
    for off, blockers, length in (
        (1, (), 1.0),
        (width, (), 1.0),
        (width + 1, (1, width), math.sqrt(2)),
        (width - 1, (-1, width), math.sqrt(2)),
    ):
        ok = flat[idx + off] == 1
        for b in blockers:
            ok &= flat[idx + b] == 0
        a = idx[ok]
        src.append(a)
        dst.append(a + off)
        step.append(np.full(a.size, length))
    return np.concatenate(src), np.concatenate(dst), np.concatenate(step)


def _components(n: int, a: IntArray, b: IntArray) -> IntArray:
    """Connected-component label of each of ``n`` nodes joined by the edges (a, b)."""
    # scipy late: its 0.17 s import would sit on the window's start-up path.
    sparse, csgraph = late_import("scipy.sparse"), late_import("scipy.sparse.csgraph")
    adj = sparse.coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n))
    return np.asarray(csgraph.connected_components(adj, directed=False)[1], np.int64)


def _graph(pad: NDArray[np.uint8], idx: IntArray, shape: tuple[int, int]) -> SkeletonGraph:
    """skeleton_graph of a zero-bordered uint8 skeleton ``pad`` whose pixels are the flat indices ``idx``
    (sorted, so np.searchsorted maps a flat index to its node number)."""
    width = pad.shape[1]
    flat = pad.ravel()
    n = int(idx.size)
    rows, cols = np.divmod(idx, width)
    rows, cols = rows - 1, cols - 1
    empty_f = np.zeros(0, np.float64)
    if n == 0:
        empty_i = np.zeros(0, np.int64)
        return SkeletonGraph(
            shape,
            empty_i,
            empty_i,
            empty_i,
            np.zeros(0, np.int32),
            np.zeros((0, 2), np.int64),
            empty_f,
            empty_f,
            empty_f,
        )
    a, b, step = _m_edges(flat, idx, width)
    ia, ib = np.searchsorted(idx, a), np.searchsorted(idx, b)
    degree = (np.bincount(ia, minlength=n) + np.bincount(ib, minlength=n)).astype(np.int64)
    junction = degree >= 3
    inner = (degree == 1) | (degree == 2)

    # Junctions: clusters of junction pixels joined by their m-edges, numbered 1..J.
    jj = junction[ia] & junction[ib]
    jn = np.flatnonzero(junction)
    _, jlabels = np.unique(_components(n, ia[jj], ib[jj])[jn], return_inverse=True)
    junction_of = np.zeros(n, np.int64)
    junction_of[jn] = jlabels.ravel() + 1

    # Segment graph: inner pixels joined by their m-edges; each edge from an inner pixel to a junction pixel
    # ends in a private copy of that junction pixel, so the segments meeting at a junction stay apart and
    # each keeps the junction pixel as its end.
    both_inner = inner[ia] & inner[ib]
    to_junction_a = inner[ia] & junction[ib]  # ia is inner, ib the junction pixel
    to_junction_b = inner[ib] & junction[ia]
    attach_inner = np.concatenate([ia[to_junction_a], ib[to_junction_b]])
    attach_junction = np.concatenate([ib[to_junction_a], ia[to_junction_b]])
    copies = n + np.arange(attach_inner.size)
    total = n + int(copies.size)
    ga = np.concatenate([ia[both_inner], attach_inner])  # always an inner pixel
    gb = np.concatenate([ib[both_inner], copies])
    gstep = np.concatenate([step[both_inner], step[to_junction_a], step[to_junction_b]])
    node_pixel = np.concatenate([np.arange(n), attach_junction])  # the skeleton pixel each node stands on
    seg_nodes = np.concatenate([np.flatnonzero(inner), copies])
    comp = _components(total, ga, gb)
    _, dense = np.unique(comp[seg_nodes], return_inverse=True)
    segment_of = np.full(total, -1, np.int64)  # 0-based segment of each node in a segment
    segment_of[seg_nodes] = dense.ravel()
    segments = int(dense.max()) + 1 if dense.size else 0

    label = np.zeros(n, np.int32)
    label[inner] = segment_of[:n][inner] + 1
    label[jn] = -junction_of[jn]
    pairs = np.stack([segment_of[attach_inner] + 1, junction_of[attach_junction]], axis=1)
    segment_junction = np.unique(pairs, axis=0) if pairs.size else np.zeros((0, 2), np.int64)
    length = np.bincount(segment_of[ga], weights=gstep, minlength=segments).astype(np.float64)
    arc, chord = _arcs_and_chords(ga, gb, total, seg_nodes, segment_of, segments, node_pixel, junction_of, rows, cols)
    return SkeletonGraph(
        shape,
        rows.astype(np.int64),
        cols.astype(np.int64),
        degree,
        label,
        segment_junction.astype(np.int64),
        length,
        arc,
        chord,
    )


def _arcs_and_chords(
    ga: IntArray,
    gb: IntArray,
    total: int,
    seg_nodes: IntArray,
    segment_of: IntArray,
    segments: int,
    node_pixel: IntArray,
    junction_of: IntArray,
    rows: IntArray,
    cols: IntArray,
) -> tuple[FloatArray, FloatArray]:
    """Arc length (ARC_STEP polygon) and chord of each open segment of the segment graph (ga, gb), in
    segment order; closed rings and loops from a junction back to it are left out."""
    empty = np.zeros(0, np.float64)
    if segments == 0:
        return empty, empty
    # Order each open segment from one of its ends: hop distance from a virtual source joined to one end per
    # segment. Closed rings (no end) stay unreachable.
    seg_degree = np.bincount(ga, minlength=total) + np.bincount(gb, minlength=total)
    ends = seg_nodes[seg_degree[seg_nodes] == 1]
    first_end = np.full(segments, total, np.int64)
    np.minimum.at(first_end, segment_of[ends], ends)
    starts = first_end[first_end < total]
    source = total
    sa = np.concatenate([ga, np.full(starts.size, source)])
    sb = np.concatenate([gb, starts])
    sparse, csgraph = late_import("scipy.sparse"), late_import("scipy.sparse.csgraph")
    g2 = sparse.coo_matrix((np.ones(sa.size), (sa, sb)), shape=(total + 1, total + 1)).tocsr()
    hops = csgraph.shortest_path(g2, directed=False, unweighted=True, indices=source)
    reached = seg_nodes[np.isfinite(hops[seg_nodes])]
    if reached.size == 0:  # closed rings only
        return empty, empty
    order = reached[np.lexsort((hops[reached], segment_of[reached]))]
    seg_of = segment_of[order]
    pixel = node_pixel[order]
    y, x = rows[pixel].astype(np.float64), cols[pixel].astype(np.float64)
    # Per segment: its first node's position in the ordered arrays and its node count.
    starts_at = np.flatnonzero(np.r_[True, seg_of[1:] != seg_of[:-1]])
    count = np.diff(np.r_[starts_at, order.size])
    last = starts_at + count - 1
    chord = np.hypot(y[last] - y[starts_at], x[last] - x[starts_at])
    # A segment leaving a junction and coming back to it (the hole a crossing leaves in a mask) is a loop: its
    # chord says nothing about how the vessel winds.
    first_junction = junction_of[pixel[starts_at]]
    loop = (first_junction > 0) & (first_junction == junction_of[pixel[last]])
    # Polygon vertices: pieces + 1 ranks spread evenly over each segment's count - 1 steps.
    steps = count - 1
    pieces = np.maximum(1, np.rint(steps / ARC_STEP).astype(np.int64))
    vert_seg = np.repeat(np.arange(starts_at.size), pieces + 1)
    vert_i = np.arange(vert_seg.size) - np.repeat(np.cumsum(pieces + 1) - (pieces + 1), pieces + 1)
    rank = np.rint(vert_i * steps[vert_seg] / pieces[vert_seg]).astype(np.int64)
    vy, vx = y[starts_at[vert_seg] + rank], x[starts_at[vert_seg] + rank]
    same = vert_seg[1:] == vert_seg[:-1]
    piece_len = np.hypot(np.diff(vy), np.diff(vx))[same]
    arc = np.bincount(vert_seg[1:][same], weights=piece_len, minlength=starts_at.size)
    return arc[~loop].astype(np.float64), chord[~loop].astype(np.float64)
