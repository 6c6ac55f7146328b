"""Whole-image prediction: any size in, a probability map of exactly the input's size out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .checkpoint import Checkpoint, load_checkpoint
from .device import describe_device, select_device
from .imageio import check_image_size
from .model import pad_to_multiple, to_fast_layout
from .preprocess import PreprocessConfig, estimate_fov, model_input, resize_to_scale, scale_factor


@dataclass
class Prediction:
    probability: np.ndarray  # float32 (H, W) in [0, 1], the input's size
    fov: np.ndarray  # bool (H, W): the estimated field of view
    scale: float  # the factor the image was rescaled by before the network saw it


def _blend_window(size: int, overlap: int) -> np.ndarray:
    ramp = np.ones(size, dtype=np.float32)
    if overlap > 0:
        r = np.linspace(0.05, 1.0, overlap, dtype=np.float32)
        ramp[:overlap] = r
        ramp[-overlap:] = r[::-1]
    return np.outer(ramp, ramp)


class VesselPredictor:
    """Runs a checkpoint on fundus photos.

    Each photo is rescaled so that its field of view has the diameter the model was trained at,
    predicted (in tiles when large, so a 3504x2336 photo fits in little memory), and the
    probabilities are mapped back to the photo's own size. Outside the FOV the probability is 0.
    """

    def __init__(
        self,
        checkpoint: Checkpoint | str | os.PathLike[str],
        device: str | torch.device | None = None,
        tta: bool = False,
        tile: int = 1024,
        overlap: int = 64,
    ) -> None:
        self.checkpoint = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.device = select_device(str(device) if device is not None else None)
        self.model = to_fast_layout(self.checkpoint.build().to(self.device).eval())
        self.tta = tta
        self.multiple = 2**self.checkpoint.model_config.depth
        self.tile = max(self.multiple * 4, tile // self.multiple * self.multiple)
        self.overlap = overlap

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.checkpoint.preprocess

    @property
    def threshold(self) -> float:
        return self.checkpoint.threshold

    @property
    def description(self) -> str:
        version = self.checkpoint.version
        # A store version is already named "v001-…" (no "vv001"); the bundled model's is a number ("3").
        return f"{self.checkpoint.name} {version if version.startswith('v') else 'v' + version}"

    @property
    def device_description(self) -> str:
        return describe_device(self.device)

    @torch.inference_mode()
    def _forward(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for one preprocessed float32 (h, w) array, any size."""
        h, w = x.shape
        t = pad_to_multiple(torch.from_numpy(x)[None, None].to(self.device), self.multiple)
        logits = self.model(t)
        if self.tta:
            logits = logits + torch.flip(self.model(torch.flip(t, dims=[3])), dims=[3])
            logits = logits + torch.flip(self.model(torch.flip(t, dims=[2])), dims=[2])
            logits = logits / 3.0
        return torch.sigmoid(logits.float())[0, 0, :h, :w].cpu().numpy()

    def _predict_array(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape
        if h <= self.tile and w <= self.tile:
            return self._forward(x)
        out = np.zeros((h, w), dtype=np.float32)
        weight = np.zeros((h, w), dtype=np.float32)
        step = self.tile - 2 * self.overlap
        for y0 in range(0, max(1, h - 2 * self.overlap), step):
            for x0 in range(0, max(1, w - 2 * self.overlap), step):
                y1, x1 = min(h, y0 + self.tile), min(w, x0 + self.tile)
                ys, xs = max(0, y1 - self.tile), max(0, x1 - self.tile)
                win = _blend_window(self.tile, self.overlap)[: y1 - ys, : x1 - xs]
                out[ys:y1, xs:x1] += self._forward(x[ys:y1, xs:x1]) * win
                weight[ys:y1, xs:x1] += win
        return out / np.maximum(weight, 1e-6)

    def predict_full(self, rgb: np.ndarray) -> Prediction:
        check_image_size(rgb)
        h, w = rgb.shape[:2]
        fov = estimate_fov(rgb)
        s = scale_factor(fov, self.preprocess)
        x = model_input(resize_to_scale(rgb, s), self.preprocess)
        prob = self._predict_array(x)
        if prob.shape != (h, w):
            prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
        prob = np.clip(prob, 0.0, 1.0, out=prob)
        prob[~fov] = 0.0
        return Prediction(prob.astype(np.float32, copy=False), fov, s)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Float32 probability map ``(H, W)`` for an RGB uint8 image ``(H, W, 3)``."""
        return self.predict_full(rgb).probability

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [self.predict(im) for im in images]


def load_predictor(path: str | os.PathLike[str] | None = None, **kwargs: Any) -> VesselPredictor:
    """A predictor for ``path``, or for the bundled default model when ``path`` is None."""
    from .resources import default_model_path

    return VesselPredictor(Path(path) if path is not None else default_model_path(), **kwargs)
