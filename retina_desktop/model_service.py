"""The one model instance of the app, loaded lazily on a worker thread and shared under a lock.

Qt-free: worker functions call ``predict`` from any thread; the lock serialises inference so the
"open image" request and a "predict all" run never use the network at the same time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.errors import CheckpointError


@dataclass(frozen=True)
class ModelInfo:
    description: str  # "name vX"
    device: str  # "CPU (2 threads)" / "GPU: ..."
    threshold: float
    path: Path


class ModelHolder:
    def __init__(self, checkpoint_path: str | os.PathLike | None = None):
        self._requested = Path(checkpoint_path) if checkpoint_path is not None else None
        self._lock = threading.RLock()
        self._predictor = None
        self._error: str | None = None
        self.info: ModelInfo | None = None

    def checkpoint_path(self) -> Path:
        """The checkpoint to use; raises CheckpointError if the bundled default model is absent."""
        if self._requested is not None:
            return self._requested
        from model_core.resources import default_model_path

        return default_model_path()

    @property
    def cache_key(self) -> str:
        """Identifies the model for the prediction cache without loading it (path, size, mtime)."""
        try:
            p = self.checkpoint_path().resolve()
            st = p.stat()
            sig = f"{p}|{st.st_size}|{st.st_mtime_ns}"
        except (CheckpointError, OSError):
            sig = "unavailable"
        return hashlib.sha1(sig.encode("utf-8")).hexdigest()[:12]

    @property
    def loaded(self) -> bool:
        return self._predictor is not None

    def load(self) -> ModelInfo:
        """Load once (slow: call from a worker thread); later calls return at once."""
        with self._lock:
            if self._predictor is None:
                from model_core.predictor import VesselPredictor

                path = self.checkpoint_path()
                predictor = VesselPredictor(path)
                self.info = ModelInfo(predictor.description, predictor.device_description, predictor.threshold, path)
                self._predictor = predictor
            return self.info

    def predict_full(self, rgb: np.ndarray):
        with self._lock:
            self.load()
            return self._predictor.predict_full(rgb)
