"""Keeping a fine-tuned model good on the photos it was not tuned on, without the original training data.

Three tools, each measured in ``benchmarks/bench_finetune.py``:

* **Weight-space interpolation** (WiSE-FT, Wortsman et al., "Robust fine-tuning of zero-shot models",
  CVPR 2022): the kept weights lie on the line between parent and child, θ = (1−α)·θ_parent + α·θ_child.
  Fine-tuned and parent weights of one network are linearly connected, so the line passes through models
  that keep most of the child's gain on the new photos and most of the parent's behaviour elsewhere. α is
  chosen on the held-out corrections only (`choose_alpha`).
* **Data-free rehearsal**: images the parent's own predictions label, mixed into fine-tuning batches as
  soft targets (distillation), so that the child keeps predicting what the parent did where nobody
  corrected it: synthetic fundus photos (`synthetic_rehearsal`) and the parent's confident pixels on the
  workspace's unreviewed photos (`photo_rehearsal`).
* **Drift** (`prediction_drift`): how much of the vessel map the kept model changes on photos outside the
  corrections, which the gate reports beside its validation Dice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .checkpoint import Checkpoint
from .data import PreparedImage
from .imageio import read_image
from .model import AttentionUNet, build_model, pad_to_multiple, unwrap
from .preprocess import PreprocessConfig, estimate_fov, model_input, resize_to_scale, scale_factor

# α candidates: a tenth is finer than one held-out photo can tell apart.
ALPHA_GRID = tuple(round(a / 10, 1) for a in range(11))
# Share of the best held-out gain the chosen α must keep (see choose_alpha).
KEEP_GAIN = 0.9
# A parent probability this far from 0.5 counts as confident: rehearsal on unreviewed photos teaches only
# those pixels, the ones a grader would most likely have left alone.
CONFIDENT = 0.4


@dataclass
class RehearsalImage:
    """A photo (or synthetic image) as the network sees it, labelled by the parent."""

    name: str
    x: np.ndarray  # float32 (h, w), model input
    target: np.ndarray  # float32 (h, w), the parent's probability
    weight: np.ndarray  # uint8 (h, w), 1 where the target is taught
    fov: np.ndarray  # uint8 (h, w)

    def as_prepared(self) -> PreparedImage:
        """For the patch sampler: the soft target rides in ``vessels`` and the weight in ``fov`` (patch
        centres are drawn where the weight is set)."""
        return PreparedImage(self.name, self.x, self.target, self.weight, 1.0)


def interpolate(
    parent: dict[str, torch.Tensor], child: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """θ = (1−α)·θ_parent + α·θ_child for every floating tensor; counters (BatchNorm's) follow the child."""
    out: dict[str, torch.Tensor] = {}
    for k, c in child.items():
        p = parent[k]
        out[k] = torch.lerp(p.float(), c.float(), float(alpha)).to(c.dtype) if c.is_floating_point() else c.clone()
    return out


@torch.inference_mode()
def probabilities(model: torch.nn.Module, x: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    model.eval()
    h, w = x.shape
    multiple = 2 ** unwrap(model).config.depth
    t = pad_to_multiple(torch.from_numpy(np.ascontiguousarray(x))[None, None].to(device), multiple)
    prob: np.ndarray = torch.sigmoid(model(t).float())[0, 0, :h, :w].cpu().numpy()
    return prob


def network(
    ckpt: Checkpoint, state_dict: dict[str, torch.Tensor] | None = None, device: torch.device | str = "cpu"
) -> AttentionUNet:
    net = build_model(ckpt.model_config)
    net.load_state_dict(state_dict if state_dict is not None else ckpt.state_dict)
    return net.to(device).eval()


def _labelled(
    name: str,
    x: np.ndarray,
    fov: np.ndarray,
    parent_net: torch.nn.Module,
    device: torch.device | str,
    confident_only: bool,
) -> RehearsalImage:
    p = probabilities(parent_net, x, device)
    fov = fov.astype(np.uint8)
    weight = fov.copy()
    if confident_only:
        weight &= (np.abs(p - 0.5) >= CONFIDENT).astype(np.uint8)
    return RehearsalImage(name, x.astype(np.float32), p.astype(np.float32), weight, fov)


def synthetic_rehearsal(
    parent: Checkpoint, count: int = 6, seed: int = 0, device: torch.device | str = "cpu"
) -> list[RehearsalImage]:
    """Synthetic fundus photos (model_core.synthetic) labelled with the parent's probabilities everywhere in
    the field of view: what the parent does on a photo, not what the generator drew."""
    from .synthetic import make_fundus

    net = network(parent, device=device)
    out = []
    for i in range(count):
        fundus = make_fundus(seed=10_000 + seed * 100 + i)
        x = model_input(fundus.image, parent.preprocess)
        out.append(_labelled(f"synthetic-{i}", x, fundus.fov, net, device, confident_only=False))
    return out


def prepare_photo(path: Path, config: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """(model input, FOV) of an unlabelled photo, at the model's working scale, as prediction sees it."""
    rgb = read_image(path)
    fov = estimate_fov(rgb)
    s = scale_factor(fov, config)
    x = model_input(resize_to_scale(rgb, s), config)
    f = resize_to_scale(fov.astype(np.uint8), s, cv2.INTER_NEAREST)
    return x, (f > 0).astype(np.uint8)


def photo_rehearsal(
    parent: Checkpoint, photos: list[Path], limit: int = 8, device: torch.device | str = "cpu"
) -> list[RehearsalImage]:
    """The workspace's unreviewed photos labelled by the parent, taught only where it is confident.

    Unreadable photos are skipped (rehearsal is a help, not a requirement). ``limit`` photos at most,
    spread over the list, bound the time spent labelling them.
    """
    if not photos:
        return []
    step = max(1, math.ceil(len(photos) / limit))
    net = network(parent, device=device)
    out = []
    for path in list(photos)[::step][:limit]:
        try:
            x, fov = prepare_photo(Path(path), parent.preprocess)
        except Exception:  # noqa: BLE001 - an unreadable photo only leaves rehearsal smaller
            continue
        out.append(_labelled(Path(path).name, x, fov, net, device, confident_only=True))
    return out


def prediction_drift(
    parent_threshold: float,
    model: torch.nn.Module,
    threshold: float,
    images: list[RehearsalImage],
    device: torch.device | str = "cpu",
) -> float:
    """Share of the vessel map that changes: 1 − IoU of the parent's mask (from the probabilities it labelled
    the images with, ``target``: no second pass of the parent) and ``model``'s, pooled over the images' FOVs.

    0 means the same vessels everywhere; 0.05 means one pixel in twenty of the two maps together differs.
    """
    changed = union = 0
    for im in images:
        fov = im.fov > 0
        a = (im.target >= parent_threshold) & fov
        b = (probabilities(model, im.x, device) >= threshold) & fov
        changed += int(np.count_nonzero(a ^ b))
        union += int(np.count_nonzero(a | b))
    return changed / union if union else 0.0


def choose_alpha(gains: dict[float, float], keep: float = KEEP_GAIN) -> float:
    """The smallest α whose held-out gain over the parent is at least ``keep`` of the best α's gain.

    The smallest α moves the weights least, so it changes other photos least; ``keep`` trades a tenth of
    the gain measured on the corrections for that. With no gain anywhere the child itself (α = 1) is
    returned, for the gate to reject honestly.
    """
    best = max(gains.values())
    if not best > 0:
        return 1.0
    return min(a for a, g in gains.items() if g >= keep * best)
