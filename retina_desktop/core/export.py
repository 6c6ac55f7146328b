"""Export corrected masks in the reference layout: ``images/`` + ``mask/`` (+ ``overlays/``). Qt-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from model_core.atomic import copy_file_atomic
from model_core.errors import ImageReadError
from model_core.imageio import mask_to_png, read_image, write_png_atomic

from .workspace import ImageEntry, Workspace, WorkspaceError


@dataclass
class ExportOptions:
    destination: Path
    one_value: int = 255  # 255 for 0/255 masks, 1 for 0/1
    overlays: bool = False
    approved_only: bool = False
    overwrite: bool = False


@dataclass
class ExportSummary:
    destination: Path
    written: list[str] = field(default_factory=list)
    skipped_no_mask: list[str] = field(default_factory=list)
    skipped_existing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one-line messages
    cancelled: bool = False

    def text(self) -> str:
        lines = [f"{len(self.written)} mask(s) written to {self.destination}"]
        if self.skipped_no_mask:
            lines.append(f"{len(self.skipped_no_mask)} image(s) skipped: no saved ground truth yet")
        if self.skipped_existing:
            lines.append(f"{len(self.skipped_existing)} image(s) skipped: already in the destination")
        if self.failed:
            lines.append(f"{len(self.failed)} failed:")
            lines.extend("  " + m for m in self.failed[:10])
            if len(self.failed) > 10:
                lines.append(f"  ... and {len(self.failed) - 10} more")
        if self.cancelled:
            lines.append("Export was cancelled before the end.")
        return "\n".join(lines)


def overlay_picture(rgb: np.ndarray, mask: np.ndarray, colour=(0, 255, 120), alpha: float = 0.55) -> np.ndarray:
    out = rgb.copy()
    tint = np.array(colour, dtype=np.float32)
    out[mask] = (out[mask].astype(np.float32) * (1 - alpha) + tint * alpha).astype(np.uint8)
    return out


def export_masks(workspace: Workspace, options: ExportOptions, entries: list[ImageEntry] | None = None,
                 progress: Callable[[int, int, str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> ExportSummary:
    dest = Path(options.destination)
    entries = list(workspace.entries if entries is None else entries)
    # Exporting into the workspace's own folders would overwrite the photos or the ground truth.
    resolved = dest.resolve()
    own = {workspace.root} | {e.gt_dir.resolve() for e in workspace.entries} | {e.path.parent.resolve() for e in workspace.entries}
    if resolved in own or any(o in resolved.parents for o in own - {workspace.root}):
        raise WorkspaceError(f"{dest}: choose a folder outside the workspace's own image and mask folders")
    summary = ExportSummary(dest)
    try:
        for sub in ("images", "mask") + (("overlays",) if options.overlays else ()):
            (dest / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"{dest}: cannot create the export folders ({exc.strerror or exc})") from None
    total = len(entries)
    for i, entry in enumerate(entries):
        if cancelled is not None and cancelled():
            summary.cancelled = True
            break
        if progress is not None:
            progress(i, total, entry.name)
        if options.approved_only and workspace.status(entry.key) != "approved":
            summary.skipped_no_mask.append(entry.key)
            continue
        gt = entry.existing_gt()
        if gt is None:
            summary.skipped_no_mask.append(entry.key)
            continue
        name = entry.stem if not entry.split else f"{entry.split}_{entry.stem}"
        mask_out = dest / "mask" / f"{name}.png"
        image_out = dest / "images" / f"{name}{entry.path.suffix.lower()}"
        if not options.overwrite and (mask_out.exists() or image_out.exists()):
            summary.skipped_existing.append(entry.key)
            continue
        try:
            rgb = read_image(entry.path)
            mask = workspace.load_ground_truth(entry, rgb.shape[:2])
            if mask is None:
                summary.skipped_no_mask.append(entry.key)
                continue
            copy_file_atomic(entry.path, image_out)
            write_png_atomic(mask_out, mask_to_png(mask, options.one_value))
            if options.overlays:
                write_png_atomic(dest / "overlays" / f"{name}.png", overlay_picture(rgb, mask))
            summary.written.append(entry.key)
        except ImageReadError as exc:
            summary.failed.append(str(exc))
        except OSError as exc:
            summary.failed.append(f"{entry.path}: {exc.strerror or exc}")
    if progress is not None:
        progress(total if not summary.cancelled else len(summary.written), total, "done")
    return summary

