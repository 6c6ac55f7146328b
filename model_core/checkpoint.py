"""Versioned checkpoints: config, preprocessing, weights, metadata and a sha256 of the weights.

Loaded with ``torch.load(weights_only=True)``: a checkpoint is data, never code, so a foreign or
malicious file cannot execute anything. The model is rebuilt from the stored config.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_open
from .checks import is_number
from .errors import CheckpointError
from .model import AttentionUNet, ModelConfig, build_model, unwrap
from .preprocess import PreprocessConfig

FORMAT_NAME = "retina-desktop-checkpoint"
FORMAT_VERSION = 1


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """Hash of the tensors themselves (names, shapes, dtypes, values), independent of pickling."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Checkpoint:
    model_config: ModelConfig
    preprocess: PreprocessConfig
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    def build(self) -> AttentionUNet:
        model = build_model(self.model_config)
        model.load_state_dict(self.state_dict)
        model.eval()
        return model

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "unnamed model"))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "?"))

    @property
    def threshold(self) -> float:
        return float(self.metadata.get("threshold", 0.5))


def make_checkpoint(
    model: torch.nn.Module, preprocess: PreprocessConfig, metadata: dict[str, Any] | None = None
) -> Checkpoint:
    inner = unwrap(model)
    # Contiguous: a model run channels-last (model_core.model.to_fast_layout) saves the same file as one that is not.
    state = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in inner.state_dict().items()}
    return Checkpoint(inner.config, preprocess, state, dict(metadata or {}), weights_sha256(state))


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> Path:
    """Write atomically, so an interrupted save never leaves a truncated checkpoint behind."""
    path = Path(path)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model_config": ckpt.model_config.to_dict(),
        "preprocess": ckpt.preprocess.to_dict(),
        "state_dict": ckpt.state_dict,
        "metadata": ckpt.metadata,
        "sha256": weights_sha256(ckpt.state_dict),
    }
    return save_payload(path, payload)


def save_payload(path: Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` of a checkpoint's dictionary, atomically: an interrupted save leaves the former file."""
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(path, "is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(path, "checkpoint file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for truncated/foreign/unsafe files
        kind = "unsafe or foreign content" if "weights_only" in str(exc) else "corrupt or truncated file"
        raise CheckpointError(path, f"not a loadable checkpoint ({kind})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(path, "not a Retina Desktop checkpoint")
    version = payload.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(path, f"checkpoint format version {version!r} is not a version number")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            path, f"checkpoint format version {version} is newer than this program supports ({FORMAT_VERSION})"
        )
    try:
        model_config = ModelConfig.from_dict(payload["model_config"])
        preprocess = PreprocessConfig.from_dict(payload.get("preprocess", {}))
        state = payload["state_dict"]
        metadata = dict(payload.get("metadata", {}))
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise TypeError("state_dict is not a mapping of tensors")
        digest = weights_sha256(state)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(path, f"checkpoint is missing or has a malformed field ({exc})") from None
    if payload.get("sha256") != digest:
        raise CheckpointError(path, "weights do not match their recorded sha256 (file damaged)")
    threshold = metadata.get("threshold", 0.5)
    if not (is_number(threshold) and 0 <= threshold <= 1):
        raise CheckpointError(path, f"its threshold {threshold!r} is not a number between 0 and 1")
    if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
        raise CheckpointError(path, "its weights contain NaN or infinite values (a diverged training run?)")
    if model_config.in_channels != 1:
        raise CheckpointError(path, "is not a vessel model (it reads more than the green channel)")
    ckpt = Checkpoint(model_config, preprocess, state, metadata, digest)
    try:
        build_model(model_config).load_state_dict(state)
    except RuntimeError:
        raise CheckpointError(path, "weights do not fit the recorded model configuration") from None
    return ckpt
