"""The calibre part of ``python -m model_core measure``: discs, A/V masks and photos paired with the vessel
masks by file name stem, and one Calibre per mask.

- ``--disc FILE``: CSV with the columns ``image,x,y,diameter`` (pixels; ``image`` is the mask's stem, or its
  file name); a mask it does not list gets empty calibre values. ``--disc auto``: ``model_core.optic_disc``'s
  detection on the photo of the same stem in ``--images DIR`` (and the vessel mask).
- ``--av DIR``: 8-bit A/V masks of the same stems (0 background, 1 artery, 2 vein, 3 uncertain). Without it
  the labels are ``model_core.artery_vein``'s suggestion, from the photo in ``--images``.
- ``--um-per-px`` or ``--disc-um``: the scale (pixels without either).

Each problem with one mask (no disc listed or found, no A/V mask or photo, a size that differs, fewer than six
vessels of a kind) is one line naming the file and the problem; its row keeps its vessel measurements and
gets empty calibre values, never a made-up number.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .calibre import Calibre, Disc, empty_calibre, measure_calibre, method_name
from .checks import require_same_size
from .errors import RetinaInputError

AUTO = "auto"


def read_disc_csv(path: Path) -> dict[str, Disc]:
    """Discs by image stem from a CSV ``image,x,y,diameter``; a bad file raises RetinaInputError."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise RetinaInputError(path, f"cannot read the disc file ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RetinaInputError(path, f"is not a CSV file ({exc})") from None
    discs: dict[str, Disc] = {}
    for line, row in enumerate(rows, start=2):
        if not {"image", "x", "y", "diameter"} <= set(row):
            raise RetinaInputError(path, "needs the columns image,x,y,diameter")
        try:
            disc = Disc(float(row["x"]), float(row["y"]), float(row["diameter"]))
        except (TypeError, ValueError):
            raise RetinaInputError(path, f"line {line}: x, y and diameter must be numbers") from None
        if not (math.isfinite(disc.x) and math.isfinite(disc.y) and disc.diameter > 0):
            raise RetinaInputError(path, f"line {line}: x and y must be finite and the diameter positive")
        discs[Path(str(row["image"]).strip()).stem] = disc
    return discs


def read_av_mask(path: Path) -> NDArray[np.uint8]:
    """An 8-bit A/V mask (0-3); a colour file whose channels agree is read as grey."""
    from .imageio import read_raw

    raw = read_raw(path)
    if raw.ndim == 3:
        channels = raw[..., : min(3, raw.shape[2])]
        if not (channels == channels[..., :1]).all():
            raise RetinaInputError(path, "A/V mask must be grey: 0 background, 1 artery, 2 vein, 3 uncertain")
        raw = channels[..., 0]
    if raw.dtype != np.uint8 or (raw.size and int(raw.max()) > 3):
        raise RetinaInputError(path, "A/V mask must be 8-bit with values 0-3 (background, artery, vein, uncertain)")
    return np.asarray(raw, np.uint8)


def _by_stem(folder: Path, what: str) -> dict[str, Path]:
    from .data import list_images

    if not folder.is_dir():
        raise RetinaInputError(folder, f"{what} folder not found")
    index: dict[str, Path] = {}
    for p in list_images(folder):
        index.setdefault(p.stem, p)
    return index


@dataclass
class CalibreInputs:
    """What ``measure`` was given for calibre; ``calibre_for`` gives one mask's result and its problems."""

    discs: dict[str, Disc] | None  # None: detect
    av: dict[str, Path] | None  # None: suggest from the photo
    images: dict[str, Path] | None
    um_per_px: float | None = None
    disc_um: float | None = None
    av_net: Any = None  # a taught A/V network (model_core.av_net, --av-model) for the suggestion; None: automatic

    @classmethod
    def from_args(
        cls,
        disc: str,
        av: str | None,
        images: str | None,
        um_per_px: float | None,
        disc_um: float | None,
        av_model: str | None = None,
    ) -> CalibreInputs:
        photos = _by_stem(Path(images), "photo") if images else None
        if (disc == AUTO or av is None) and photos is None:
            need = "--disc auto" if disc == AUTO else "calibre without --av (the A/V suggestion)"
            raise RetinaInputError(None, f"{need} needs the photos: give --images DIR")
        discs = None if disc == AUTO else read_disc_csv(Path(disc))
        masks = _by_stem(Path(av), "A/V mask") if av else None
        if av_model is not None and av is not None:
            raise RetinaInputError(Path(av_model), "--av-model suggests the labels that --av gives: use one of them")
        net = None
        if av_model is not None:
            from .av_net import load_av_net

            net = load_av_net(av_model).build()  # CheckpointError names the file
        return cls(discs, masks, photos, um_per_px, disc_um, net)

    @property
    def method(self) -> str:
        return method_name(self.um_per_px, self.disc_um)

    def _photo(self, path: Path, shape: tuple[int, ...]) -> NDArray[np.uint8]:
        from .imageio import read_image

        photo_path = self.images.get(path.stem) if self.images is not None else None
        if photo_path is None:
            raise RetinaInputError(path, "has no photo of the same name in --images")
        photo = read_image(photo_path)
        if photo.shape[:2] != shape:
            raise RetinaInputError(
                photo_path, f"photo is {photo.shape[1]}x{photo.shape[0]}, its mask {shape[1]}x{shape[0]}"
            )
        return photo

    def calibre_for(self, path: Path, mask: NDArray[np.bool_], fov: NDArray[np.bool_] | None) -> tuple[Calibre, str]:
        """The mask's calibre, and the one-line problem ('' when none) naming the file."""
        try:
            photo = None
            if self.discs is None:
                from .optic_disc import detect_disc

                photo = self._photo(path, mask.shape)
                disc = detect_disc(photo, mask, fov)
                if disc is None:
                    raise RetinaInputError(self.images[path.stem] if self.images else path, "no optic disc found")
            else:
                listed = self.discs.get(path.stem)
                if listed is None:
                    raise RetinaInputError(path, "is not listed in the --disc file")
                disc = listed
            labels = self._labels(path, mask, fov, photo)
            result = measure_calibre(mask, labels, disc, self.um_per_px, self.disc_um)
        except RetinaInputError as exc:
            return empty_calibre(exc.problem, self.method), str(exc)
        return result, f"{path}: {result.reason}" if result.reason else ""

    def _labels(
        self, path: Path, mask: NDArray[np.bool_], fov: NDArray[np.bool_] | None, photo: NDArray[np.uint8] | None
    ) -> NDArray[np.uint8]:
        if self.av is None:
            from .artery_vein import suggest_av

            rgb = self._photo(path, mask.shape) if photo is None else photo
            if self.av_net is not None:
                from .av_net import taught_suggestion

                return taught_suggestion(self.av_net, rgb, mask, fov)
            return suggest_av(rgb, mask, fov).labels
        av_path = self.av.get(path.stem)
        if av_path is None:
            raise RetinaInputError(path, "has no A/V mask of the same name in --av")
        labels = read_av_mask(av_path)
        require_same_size(av_path, "A/V mask", labels.shape, path.name, mask.shape)
        return labels
