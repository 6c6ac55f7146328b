"""Brush, eraser, flood fill and small-piece removal on boolean masks.

Every operation edits the mask in place and returns the bounding box it may have changed as
``(y0, y1, x0, x1)`` (half-open), or ``None`` when nothing could change, so the views repaint and the
undo history stores only that rectangle.
"""

from __future__ import annotations

import cv2
import numpy as np

BBox = tuple[int, int, int, int]


def as_uint8_view(mask: np.ndarray) -> np.ndarray:
    """The same memory seen as uint8 0/1, which OpenCV can draw into (bool has no OpenCV type)."""
    if mask.dtype != np.bool_ or not mask.flags.c_contiguous:
        raise ValueError("masks must be C-contiguous boolean arrays")
    return mask.view(np.uint8)


def clip_bbox(bbox: BBox, shape: tuple[int, int]) -> BBox | None:
    y0, y1, x0, x1 = bbox
    y0, x0 = max(0, y0), max(0, x0)
    y1, x1 = min(shape[0], y1), min(shape[1], x1)
    if y0 >= y1 or x0 >= x1:
        return None
    return y0, y1, x0, x1


def union_bbox(a: BBox | None, b: BBox | None) -> BBox | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def paint_segment(
    mask: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], radius: float, value: bool
) -> BBox | None:
    """Draw a round-capped line of the given radius from ``p0`` to ``p1`` (x, y in pixel units).

    Points are pixel coordinates where pixel (i, j) covers [j, j+1) x [i, i+1); a radius of 0.5
    paints exactly the pixels the segment passes through. Drawing segments between successive mouse
    positions leaves no gaps however fast the pointer moves.
    """
    r = max(0.5, float(radius))
    # Pixel centres sit at +0.5; OpenCV draws around integer centres, so shift by -0.5.
    x0, y0 = p0[0] - 0.5, p0[1] - 0.5
    x1, y1 = p1[0] - 0.5, p1[1] - 0.5
    pad = int(np.ceil(r)) + 1
    bbox = clip_bbox(
        (
            int(np.floor(min(y0, y1))) - pad,
            int(np.ceil(max(y0, y1))) + pad + 1,
            int(np.floor(min(x0, x1))) - pad,
            int(np.ceil(max(x0, x1))) + pad + 1,
        ),
        mask.shape,
    )
    if bbox is None:
        return None
    by0, by1, bx0, bx1 = bbox
    # Draw into a window of the mask only: OpenCV then touches just the dirty rectangle.
    window = as_uint8_view(mask)[by0:by1, bx0:bx1]
    shift = 4  # sub-pixel precision for the end points
    f = 1 << shift
    a = (round((x0 - bx0) * f), round((y0 - by0) * f))
    b = (round((x1 - bx0) * f), round((y1 - by0) * f))
    v = 1 if value else 0
    if r <= 0.5:
        cv2.line(window, a, b, v, thickness=1, lineType=cv2.LINE_8, shift=shift)
    else:
        rad = round(r * f)
        cv2.circle(window, a, rad, v, thickness=-1, lineType=cv2.LINE_8, shift=shift)
        cv2.circle(window, b, rad, v, thickness=-1, lineType=cv2.LINE_8, shift=shift)
        if a != b:
            # A thick line as a filled quadrilateral: cv2.line's thickness has no sub-pixel precision.
            d = np.array([b[0] - a[0], b[1] - a[1]], dtype=np.float64)
            n = np.array([-d[1], d[0]]) / np.hypot(*d) * r * f
            quad = (
                np.array(
                    [
                        [a[0] + n[0], a[1] + n[1]],
                        [b[0] + n[0], b[1] + n[1]],
                        [b[0] - n[0], b[1] - n[1]],
                        [a[0] - n[0], a[1] - n[1]],
                    ]
                )
                .round()
                .astype(np.int32)
            )
            cv2.fillConvexPoly(window, quad, v, lineType=cv2.LINE_8, shift=shift)
    return bbox


def segment_footprint(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], radius: float
) -> tuple[BBox, np.ndarray] | None:
    """The pixels ``paint_segment`` would set, as (bbox, boolean window), without touching any mask."""
    r = max(0.5, float(radius))
    pad = int(np.ceil(r)) + 2
    bbox = clip_bbox(
        (
            int(np.floor(min(p0[1], p1[1]))) - pad,
            int(np.ceil(max(p0[1], p1[1]))) + pad,
            int(np.floor(min(p0[0], p1[0]))) - pad,
            int(np.ceil(max(p0[0], p1[0]))) + pad,
        ),
        shape,
    )
    if bbox is None:
        return None
    by0, by1, bx0, bx1 = bbox
    window = np.zeros((by1 - by0, bx1 - bx0), bool)
    # Drawing into the window alone keeps a stroke's cost independent of the photo's size.
    if paint_segment(window, (p0[0] - bx0, p0[1] - by0), (p1[0] - bx0, p1[1] - by0), r, True) is None:
        return None
    return bbox, window


class OpenRegionFill(ValueError):
    """A fill that would turn open background into vessel; the mask is left as it was."""

    def __init__(self, pixels: int, reason: str):
        self.pixels = pixels
        super().__init__(f"{pixels:,} pixels {reason}")


# A hole inside a vessel, or a gap enclosed by vessels, is a small share of the photo.
MAX_FILL_SHARE = 0.05
# A stray speck or a cut-off twig is a small share of the vessels; one click on the vessel tree itself removed
# 27,837 of 28,583 vessel pixels (issue 14), which the eraser, stroke by stroke, does on purpose instead.
MAX_ERASE_SHARE = 0.02


class LargePieceFill(ValueError):
    """A fill that would erase a connected vessel piece over MAX_ERASE_SHARE of the vessel pixels; the mask is
    left as it was."""

    def __init__(self, pixels: int, vessel_pixels: int):
        self.pixels, self.vessel_pixels = pixels, vessel_pixels
        share = pixels / vessel_pixels if vessel_pixels else 1.0
        super().__init__(
            f"that piece has {pixels:,} of the image's {vessel_pixels:,} vessel pixels ({share:.0%}, "
            f"over {MAX_ERASE_SHARE:.0%})"
        )


def flood_fill(mask: np.ndarray, seed: tuple[int, int], value: bool | None = None, guard: bool = False) -> BBox | None:
    """Set the 4-connected region around ``seed`` (x, y) to ``value`` (default: the opposite of the seed).

    Clicking a hole inside a vessel fills it; clicking a vessel piece erases that piece. With ``guard``, a fill
    that would add vessel to a region reaching the image edge or larger than MAX_FILL_SHARE of the image (a
    click on the background, never meant) is undone and raises OpenRegionFill, and one that would erase a piece
    larger than MAX_ERASE_SHARE of the vessel pixels (a click on the vessel tree) is undone and raises
    LargePieceFill.
    """
    x, y = int(seed[0]), int(seed[1])
    h, w = mask.shape
    if not (0 <= x < w and 0 <= y < h):
        return None
    current = bool(mask[y, x])
    if value is None:
        value = not current
    if value == current:
        return None
    vessel_before = int(np.count_nonzero(mask)) if guard and not value else 0
    view = as_uint8_view(mask)
    ff_mask = np.zeros((h + 2, w + 2), np.uint8)
    filled, _, _, rect = cv2.floodFill(view, ff_mask, (x, y), 1 if value else 0, loDiff=0, upDiff=0, flags=4)
    rx, ry, rw, rh = rect
    if guard and value:
        open_edge = rx == 0 or ry == 0 or rx + rw == w or ry + rh == h
        if open_edge or filled > MAX_FILL_SHARE * h * w:
            mask[ff_mask[1:-1, 1:-1].astype(bool)] = current
            raise OpenRegionFill(
                int(filled), "reach the image edge" if open_edge else f"are over {MAX_FILL_SHARE:.0%} of the image"
            )
    if guard and not value and filled > MAX_ERASE_SHARE * vessel_before:
        mask[ff_mask[1:-1, 1:-1].astype(bool)] = current
        raise LargePieceFill(int(filled), vessel_before)
    return (ry, ry + rh, rx, rx + rw) if rw and rh else None


def remove_small_pieces(mask: np.ndarray, min_pixels: int) -> tuple[BBox | None, int]:
    """Delete 8-connected vessel pieces with fewer than ``min_pixels`` pixels.

    Returns the bounding box of everything removed and how many pieces went.
    """
    if min_pixels <= 1 or not mask.any():
        return None, 0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(as_uint8_view(mask), connectivity=8)
    small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < min_pixels) + 1
    if small.size == 0:
        return None, 0
    x0 = int(stats[small, cv2.CC_STAT_LEFT].min())
    y0 = int(stats[small, cv2.CC_STAT_TOP].min())
    x1 = int((stats[small, cv2.CC_STAT_LEFT] + stats[small, cv2.CC_STAT_WIDTH]).max())
    y1 = int((stats[small, cv2.CC_STAT_TOP] + stats[small, cv2.CC_STAT_HEIGHT]).max())
    lut = np.zeros(n, dtype=bool)
    lut[small] = True
    window = (slice(y0, y1), slice(x0, x1))
    mask[window] &= ~lut[labels[window]]
    return (y0, y1, x0, x1), int(small.size)
