"""The vessel mask as a graph: junctions, end points and the segments between them.

The mask's skeleton (``skimage.morphology.skeletonize``) is cut at its junction pixels (skeleton pixels
with three or more 8-neighbours). The 8-connected pieces left over are the segments; the 8-connected
clusters of junction pixels are the junctions. A cluster that touches fewer than three segments is not a
real branching (a staircase corner of the thinning, or a blob at a tip) and is merged back into its
segment, so a vessel is never cut in two by a false junction.

Built with NumPy and scipy's sparse connected components on the list of skeleton pixels rather than
with ``skan``: on a 3504x2336 mask the graph takes 0.09-0.15 s here, skan's 0.29-0.85 s warm and
8-18 s on its first call in each process, while numba compiles (``benchmarks/bench_vessel_tools.py``,
same skeleton, same 405 segments; a shared 2-core machine, hence the ranges).

Use from a UI (a few lines)::

    graph = VesselGraph.from_mask(document.mask)
    seg = graph.segment_at(x, y)                     # click -> segment id or None
    outline = graph.segment_pixels(seg)              # (n, 2) row, col skeleton pixels to highlight
    document.apply("Delete segment", lambda m: graph.delete_segment(m, seg))   # one undo step

``delete_segment`` removes the pixels whose nearest skeleton pixel lies on that segment, keeping the
discs of the junctions at its ends, so the vessels it branches from stay whole. Rebuild the graph
after each edit (it is cheap; run it off the UI thread for large photos).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.morphology import skeletonize

from .painting import BBox, clip_bbox

_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


@dataclass
class Segment:
    id: int
    pixels: np.ndarray  # (n, 2) int row, col of its skeleton pixels (unordered)
    junctions: tuple[int, ...]  # ids of the junctions it touches
    ends: np.ndarray  # (k, 2) row, col of its free end points (skeleton pixels with one neighbour)
    length: float  # along the skeleton, in pixels

    @property
    def bbox(self) -> BBox:
        y0, x0 = self.pixels.min(axis=0)
        y1, x1 = self.pixels.max(axis=0)
        return int(y0), int(y1) + 1, int(x0), int(x1) + 1


@dataclass
class EndPoint:
    position: np.ndarray  # (row, col)
    direction: np.ndarray  # unit (drow, dcol) pointing out of the vessel, where it would go on
    segment: int


@dataclass
class VesselGraph:
    shape: tuple[int, int]
    skeleton: np.ndarray  # bool
    labels: np.ndarray  # int32: k > 0 segment k, -j junction j, 0 off the skeleton
    segments: dict[int, Segment] = field(default_factory=dict)
    junctions: dict[int, np.ndarray] = field(default_factory=dict)  # id -> (n, 2) row, col pixels

    # -- building --------------------------------------------------------------------------
    @classmethod
    def from_mask(cls, mask: np.ndarray) -> "VesselGraph":
        mask = np.asarray(mask, dtype=bool)
        skel = skeletonize(mask)
        return cls.from_skeleton(skel, mask)

    @classmethod
    def from_skeleton(cls, skel: np.ndarray, mask: np.ndarray | None = None) -> "VesselGraph":
        # Everything runs on the list of skeleton pixels (tens of thousands), not on the image's millions.
        skel = np.asarray(skel, dtype=bool)
        h, w = skel.shape
        ys, xs = np.nonzero(skel)
        n = ys.size
        index = np.full((h + 2, w + 2), -1, dtype=np.int32)
        index[ys + 1, xs + 1] = np.arange(n, dtype=np.int32)
        nbr = np.stack([index[ys + 1 + dy, xs + 1 + dx] for dy, dx in _OFFSETS])  # (8, n)
        deg = (nbr >= 0).sum(axis=0)
        jun = deg >= 3
        src = np.repeat(np.arange(n)[None], 8, axis=0)
        ok = nbr >= 0
        a, b = src[ok], nbr[ok]
        same = jun[a] == jun[b]
        comp = _components(n, a[same], b[same])  # pieces: segments (non-junction) and junction clusters
        # A junction cluster is real when it touches three or more segment pieces.
        cross = jun[a] & ~jun[b]
        jc, sc = comp[a[cross]], comp[b[cross]]
        pair = np.unique(np.stack([jc, sc], axis=1), axis=0) if jc.size else np.zeros((0, 2), np.int64)
        npieces = int(comp.max()) + 1 if n else 0
        touch = np.bincount(pair[:, 0], minlength=npieces) if npieces else np.zeros(0, np.int64)
        piece_is_jun = np.zeros(npieces, bool)
        piece_is_jun[comp[jun]] = True
        real = piece_is_jun & (touch >= 3)
        merge = ~real[pair[:, 0]]
        merged = _components(npieces, pair[merge, 0], pair[merge, 1])
        # Final ids: segments 1..S (merged pieces that are not real junctions), junctions -1..-J.
        seg_roots = np.unique(merged[~real])
        seg_id = np.zeros(int(merged.max()) + 1 if npieces else 0, np.int32)
        seg_id[seg_roots] = np.arange(1, seg_roots.size + 1, dtype=np.int32)
        real_pieces = np.flatnonzero(real)
        jun_id = np.zeros(npieces, np.int32)
        jun_id[real_pieces] = -np.arange(1, real_pieces.size + 1, dtype=np.int32)
        piece_label = np.where(real, jun_id, seg_id[merged] if npieces else 0)
        pix_label = piece_label[comp] if n else np.zeros(0, np.int32)
        labels = np.zeros((h, w), np.int32)
        labels[ys, xs] = pix_label

        graph = cls(skel.shape, skel, labels)
        keep = real[pair[:, 0]]
        seg_junctions: dict[int, set[int]] = {}
        for j, s in zip(-jun_id[pair[keep, 0]], piece_label[pair[keep, 1]]):
            seg_junctions.setdefault(int(s), set()).add(int(j))
        lengths = _lengths(pix_label, ys, xs, nbr, index)
        order = np.argsort(pix_label, kind="stable")
        vals = pix_label[order]
        cuts = np.flatnonzero(np.diff(vals)) + 1
        for chunk in np.split(order, cuts) if n else []:
            v = int(pix_label[chunk[0]])
            pix = np.stack([ys[chunk], xs[chunk]], axis=1)
            if v < 0:
                graph.junctions[-v] = pix
                continue
            ends = pix[deg[chunk] <= 1]
            graph.segments[v] = Segment(v, pix, tuple(sorted(seg_junctions.get(v, ()))), ends,
                                        float(lengths[v]) + 1.0)
        return graph

    # -- queries ---------------------------------------------------------------------------
    def segment_pixels(self, seg: int) -> np.ndarray:
        return self.segments[seg].pixels

    def segment_at(self, x: float, y: float, max_distance: float = 8.0) -> int | None:
        """The segment whose skeleton is nearest to the point (x, y), within ``max_distance`` pixels."""
        r = int(np.ceil(max_distance))
        cy, cx = int(y), int(x)
        win = clip_bbox((cy - r, cy + r + 1, cx - r, cx + r + 1), self.shape)
        if win is None:
            return None
        y0, y1, x0, x1 = win
        sub = self.labels[y0:y1, x0:x1]
        ys, xs = np.nonzero(sub > 0)
        if ys.size == 0:
            return None
        d2 = (ys + y0 + 0.5 - y) ** 2 + (xs + x0 + 0.5 - x) ** 2
        k = int(np.argmin(d2))
        if d2[k] > max_distance ** 2:
            return None
        return int(sub[ys[k], xs[k]])

    def end_points(self, mask: np.ndarray | None = None, reach: int = 8) -> list[EndPoint]:
        """Free ends of the skeleton, each with the direction in which its vessel would continue."""
        out = []
        for seg in self.segments.values():
            for e in seg.ends:
                d = seg.pixels - e
                dist = np.hypot(d[:, 0], d[:, 1])
                near = d[(dist > 0) & (dist <= reach)]
                if len(near) == 0:
                    direction = np.zeros(2)
                else:
                    v = -near.mean(axis=0)
                    n = np.hypot(*v)
                    direction = v / n if n > 0 else np.zeros(2)
                out.append(EndPoint(e.astype(float), direction, seg.id))
        return out

    # -- editing ---------------------------------------------------------------------------
    def segment_territory(self, mask: np.ndarray, seg: int) -> tuple[BBox, np.ndarray] | None:
        """The mask pixels that belong to segment ``seg``: (bbox, boolean patch of that bbox).

        A pixel belongs to the segment whose skeleton pixel is nearest to it; pixels inside the disc
        of a junction at the segment's ends (radius: the vessel's half width there) stay with the
        junction, so the vessels meeting there keep their shape.
        """
        s = self.segments.get(seg)
        if s is None:
            return None
        margin = 12
        while True:
            y0, y1, x0, x1 = s.bbox
            win = clip_bbox((y0 - margin, y1 + margin, x0 - margin, x1 + margin), self.shape)
            wy0, wy1, wx0, wx1 = win
            m = np.asarray(mask[wy0:wy1, wx0:wx1], dtype=bool)
            dt = ndi.distance_transform_edt(m)
            radius = float(dt[s.pixels[:, 0] - wy0, s.pixels[:, 1] - wx0].max())
            whole = (win == (0, self.shape[0], 0, self.shape[1]))
            if radius + 3 <= margin or whole:
                break
            margin = int(radius * 2 + 4)
        lab = self.labels[wy0:wy1, wx0:wx1]
        _, (iy, ix) = ndi.distance_transform_edt(lab == 0, return_indices=True)
        owner = lab[iy, ix]
        patch = m & (owner == seg)
        for j in s.junctions:
            jp = self.junctions[j]
            for (py, px) in jp:
                ly, lx = py - wy0, px - wx0
                if 0 <= ly < m.shape[0] and 0 <= lx < m.shape[1]:
                    r = float(dt[ly, lx]) + 0.5
                    cv2.circle(patch.view(np.uint8), (int(lx), int(ly)), int(np.ceil(r)), 0, thickness=-1)
        if not patch.any():
            return None
        return (wy0, wy1, wx0, wx1), patch

    def delete_segment(self, mask: np.ndarray, seg: int) -> BBox | None:
        """Erase segment ``seg``'s pixels from ``mask`` in place; an operation for ``MaskDocument.apply``."""
        terr = self.segment_territory(mask, seg)
        if terr is None:
            return None
        (y0, y1, x0, x1), patch = terr
        mask[y0:y1, x0:x1] &= ~patch
        return y0, y1, x0, x1


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label (0..k-1) of each of ``n`` nodes joined by the edges (a, b)."""
    if n == 0:
        return np.zeros(0, np.int64)
    g = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _lengths(label: np.ndarray, ys: np.ndarray, xs: np.ndarray, nbr: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Skeleton length per segment label: 1 per 4-adjacent pair, sqrt(2) per diagonal pair not already
    joined through a shared 4-neighbour of the same segment (a staircase would count twice)."""
    size = int(label.max()) + 1 if label.size else 1
    total = np.zeros(max(size, 1), np.float64)
    lab_ext = np.append(label, 0)  # index -1 -> label 0
    for k, (dy, dx) in enumerate(_OFFSETS):
        if (dy, dx) < (0, 0):
            continue  # each pair once
        j = nbr[k]
        la, lb = label, lab_ext[j]
        ok = (j >= 0) & (la > 0) & (la == lb)
        if dy == 0 or dx == 0:
            np.add.at(total, la[ok], 1.0)
            continue
        c1 = lab_ext[index[ys + 1 + dy, xs + 1]]
        c2 = lab_ext[index[ys + 1, xs + 1 + dx]]
        ok &= (c1 != la) & (c2 != la)
        np.add.at(total, la[ok], float(np.sqrt(2)))
    return total
