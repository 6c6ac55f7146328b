"""Synthetic fundus photographs with known vessel masks.

Used by the tests (a model must overfit one of them) and by the app's built-in demo workspace. A
tree of branching, tapering, gently curving vessels grows from the optic disc; the image has the
orange fundus colour, a bright disc, a darker macula, vignetting, sensor noise and a black surround.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class SyntheticFundus:
    image: np.ndarray  # uint8 RGB (H, W, 3)
    vessels: np.ndarray  # bool (H, W)
    fov: np.ndarray  # bool (H, W)


def _grow(
    lines: dict[int, list[np.ndarray]],
    rng: np.random.Generator,
    x: float,
    y: float,
    angle: float,
    width: float,
    length: float,
    depth: int,
    ss: int,
) -> None:
    step = 4.0 * ss
    travelled = 0.0
    curvature = rng.normal(0, 0.02)
    next_branch = rng.uniform(0.15, 0.35) * length
    while travelled < length and width >= 0.6:
        curvature = 0.9 * curvature + rng.normal(0, 0.015)
        angle += curvature
        nx, ny = x + step * math.cos(angle), y + step * math.sin(angle)
        thickness = max(1, round(width * ss))
        lines.setdefault(thickness, []).append(np.array([[int(x), int(y)], [int(nx), int(ny)]], np.int32))
        x, y = nx, ny
        travelled += step
        width *= 0.997
        if depth > 0 and travelled >= next_branch:
            side = rng.choice([-1.0, 1.0])
            child_w = width * rng.uniform(0.55, 0.8)
            _grow(
                lines,
                rng,
                x,
                y,
                angle + side * rng.uniform(0.4, 0.9),
                child_w,
                (length - travelled) * rng.uniform(0.5, 0.9),
                depth - 1,
                ss,
            )
            width *= 0.85
            next_branch = travelled + rng.uniform(0.15, 0.3) * length


def make_fundus(height: int = 584, width: int = 565, seed: int = 0, fov_fraction: float = 0.93) -> SyntheticFundus:
    rng = np.random.default_rng(seed)
    ss = 2  # draw vessels at twice the resolution so thin ones come out anti-aliased
    H, W = height * ss, width * ss
    cy, cx = H / 2, W / 2
    radius = fov_fraction * min(H, W) / 2
    side = rng.choice([-1, 1])
    disc = (cx + side * 0.45 * radius, cy + rng.uniform(-0.08, 0.08) * radius)
    disc_r = 0.13 * radius

    canvas = np.zeros((H, W), dtype=np.float32)
    # The segments, by thickness, drawn with one call each: a call per segment (2,400 of them) released and
    # re-took the GIL each time, and behind a busy thread (torch loading at launch) every re-take waited.
    lines: dict[int, list[np.ndarray]] = {}
    scale = radius / ss / 270.0  # widths (output pixels) are tuned for a DRIVE-sized FOV
    base_w = 6.0 * scale
    towards_macula = 0.0 if side < 0 else math.pi
    away = towards_macula + math.pi
    for a in (towards_macula - 0.9, towards_macula + 0.9, away - 0.6, away + 0.6):
        _grow(
            lines,
            rng,
            disc[0],
            disc[1],
            a + rng.normal(0, 0.1),
            base_w * rng.uniform(0.8, 1.1),
            radius * rng.uniform(1.1, 1.5),
            4,
            ss,
        )
    for _ in range(4):
        a = rng.uniform(0, 2 * math.pi)
        _grow(lines, rng, disc[0], disc[1], a, base_w * 0.45, radius * 0.6, 2, ss)
    for thickness in sorted(lines, reverse=True):
        cv2.polylines(canvas, lines[thickness], False, 1.0, thickness=thickness, lineType=cv2.LINE_AA)

    soft = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    # float32 throughout, and colour arithmetic per channel on (H, W) planes: the float64 (H, W, 3) temporaries
    # made the demo workspace's six images take 0.5 s on the launch path.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.hypot(xx - np.float32(cx / ss), yy - np.float32(cy / ss)) / np.float32(radius / ss)
    fov = r <= 1.0
    vessels = (soft >= 0.5) & fov
    soft = np.clip(soft, 0, 1) * fov

    # Fundus colour with smooth low-frequency variation and vignetting.
    noise_lo = cv2.resize(rng.normal(0, 1, (8, 8)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    vignette = np.clip(1.0 - 0.45 * r**2.5, 0.2, 1.0).astype(np.float32)
    disc_d = np.hypot(xx - np.float32(disc[0] / ss), yy - np.float32(disc[1] / ss)) / np.float32(disc_r / ss)
    disc_glow = np.exp(-(disc_d**4))
    mac = (cx - side * 0.35 * radius) / ss, cy / ss
    macula = np.exp(-((xx - mac[0]) ** 2 + (yy - mac[1]) ** 2) / np.float32(2 * (0.12 * radius / ss) ** 2))
    darken = (1 - 0.35 * macula) * (1 - 0.75 * soft)
    vessel_weight = 0.75 * soft * vignette
    noise = rng.normal(0, 2.5, (height, width, 3))
    img = np.empty((height, width, 3), np.uint8)
    for c, (mean, spread, disc_colour, vessel_colour) in enumerate(
        ((200, 10, 250, 130), (95, 8, 220, 35), (45, 5, 150, 25))
    ):
        base = (mean + spread * noise_lo) * vignette
        base = base * (1 - disc_glow) + np.float32(disc_colour) * disc_glow
        plane = base * darken + np.float32(vessel_colour) * vessel_weight + noise[:, :, c]
        img[:, :, c] = np.clip(plane, 0, 255) * fov
    return SyntheticFundus(img, vessels, fov)
