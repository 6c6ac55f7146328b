"""The one model instance of the app, loaded lazily on a worker thread and shared under a lock.

Qt-free: worker functions call ``predict`` from any thread; the lock serialises inference so the
"open image" request and a "predict all" run never use the network at the same time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model_core.errors import CheckpointError

from ..paths import file_signature

if TYPE_CHECKING:  # both import torch: loaded with the model, not at the app's start
    from model_core.model_store import ModelStore, ModelVersion
    from model_core.predictor import Prediction, VesselPredictor


@dataclass(frozen=True)
class ModelInfo:
    description: str  # "name vX"
    device: str  # "CPU (2 threads)" / "GPU: ..."
    threshold: float
    path: Path


class ModelHolder:
    """``checkpoint_path`` is ``--weights``; without it the user's model store decides (its active
    version, which is the bundled default model until a fine-tuned version is activated)."""

    # A one-line message when the model in use is not the one asked for (a broken active version replaced
    # by the bundled model, a damaged store record), for the status bar; None when all is as chosen.
    notice: str | None = None
    _broken: Path | None = None  # the active version's checkpoint that failed to load

    def __init__(self, checkpoint_path: str | os.PathLike[str] | None = None, store: ModelStore | None = None) -> None:
        self._requested = Path(checkpoint_path) if checkpoint_path is not None else None
        self._store = store
        self._lock = threading.RLock()
        self._predictor: tuple[VesselPredictor, ModelInfo] | None = None
        self.info: ModelInfo | None = None
        self.generation = 0  # bumped by every switch, so late results of the previous model can be told apart

    @property
    def store(self) -> ModelStore:
        if self._store is None:
            from model_core.model_store import ModelStore

            self._store = ModelStore()
        return self._store

    @property
    def explicit(self) -> bool:
        """True while a checkpoint file chosen on the command line (or by ``switch_to``) is used."""
        return self._requested is not None

    def active_version(self) -> ModelVersion | None:
        """The store version in use, or None when an explicit checkpoint file is used."""
        if self._requested is not None:
            return None
        return self.store.active()

    def checkpoint_path(self) -> Path:
        """The checkpoint to use; raises CheckpointError if the bundled default model is absent."""
        if self._requested is not None:
            return self._requested
        version = self.store.active()
        if version is not None and version.path != self._broken:
            return version.path
        from model_core.resources import default_model_path

        return default_model_path()

    def switch_to(self, checkpoint_path: str | os.PathLike[str] | None) -> None:
        """Use another checkpoint from now on (None: follow the store's active version).

        Never waits for a prediction in flight: that one finishes with the model it started with and
        is cached under the old model's key; the next ``load`` reads the new checkpoint.
        """
        self._requested = Path(checkpoint_path) if checkpoint_path is not None else None
        self._predictor = None
        self.info = None
        self.generation += 1

    @property
    def cache_key(self) -> str:
        """Identifies the model for the prediction cache without loading it (path, size, mtime)."""
        try:
            return file_signature(self.checkpoint_path().resolve(), digits=12)  # 12: the caches already on disk
        except (CheckpointError, OSError):
            return "unavailable"

    @property
    def loaded(self) -> bool:
        return self._predictor is not None

    def _load_predictor(self) -> tuple[VesselPredictor, ModelInfo]:
        with self._lock:
            while True:
                loaded, generation = self._predictor, self.generation
                if loaded is not None:
                    return loaded
                from model_core.predictor import VesselPredictor

                path = self.checkpoint_path()
                predictor, path = self._open_or_fall_back(VesselPredictor, path)
                info = ModelInfo(predictor.description, predictor.device_description, predictor.threshold, path)
                loaded = (predictor, info)
                if generation == self.generation:  # not switched while loading: install it
                    self._predictor, self.info = loaded, info
                    return loaded

    def load(self) -> ModelInfo:
        """Load once (slow: call from a worker thread); later calls return at once."""
        return self._load_predictor()[1]

    def predict_full(self, rgb: np.ndarray) -> Prediction:
        with self._lock:
            # A local reference: ``switch_to`` may drop ``_predictor`` from the UI thread meanwhile.
            return self._load_predictor()[0].predict_full(rgb)

    def _open_or_fall_back(
        self, open_predictor: Callable[[Path], VesselPredictor], path: Path
    ) -> tuple[VesselPredictor, Path]:
        """A broken active store version (truncated, foreign) falls back to the bundled model, with a notice
        naming it; a checkpoint chosen explicitly (``--weights``) or the bundled model itself still fails."""
        explicit = self._requested is not None
        problem = self.store.active_problem() if not explicit and hasattr(self.store, "active_problem") else None
        try:
            predictor = open_predictor(path)
        except CheckpointError as exc:
            from model_core.resources import default_model_path

            if self._requested is not None:
                raise
            default = default_model_path()
            if Path(path) == default:
                raise
            version = self.store.active()
            label = version.label if version is not None else Path(path).parent.name
            self._broken = Path(path)
            self.notice = f"Model version {label} could not be loaded ({exc}); using the bundled default model"
            return open_predictor(default), default
        self.notice = problem
        return predictor, path
