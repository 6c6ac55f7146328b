"""Export corrected masks in the reference layout: ``images/`` + ``mask/`` (+ ``overlays/``). Qt-free.

An exported image with calibre records also gets them, in the formats ``python -m model_core measure`` reads, so an
export round-trips into the command line (``--av DEST/av --disc DEST/disc.csv``):

* ``av/<stem>.png``: its artery/vein labels, 8-bit (0 background, 1 artery, 2 vein, 3 uncertain), the mask's stem;
* ``disc.csv``: ``image,x,y,diameter`` in pixels, one row per image with a disc (rows of earlier exports kept);
* ``calibre.csv``: ``image`` and CRAE, CRVE, AVR, the vessels counted and ``calibre_method``, which records the
  workspace's scale (pixels, µm per pixel or an assumed disc diameter).
"""

from __future__ import annotations

import csv
import filecmp
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from model_core.atomic import copy_file_atomic, write_bytes_atomic
from model_core.calibre import CALIBRE_COLUMNS, Calibre, Disc
from model_core.errors import ImageReadError
from model_core.imageio import mask_to_png, read_image, read_mask, write_png_atomic

from ..workspace import ImageEntry, Workspace, WorkspaceError

if TYPE_CHECKING:
    from model_core.morphometry import VesselMeasurements

    from ..model.tasks import TaskContext


@dataclass
class ExportOptions:
    destination: Path
    one_value: int = 255  # 255 for 0/255 masks, 1 for 0/1
    overlays: bool = False
    approved_only: bool = False
    overwrite: bool = False  # write even files whose content is already the same
    replace_stale: bool = True  # a destination mask that differs from the workspace's is replaced (else listed)


@dataclass
class ExportSummary:
    destination: Path
    written: list[str] = field(default_factory=list)
    skipped_no_mask: list[str] = field(default_factory=list)
    skipped_not_approved: list[str] = field(default_factory=list)  # has work, left out by "approved only"
    skipped_existing: list[str] = field(default_factory=list)  # identical content already there
    replaced: list[str] = field(default_factory=list)  # a stale (different) mask in the destination was replaced
    stale: list[str] = field(default_factory=list)  # differs from the destination, left as it is (replace_stale off)
    failed: list[str] = field(default_factory=list)  # one-line messages
    cancelled: bool = False
    discs: dict[str, Disc] = field(default_factory=dict)  # by exported stem: written to disc.csv
    calibres: dict[str, Calibre] = field(default_factory=dict)  # by exported stem: written to calibre.csv
    av_written: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"{len(self.written)} mask(s) written to {self.destination}"]
        if self.skipped_no_mask:
            lines.append(f"{len(self.skipped_no_mask)} image(s) skipped: no saved ground truth yet")
        if self.skipped_not_approved:
            lines.append(
                f"{len(self.skipped_not_approved)} image(s) skipped: not approved (only approved images were asked for)"
            )
        if self.replaced:
            lines.append(f"{len(self.replaced)} older mask(s) in the destination replaced by the current version")
        if self.stale:
            lines.append(
                f"{len(self.stale)} mask(s) in the destination differ from the workspace and were left as "
                f"they are: {', '.join(self.stale[:5])}" + (" …" if len(self.stale) > 5 else "")
            )
        if self.skipped_existing:
            lines.append(f"{len(self.skipped_existing)} image(s) skipped: already in the destination, unchanged")
        if self.failed:
            lines.append(f"{len(self.failed)} failed:")
            lines.extend("  " + m for m in self.failed[:10])
            if len(self.failed) > 10:
                lines.append(f"  ... and {len(self.failed) - 10} more")
        if self.discs or self.av_written:
            lines.append(
                f"Calibre: {len(self.av_written)} artery/vein mask(s) in av/, {len(self.discs)} disc(s) in disc.csv"
            )
        if self.cancelled:
            lines.append("Export was cancelled before the end.")
        return "\n".join(lines)


def overlay_picture(
    rgb: NDArray[np.uint8], mask: NDArray[np.bool_], colour: tuple[int, int, int] = (0, 255, 120), alpha: float = 0.55
) -> NDArray[np.uint8]:
    out: NDArray[np.uint8] = rgb.copy()  # declared: numpy's stubs type copy() as Any for Python 3.10
    tint = np.array(colour, dtype=np.float32)
    out[mask] = (out[mask].astype(np.float32) * (1 - alpha) + tint * alpha).astype(np.uint8)
    return out


def _same_mask(path: Path, mask: np.ndarray) -> bool:
    """Same vessels, whatever the 0/1 or 0/255 coding of an earlier export."""
    try:
        old = read_mask(path)
    except ImageReadError:
        return False
    return old.shape == mask.shape and bool(np.array_equal(old, mask))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def _export_folders(workspace: Workspace, dest: Path, options: ExportOptions) -> None:
    """Refuse a destination inside the workspace's own folders (exporting there would overwrite the photos or the
    ground truth), and make the export's folders."""
    resolved = dest.resolve()
    own = (
        {workspace.root}
        | {e.gt_dir.resolve() for e in workspace.entries}
        | {e.path.parent.resolve() for e in workspace.entries}
    )
    if resolved in own or any(o in resolved.parents for o in own - {workspace.root}):
        raise WorkspaceError(f"{dest}: choose a folder outside the workspace's own image and mask folders")
    try:
        for sub in ("images", "mask") + (("overlays",) if options.overlays else ()):
            (dest / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"{dest}: cannot create the export folders ({exc.strerror or exc})") from None


def _export_one(workspace: Workspace, entry: ImageEntry, options: ExportOptions, summary: ExportSummary) -> None:
    """Export one image with a saved mask; what happened is noted in ``summary``."""
    dest = summary.destination
    name = entry.stem if not entry.split else f"{entry.split}_{entry.stem}"
    mask_out = dest / "mask" / f"{name}.png"
    image_out = dest / "images" / f"{name}{entry.path.suffix.lower()}"
    try:
        rgb = read_image(entry.path)
        mask = workspace.load_ground_truth(entry, rgb.shape[:2], remember=False)
        if mask is None:
            summary.skipped_no_mask.append(entry.key)
            return
        png = mask_to_png(mask, options.one_value)
        # Content, not names, decides: an older export of a since-corrected mask must not survive.
        mask_same = mask_out.exists() and _same_mask(mask_out, mask)
        image_same = image_out.exists() and _same_file(entry.path, image_out)
        if mask_same and image_same and not options.overwrite:
            _export_calibre(workspace, entry, name, mask, summary)  # labels corrected since are exported all the same
            summary.skipped_existing.append(entry.key)
            return
        stale = mask_out.exists() and not mask_same
        if stale and not options.replace_stale and not options.overwrite:
            summary.stale.append(entry.key)
            return
        if not image_same or options.overwrite:
            copy_file_atomic(entry.path, image_out)
        if not mask_same or options.overwrite:
            write_png_atomic(mask_out, png)
        if options.overlays:
            write_png_atomic(dest / "overlays" / f"{name}.png", overlay_picture(rgb, mask))
        _export_calibre(workspace, entry, name, mask, summary)
        (summary.replaced if stale else summary.written).append(entry.key)
    except ImageReadError as exc:
        summary.failed.append(str(exc))
    except OSError as exc:
        summary.failed.append(f"{entry.path}: {exc.strerror or exc}")


def _export_calibre(
    workspace: Workspace, entry: ImageEntry, name: str, mask: np.ndarray, summary: ExportSummary
) -> None:
    """The image's A/V labels (``av/<name>.png``) and its disc and calibre (for the CSVs), if it has them."""
    from model_core.calibre import empty_calibre, measure_calibre

    from ..workspace.calibre_records import CalibreFileDamaged, scale_of

    try:
        disc = workspace.calibre.read_disc(entry.key)
        labels = workspace.calibre.read_labels(entry.key, mask.shape)
    except CalibreFileDamaged as exc:
        summary.failed.append(f"{exc}; its calibre was not exported")
        return
    if labels is not None:
        write_png_atomic(summary.destination / "av" / f"{name}.png", np.asarray(labels, np.uint8))
        summary.av_written.append(entry.key)
    if disc is not None:
        summary.discs[name] = disc
        if labels is not None:  # as the app shows them: the same mask, labels, disc and scale
            try:
                summary.calibres[name] = measure_calibre(mask, labels, disc, *scale_of(workspace.setting))
            except ValueError as exc:
                summary.calibres[name] = empty_calibre(str(exc))


def _merged_csv(path: Path, columns: tuple[str, ...], rows: dict[str, dict[str, object]]) -> bytes:
    """``rows`` (by image) over the rows an earlier export left in ``path`` (other images stay)."""
    old: dict[str, dict[str, object]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is not None and tuple(reader.fieldnames) == columns:
                old = {str(r["image"]): dict(r) for r in reader}
    except (OSError, UnicodeDecodeError, csv.Error):
        old = {}  # a foreign or damaged file is replaced by this export's rows
    merged = {**old, **rows}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for image in sorted(merged):
        writer.writerow(["" if merged[image].get(c) is None else merged[image][c] for c in columns])
    return text.getvalue().encode("utf-8")


def _write_calibre_tables(summary: ExportSummary) -> None:
    dest = summary.destination
    try:
        if summary.discs:
            discs: dict[str, dict[str, object]] = {
                n: {"image": n, "x": repr(d.x), "y": repr(d.y), "diameter": repr(d.diameter)}
                for n, d in summary.discs.items()
            }
            write_bytes_atomic(
                dest / "disc.csv", _merged_csv(dest / "disc.csv", ("image", "x", "y", "diameter"), discs)
            )
        if summary.calibres:
            columns = ("image", *CALIBRE_COLUMNS)
            rows: dict[str, dict[str, object]] = {
                n: {"image": n, **{k: (repr(v) if isinstance(v, float) else v) for k, v in c.as_row().items()}}
                for n, c in summary.calibres.items()
            }
            write_bytes_atomic(dest / "calibre.csv", _merged_csv(dest / "calibre.csv", columns, rows))
    except OSError as exc:
        summary.failed.append(f"{dest}: the calibre tables could not be written ({exc.strerror or exc})")


def export_masks(
    workspace: Workspace,
    options: ExportOptions,
    entries: list[ImageEntry] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ExportSummary:
    dest = Path(options.destination)
    entries = list(workspace.entries if entries is None else entries)
    _export_folders(workspace, dest, options)
    summary = ExportSummary(dest)
    total = len(entries)
    for i, entry in enumerate(entries):
        if cancelled is not None and cancelled():
            summary.cancelled = True
            break
        if progress is not None:
            progress(i, total, entry.name)
        if entry.existing_gt() is None:
            summary.skipped_no_mask.append(entry.key)
        elif options.approved_only and workspace.status(entry.key) != "approved":
            summary.skipped_not_approved.append(entry.key)
        else:
            _export_one(workspace, entry, options, summary)
    _write_calibre_tables(summary)
    if progress is not None:
        progress(total if not summary.cancelled else len(summary.written), total, "done")
    return summary


def workspace_measurements(
    ctx: TaskContext | None, workspace: Workspace, csv_path: Path | None = None
) -> tuple[list[tuple[str, VesselMeasurements]], list[str]]:
    """Vessel measurements (``model_core.morphometry``) of every saved mask, inside the photo's estimated field
    of view as in the review panel; written as the CLI's CSV when ``csv_path`` is given. Returns
    ``([(image key, VesselMeasurements)], [one-line problems])``; images without a mask are left out."""
    from model_core.morphometry import measure, write_measurements_csv
    from model_core.preprocess import estimate_fov

    rows: list[tuple[str, VesselMeasurements]] = []
    problems: list[str] = []
    entries = [e for e in workspace.entries if e.existing_gt() is not None]
    for i, e in enumerate(entries):
        if ctx is not None:
            if ctx.cancelled:
                break
            ctx.progress(i, len(entries), e.name)
        gt = e.existing_gt()
        if gt is None:  # deleted since the list above was made
            continue
        try:
            mask = read_mask(gt)
            fov = estimate_fov(read_image(e.path))
        except (ImageReadError, OSError) as exc:
            problems.append(str(exc).splitlines()[0])
            continue
        if fov.shape != mask.shape:
            problems.append(
                f"{gt}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                f"{fov.shape[1]}x{fov.shape[0]}; not measured"
            )
            continue
        rows.append((e.key, measure(mask, fov)))
    if ctx is not None:
        ctx.progress(len(entries), len(entries), "")
    if csv_path is not None:
        write_measurements_csv(csv_path, rows)
    return rows, problems
