"""The vessel mask as a graph: junctions, end points and the segments between them.

The skeleton, its adjacency and what a segment, a junction and an end are come from the project's one
vessel geometry (``model_core.skeleton``): the same graph the Measurements panel counts
(``model_core.morphometry``), so a mask has as many segments here as there. This module adds what the
Segment and Topology tools need on top of it: a label image, each segment's pixels and free ends, and
the edits.

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
from numpy.typing import NDArray
from scipy import ndimage as ndi

from model_core.skeleton import SkeletonGraph, skeleton_graph, skeletonize

from ..painting import BBox, clip_bbox


@dataclass
class Segment:
    id: int
    pixels: NDArray[np.int64]  # (n, 2) row, col of its skeleton pixels (unordered)
    junctions: tuple[int, ...]  # ids of the junctions it touches
    ends: NDArray[np.int64]  # (k, 2) row, col of its free end points (skeleton pixels with one neighbour)
    length: float  # along the skeleton, in pixels, into the junction pixels at its ends

    @property
    def bbox(self) -> BBox:
        y0, x0 = self.pixels.min(axis=0)
        y1, x1 = self.pixels.max(axis=0)
        return int(y0), int(y1) + 1, int(x0), int(x1) + 1


@dataclass
class EndPoint:
    position: NDArray[np.float64]  # (row, col)
    direction: NDArray[np.float64]  # unit (drow, dcol) pointing out of the vessel, where it would go on
    segment: int


@dataclass
class VesselGraph:
    shape: tuple[int, int]
    skeleton: NDArray[np.bool_]
    labels: NDArray[np.int32]  # k > 0 segment k, -j junction j, 0 off the skeleton
    segments: dict[int, Segment] = field(default_factory=dict)
    junctions: dict[int, NDArray[np.int64]] = field(default_factory=dict)  # id -> (n, 2) row, col pixels

    # -- building --------------------------------------------------------------------------
    @classmethod
    def from_mask(cls, mask: np.ndarray) -> VesselGraph:
        mask = np.asarray(mask, dtype=bool)
        skel = skeletonize(mask)
        return cls.from_skeleton(skel, mask)

    @classmethod
    def from_skeleton(cls, skel: np.ndarray, mask: np.ndarray | None = None) -> VesselGraph:
        return cls.from_geometry(skeleton_graph(skel), np.asarray(skel, dtype=bool))

    @classmethod
    def from_geometry(cls, geometry: SkeletonGraph, skel: np.ndarray) -> VesselGraph:
        """The tools' view of ``model_core.skeleton``'s graph of the skeleton ``skel``."""
        graph = cls(geometry.shape, skel, geometry.label_image())
        label, degree = geometry.label, geometry.degree
        pixels = np.stack([geometry.rows, geometry.cols], axis=1)
        junctions_of: dict[int, list[int]] = {}
        for s, j in geometry.segment_junction.tolist():
            junctions_of.setdefault(s, []).append(j)
        # One pass over the pixels sorted by label: junctions (negative) first, then segments 1..S.
        order = np.argsort(label, kind="stable")
        sorted_label = label[order]
        cuts = np.flatnonzero(np.diff(sorted_label)) + 1
        for chunk in np.split(order, cuts) if order.size else []:
            v = int(label[chunk[0]])
            pix = pixels[chunk]
            if v < 0:
                graph.junctions[-v] = pix
            elif v > 0:
                graph.segments[v] = Segment(
                    v, pix, tuple(junctions_of.get(v, ())), pix[degree[chunk] == 1], float(geometry.length[v - 1])
                )
        return graph

    # -- queries ---------------------------------------------------------------------------
    def segment_pixels(self, seg: int) -> NDArray[np.int64]:
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
        if d2[k] > max_distance**2:
            return None
        return int(sub[ys[k], xs[k]])

    def end_points(self, mask: np.ndarray | None = None, reach: int = 8) -> list[EndPoint]:
        """Free ends of the skeleton, each with the direction in which its vessel would continue."""
        out: list[EndPoint] = []
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
    def segment_territory(self, mask: np.ndarray, seg: int) -> tuple[BBox, NDArray[np.bool_]] | None:
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
            assert win is not None  # the window holds the segment's own pixels, which lie in the image
            wy0, wy1, wx0, wx1 = win
            m = np.asarray(mask[wy0:wy1, wx0:wx1], dtype=bool)
            dt = ndi.distance_transform_edt(m)
            radius = float(dt[s.pixels[:, 0] - wy0, s.pixels[:, 1] - wx0].max())
            whole = win == (0, self.shape[0], 0, self.shape[1])
            if radius + 3 <= margin or whole:
                break
            margin = int(radius * 2 + 4)
        lab = self.labels[wy0:wy1, wx0:wx1]
        _, (iy, ix) = ndi.distance_transform_edt(lab == 0, return_indices=True)
        owner = lab[iy, ix]
        patch = m & (owner == seg)
        for j in s.junctions:
            jp = self.junctions[j]
            for py, px in jp:
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
