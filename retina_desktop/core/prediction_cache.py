"""The prediction cache: one 16-bit PNG per image and model under ``<records>/predictions/``, indexed in
the records. Functions of a ``Workspace``, which delegates to them; Qt-free."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model_core.atomic import write_bytes_atomic
from model_core.errors import ImageReadError
from model_core.imageio import encode_png, png16_to_prob, prob_to_png16, read_raw

from .paths import file_signature
from .workspace_common import _now

if TYPE_CHECKING:
    from .workspace import ImageEntry


def prediction_path(ws, entry: ImageEntry, model_key: str) -> Path:
    digest = file_signature(entry.path, label=entry.key)  # the key, not the path: a moved workspace keeps its cache
    return ws.meta_dir / "predictions" / model_key / f"{entry.stem}-{digest}.png"


def load_prediction(ws, entry: ImageEntry, model_key: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
    path = ws.prediction_path(entry, model_key)
    if not path.is_file():
        return None
    try:
        raw = read_raw(path)
    except ImageReadError:
        return None
    if raw.dtype != np.uint16 or raw.ndim != 2 or (shape is not None and raw.shape != tuple(shape)):
        return None
    return png16_to_prob(raw)


def has_prediction(ws, entry: ImageEntry, model_key: str) -> bool:
    return ws.prediction_path(entry, model_key).is_file()


def store_prediction(ws, entry: ImageEntry, model_key: str, prob: np.ndarray) -> Path | None:
    path = ws.prediction_path(entry, model_key)
    try:
        # Never below a workspace folder that has gone: "Predict all" must not re-create it at the old path.
        write_bytes_atomic(path, encode_png(path, prob_to_png16(prob)),
                           within=ws.root if ws.meta_in_workspace else None)
    except (OSError, ValueError):
        return None  # a cache that cannot be written only costs time
    rel = path.relative_to(ws.meta_dir).as_posix()
    try:
        with ws._lock:
            ws._records.index_prediction(entry.key, model_key, rel, _now())
    except sqlite3.Error:
        pass  # the index only lists the cache; the file is what counts
    return path
