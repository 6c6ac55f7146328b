"""Training photos as other cameras would take them: the augmentation for camera shift.

A model trained on two data sets meets photos from cameras it has never seen: other optics and sensors (colour
balance, gamma, contrast), other compression (JPEG), other light (uneven illumination, vignetting), other
resolutions (the photo stored smaller or larger, so the FOV normalisation resamples it), and other framing (the
disc cut at the sides by a square sensor, which moves the estimated FOV and so the scale the model sees).

These are made on the RGB photo, before the preprocessing, because green + CLAHE is where most of them would
otherwise be hidden from the patch augmentation: a colour gain changes the green channel's contrast before CLAHE,
JPEG blocks and noise go through CLAHE's amplification. Each rendering then goes through the same FOV estimate,
rescaling and green + CLAHE as a photo at prediction time (``model_core.data.prepare_rendering``).

The ranges are generic, chosen from the spread of public fundus cameras, not fitted to any test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CameraShift:
    """How far a rendering may move from the photo; each effect is drawn independently."""

    size_range: tuple[float, float] = (0.55, 1.6)  # stored size against the original (log-uniform)
    crop_p: float = 0.3  # a square sensor: the FOV cut at the sides
    crop_range: tuple[float, float] = (0.78, 0.95)  # kept width, as a share of the FOV's diameter
    gain_range: tuple[float, float] = (0.7, 1.3)  # per channel
    gamma_range: tuple[float, float] = (0.6, 1.6)
    contrast_range: tuple[float, float] = (0.7, 1.3)
    illumination: float = 0.35  # strength of a smooth gradient plus vignetting
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.3, 1.6)  # px at the rendering's size
    noise_p: float = 0.5
    noise_std: tuple[float, float] = (1.0, 7.0)  # grey levels
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (25, 90)
    scale_jitter: tuple[float, float] = (0.85, 1.18)  # multiplies the FOV normalisation (an FOV misjudged)


def _crop_fov_sides(
    rgb: np.ndarray, masks: list[np.ndarray], fov: np.ndarray, keep: float
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    cols = np.flatnonzero(fov.any(axis=0))
    if cols.size == 0:
        return rgb, masks, fov
    c0, c1 = cols[0], cols[-1] + 1
    width = max(8, round((c1 - c0) * keep))
    x0 = (c0 + c1 - width) // 2
    x0, x1 = max(0, x0), min(fov.shape[1], x0 + width)
    return rgb[:, x0:x1], [m[:, x0:x1] for m in masks], fov[:, x0:x1]


def _illumination_field(h: int, w: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / max(1, h - 1) * 2 - 1, xx / max(1, w - 1) * 2 - 1
    angle = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(angle) * xx + np.sin(angle) * yy
    vignette = xx**2 + yy**2
    field = 1 + strength * (rng.uniform(-1, 1) * gradient - rng.uniform(0, 1) * 0.6 * vignette)
    clipped: np.ndarray = np.clip(field, 0.3, 1.7).astype(np.float32)
    return clipped


def simulate_camera(
    rgb: np.ndarray,
    vessels: np.ndarray,
    fov: np.ndarray,
    rng: np.random.Generator,
    shift: CameraShift = CameraShift(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(photo, vessels, FOV, scale multiplier) as a randomly drawn other camera would give them.

    The photo stays uint8 RGB; the masks move with every geometric change (linear and cut at half for the
    vessels, nearest for the FOV). The scale multiplier is for the FOV normalisation (``scale_jitter``).
    """
    masks: list[np.ndarray] = [vessels.astype(np.float32)]
    if rng.random() < shift.crop_p:
        rgb, masks, fov = _crop_fov_sides(rgb, masks, fov, rng.uniform(*shift.crop_range))
    lo, hi = np.log(shift.size_range[0]), np.log(shift.size_range[1])
    f = float(np.exp(rng.uniform(lo, hi)))
    h, w = fov.shape
    size = (max(16, round(w * f)), max(16, round(h * f)))
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    masks = [cv2.resize(m, size, interpolation=cv2.INTER_LINEAR) for m in masks]
    fov = cv2.resize(fov.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0

    img = rgb.astype(np.float32) / 255.0
    img = img * rng.uniform(*shift.gain_range, size=3).astype(np.float32)
    img = np.clip(img, 0, 1) ** np.float32(rng.uniform(*shift.gamma_range))
    mean = float(img[fov].mean()) if fov.any() else float(img.mean())
    img = (img - mean) * np.float32(rng.uniform(*shift.contrast_range)) + mean
    img = img * _illumination_field(size[1], size[0], rng.uniform(0, shift.illumination), rng)[..., None]
    if rng.random() < shift.blur_p:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(*shift.blur_sigma))
    img = img * 255.0
    if rng.random() < shift.noise_p:
        img = img + rng.normal(0, rng.uniform(*shift.noise_std), img.shape).astype(np.float32)
    img[~fov] *= 0.3  # outside the FOV stays dark, as every camera's mask is, whatever the gains did
    out = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < shift.jpeg_p:
        quality = int(rng.integers(shift.jpeg_quality[0], shift.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            out = np.ascontiguousarray(decoded[..., ::-1])
    return out, masks[0] >= 0.5, fov, float(rng.uniform(*shift.scale_jitter))
