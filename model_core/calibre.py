"""Vessel calibre in zone B: CRAE, CRVE and their ratio AVR, by the revised Knudtson formula.

Definitions, as the reading centres use them:

- **Optic disc**: a circle, centre (x, y) and diameter D (``Disc``); its margin is the circle of radius D / 2.
- **Zone B**: the ring from 0.5 to 1 disc diameter beyond the disc margin, radii D/2 + 0.5 D = D to
  D/2 + 1.0 D = 1.5 D from the centre (Hubbard et al., Ophthalmology 1999; Knudtson et al. 2003). The DRIVE
  zone B rings drawn by Hemelings et al. (2019) agree: their radii are 80 and 118.5 px around a disc of about
  80 px, a ratio of 1.48. **Zone C** reaches 2 disc diameters beyond the margin (2.5 D).
- **Width of a vessel**: per skeleton segment (``model_core.skeleton``, the project's one vessel geometry) with
  pixels in zone B, the median over those pixels of the local width (``local_widths``): the vessel pixels
  nearest to that skeleton pixel (its Voronoi cell in the mask) divided by the length of skeleton it stands for
  (half its steps to its neighbours: 1 along a row or column, sqrt 2 diagonally). A 7-px bar measures 7 at
  any angle, and widths are not limited to odd values: the distance transform's 2 d - 1, used before, gives
  3, 5, 7, ... on a one-pixel skeleton, a step of 30-50 % at DRIVE's 3-7 px, and the disc's detected zone B
  with the reference A/V labels differed from the manual one by 0.082 in mean |AVR| with it against 0.057 now
  (``benchmarks/bench_calibre.py``). The median is robust to the cells inflated where a branch leaves and to a
  few ragged edge pixels.
- **Artery or vein** of a segment: the majority of its zone B pixels' A/V labels (1 artery, 2 vein; a majority
  of 3, uncertain, or no label leaves it out).
- **Revised Knudtson formula** (Knudtson MD et al., "Revised formulas for summarizing retinal vessel diameters",
  Curr Eye Res 2003;27:143-149; reviewed by Patton et al., Prog Retin Eye Res 2006): take the six largest
  arterioles (venules); pair the largest with the smallest, the second largest with the second smallest, and
  so on, each pair giving W = 0.88 sqrt(w1^2 + w2^2) for arterioles and 0.95 sqrt(w1^2 + w2^2) for venules;
  with an odd count the middle value is carried to the next round; repeat until one value remains: CRAE
  (CRVE). AVR = CRAE / CRVE.

Fewer than six arterioles (venules) give no CRAE (CRVE) and a reason, never a number from fewer vessels: that
is how IVAN and SIVA report an ungradable photo. Software differ in absolute calibre (Yip et al., TVST 2016:
SIVA and IVAN differ by 6.7 um in CRAE), so every result names its method (``CALIBRE_METHOD``) and its scale.

Only a crop around zone B is skeletonised, so a 3504x2336 mask takes a fraction of a second
(``benchmarks/bench_calibre.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from .skeleton import SkeletonGraph, skeleton_graph, skeletonize

CALIBRE_METHOD = "knudtson-revised-2003/area-median"
ARTERIOLE_FACTOR = 0.88
VENULE_FACTOR = 0.95
VESSELS_PER_KIND = 6
ARTERY, VEIN, UNCERTAIN = 1, 2, 3
ZONE_B = (0.5, 1.0)  # disc diameters beyond the disc margin
ZONE_C = (0.5, 2.0)
# A segment needs this many skeleton pixels in zone B (at least 3, else a tenth of the disc diameter) to be
# measured: shorter pieces are the stubs a crossing or a branch leaves, not vessels crossing the zone.
MIN_ZONE_PIXELS = 3
MIN_ZONE_FRACTION_OF_D = 0.1


@dataclass(frozen=True)
class Disc:
    """An optic disc: centre (x = column, y = row) and diameter, in pixels."""

    x: float
    y: float
    diameter: float

    def zone_radii(self, zone: tuple[float, float] = ZONE_B) -> tuple[float, float]:
        """Inner and outer radius of a zone given in disc diameters beyond the margin (ZONE_B, ZONE_C)."""
        r = self.diameter / 2
        return r + zone[0] * self.diameter, r + zone[1] * self.diameter


def zone_mask(shape: tuple[int, int], disc: Disc, zone: tuple[float, float] = ZONE_B) -> NDArray[np.bool_]:
    """The pixels whose centres lie in the zone (inner radius included, outer excluded)."""
    inner, outer = disc.zone_radii(zone)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    r2 = (xx - disc.x) ** 2 + (yy - disc.y) ** 2
    return np.asarray((r2 >= inner * inner) & (r2 < outer * outer), np.bool_)


def knudtson(widths: Sequence[float], factor: float) -> float:
    """The revised Knudtson summary of widths (the six largest are used): largest paired with smallest,
    W = factor * sqrt(w1^2 + w2^2), the middle one carried over when the count is odd, until one remains."""
    values = sorted((float(w) for w in widths), reverse=True)[:VESSELS_PER_KIND]
    if not values:
        raise ValueError("no widths to combine")
    while len(values) > 1:
        n = len(values)
        combined = [factor * math.hypot(values[i], values[n - 1 - i]) for i in range(n // 2)]
        if n % 2:
            combined.append(values[n // 2])
        values = sorted(combined, reverse=True)
    return values[0]


@dataclass(frozen=True)
class ZoneVessel:
    """One skeleton segment measured in zone B: its number in the crop's graph, its A/V kind, its width (px)
    and its zone B skeleton pixels (rows, cols in the image), so a view can highlight it."""

    segment: int
    kind: int
    width_px: float
    rows: NDArray[np.int64] = field(repr=False)
    cols: NDArray[np.int64] = field(repr=False)


@dataclass(frozen=True)
class Calibre:
    """CRAE, CRVE (in ``unit``) and AVR; None where they cannot be computed, with ``reason`` saying why.

    n_arterioles / n_venules count the vessels of each kind found in zone B (the six largest are used);
    ``used`` holds those six (or fewer) of each kind."""

    crae: float | None
    crve: float | None
    avr: float | None
    n_arterioles: int
    n_venules: int
    calibre_method: str
    unit: str = "px"
    reason: str = ""
    used: tuple[ZoneVessel, ...] = field(default=(), repr=False)

    def as_row(self) -> dict[str, object]:
        return {c: getattr(self, c) for c in CALIBRE_COLUMNS}


CALIBRE_COLUMNS = ("crae", "crve", "avr", "n_arterioles", "n_venules", "calibre_method")


def empty_calibre(reason: str, method: str = CALIBRE_METHOD) -> Calibre:
    """A result without values: no disc, a bad A/V mask, ..."""
    return Calibre(None, None, None, 0, 0, method, reason=reason)


def method_name(um_per_px: float | None = None, disc_um: float | None = None) -> str:
    """CALIBRE_METHOD with the scale it was given: ';px', ';um_per_px=...' or ';disc_um=...'."""
    if um_per_px is not None:
        return f"{CALIBRE_METHOD};um_per_px={um_per_px:g}"
    if disc_um is not None:
        return f"{CALIBRE_METHOD};disc_um={disc_um:g}"
    return f"{CALIBRE_METHOD};px"


def zone_vessels(mask: NDArray[np.generic], av: NDArray[np.generic], disc: Disc) -> list[ZoneVessel]:
    """Every skeleton segment with enough pixels in zone B, its width and A/V kind (kind 0: no label or
    uncertain). ``mask`` is the binary vessel mask, ``av`` the A/V label image of the same size."""
    vessels = np.asarray(mask, np.bool_)
    labels = np.asarray(av)
    if vessels.ndim != 2 or labels.shape != vessels.shape:
        raise ValueError(f"A/V mask {labels.shape} and vessel mask {vessels.shape} differ in size")
    h, w = vessels.shape
    _, outer = disc.zone_radii(ZONE_B)
    margin = max(8.0, 0.1 * disc.diameter)  # room for the thinning and the distance transform around the ring
    y0, y1 = max(0, int(disc.y - outer - margin)), min(h, math.ceil(disc.y + outer + margin) + 1)
    x0, x1 = max(0, int(disc.x - outer - margin)), min(w, math.ceil(disc.x + outer + margin) + 1)
    if y0 >= y1 or x0 >= x1:
        return []
    crop = vessels[y0:y1, x0:x1]
    graph = skeleton_graph(skeletonize(crop))
    if graph.segments == 0:
        return []
    rows, cols = graph.rows + y0, graph.cols + x0
    inner_r, outer_r = disc.zone_radii(ZONE_B)
    r2 = (cols - disc.x) ** 2 + (rows - disc.y) ** 2
    in_zone = (graph.label > 0) & (r2 >= inner_r * inner_r) & (r2 < outer_r * outer_r)
    if not in_zone.any():
        return []
    # The image edge counts as background (a vessel cut by the crop edge is not measured there anyway: the
    # crop reaches beyond the zone), as in model_core.morphometry.
    width = local_widths(crop, graph)
    idx = np.flatnonzero(in_zone)
    seg = graph.label[idx].astype(np.int64)
    order = np.argsort(seg, kind="stable")
    idx, seg = idx[order], seg[order]
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    ends = np.r_[starts[1:], seg.size]
    min_pixels = max(MIN_ZONE_PIXELS, round(MIN_ZONE_FRACTION_OF_D * disc.diameter))
    label_at = labels[rows, cols]
    out = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        if b - a < min_pixels:
            continue
        px = idx[a:b]
        votes = np.bincount(np.asarray(label_at[px], np.int64).clip(0, 4), minlength=5)
        kind = int(np.argmax(votes[1:4])) + 1 if votes[1:4].any() else 0
        if kind == UNCERTAIN or votes[kind] * 2 < votes[1:4].sum():  # uncertain, or no majority
            kind = 0
        out.append(ZoneVessel(int(seg[a]), kind, float(np.median(width[px])), rows[px], cols[px]))
    return out


def local_widths(vessels: NDArray[np.bool_], graph: SkeletonGraph) -> NDArray[np.float64]:
    """Per skeleton pixel of ``graph`` (the skeleton of ``vessels``), the module's local width: the vessel
    pixels nearer to it than to any other skeleton pixel, divided by the length of skeleton it stands for
    (half the sum of its m-adjacency steps: 1 along a row or column, sqrt 2 along a diagonal)."""
    seeds = np.ones(vessels.shape, np.uint8)
    seeds[graph.rows, graph.cols] = 0
    _, nearest = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    # Labels number the zero pixels 1.. in raster order, as graph.rows/cols (raster order) list them.
    owned = np.bincount(nearest[vessels], minlength=graph.rows.size + 1)[1:].astype(np.float64)
    skel = np.zeros((vessels.shape[0] + 2, vessels.shape[1] + 2), np.bool_)
    r, c = graph.rows + 1, graph.cols + 1
    skel[r, c] = True
    n4 = {(dy, dx): skel[r + dy, c + dx] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))}
    step = np.zeros(r.size, np.float64)
    for v in n4.values():
        step += v
    for dy, dx in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
        diagonal = skel[r + dy, c + dx] & ~n4[(dy, 0)] & ~n4[(0, dx)]
        step += math.sqrt(2) * diagonal
    return np.asarray(owned / np.maximum(step / 2, 0.5), np.float64)


def measure_calibre(
    mask: NDArray[np.generic],
    av: NDArray[np.generic],
    disc: Disc,
    um_per_px: float | None = None,
    disc_um: float | None = None,
) -> Calibre:
    """CRAE, CRVE and AVR of a vessel mask with its A/V labels (0 background, 1 artery, 2 vein, 3 uncertain)
    around ``disc``. Widths are in pixels, or in um with ``um_per_px`` or an assumed disc diameter ``disc_um``
    (1800 um is common). Raises ValueError when the A/V mask's size differs from the vessel mask's."""
    method = method_name(um_per_px, disc_um)
    if not (disc.diameter > 0 and math.isfinite(disc.x) and math.isfinite(disc.y)):
        return empty_calibre(f"no usable optic disc ({disc})", method)
    scale = 1.0
    if um_per_px is not None:
        scale = um_per_px
    elif disc_um is not None:
        scale = disc_um / disc.diameter
    unit = "px" if um_per_px is None and disc_um is None else "um"
    vessels = zone_vessels(mask, av, disc)
    used: list[ZoneVessel] = []
    values: dict[int, float | None] = {}
    reasons = []
    counts = {}
    for kind, factor, name in ((ARTERY, ARTERIOLE_FACTOR, "arterioles"), (VEIN, VENULE_FACTOR, "venules")):
        of_kind = sorted((v for v in vessels if v.kind == kind), key=lambda v: v.width_px, reverse=True)
        counts[kind] = len(of_kind)
        if len(of_kind) < VESSELS_PER_KIND:
            values[kind] = None
            reasons.append(f"{len(of_kind)} {name} in zone B, {VESSELS_PER_KIND} needed")
            continue
        chosen = of_kind[:VESSELS_PER_KIND]
        used.extend(chosen)
        values[kind] = knudtson([v.width_px * scale for v in chosen], factor)
    crae, crve = values[ARTERY], values[VEIN]
    avr = crae / crve if crae is not None and crve is not None and crve > 0 else None
    return Calibre(crae, crve, avr, counts[ARTERY], counts[VEIN], method, unit, "; ".join(reasons), tuple(used))
