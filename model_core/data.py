"""Data sets on disk, their preparation for the network, and augmented patch sampling.

One rule finds the photos of a folder and their masks, for the command line and for the app alike
(:func:`image_folders`):

* reference layout: ``images/`` + a mask folder (``mask/``, ``masks/``, ``ground_truth/``, ``labels/``,
  ``1st_manual/``, ``manual/``), optionally ``fov/``, optionally under ``train/``, ``test/``, ``val/``
  (DRIVE as distributed: ``training/``, ``test/``);
* flat layout: photos directly in the folder, masks in ``ground_truth/`` (where the app saves them); a
  photo without a mask there is one not reviewed yet and is left out.

Masks pair with photos by file stem, also with a ``_manual1``-style suffix (DRIVE's 21_training.tif
goes with 1st_manual/21_manual1.gif); field-of-view masks may carry ``_mask`` (DRIVE's mask/ folder).
"""

from __future__ import annotations

import os
import random
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .errors import DatasetError, ImageReadError
from .imageio import IMAGE_SUFFIXES, is_image_file, read_image, read_mask
from .preprocess import PreprocessConfig, estimate_fov, model_input, resize_to_scale, scale_factor

if TYPE_CHECKING:
    import albumentations as A

# Candidates in order; the first one holding a mask of one of the photos wins (DRIVE ships FOV discs in
# mask/ beside its vessels in 1st_manual/). With none, the first that exists; with none, masks are saved
# to DEFAULT_MASK_DIR.
MASK_DIR_NAMES = ("mask", "masks", "ground_truth", "labels", "1st_manual", "manual")
DEFAULT_MASK_DIR = "mask"
FLAT_MASK_DIR = "ground_truth"
# fov/, or DRIVE's mask/ when it holds <stem>_mask files (and is not the vessel folder).
FOV_DIR_NAMES = ("fov", "mask")
SPLIT_NAMES = ("train", "training", "test", "val", "validation")
SPLIT_ALIASES = {
    "train": ("train", "training"),
    "training": ("train", "training"),
    "val": ("val", "validation"),
    "validation": ("val", "validation"),
}
# Not "_mask": in DRIVE as distributed, mask/<stem>_mask.gif is the field-of-view disc, not the vessels.
MASK_STEM_SUFFIXES = ("", "_manual1", "_1st_manual", "_gt", "_vessels")
FOV_STEM_SUFFIXES = ("", "_mask")
# DRIVE names a photo 21_training.tif and its vessels 21_manual1.gif: the mask's stem drops this part.
IMAGE_STEM_SUFFIXES = ("_training", "_test")


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path | None
    fov: Path | None = None

    @property
    def name(self) -> str:
        return self.image.stem


@dataclass(frozen=True)
class ImageFolder:
    """A folder of photos and where their masks are (``masks`` may not exist yet: masks are saved there)."""

    images: Path
    masks: Path
    fov: Path | None = None
    split: str = ""  # the split sub-folder's name, "" without splits
    layout: str = "reference"  # or "flat"


def natural_key(name: str) -> list[int | str]:
    """Sort key that puts img_2 before img_10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: Path, natural: bool = False) -> list[Path]:
    found = (p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    return sorted(found, key=lambda p: natural_key(p.name)) if natural else sorted(found)


def mask_stems(stem: str) -> list[str]:
    """The stems a vessel mask of the photo ``stem`` may have, best first."""
    out = [stem + s for s in MASK_STEM_SUFFIXES]
    for s in IMAGE_STEM_SUFFIXES:
        if stem.endswith(s) and len(stem) > len(s):
            out += [stem[: -len(s)] + m for m in MASK_STEM_SUFFIXES if m]
    return out


def fov_stems(stem: str) -> list[str]:
    return [stem + s for s in FOV_STEM_SUFFIXES]


def name_max(folder: Path) -> int:
    """The longest file name (in ``name_length``'s units) that ``folder``'s file system takes; ``folder`` may not
    exist yet: its nearest existing parent's file system is asked. 255 where it cannot tell (ext4, NTFS and APFS
    all take 255)."""
    for d in (folder, *folder.parents):
        try:
            limit = os.pathconf(d, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):  # missing folder; no such query; no os.pathconf on Windows
            continue
        return limit if limit > 0 else 255  # -1: no fixed limit
    return 255


def name_length(name: str) -> int:
    """A file name's length as the file system counts it: bytes on POSIX, UTF-16 code units on Windows."""
    return len(name.encode("utf-16-le")) // 2 if os.name == "nt" else len(os.fsencode(name))


def find_mask(folder: Path, stem: str) -> Path | None:
    """The vessel mask of the photo ``stem`` in ``folder``, whatever its image format (no folder listing:
    the app asks this for one photo at a time in folders of thousands)."""
    for s in mask_stems(stem):
        for suffix in IMAGE_SUFFIXES:
            p = folder / f"{s}{suffix}"
            try:
                if p.is_file():
                    return p
            except OSError:  # e.g. a long photo name plus "_manual1.png" is too long a name: no such mask
                continue
    return None


def _by_stem(folder: Path | None) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    if folder is not None:
        for p in list_images(folder):
            by_stem.setdefault(p.stem, p)
    return by_stem


def _pick(by_stem: dict[str, Path], stems: list[str]) -> Path | None:
    return next((by_stem[s] for s in stems if s in by_stem), None)


def _find_by_stem(folder: Path | None, stem: str, stems: Callable[[str], list[str]] = mask_stems) -> Path | None:
    return _pick(_by_stem(folder), stems(stem))


def _pairs_any(folder: Path, image_stems: list[str], stems: Callable[[str], list[str]]) -> bool:
    try:
        by_stem = _by_stem(folder)
    except OSError:
        return False
    return any(_pick(by_stem, stems(s)) is not None for s in image_stems)


def _listed(folder: Path, natural: bool = False) -> list[Path]:
    try:
        return list_images(folder, natural)
    except OSError:
        return []


def _folder(images: Path, base: Path, split: str, layout: str) -> ImageFolder:
    stems = [p.stem for p in _listed(images)]
    if layout == "flat":
        masks = base / FLAT_MASK_DIR
    else:
        present = [base / n for n in MASK_DIR_NAMES if (base / n).is_dir()]
        masks = next(
            (d for d in present if _pairs_any(d, stems, mask_stems)), present[0] if present else base / DEFAULT_MASK_DIR
        )

    def drive_fov(stem: str) -> list[str]:
        return [stem + "_mask"]

    fov = next(
        (
            base / n
            for n in FOV_DIR_NAMES
            if (base / n).is_dir()
            and base / n != masks
            and _pairs_any(base / n, stems, fov_stems if n == "fov" else drive_fov)
        ),
        None,
    )
    return ImageFolder(images, masks, fov, split, layout)


def image_folders(root: str | os.PathLike[str]) -> list[ImageFolder]:
    """The photo folders of ``root`` by the layout rules above: one per split, or one. No photo is decoded."""
    root = Path(root)
    splits = [root / s for s in SPLIT_NAMES if (root / s / "images").is_dir()]
    if splits:
        return [_folder(d / "images", d, d.name, "reference") for d in splits]
    if (root / "images").is_dir():
        return [_folder(root / "images", root, "", "reference")]
    return [_folder(root, root, "", "flat")]


def _select_split(root: Path, folders: list[ImageFolder], split: str | None) -> ImageFolder:
    if not folders[0].split:
        return folders[0]
    wanted = SPLIT_ALIASES.get(split, (split,)) if split else ()
    chosen = next((f for f in folders if f.split in wanted), None)
    if chosen is None:
        looked = " or ".join(str(root / w / "images") for w in wanted)
        raise DatasetError(
            root,
            f"no images/ folder found (looked for {root / 'images'}"
            f"{' or ' + looked if looked else ''}; splits here: "
            f"{', '.join(f.split for f in folders)})",
        )
    return chosen


def discover(root: str | os.PathLike[str], split: str | None = None, require_masks: bool = True) -> list[Sample]:
    """Image/mask(/FOV) triples of a data-set folder. ``split`` picks ``train/`` or ``test/`` if present."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "data-set folder not found")
    folder = _select_split(root, image_folders(root), split)
    images = _listed(folder.images)
    if not images:
        if folder.layout == "flat":
            raise DatasetError(
                root, "no images found (looked in images/, train/images/, test/images/ and in the folder itself)"
            )
        raise DatasetError(folder.images, "contains no images")
    mask_dir = folder.masks if folder.masks.is_dir() else None
    if require_masks and mask_dir is None:
        if folder.layout == "flat":
            raise DatasetError(root, f"no images/ folder and no {FLAT_MASK_DIR}/ folder of masks beside the photos")
        names = ", ".join(f"{n}/" for n in MASK_DIR_NAMES)
        raise DatasetError(folder.images, f"has no mask folder beside it (looked for {names})")
    masks, fovs = _by_stem(mask_dir), _by_stem(folder.fov)
    photos = {p.stem for p in images}
    samples = []
    for img in images:
        # a_gt.png is the mask of the photo a, unless a photo is itself called a_gt
        mask = _pick(masks, [s for s in mask_stems(img.stem) if s == img.stem or s not in photos])
        if require_masks and mask is None:
            if folder.layout == "flat":
                continue  # a folder under review: the photos without a saved mask yet are not a mistake
            raise DatasetError(img, f"has no mask with the same stem in {mask_dir}")
        samples.append(Sample(img, mask, _pick(fovs, fov_stems(img.stem))))
    if require_masks and not samples:
        raise DatasetError(mask_dir, f"holds no mask of the photos in {folder.images}")
    if mask_dir is not None:
        paired = {s.mask for s in samples}
        for m in list_images(mask_dir):
            if m not in paired:
                raise DatasetError(m, f"is a mask without an image in {folder.images}")
    return samples


@dataclass
class PreparedImage:
    """One image as the network sees it: rescaled to the trained FOV diameter, green + CLAHE."""

    name: str
    x: np.ndarray  # float32 (h, w)
    vessels: np.ndarray  # uint8 0/1 (h, w)
    fov: np.ndarray  # uint8 0/1 (h, w)
    scale: float


def load_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(rgb, vessels, fov, fov_given) at native size, with sizes checked."""
    rgb = read_image(sample.image)
    if sample.mask is None:
        raise DatasetError(sample.image, "has no mask")
    vessels = read_mask(sample.mask)
    if vessels.shape != rgb.shape[:2]:
        raise DatasetError(
            sample.mask,
            f"mask is {vessels.shape[1]}x{vessels.shape[0]} but its image "
            f"{sample.image.name} is {rgb.shape[1]}x{rgb.shape[0]}",
        )
    if sample.fov is not None:
        return rgb, vessels, read_fov(sample.fov, rgb.shape[:2]), True
    return rgb, vessels, estimate_fov(rgb), False


def read_fov(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A field-of-view mask for an image of ``shape`` (height, width): of its size, and not empty (every metric
    would be scored on no pixel at all: Dice 1.0 of nothing)."""
    fov = read_mask(path)
    if fov.shape != tuple(shape):
        raise DatasetError(path, "FOV mask size differs from its image")
    if not fov.any():
        raise DatasetError(path, "FOV mask is empty (no pixel inside the field of view)")
    return fov


def render_resized(rgb: np.ndarray, vessels: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The photo and its mask as a resized data set stores them (``size`` is width, height): the image
    area-averaged, the mask resized linearly and cut at one half (how retina-kaggle's were made)."""
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(vessels.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) >= 0.5
    return small, mask


def prepare(
    sample: Sample, config: PreprocessConfig, resample: float | None = None, camera: int | None = None
) -> PreparedImage:
    """The sample as the network sees it.

    ``resample`` < 1 first renders the photo and its mask as if saved at that fraction of their size
    (area-averaged image; mask resized linearly and cut at half, as public resized data sets do), so
    validation also measures photos that arrive smaller than the model's working scale.

    ``camera`` (a seed) renders the photo as another camera would take it first (``model_core.camera``); the
    same seed and photo give the same rendering.
    """
    rgb, vessels, fov, _ = load_sample(sample)
    name = sample.name
    jitter = 1.0
    if camera is not None:
        from .camera import simulate_camera

        rng = np.random.default_rng([camera, zlib.crc32(name.encode())])
        rgb, vessels, fov, jitter = simulate_camera(rgb, vessels, fov, rng)
        name = f"{name}~camera{camera}"
    if resample is not None and resample != 1.0:
        h, w = vessels.shape
        size = (max(8, round(w * resample)), max(8, round(h * resample)))
        rgb, vessels = render_resized(rgb, vessels, size)
        fov = cv2.resize(fov.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        name = f"{name}@{resample:g}"
    # The scale is always measured on the estimated FOV, as at prediction time, so train and predict agree.
    s = scale_factor(estimate_fov(rgb), config) * jitter
    rgb = resize_to_scale(rgb, s)
    v = resize_to_scale(vessels.astype(np.float32), s, cv2.INTER_LINEAR) >= 0.5
    f = resize_to_scale(fov.astype(np.uint8), s, cv2.INTER_NEAREST)
    return PreparedImage(name, model_input(rgb, config), v.astype(np.uint8), (f > 0).astype(np.uint8), s)


def augmentation(seed: int | None = None) -> A.Compose:
    """Geometric and photometric augmentation that keeps one-pixel vessels intact.

    Rotations and flips are exact or interpolate the image only; masks use nearest neighbour. Scale
    changes stay within +-15 % so thin vessels are not erased, and blur is mild.
    """
    import albumentations as A  # imported here: it is slow to import and only training needs it

    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.Affine(scale=(0.85, 1.15), rotate=(-30, 30), border_mode=cv2.BORDER_REFLECT_101, p=0.6),
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.2, p=0.6),
            A.RandomGamma(gamma_limit=(80, 125), p=0.4),
            A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.1, 0.6), p=0.15),
            A.GaussNoise(std_range=(0.005, 0.02), p=0.2),
        ],
        seed=seed,
    )


class PatchSampler:
    """Endless batches of random augmented patches from prepared images (centres inside the FOV)."""

    RESAMPLE_RANGE = (0.7, 0.95)  # size factors of the downsample-upsample round trip (see _soften)

    def __init__(
        self,
        images: list[PreparedImage],
        patch_size: int,
        seed: int = 0,
        augment: bool = True,
        resample_p: float = 0.0,
        resample_range: tuple[float, float] = RESAMPLE_RANGE,
        focus: list[np.ndarray] | None = None,
        focus_p: float = 0.0,
        weights: list[np.ndarray] | None = None,
    ):
        """``focus``: per image, a mask of pixels that ``focus_p`` of the patches are centred on (an image
        with none inside its FOV draws from its whole FOV). ``weights``: per image, a float map of each
        pixel's weight in the loss, cut and augmented with the patch (``weighted_batch``)."""
        if not images:
            raise ValueError("no training images")
        if focus is not None and [f.shape for f in focus] != [im.fov.shape for im in images]:
            raise ValueError("one focus mask per image, of the image's size, is needed")
        if weights is not None and [w.shape for w in weights] != [im.fov.shape for im in images]:
            raise ValueError("one weight map per image, of the image's size, is needed")
        self.patch = patch_size
        self.resample_p = resample_p
        self.resample_range = resample_range
        self.rng = np.random.default_rng(seed)
        self.aug = augmentation(seed) if augment else None
        half = patch_size // 2
        self.padded = []
        self.focus_p = focus_p if focus is not None else 0.0
        self.focus = []
        self.weights = [pad_weights(w, half) for w in weights] if weights is not None else None

        def pad(a: np.ndarray) -> np.ndarray:
            return cv2.copyMakeBorder(a, half, half, half, half, cv2.BORDER_REFLECT_101)

        for i, im in enumerate(images):
            fov_pad = cv2.copyMakeBorder(im.fov, half, half, half, half, cv2.BORDER_CONSTANT, value=0)
            centres = np.argwhere(im.fov > 0)
            if centres.size == 0:
                centres = np.argwhere(np.ones_like(im.fov))
            self.padded.append((pad(im.x), pad(im.vessels), fov_pad, centres))
            if focus is not None and self.focus_p:
                self.focus.append(np.argwhere((focus[i] > 0) & (im.fov > 0)))

    def generators(self) -> list[np.random.Generator | random.Random]:
        """Every random generator the batches draw from (its own, the augmentation's and each transform's), in a
        fixed order, so a resumed run can carry their states on (``model_core.training_state``)."""
        gens: list[np.random.Generator | random.Random] = [self.rng]
        if self.aug is not None:
            for t in [self.aug, *self.aug.transforms]:
                gens += [t.random_generator, t.py_random]
        return gens

    def batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(patches, their vessel masks, their valid masks), each (n, 1, patch, patch) float32."""
        x, y, v, _ = self.weighted_batch(batch_size)
        return x, y, v

    def weighted_batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``batch`` plus the patches' weight maps (ones without ``weights``)."""
        xs, ys, vs, ws = [], [], [], []
        for _ in range(batch_size):
            k = self.rng.integers(len(self.padded))
            x, y, v, centres = self.padded[k]
            # Drawn only when focusing, so runs without it keep their random stream.
            if self.focus_p and self.rng.random() < self.focus_p and len(self.focus[k]):
                centres = self.focus[k]
            cy, cx = centres[self.rng.integers(len(centres))]
            # (cy, cx) in unpadded coordinates is the patch centre; in padded ones it is the top-left.
            sl = np.s_[cy : cy + self.patch, cx : cx + self.patch]
            px, py, pv = x[sl], y[sl], v[sl]
            pw = self.weights[k][sl] if self.weights is not None else None
            if self.aug is not None:
                # The weight map goes with the masks only when there is one: the parameters drawn per call
                # do not depend on how many masks there are, and runs without weights keep their stream.
                out = self.aug(image=px, masks=[py, pv] if pw is None else [py, pv, pw])
                px, py, pv = out["image"], out["masks"][0], out["masks"][1]
                if pw is not None:
                    pw = out["masks"][2]
            if self.resample_p and self.rng.random() < self.resample_p:
                px = self._soften(px)
            xs.append(np.clip(px, 0, 1))
            ys.append(py)
            vs.append(pv)
            ws.append(pw if pw is not None else np.ones(py.shape, np.float32))
        return (
            np.stack(xs)[:, None].astype(np.float32),
            np.stack(ys)[:, None].astype(np.float32),
            np.stack(vs)[:, None].astype(np.float32),
            np.stack(ws)[:, None].astype(np.float32),
        )

    def _soften(self, px: np.ndarray) -> np.ndarray:
        """The patch as it looks when its photo was stored at a fraction of the size, then enlarged.

        The mask stays the full-resolution truth: the network learns to recover it from softer input.
        """
        h, w = px.shape[:2]
        f = self.rng.uniform(*self.resample_range)
        small = cv2.resize(px, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def pad_weights(weights: np.ndarray, half: int) -> np.ndarray:
    """A weight map padded as the sampler pads its image (mirrored), in float32."""
    return cv2.copyMakeBorder(weights.astype(np.float32), half, half, half, half, cv2.BORDER_REFLECT_101)


def prepare_all(
    samples: list[Sample],
    config: PreprocessConfig,
    on_error: Callable[[ImageReadError | DatasetError], None] | None = None,
    resample: float | None = None,
    camera: int | None = None,
) -> list[PreparedImage]:
    out = []
    for s in samples:
        try:
            out.append(prepare(s, config, resample, camera))
        except (ImageReadError, DatasetError) as exc:
            if on_error is None:
                raise
            on_error(exc)
    return out
