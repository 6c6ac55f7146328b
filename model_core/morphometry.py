"""Vessel measurements of a binary mask: the biomarkers AutoMorph, VAMPIRE and SIVA report.

Definitions (README, "Vessel measurements", gives the references):

- vessel density: vessel pixels / FOV pixels (the whole image without a FOV mask);
- fractal dimension: box counting with sizes 2, 4, 8, ... up to a quarter of the shorter side, the grid
  anchored at the top-left pixel, partial boxes at the right and bottom edges counted; FD is the negative
  least-squares slope of log N(s) against log s;
- tortuosity: arc length / chord of each skeleton segment, averaged with the arc lengths as weights;
- width: mean over skeleton pixels of 2 d - 1, d the distance to the nearest background pixel;
- segments, branch points and end points of the skeleton graph.

The skeleton and its graph are the project's one vessel geometry (``model_core.skeleton``), the same the
app's Segment and Topology tools use, so their counts agree. Everything is vectorised over the skeleton's pixels
(never a Python loop per pixel), so a 3504x2336 mask
is measured in well under a second (benchmarks/bench_measure.py).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .calibre import CALIBRE_COLUMNS, Calibre
from .skeleton import skeleton_graph, skeletonize

MEASUREMENT_COLUMNS = (
    "vessel_density",
    "fractal_dimension",
    "tortuosity",
    "width_px",
    "segments",
    "branch_points",
    "end_points",
)


@dataclass(frozen=True)
class VesselMeasurements:
    vessel_density: float
    fractal_dimension: float
    tortuosity: float
    width_px: float
    segments: int
    branch_points: int
    end_points: int

    def as_row(self, image: str | None = None) -> dict[str, object]:
        """The CSV row (columns in MEASUREMENT_COLUMNS order), with ``image`` first when given."""
        row: dict[str, object] = {} if image is None else {"image": image}
        row.update((k, getattr(self, k)) for k in MEASUREMENT_COLUMNS)
        return row


CSV_COLUMNS = ("image", *MEASUREMENT_COLUMNS)


def _csv_value(value: object) -> str:
    if isinstance(value, float):
        return "nan" if value != value else repr(value)  # shortest text that reads back as the same float
    return str(value)


def measurements_csv(rows: Iterable[tuple[str, VesselMeasurements]]) -> str:
    """CSV text (header CSV_COLUMNS) of (image name, measurements) pairs: the CLI's and the app's export."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for image, m in rows:
        row = m.as_row(image)
        writer.writerow([_csv_value(row[c]) for c in CSV_COLUMNS])
    return text.getvalue()


def write_measurements_csv(path: str | os.PathLike[str], rows: Iterable[tuple[str, VesselMeasurements]]) -> Path:
    """Write measurements_csv(rows) atomically (model_core.atomic): never a half-written table."""
    from .atomic import write_bytes_atomic

    return write_bytes_atomic(path, measurements_csv(rows).encode("utf-8"))


def measurements_with_calibre_csv(rows: Iterable[tuple[str, VesselMeasurements, Calibre]]) -> str:
    """measurements_csv with the calibre columns (model_core.calibre.CALIBRE_COLUMNS) after the others; a
    calibre that could not be computed is an empty cell, never a number."""
    columns = (*CSV_COLUMNS, *CALIBRE_COLUMNS)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for image, m, calibre in rows:
        row = {**m.as_row(image), **calibre.as_row()}
        writer.writerow(["" if row[c] is None else _csv_value(row[c]) for c in columns])
    return text.getvalue()


def measure(mask: np.ndarray, fov: np.ndarray | None = None) -> VesselMeasurements:
    """All measurements of one binary mask; with ``fov`` only the vessels inside it count."""
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D, not {mask.shape}")
    if fov is not None:
        fov = np.asarray(fov, bool)
        if fov.shape != mask.shape:
            raise ValueError(f"FOV mask {fov.shape} and vessel mask {mask.shape} differ in size")
        mask = mask & fov
    graph = skeleton_graph(skeletonize(mask))
    return VesselMeasurements(
        vessel_density=vessel_density(mask, fov),
        fractal_dimension=fractal_dimension(mask),
        tortuosity=graph.tortuosity,
        width_px=_width_at(mask, graph.rows, graph.cols),
        segments=graph.segments,
        branch_points=graph.branch_points,
        end_points=graph.end_points,
    )


# --- density and fractal dimension ---------------------------------------------------------------------------


def vessel_density(mask: np.ndarray, fov: np.ndarray | None = None) -> float:
    mask = np.asarray(mask, bool)
    if fov is None:
        return float(np.count_nonzero(mask) / mask.size) if mask.size else float("nan")
    fov = np.asarray(fov, bool)
    inside = np.count_nonzero(fov)
    return float(np.count_nonzero(mask & fov) / inside) if inside else float("nan")


def box_counts(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Box sizes s = 2, 4, ... <= min(H, W) / 4 and the number N(s) of boxes holding a vessel pixel.

    Boxes of size 2s are exactly 2x2 blocks of boxes of size s (same top-left anchor), so each count comes from
    the previous occupancy grid, padded with empty boxes to an even size: the partial boxes at the edges count.
    """
    occupied = np.asarray(mask, bool)
    limit = min(occupied.shape) / 4
    sizes, counts = [], []
    s = 2
    while s <= limit:
        h, w = occupied.shape
        if h % 2 or w % 2:
            occupied = np.pad(occupied, ((0, h % 2), (0, w % 2)))
            h, w = occupied.shape
        # Four strided views ORed together: ~20x faster than reshape(...).any(axis=(1, 3)) on a large mask.
        occupied = occupied[0::2, 0::2] | occupied[1::2, 0::2] | occupied[0::2, 1::2] | occupied[1::2, 1::2]
        sizes.append(s)
        counts.append(int(np.count_nonzero(occupied)))
        s *= 2
    return np.array(sizes, np.int64), np.array(counts, np.int64)


def fractal_dimension(mask: np.ndarray) -> float:
    """Box-counting dimension; NaN for an empty mask or one too small for two box sizes (under 16 px)."""
    sizes, counts = box_counts(mask)
    if len(sizes) < 2 or counts.min() == 0:
        return float("nan")
    slope = np.polyfit(np.log(sizes), np.log(counts), 1)[0]
    return float(-slope)


# --- width ----------------------------------------------------------------------------------------------------


def mean_width(mask: np.ndarray, skel: np.ndarray | None = None) -> float:
    """Mean vessel width in px: 2 d - 1 averaged over skeleton pixels, d the distance from the skeleton pixel
    to the nearest background pixel centre. The vessel edge lies half a pixel before that centre, so the
    radius is d - 1/2: a 1-px line measures 1, a 7-px bar 7 (twice the plain distance would add 1 px)."""
    mask = np.asarray(mask, bool)
    skel = skeletonize(mask) if skel is None else skel
    ys, xs = np.nonzero(skel)
    return _width_at(mask, ys, xs)


def _width_at(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> float:
    if ys.size == 0:
        return float("nan")
    # The mask's bounding box grown by one background pixel holds the nearest background pixel of every
    # skeleton pixel (anything farther out is farther away), and makes the image edge count as background
    # instead of OpenCV's "infinitely far".
    my, mx = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    y0, x0 = my[0], mx[0]
    crop = np.pad(mask[y0 : my[-1] + 1, x0 : mx[-1] + 1], 1).astype(np.uint8)
    # Borgefors' 5x5 chamfer distance: exact along rows and columns, within 2 % elsewhere (0.01 px on the mean
    # width of DRIVE's references) and about 6x faster than OpenCV's exact transform.
    dist = cv2.distanceTransform(crop, cv2.DIST_L2, cv2.DIST_MASK_5)
    d = dist[ys - y0 + 1, xs - x0 + 1]
    return float(np.mean(2.0 * d - 1.0))
