"""The prediction cache: one 16-bit PNG per image and model under ``<records>/predictions/``, indexed in the
records. A cache that cannot be written only costs time. Qt-free."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from model_core.atomic import write_bytes_atomic
from model_core.errors import ImageReadError
from model_core.imageio import encode_png, png16_to_prob, prob_to_png16, read_raw

from ..paths import file_signature
from .common import _now
from .layout import ImageEntry
from .records import Records


class PredictionCache:
    def __init__(self, meta_dir: Path, within: Path | None, index: Callable[[str, Callable[[Records], None]], bool]):
        self.folder = meta_dir / "predictions"
        self._meta_dir = meta_dir
        self._within = within  # never below a workspace folder that has gone: "Predict all" must not re-create it
        self._index = index

    def path(self, entry: ImageEntry, model_key: str) -> Path:
        digest = file_signature(entry.path, label=entry.key)  # the key, not the path: a moved workspace keeps it
        # The stem is cut (the digest keeps names apart): a long photo name must not make the cache's too long.
        return self.folder / model_key / f"{entry.stem[:100]}-{digest}.png"

    def load(self, entry: ImageEntry, model_key: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        path = self.path(entry, model_key)
        if not path.is_file():
            return None
        try:
            raw = read_raw(path)
        except (ImageReadError, OSError):
            return None
        if raw.dtype != np.uint16 or raw.ndim != 2 or (shape is not None and raw.shape != tuple(shape)):
            return None
        return png16_to_prob(raw)

    def has(self, entry: ImageEntry, model_key: str) -> bool:
        return self.path(entry, model_key).is_file()

    def store(self, entry: ImageEntry, model_key: str, prob: np.ndarray) -> Path | None:
        path = self.path(entry, model_key)
        try:
            write_bytes_atomic(path, encode_png(path, prob_to_png16(prob)), within=self._within)
        except (OSError, ValueError):
            return None
        rel, now = path.relative_to(self._meta_dir).as_posix(), _now()
        self._index(
            f"the prediction cache index of {entry.key}", lambda r: r.index_prediction(entry.key, model_key, rel, now)
        )
        return path
