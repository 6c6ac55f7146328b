"""Calibre review of the open image: its optic disc, its artery/vein labels, and their CRAE / CRVE / AVR. Qt-free.

The numbers come from ``model_core.calibre`` (revised Knudtson in zone B), the first disc from
``model_core.optic_disc`` and the first labels from ``model_core.artery_vein``; this module holds what the
grader changes and lets a view run the slow parts on a worker:

- ``prepare`` (worker): the saved disc and labels, or the automatic suggestion where none were saved, and the
  mask's ``VesselGeometry``;
- ``compute`` (worker): the ``Calibre`` of a mask, labels and disc;
- ``CalibreReview.mark`` (UI thread, fast): a click's vessel labelled, through its branches up to a crossing, as
  one undo step; a disc moved and a version restored are one step each too; ``undo`` takes the last one back.

A branch or a crossing: the skeleton (``model_core.skeleton``, the project's one vessel geometry) joins vessels
at junctions. A junction of three segments is a branch point: the vessel goes on into both branches. A junction
of four or more segments is where two vessels cross (an artery and a vein cross often; a vessel rarely splits in
three): the label stops there. A crossing the thinning splits into two three-way junctions joined by a short
bridge is not told apart (the label then goes on through it; the grader marks the other vessel next).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from model_core.artery_vein import suggest_av
from model_core.calibre import ARTERY, UNCERTAIN, VEIN, Calibre, Disc, empty_calibre, measure_calibre
from model_core.optic_disc import detect_disc
from model_core.skeleton import SkeletonGraph, skeleton_graph, skeletonize

from ..workspace.calibre_records import scale_of as scale_of  # the workspace's scale, for the views

UNDO_LIMIT = 30  # label images kept for undo (one full-size uint8 image each)
CLICK_RADIUS = 6.0  # px: a click this close to a vessel's centre line marks it
KINDS = {ARTERY: "artery", VEIN: "vein", UNCERTAIN: "uncertain"}


@dataclass(frozen=True)
class VesselGeometry:
    """A mask's skeleton graph and, per vessel pixel, the segment of its nearest centre-line pixel (0 off the
    vessels), so a click's vessel can be painted whole."""

    graph: SkeletonGraph
    nearest_segment: NDArray[np.int32]

    @classmethod
    def of(cls, mask: NDArray[np.generic]) -> VesselGeometry:
        vessels = np.asarray(mask, np.bool_)
        graph = skeleton_graph(skeletonize(vessels))
        nearest = np.zeros(vessels.shape, np.int32)
        on_segment = graph.label > 0
        if on_segment.any():
            seeds = np.ones(vessels.shape, np.uint8)
            seeds[graph.rows[on_segment], graph.cols[on_segment]] = 0
            _, index = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
            # DIST_LABEL_PIXEL numbers the seeds 1.. in raster order, the order graph.rows / cols list them.
            lut = np.r_[np.int32(0), graph.label[on_segment].astype(np.int32)]
            nearest[vessels] = lut[index[vessels]]
        return cls(graph, nearest)

    def segment_at(self, x: float, y: float, radius: float = CLICK_RADIUS) -> int | None:
        """The segment whose centre line passes nearest (x = column, y = row), within ``radius``; None if none."""
        g = self.graph
        on_segment = np.flatnonzero(g.label > 0)
        if on_segment.size == 0:
            return None
        d2 = (g.cols[on_segment] - x) ** 2 + (g.rows[on_segment] - y) ** 2
        best = int(np.argmin(d2))
        return int(g.label[on_segment[best]]) if d2[best] <= radius * radius else None

    def branch(self, segment: int) -> set[int]:
        """``segment`` and the segments it reaches through branch points (three segments), not crossings."""
        pairs = self.graph.segment_junction
        if pairs.size == 0:
            return {segment}
        seg_of, junction_of = pairs[:, 0], pairs[:, 1]
        size = np.bincount(junction_of)
        found, todo = {segment}, [segment]
        while todo:
            s = todo.pop()
            for j in junction_of[seg_of == s]:
                if size[j] != 3:
                    continue  # an end, a loop's own junction, or a crossing: the vessel stops here
                for t in seg_of[junction_of == j].tolist():
                    if t not in found:
                        found.add(t)
                        todo.append(t)
        return found

    def pixels_of(self, segments: set[int]) -> NDArray[np.bool_]:
        return np.isin(self.nearest_segment, np.fromiter(segments, np.int32, len(segments)))


@dataclass(frozen=True)
class Prepared:
    """What a worker reads for an image: its disc and labels (saved, else suggested) and its geometry."""

    disc: Disc | None
    labels: NDArray[np.uint8]
    geometry: VesselGeometry
    suggested: bool  # the labels are the automatic suggestion, not saved ones
    taught: bool = False  # suggested by the network the workspace's labels taught


def prepare(
    rgb: NDArray[np.uint8],
    mask: NDArray[np.generic],
    fov: NDArray[np.generic] | None,
    disc: Disc | None = None,
    labels: NDArray[np.uint8] | None = None,
    suggest: Callable[[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.generic] | None], NDArray[np.uint8]]
    | None = None,
) -> Prepared:
    """The saved ``disc`` / ``labels`` where given, the automatic ones where not (``suggest``: a taught
    suggestion, ``av_teaching.labels_with``), and the mask's geometry."""
    vessels = np.asarray(mask, np.bool_)
    field = fov if fov is not None and fov.shape == vessels.shape else None
    suggested = labels is None or labels.shape != vessels.shape
    if disc is None:
        disc = detect_disc(rgb, vessels, field)
    if suggested:
        if not vessels.any():
            labels = np.zeros(vessels.shape, np.uint8)
        elif suggest is not None:
            labels = suggest(rgb, vessels, field)
        else:
            labels = suggest_av(rgb, vessels, field).labels
    assert labels is not None
    taught = suggested and suggest is not None and bool(vessels.any())
    return Prepared(disc, labels, VesselGeometry.of(vessels), suggested, taught)


def compute(
    mask: NDArray[np.generic],
    labels: NDArray[np.uint8] | None,
    disc: Disc | None,
    um_per_px: float | None = None,
    disc_um: float | None = None,
) -> Calibre:
    """CRAE, CRVE and AVR; an empty result with its one-line reason when there is no disc or no labels."""
    if disc is None:
        return empty_calibre("no optic disc found")
    if labels is None:
        return empty_calibre("no artery/vein labels")
    try:
        return measure_calibre(mask, labels, disc, um_per_px, disc_um)
    except ValueError as exc:  # an A/V image of another size
        return empty_calibre(str(exc))


class CalibreReview:
    """The open image's disc and A/V labels as the grader leaves them, with one undo stack for both: a disc moved,
    a vessel marked and a version restored from the History are each one step."""

    def __init__(self, key: str, disc: Disc | None, labels: NDArray[np.uint8]) -> None:
        self.key = key
        self.disc = disc
        self.labels = labels
        # (disc, labels) before each step. A step never writes into an array it keeps (mark copies first), so a
        # disc move keeps a reference to the labels, not a copy.
        self._undo: deque[tuple[Disc | None, NDArray[np.uint8]]] = deque(maxlen=UNDO_LIMIT)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def set_disc(self, disc: Disc) -> bool:
        """The disc moved or resized, as one undo step; True when it changed."""
        return self.restore(disc, None)

    def mark(self, geometry: VesselGeometry, x: float, y: float, kind: int) -> int:
        """Label the vessel under (x, y) ``kind`` (ARTERY, VEIN, UNCERTAIN) through its branches up to a
        crossing, as one undo step; the number of pixels that changed (0: no vessel there, or already so)."""
        if kind not in KINDS:
            raise ValueError(f"unknown A/V label {kind}")
        seg = geometry.segment_at(x, y)
        if seg is None or geometry.nearest_segment.shape != self.labels.shape:
            return 0
        where = geometry.pixels_of(geometry.branch(seg))
        changed = int(np.count_nonzero(self.labels[where] != kind))
        if changed:
            self._undo.append((self.disc, self.labels))
            self.labels = self.labels.copy()
            self.labels[where] = kind
        return changed

    def restore(self, disc: Disc | None, labels: NDArray[np.uint8] | None) -> bool:
        """Take a disc and/or labels whole (None: that one as it is; labels of another size are not taken), as one
        undo step, as a version restored from the History is; True when anything changed."""
        new_disc = self.disc if disc is None else disc
        take = labels is not None and labels.shape == self.labels.shape and not np.array_equal(labels, self.labels)
        if new_disc == self.disc and not take:
            return False
        self._undo.append((self.disc, self.labels))
        self.disc = new_disc
        if take:
            assert labels is not None
            self.labels = labels.copy()
        return True

    def undo(self) -> set[str]:
        """Take the last step back; what it changed: "disc" and/or "labels" (empty when there was nothing to undo)."""
        if not self._undo:
            return set()
        disc, labels = self._undo.pop()
        changed = ({"disc"} if disc != self.disc else set()) | ({"labels"} if labels is not self.labels else set())
        self.disc, self.labels = disc, labels
        return changed
