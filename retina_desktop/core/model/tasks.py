"""The functions that run on worker threads. Qt-free: they take a context with ``progress``,
``emit`` and ``cancelled`` and touch only files and arrays, never widgets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from model_core.errors import ImageReadError
from model_core.imageio import read_image
from model_core.preprocess import estimate_fov, green_clahe

from ..workspace import ImageEntry, Workspace, uncertainty_of
from .model_service import ModelHolder, ModelInfo


class TaskContext(Protocol):
    """What a task function gets as ``ctx`` (the UI's ``WorkerContext``; tests pass their own)."""

    @property
    def cancelled(self) -> bool: ...

    def progress(self, done: int, total: int, text: str = "") -> None: ...

    def emit(self, value: object) -> None: ...


@dataclass
class LoadedImage:
    entry: ImageEntry
    rgb: np.ndarray
    model_view: np.ndarray  # green + CLAHE, what the network sees
    fov: np.ndarray
    ground_truth: np.ndarray | None
    ground_truth_problem: str | None  # one line when a saved mask exists but cannot be used
    probability: np.ndarray | None  # from the cache, None when the image still needs predicting


@dataclass
class PredictionResult:
    key: str
    probability: np.ndarray
    fov: np.ndarray
    uncertainty: float
    model: str


@dataclass
class PredictionFailure:
    key: str
    message: str


def load_image(ctx: TaskContext, workspace: Workspace, entry: ImageEntry, model_key: str) -> LoadedImage:
    rgb = read_image(entry.path)
    view = green_clahe(rgb)
    fov = estimate_fov(rgb)
    gt, problem = None, None
    try:
        gt = workspace.load_ground_truth(entry, rgb.shape[:2])
    except ImageReadError as exc:
        problem = str(exc)
    prob = workspace.predictions.load(entry, model_key, rgb.shape[:2])
    return LoadedImage(entry, rgb, view, fov, gt, problem, prob)


def load_model(ctx: TaskContext, holder: ModelHolder) -> ModelInfo:
    return holder.load()


def predict_images(
    ctx: TaskContext,
    holder: ModelHolder,
    workspace: Workspace,
    entries: list[ImageEntry],
    model_key: str,
    skip_cached: bool = False,
    generation: int | None = None,
) -> int:
    """Predict each image, cache it, and emit a PredictionResult or PredictionFailure per image.

    ``generation`` is the model's when the run was asked for (with ``model_key``); a run that starts after
    a switch stops at once rather than cache the new model's maps under the old model's key.
    """
    total, done = len(entries), 0
    generation = holder.generation if generation is None else generation
    for i, entry in enumerate(entries):
        if ctx.cancelled or holder.generation != generation:
            break  # another model became active: its maps must not be cached under this model's key
        ctx.progress(i, total, entry.name)
        if skip_cached and workspace.predictions.has(entry, model_key):
            continue
        try:
            rgb = read_image(entry.path)
            info = holder.load()
            pred = holder.predict_full(rgb)
        except ImageReadError as exc:
            ctx.emit(PredictionFailure(entry.key, str(exc)))
            continue
        except MemoryError:
            ctx.emit(PredictionFailure(entry.key, f"{entry.path}: not enough memory to predict this image"))
            continue
        if holder.generation != generation:
            break
        workspace.predictions.store(entry, model_key, pred.probability)
        ctx.emit(
            PredictionResult(
                entry.key, pred.probability, pred.fov, uncertainty_of(pred.probability, pred.fov), info.description
            )
        )
        done += 1
    ctx.progress(total, total, "")
    return done


THUMB_SIZE = 72


def make_thumbnails(ctx: TaskContext, workspace: Workspace, entries: list[ImageEntry], cache_dir: Path) -> None:
    """Emit ``(key, rgb thumbnail or None)``; thumbnails are cached on disk, keyed by file size and mtime."""
    from model_core.imageio import write_png_atomic

    from ..paths import file_signature

    for entry in entries:
        if ctx.cancelled:
            return
        try:
            cached = cache_dir / f"{file_signature(entry.path, digits=20)}.png"
            if cached.is_file():
                try:
                    ctx.emit((entry.key, read_image(cached)))
                    continue
                except ImageReadError:
                    pass
            rgb = read_image(entry.path)
            h, w = rgb.shape[:2]
            s = THUMB_SIZE / max(h, w)
            thumb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            try:
                write_png_atomic(cached, thumb)
            except OSError:
                pass
            ctx.emit((entry.key, np.ascontiguousarray(thumb)))
        except (ImageReadError, OSError):
            ctx.emit((entry.key, None))
