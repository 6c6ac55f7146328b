"""Where a workspace's images and masks are: ``ImageEntry`` and ``discover``. Qt-free.

Layouts understood:

* flat: photos directly in the folder; ground truth goes to ``<folder>/ground_truth/``;
* reference: ``images/`` + ``mask/`` (or ``masks/``, ...), optionally under ``train/`` and ``test/``;
  ground truth goes into the mask folder beside each ``images/`` folder, paired by file stem.

The command line reads folders by the same rule: ``model_core.data.image_folders``. No image is decoded here:
thousands stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model_core.atomic import check_writable
from model_core.data import find_mask, image_folders, list_images as _list_images

# The folder a grader's corrections go to when they choose not to save over the data set's own masks.
CORRECTED_DIR_NAME = "corrected"


@dataclass(frozen=True)
class ImageEntry:
    key: str  # the image's path relative to the workspace, without suffix ("train/images/21_training")
    path: Path
    gt_dir: Path
    split: str = ""
    # Where the data set's own mask is when the grader's corrections go to ``corrected/`` (read, never written).
    reference_dir: Path | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def gt_path(self) -> Path:
        return self.gt_dir / f"{self.stem}.png"

    def existing_gt(self) -> Path | None:
        """The ground-truth file paired by stem (``<stem>.png`` first), whatever its format or suffix; with
        corrections kept apart, the correction, else the data set's own mask."""
        for folder in (self.gt_dir, self.reference_dir):
            if folder is None:
                continue
            try:
                found = find_mask(folder, self.stem)
            except OSError:  # a name too long for the filesystem, a folder that cannot be listed: no mask found
                found = None
            if found is not None:
                return found
        return None

    def corrected(self, root: Path) -> ImageEntry:
        """The same image with its ground truth in ``<root>/corrected/<mask folder relative to root>/``."""
        try:
            rel = self.gt_dir.relative_to(root)
        except ValueError:
            rel = Path(self.gt_dir.name)
        return ImageEntry(self.key, self.path, root / CORRECTED_DIR_NAME / rel, self.split, self.gt_dir)


def _images_in(folder: Path) -> list[Path]:
    try:
        return _list_images(folder, natural=True)
    except OSError:
        return []


def discover(root: Path) -> tuple[str, list[ImageEntry]]:
    """The layout name and the images of a folder."""
    entries: list[ImageEntry] = []
    folders = image_folders(root)
    for f in folders:
        prefix = f"{f.split}/" if f.split else ""
        entries += [ImageEntry(f"{prefix}{p.stem}", p, f.masks, f.split) for p in _images_in(f.images)]
    return folders[0].layout, entries


def probe_writable(folder: Path) -> bool:
    """Really try to create a file: permission bits lie on network shares and for root."""
    try:
        check_writable(folder / ".retina-probe")
        return True
    except OSError:
        return False
