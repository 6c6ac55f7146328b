"""The reference preprocessing (green channel + CLAHE), field-of-view estimation and scale normalisation.

Users' photos come without field-of-view (FOV) masks, so the FOV is estimated from the image: the
fundus is a bright disc on a dark surround. Cameras differ in resolution and vessel width in pixels
with them, so images are rescaled until their FOV diameter equals the one the model was trained at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from .checks import is_number


@dataclass(frozen=True)
class PreprocessConfig:
    clahe_clip: float = 2.0
    clahe_tiles: int = 8
    # FOV diameter (pixels) that images are rescaled to; None disables scale normalisation.
    fov_diameter: float | None = 540.0

    def __post_init__(self) -> None:
        # Read from checkpoints, which a person can edit: a tile count of 0 crashed OpenCV with SIGFPE.
        clip, tiles, fov = self.clahe_clip, self.clahe_tiles, self.fov_diameter
        if not (is_number(clip) and 0 < clip < 1000):
            raise ValueError(f"clahe_clip must be a number above 0, got {clip!r}")
        if not (is_number(tiles) and isinstance(tiles, int) and 1 <= tiles <= 64):
            raise ValueError(f"clahe_tiles must be a whole number from 1 to 64, got {tiles!r}")
        if fov is not None and not (is_number(fov) and 8 <= fov <= 20000):
            raise ValueError(f"fov_diameter must be off (None) or a number of pixels from 8 to 20000, got {fov!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        known = {k: d[k] for k in ("clahe_clip", "clahe_tiles", "fov_diameter") if k in d}
        return cls(**known)


def green_clahe(rgb: np.ndarray, config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """Green channel with CLAHE, uint8 ``(H, W)``: what the model sees, and what the app can show."""
    green = np.ascontiguousarray(rgb[:, :, 1])
    clahe = cv2.createCLAHE(clipLimit=config.clahe_clip, tileGridSize=(config.clahe_tiles, config.clahe_tiles))
    return clahe.apply(green)


def model_input(rgb: np.ndarray, config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """Float32 ``(H, W)`` in [0, 1]."""
    return green_clahe(rgb, config).astype(np.float32) / 255.0


def estimate_fov(rgb: np.ndarray) -> np.ndarray:
    """Boolean FOV mask estimated from the image itself.

    The surround of a fundus photo is near black in every channel, while even the darkest fundus
    is reddish, so the channel maximum separates them. If no dark surround exists (a cropped or
    synthetic image), the whole image is the FOV.
    """
    h, w = rgb.shape[:2]
    # Work on a small copy: the FOV is a smooth disc and this runs on every 3504x2336 photo.
    scale = min(1.0, 512.0 / max(h, w))
    small = rgb
    if scale < 1:
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    v = cv2.GaussianBlur(small.max(axis=2).astype(np.uint8), (5, 5), 0)
    otsu, _ = cv2.threshold(v, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = float(np.clip(otsu * 0.5, 8, 40))
    fg = (v > thr).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return np.ones((h, w), dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    disc = (labels == largest).astype(np.uint8)
    # Fill holes (dark lesions, the dark fovea) so the FOV is one solid region.
    contours, _ = cv2.findContours(disc, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(disc)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    if filled.mean() < 0.10 or filled.mean() > 0.985:
        return np.ones((h, w), dtype=bool)
    if scale < 1:
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_NEAREST)
    fov: np.ndarray = filled.astype(bool)
    return fov


def fov_diameter(fov: np.ndarray) -> float:
    """Diameter of the FOV disc: its widest extent (cameras crop the disc top and bottom, not sideways)."""
    ys, xs = np.nonzero(fov)
    if xs.size == 0:
        return float(max(fov.shape))
    return float(max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))


def scale_factor(fov: np.ndarray, config: PreprocessConfig) -> float:
    if not config.fov_diameter:
        return 1.0
    s = float(np.clip(config.fov_diameter / fov_diameter(fov), 0.1, 4.0))
    # Within 3 % the resampling blur costs more than the size mismatch does.
    return 1.0 if abs(s - 1.0) < 0.03 else s


def resize_to_scale(arr: np.ndarray, scale: float, interpolation: int | None = None) -> np.ndarray:
    if scale == 1.0:
        return arr
    h, w = arr.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if interpolation is None:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(arr, size, interpolation=interpolation)
