"""Bifurcations and crossings of a vessel skeleton: which segments meeting at a junction are one vessel.

The thinning (``model_core.skeleton``) turns a crossing of two vessels into two 3-way junctions a few pixels
apart joined by a short "bridge" segment, or into one 4-way junction; it also leaves spurs (short dead ends at
a vessel's edge) and tiny links between junction clusters. Labels carried blindly through junctions therefore
run from an artery into the vein it crosses. ``junction_links`` rebuilds the vessel-level structure:

1. **Arms and directions**: each (segment, junction) pair is an arm; its direction is the mean offset from the
   junction's centre of the segment's pixels within ARM_RADIUS_WIDTHS widths (at least ARM_RADIUS_MIN px) of it.
2. **Spurs**: a dead-end segment no longer than the widest other vessel at its junction (at least SPUR_MIN px)
   is dropped. **Tiny links**: a segment between two junctions of at most TINY_LINK_PX px (or half the widest
   vessel there) joins them into one node.
3. **Bridges**: a segment between two nodes of three arms each, no longer than BRIDGE_WIDTHS times the widest
   of the other four arms, is a crossing's bridge when the four arms pair off across it into two straight
   lines (each pair's directions at more than ~134 degrees: cosine below STRAIGHT_COS); the two nodes become
   one.
4. **Links** per node: two arms continue (``CONTINUES``); at three arms (a bifurcation, or a crossing whose
   fourth arm is missing from the mask) the straightest pair is ``STRAIGHT``, the next ``SIDE``, and the most
   bent pair (the two children of a bifurcation, or the crossing vessel's side) is left unlinked: the parent
   links them; at four arms that pair into two straight lines (a crossing), each line's arms are
   ``CROSS_THROUGH`` and arms of different lines ``CROSS_OVER`` (arteries cross veins); four arms otherwise
   are ``FOUR_WAY``; five or more arms (the disc's knots) are left unlinked.

Everything but a loop over the junctions (hundreds on a DRIVE photo) is vectorised.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .skeleton import SkeletonGraph

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

CONTINUES, STRAIGHT, SIDE, CROSS_THROUGH, CROSS_OVER, FOUR_WAY = range(6)
KIND_NAMES = ("continues", "straight", "side", "cross_through", "cross_over", "four_way")
ARM_RADIUS_WIDTHS = 3.0
ARM_RADIUS_MIN = 6.0
SPUR_MIN = 3.0
TINY_LINK_PX = 3.0
BRIDGE_WIDTHS = 2.5
STRAIGHT_COS = -0.7


@dataclass(frozen=True)
class JunctionLinks:
    """Links between segments (a[i], b[i]) of ``kind[i]``; ``dropped`` marks the segments that are spurs,
    bridges or tiny links (index by segment number, 0 unused)."""

    a: IntArray
    b: IntArray
    kind: IntArray
    dropped: NDArray[np.bool_]


def arm_directions(graph: SkeletonGraph, width: FloatArray) -> tuple[IntArray, FloatArray]:
    """The unique (segment, junction) pairs and each one's unit direction (dx, dy) away from the junction.
    ``width``: per segment (index 0 unused)."""
    pairs = graph.segment_junction
    if pairs.size == 0:
        return pairs, np.zeros((0, 2))
    m = graph.branch_points + 1
    jpix = graph.label < 0
    jid = -graph.label[jpix]
    count = np.maximum(np.bincount(jid, minlength=m), 1)
    jy = np.bincount(jid, weights=graph.rows[jpix], minlength=m) / count
    jx = np.bincount(jid, weights=graph.cols[jpix], minlength=m) / count
    n = graph.segments + 1
    # pairs are sorted by segment: each segment's first and (if any) second pair
    first = np.full(n, -1, np.int64)
    second = np.full(n, -1, np.int64)
    idx = np.arange(pairs.shape[0])
    seg = pairs[:, 0]
    is_first = np.r_[True, seg[1:] != seg[:-1]]
    first[seg[is_first]] = idx[is_first]
    later = ~is_first
    second[seg[later]] = idx[later]  # a segment touches at most two junctions
    on = graph.label > 0
    k = graph.label[on].astype(np.int64)
    y, x = graph.rows[on].astype(np.float64), graph.cols[on].astype(np.float64)
    p1 = first[k]
    has = p1 >= 0
    k, y, x, p1 = k[has], y[has], x[has], p1[has]
    j1 = pairs[p1, 1]
    d1 = np.hypot(y - jy[j1], x - jx[j1])
    p2 = second[k]
    j2 = pairs[np.maximum(p2, 0), 1]
    d2 = np.where(p2 >= 0, np.hypot(y - jy[j2], x - jx[j2]), np.inf)
    use_second = d2 < d1
    pair = np.where(use_second, p2, p1)
    dist = np.where(use_second, d2, d1)
    radius = np.maximum(ARM_RADIUS_MIN, ARM_RADIUS_WIDTHS * width[k])
    keep = dist <= radius
    j = pairs[pair, 1]
    dx, dy = x - jx[j], y - jy[j]
    p = pairs.shape[0]
    sx = np.bincount(pair[keep], weights=dx[keep], minlength=p)
    sy = np.bincount(pair[keep], weights=dy[keep], minlength=p)
    # an arm with no pixel within the radius (a junction's own neighbours only): all its pixels
    empty = np.bincount(pair[keep], minlength=p) == 0
    if empty.any():
        sx = np.where(empty, np.bincount(pair, weights=dx, minlength=p), sx)
        sy = np.where(empty, np.bincount(pair, weights=dy, minlength=p), sy)
    norm = np.maximum(np.hypot(sx, sy), 1e-9)
    return pairs, np.stack([sx / norm, sy / norm], axis=1)


def junction_links(graph: SkeletonGraph, width: FloatArray) -> JunctionLinks:
    """The module's links between the segments of ``graph``; ``width`` per segment (index 0 unused)."""
    n, m = graph.segments + 1, graph.branch_points + 1
    pairs, direction = arm_directions(graph, width)
    dropped = np.zeros(n, np.bool_)
    empty = np.zeros(0, np.int64)
    if pairs.size == 0:
        return JunctionLinks(empty, empty, empty, dropped)
    length = np.r_[0.0, graph.length]
    seg_pix = np.maximum(graph.label, 0)
    has_end = np.bincount(seg_pix, weights=(graph.degree == 1), minlength=n) > 0
    arms: dict[int, list[int]] = {}  # junction -> pair indices
    of_segment: dict[int, list[int]] = {}
    for i, (k, j) in enumerate(pairs.tolist()):
        arms.setdefault(j, []).append(i)
        of_segment.setdefault(k, []).append(j)
    parent = list(range(m))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def widest(j: int, but: int) -> float:
        return max((float(width[pairs[i, 0]]) for i in arms[j] if pairs[i, 0] != but), default=1.0)

    for k, js in of_segment.items():
        if len(js) == 1 and has_end[k] and length[k] <= max(SPUR_MIN, widest(js[0], k)):
            dropped[k] = True
        elif len(js) == 2 and length[k] <= max(TINY_LINK_PX, 0.5 * max(widest(js[0], k), widest(js[1], k))):
            dropped[k] = True
            parent[find(js[0])] = find(js[1])

    def node_arms() -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for j, members in arms.items():
            out.setdefault(find(j), []).extend(i for i in members if not dropped[pairs[i, 0]])
        for root, members in out.items():  # a segment with both ends in one node is a loop: no arm
            segs = [int(pairs[i, 0]) for i in members]
            out[root] = [i for i, s in zip(members, segs, strict=True) if segs.count(s) == 1]
        return out

    nodes = node_arms()
    for k, js in of_segment.items():
        if dropped[k] or len(js) != 2:
            continue
        r1, r2 = find(js[0]), find(js[1])
        if r1 == r2:
            continue
        a = [i for i in nodes.get(r1, []) if pairs[i, 0] != k]
        b = [i for i in nodes.get(r2, []) if pairs[i, 0] != k]
        if len(a) != 2 or len(b) != 2 or length[k] > BRIDGE_WIDTHS * max(width[pairs[i, 0]] for i in a + b):
            continue
        da, db = direction[a], direction[b]
        if any(da[0] @ db[s] < STRAIGHT_COS and da[1] @ db[1 - s] < STRAIGHT_COS for s in (0, 1)):
            dropped[k] = True
            parent[find(r1)] = find(r2)
    links: list[tuple[int, int, int]] = []
    for members in node_arms().values():
        segs = [int(pairs[i, 0]) for i in members]
        d = direction[members]
        if len(members) == 2:
            links.append((segs[0], segs[1], CONTINUES))
        elif len(members) == 3:
            ranked = sorted(((float(d[x] @ d[y]), x, y) for x, y in ((0, 1), (0, 2), (1, 2))))
            links.append((segs[ranked[0][1]], segs[ranked[0][2]], STRAIGHT))
            links.append((segs[ranked[1][1]], segs[ranked[1][2]], SIDE))
        elif len(members) == 4:
            splits = (((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2)))
            (p, q), (r, s) = min(splits, key=lambda t: float(d[t[0][0]] @ d[t[0][1]] + d[t[1][0]] @ d[t[1][1]]))
            if d[p] @ d[q] < STRAIGHT_COS and d[r] @ d[s] < STRAIGHT_COS:
                links += [(segs[p], segs[q], CROSS_THROUGH), (segs[r], segs[s], CROSS_THROUGH)]
                links += [(segs[x], segs[y], CROSS_OVER) for x in (p, q) for y in (r, s)]
            else:
                links += [(segs[x], segs[y], FOUR_WAY) for x, y in itertools.combinations(range(4), 2)]
    links = [t for t in links if t[0] != t[1]]
    if not links:
        return JunctionLinks(empty, empty, empty, dropped)
    arr = np.array(links, np.int64)
    return JunctionLinks(arr[:, 0], arr[:, 1], arr[:, 2], dropped)
