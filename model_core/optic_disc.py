"""Automatic optic disc location, and the disc behind a drawn zone B ring.

``detect_disc``: the optic disc is the brightest region of a fundus photo and the place where the large
vessels converge (Hoover & Goldbaum, IEEE TMI 2003, "fuzzy convergence"; Youssif et al., IEEE TMI 2008, vessel
direction matched filters; both combine the two cues). Here, inside the field of view (FOV) shrunk by a few
pixels so its bright rim does not count:

- brightness: the mean of the red and green channels, averaged over the FOV with a Gaussian of sigma D / 4
  (normalised convolution, so the FOV edge does not darken it);
- convergence: the vessel mask's density, smoothed with a Gaussian of sigma D / 2: the disc is where the most
  and the widest vessels are;
- each is standardised over the FOV (z-score), and the disc centre is where their sum is largest.

Either cue alone finds the centre within 0.25 disc diameters on 10-12 of DRIVE's 20 test photos (bright lesions
and exudates, or dense vessel beds off the disc); their sum on all 20 (``benchmarks/bench_calibre.py``).

The diameter D is a fixed fraction of the FOV diameter, DISC_FOV_RATIO = 1/7: a 45-degree fundus photo spans
about 12-13 mm of retina and the disc is about 1.8 mm across (the 1800 um of the calibre literature; Patton et
al. 2006). The manual rings of DRIVE test imply a disc of about 80 px in a FOV of about 540 px (1/6.8).
Without a FOV mask the FOV is the photo's pixels brighter than a tenth of its red channel's 99th percentile.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from .calibre import Disc

DISC_FOV_RATIO = 1 / 7
FOV_EROSION_FRACTION = 0.03  # of the FOV diameter: the FOV rim is bright in many cameras


def fov_of_photo(image: NDArray[np.generic]) -> NDArray[np.bool_]:
    """The field of view of an RGB fundus photo: red channel above a tenth of its 99th percentile, holes
    filled by taking the largest component's filled outline."""
    red = np.asarray(image)[..., 0].astype(np.float32)
    bright = (red > 0.1 * float(np.percentile(red, 99))).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    if n <= 1:
        return np.zeros(red.shape, np.bool_)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    comp = (labels == biggest).astype(np.uint8)
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(comp)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)
    return np.asarray(filled > 0, np.bool_)


def fov_diameter(fov: NDArray[np.bool_]) -> float:
    """Mean of the FOV's height and width (its bounding box), in pixels; 0 for an empty FOV."""
    ys, xs = np.nonzero(fov)
    if ys.size == 0:
        return 0.0
    return float((ys.max() - ys.min() + 1 + xs.max() - xs.min() + 1) / 2)


def _zscore(a: NDArray[np.float32], where: NDArray[np.bool_]) -> NDArray[np.float32]:
    values = a[where]
    sd = float(values.std())
    return np.asarray((a - float(values.mean())) / (sd if sd > 0 else 1.0), np.float32)


def detect_disc(
    image: NDArray[np.generic],
    vessels: NDArray[np.generic] | None = None,
    fov: NDArray[np.generic] | None = None,
) -> Disc | None:
    """The optic disc of an RGB photo (the module's method), or None when the photo has no field of view.
    ``vessels``: the binary vessel mask (the convergence cue; without it brightness alone decides)."""
    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"a photo must be RGB (H, W, 3), not {rgb.shape}")
    field = fov_of_photo(rgb) if fov is None else np.asarray(fov, np.bool_)
    diameter = fov_diameter(field) * DISC_FOV_RATIO
    if diameter < 4:
        return None
    k = max(3, round(FOV_EROSION_FRACTION * fov_diameter(field)) | 1)
    inside = cv2.erode(field.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    if not inside.any():
        return None
    weight = inside.astype(np.float32)
    lum = 0.5 * rgb[..., 0].astype(np.float32) + 0.5 * rgb[..., 1].astype(np.float32)
    sigma = diameter / 4
    smooth_w = cv2.GaussianBlur(weight, (0, 0), sigma)
    brightness = cv2.GaussianBlur(lum * weight, (0, 0), sigma) / np.maximum(smooth_w, 1e-3)
    score = _zscore(brightness.astype(np.float32), inside)
    if vessels is not None:
        mask = np.asarray(vessels, np.bool_)
        if mask.shape != field.shape:
            raise ValueError(f"vessel mask {mask.shape} and photo {field.shape} differ in size")
        density = np.asarray(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), diameter / 2), np.float32)
        if float(density[inside].std()) > 0:
            score = np.asarray(score + _zscore(density, inside), np.float32)
    score = np.where(inside, score, -np.inf)
    y, x = np.unravel_index(int(np.argmax(score)), score.shape)
    return Disc(float(x), float(y), float(diameter))


def disc_from_zone_b(ring: NDArray[np.generic]) -> Disc:
    """The disc behind a drawn zone B ring (a mask, nonzero inside the ring): a least-squares fit of two
    concentric circles to the ring's inner and outer edges (edges on the image border left out), and the
    diameter D from the radii, inner = D and outer = 1.5 D (``model_core.calibre``'s zone B), as
    D = (inner + outer) / 2.5. Raises ValueError for an empty mask or one without two edges."""
    a = np.asarray(ring) > 0
    if not a.any():
        raise ValueError("the zone B mask is empty")
    p = np.pad(a, 1)
    edge = a & (~p[:-2, 1:-1] | ~p[2:, 1:-1] | ~p[1:-1, :-2] | ~p[1:-1, 2:])
    edge[0, :] = edge[-1, :] = False
    edge[:, 0] = edge[:, -1] = False
    ys, xs = (v.astype(np.float64) for v in np.nonzero(edge))
    if ys.size < 10:
        raise ValueError("the zone B mask has too few edge pixels")
    rhs = xs**2 + ys**2
    sol = np.linalg.lstsq(np.c_[2 * xs, 2 * ys, np.ones_like(xs)], rhs, rcond=None)[0]
    cx, cy = float(sol[0]), float(sol[1])
    r_in = r_out = 0.0
    for _ in range(5):  # split the edges at the middle radius, refit with one centre and two radii
        r = np.hypot(xs - cx, ys - cy)
        outer = r > (np.percentile(r, 5) + np.percentile(r, 95)) / 2
        if outer.all() or not outer.any():
            raise ValueError("the zone B mask is not a ring")
        design = np.c_[2 * xs, 2 * ys, (~outer).astype(np.float64), outer.astype(np.float64)]
        sol = np.linalg.lstsq(design, rhs, rcond=None)[0]
        cx, cy = float(sol[0]), float(sol[1])
        r_in = math.sqrt(max(0.0, float(sol[2]) + cx * cx + cy * cy))
        r_out = math.sqrt(max(0.0, float(sol[3]) + cx * cx + cy * cy))
    # The edge pixels lie half a pixel inside the ring: the drawn radii are r_in - 0.5 and r_out + 0.5.
    return Disc(cx, cy, ((r_in - 0.5) + (r_out + 0.5)) / 2.5)


def zone_iou(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    """Intersection over union of two masks (NaN when both are empty)."""
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else float("nan")
