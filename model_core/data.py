"""Data sets on disk, their preparation for the network, and augmented patch sampling.

A data set is a folder with ``images/`` and ``masks/`` (or ``mask/``, the reference layout) paired
by file stem, optionally ``fov/``, optionally under ``train/`` and ``test/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import DatasetError, ImageReadError
from .imageio import is_image_file, read_image, read_mask
from .preprocess import PreprocessConfig, estimate_fov, model_input, resize_to_scale, scale_factor

MASK_DIR_NAMES = ("masks", "mask", "labels", "ground_truth")
# Not "_mask": in DRIVE as distributed, mask/<stem>_mask.gif is the field-of-view disc, not the vessels.
MASK_STEM_SUFFIXES = ("", "_manual1", "_1st_manual", "_gt", "_vessels")


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path | None
    fov: Path | None = None

    @property
    def name(self) -> str:
        return self.image.stem


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _split_root(root: Path, split: str | None) -> Path:
    if (root / "images").is_dir():
        return root
    if split and (root / split / "images").is_dir():
        return root / split
    wanted = f" or {root / split / 'images'}" if split else ""
    raise DatasetError(root, f"no images/ folder found (looked for {root / 'images'}{wanted})")


def _find_by_stem(folder: Path | None, stem: str) -> Path | None:
    if folder is None:
        return None
    by_stem = {}
    for p in list_images(folder):
        by_stem.setdefault(p.stem, p)
    for suffix in MASK_STEM_SUFFIXES:
        if stem + suffix in by_stem:
            return by_stem[stem + suffix]
    return None


def discover(root: str | os.PathLike, split: str | None = None, require_masks: bool = True) -> list[Sample]:
    """Image/mask(/FOV) triples of a data-set folder. ``split`` picks ``train/`` or ``test/`` if present."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "data-set folder not found")
    base = _split_root(root, split)
    mask_dir = next((base / n for n in MASK_DIR_NAMES if (base / n).is_dir()), None)
    fov_dir = base / "fov" if (base / "fov").is_dir() else None
    images = list_images(base / "images")
    if not images:
        raise DatasetError(base / "images", "contains no images")
    if require_masks and mask_dir is None:
        raise DatasetError(base, "no masks/ (or mask/) folder beside images/")
    samples = []
    for img in images:
        mask = _find_by_stem(mask_dir, img.stem)
        if require_masks and mask is None:
            raise DatasetError(img, f"has no mask with the same stem in {mask_dir}")
        samples.append(Sample(img, mask, _find_by_stem(fov_dir, img.stem)))
    if mask_dir is not None:
        paired = {s.mask for s in samples}
        for m in list_images(mask_dir):
            if m not in paired:
                raise DatasetError(m, f"is a mask without an image in {base / 'images'}")
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
        raise DatasetError(sample.mask, f"mask is {vessels.shape[1]}x{vessels.shape[0]} but its image "
                                        f"{sample.image.name} is {rgb.shape[1]}x{rgb.shape[0]}")
    if sample.fov is not None:
        fov = read_mask(sample.fov)
        if fov.shape != rgb.shape[:2]:
            raise DatasetError(sample.fov, "FOV mask size differs from its image")
        return rgb, vessels, fov, True
    return rgb, vessels, estimate_fov(rgb), False


def render_resized(rgb: np.ndarray, vessels: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The photo and its mask as a resized data set stores them (``size`` is width, height): the image
    area-averaged, the mask resized linearly and cut at one half (how retina-kaggle's were made)."""
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(vessels.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) >= 0.5
    return small, mask


def prepare(sample: Sample, config: PreprocessConfig, resample: float | None = None) -> PreparedImage:
    """The sample as the network sees it.

    ``resample`` < 1 first renders the photo and its mask as if saved at that fraction of their size
    (area-averaged image; mask resized linearly and cut at half, as public resized data sets do), so
    validation also measures photos that arrive smaller than the model's working scale.
    """
    rgb, vessels, fov, _ = load_sample(sample)
    name = sample.name
    if resample is not None and resample != 1.0:
        h, w = vessels.shape
        size = (max(8, round(w * resample)), max(8, round(h * resample)))
        rgb, vessels = render_resized(rgb, vessels, size)
        fov = cv2.resize(fov.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        name = f"{name}@{resample:g}"
    # The scale is always measured on the estimated FOV, as at prediction time, so train and predict agree.
    s = scale_factor(estimate_fov(rgb), config)
    rgb = resize_to_scale(rgb, s)
    v = resize_to_scale(vessels.astype(np.float32), s, cv2.INTER_LINEAR) >= 0.5
    f = resize_to_scale(fov.astype(np.uint8), s, cv2.INTER_NEAREST)
    return PreparedImage(name, model_input(rgb, config), v.astype(np.uint8), (f > 0).astype(np.uint8), s)


def augmentation(seed: int | None = None):
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

    def __init__(self, images: list[PreparedImage], patch_size: int, seed: int = 0, augment: bool = True,
                 resample_p: float = 0.0, resample_range: tuple[float, float] = RESAMPLE_RANGE):
        if not images:
            raise ValueError("no training images")
        self.patch = patch_size
        self.resample_p = resample_p
        self.resample_range = resample_range
        self.rng = np.random.default_rng(seed)
        self.aug = augmentation(seed) if augment else None
        half = patch_size // 2
        self.padded = []
        for im in images:
            pad = lambda a: cv2.copyMakeBorder(a, half, half, half, half, cv2.BORDER_REFLECT_101)
            fov_pad = cv2.copyMakeBorder(im.fov, half, half, half, half, cv2.BORDER_CONSTANT, value=0)
            centres = np.argwhere(im.fov > 0)
            if centres.size == 0:
                centres = np.argwhere(np.ones_like(im.fov))
            self.padded.append((pad(im.x), pad(im.vessels), fov_pad, centres))

    def batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs, ys, vs = [], [], []
        for _ in range(batch_size):
            x, y, v, centres = self.padded[self.rng.integers(len(self.padded))]
            cy, cx = centres[self.rng.integers(len(centres))]
            # (cy, cx) in unpadded coordinates is the patch centre; in padded ones it is the top-left.
            sl = np.s_[cy:cy + self.patch, cx:cx + self.patch]
            px, py, pv = x[sl], y[sl], v[sl]
            if self.aug is not None:
                out = self.aug(image=px, masks=[py, pv])
                px, (py, pv) = out["image"], out["masks"]
            if self.resample_p and self.rng.random() < self.resample_p:
                px = self._soften(px)
            xs.append(np.clip(px, 0, 1)); ys.append(py); vs.append(pv)
        return (np.stack(xs)[:, None].astype(np.float32), np.stack(ys)[:, None].astype(np.float32),
                np.stack(vs)[:, None].astype(np.float32))


    def _soften(self, px: np.ndarray) -> np.ndarray:
        """The patch as it looks when its photo was stored at a fraction of the size, then enlarged.

        The mask stays the full-resolution truth: the network learns to recover it from softer input.
        """
        h, w = px.shape[:2]
        f = self.rng.uniform(*self.resample_range)
        small = cv2.resize(px, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def prepare_all(samples: list[Sample], config: PreprocessConfig, on_error=None,
                resample: float | None = None) -> list[PreparedImage]:
    out = []
    for s in samples:
        try:
            out.append(prepare(s, config, resample))
        except (ImageReadError, DatasetError) as exc:
            if on_error is None:
                raise
            on_error(exc)
    return out
