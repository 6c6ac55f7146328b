"""An image's optic disc and artery/vein labels in the workspace's records, versioned. Qt-free.

Beside the mask's records (``.retina/`` or the fallback folder, ``Workspace.meta_dir``), per image key::

    calibre/<key>/disc.json              {"x": ..., "y": ..., "diameter": ...} in pixels
    calibre/<key>/av.png                 8-bit: 0 background, 1 artery, 2 vein, 3 uncertain
    calibre/<key>/history/disc-0001.json the versions they replaced, numbered oldest first
    calibre/<key>/history/av-0001.png

Keep before replace, as the masks' history does: a file is replaced only after the bytes it held are written to
the next numbered history copy (a copy that cannot be written refuses the save, and the file stays as it was);
every write is atomic (``model_core.atomic``). Saving the bytes already on disk writes nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from model_core.atomic import write_bytes_atomic
from model_core.calibre import Disc
from model_core.calibre_inputs import read_av_mask
from model_core.imageio import encode_png

from .common import HISTORY_DIR_NAME

CALIBRE_DIR_NAME = "calibre"
DISC_FILE, LABELS_FILE = "disc.json", "av.png"


class CalibreRecords:
    def __init__(self, meta_dir: Path) -> None:
        self.meta_dir = Path(meta_dir)

    def folder(self, key: str) -> Path:
        return self.meta_dir / CALIBRE_DIR_NAME / key

    def history(self, key: str) -> list[Path]:
        """The kept versions of both files, oldest first per file."""
        folder = self.folder(key) / HISTORY_DIR_NAME
        return sorted(folder.glob("*-[0-9][0-9][0-9][0-9].*")) if folder.is_dir() else []

    # ------------------------------------------------------------------------------- disc --
    def save_disc(self, key: str, disc: Disc) -> Path:
        data = json.dumps({"x": disc.x, "y": disc.y, "diameter": disc.diameter}, indent=2).encode()
        return self._replace(key, DISC_FILE, data)

    def load_disc(self, key: str) -> Disc | None:
        """The saved disc, or None when none was saved (or the file is not a disc)."""
        try:
            d = json.loads((self.folder(key) / DISC_FILE).read_text())
            return Disc(float(d["x"]), float(d["y"]), float(d["diameter"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # ----------------------------------------------------------------------------- labels --
    def save_labels(self, key: str, labels: NDArray[np.uint8]) -> Path:
        path = self.folder(key) / LABELS_FILE
        return self._replace(key, LABELS_FILE, encode_png(path, np.asarray(labels, np.uint8)))

    def load_labels(self, key: str, shape: tuple[int, int]) -> NDArray[np.uint8] | None:
        """The saved A/V labels, or None when none were saved or they do not fit an image of ``shape``."""
        path = self.folder(key) / LABELS_FILE
        if not path.is_file():
            return None
        try:
            labels = read_av_mask(path)
        except (OSError, ValueError):  # a damaged or foreign file (RetinaInputError is a ValueError)
            return None
        return labels if labels.shape == tuple(shape) else None

    # ---------------------------------------------------------------------------- writing --
    def _replace(self, key: str, name: str, data: bytes) -> Path:
        path = self.folder(key) / name
        try:
            old = path.read_bytes()
        except FileNotFoundError:
            old = None
        if old == data:
            return path
        if old is not None:
            write_bytes_atomic(self._next_history_path(key, name), old)  # kept before replaced
        return write_bytes_atomic(path, data)

    def _next_history_path(self, key: str, name: str) -> Path:
        stem, suffix = name.rsplit(".", 1)
        pattern = re.compile(rf"{re.escape(stem)}-(\d{{4}})\.{re.escape(suffix)}$")
        numbers = [int(m.group(1)) for p in self.history(key) if (m := pattern.match(p.name))]
        return self.folder(key) / HISTORY_DIR_NAME / f"{stem}-{max(numbers, default=0) + 1:04d}.{suffix}"
