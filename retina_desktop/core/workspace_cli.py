"""``retina-desktop workspace ...``: the workspace's records, history and checks, without a window. Qt-free.

    retina-desktop workspace status WS [--json]
    retina-desktop workspace import WS SOURCE --reviewer NAME [--av DIR] [--disc FILE]
    retina-desktop workspace history WS IMAGE [--json]
    retina-desktop workspace restore WS IMAGE SHA256
    retina-desktop workspace verify WS

SOURCE is a folder of masks, or an export of the app (``images/ mask/ av/ disc.csv``): then its masks, artery/vein
labels and discs are all imported, each as a new version beside the ones already recorded, never in their place.
IMAGE is the image's key as ``status`` lists it (the file stem in a flat folder). Exit status: 0 done,
1 refused files / problems found / not restored, 2 bad arguments or an unusable workspace. Errors are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import numpy as np

from model_core.calibre import Disc
from model_core.errors import ImageReadError
from model_core.imageio import is_image_file, read_vessel_mask

from .workspace import ImageEntry, SaveConflict, Workspace, WorkspaceError, read_mask_or_none, readable_time


class _ImageStatus(TypedDict):
    """One image of ``status`` (a row of the table, an object of the JSON output)."""

    key: str
    status: str
    uncertainty: float | None
    mask: str | None
    versions: int


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="retina-desktop workspace",
        description="Inspect, import into, restore and check a workspace without the window.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("status", help="each image's status, mask and number of versions")
    s.add_argument("workspace", metavar="WS")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser(
        "import",
        help="save each mask of a folder (paired by file stem) as a new version; from an export of the app, its "
        "artery/vein labels and discs too",
    )
    s.add_argument("workspace", metavar="WS")
    s.add_argument("masks", metavar="SOURCE", help="a folder of masks, or an export folder (with mask/, av/, disc.csv)")
    s.add_argument("--reviewer", required=True, metavar="NAME")
    s.add_argument("--av", metavar="DIR", help="8-bit artery/vein masks (0-3) by image stem (default: SOURCE/av)")
    s.add_argument("--disc", metavar="FILE", help="optic discs, CSV image,x,y,diameter (default: SOURCE/disc.csv)")
    s = sub.add_parser("history", help="every recorded version of one image")
    s.add_argument("workspace", metavar="WS")
    s.add_argument("image", metavar="IMAGE")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("restore", help="save an earlier version of an image as its new version")
    s.add_argument("workspace", metavar="WS")
    s.add_argument("image", metavar="IMAGE")
    s.add_argument("sha256", metavar="SHA256")
    s.add_argument("--reviewer", metavar="NAME")
    s = sub.add_parser("verify", help="check every mask, history file and record (like git fsck); exit 0 or 1")
    s.add_argument("workspace", metavar="WS")
    s = sub.add_parser(
        "teach-av",
        help="teach the artery/vein suggestion from the saved labels (as Edit > Teach artery/vein); "
        "in use when the gate accepts, or with --use after an ask",
    )
    s.add_argument("workspace", metavar="WS")
    s.add_argument("--steps", type=int, metavar="N", help="training steps (default 1500)")
    s.add_argument("--use", action="store_true", help="put it in use when the gate asks (never when it rejects)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        ws = Workspace(args.workspace)
    except WorkspaceError as exc:
        return _fail(str(exc), 2)
    code: int | None = None
    try:
        for notice in ws.notices:
            print(f"note: {notice}", file=sys.stderr)
        commands = {"status": _status, "import": _import, "history": _history, "restore": _restore}
        code = {**commands, "verify": _verify, "teach-av": _teach_av}[args.command](ws, args)
        sys.stdout.flush()  # a reader that stopped early (``| head -1``) is met here, not at exit
        return code
    except BrokenPipeError:
        # The reader has what it wanted. Output still buffered would fail again at exit: send it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        # The command's own verdict when it had one (verify's problems stay a failure under pipefail); cut off
        # before it finished, the shell's convention for a reader that went away (128 + SIGPIPE).
        return code if code is not None else 141
    except WorkspaceError as exc:
        return _fail(str(exc), 1)
    finally:
        ws.close()


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _entry(ws: Workspace, key: str) -> ImageEntry:
    try:
        return ws.entry(key)
    except KeyError:
        raise WorkspaceError(
            f"{ws.root}: no image {key!r} (keys are listed by `retina-desktop workspace status`)"
        ) from None


def _status(ws: Workspace, args: argparse.Namespace) -> int:
    images: list[_ImageStatus] = []
    for e in ws.entries:
        gt = e.existing_gt()
        images.append(
            {
                "key": e.key,
                "status": ws.status(e.key),
                "uncertainty": ws.uncertainty(e.key),
                "mask": str(gt) if gt else None,
                "versions": len({v.sha256 for v in ws.versions(e)}),
            }
        )
    counts = {s: sum(1 for i in images if i["status"] == s) for s in ("new", "predicted", "edited", "approved")}
    others = [o.text() for o in ws.other_windows()]
    if args.json:
        print(
            json.dumps(
                {
                    "workspace": str(ws.root),
                    "layout": ws.layout,
                    "counts": counts,
                    "images": images,
                    "open_elsewhere": others,
                    "notices": ws.notices,
                },
                indent=1,
            )
        )
        return 0
    print(f"{ws.root} ({ws.layout}): " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for o in others:
        print(f"also open: {o}")
    width = max(len(i["key"]) for i in images)
    for i in images:
        u = "" if i["uncertainty"] is None else f"  uncertain {i['uncertainty']:.3f}"
        print(
            f"{i['key']:<{width}}  {i['status']:<9}  {'mask' if i['mask'] else '-':<4}  {i['versions']} version(s){u}"
        )
    return 0


def _imported_mask(f: Path, e: ImageEntry) -> np.ndarray:
    """The mask in ``f`` for the image ``e``; ImageReadError when it is the photo itself or not of its size."""
    if f.resolve() == e.path.resolve():
        raise ImageReadError(f, "is the workspace's photo itself, not a mask")
    mask = read_vessel_mask(f)  # a photo would be thresholded into a "mask" of 60 % vessel
    from model_core.imageio import read_image

    shape = read_image(e.path).shape[:2]
    if mask.shape != shape:
        raise ImageReadError(f, f"mask is {mask.shape[1]}x{mask.shape[0]} but {e.path.name} is {shape[1]}x{shape[0]}")
    return mask


def _import_sources(args: argparse.Namespace) -> tuple[Path | None, Path | None, Path | None]:
    """(masks folder, A/V folder, disc file) to import; an export folder supplies all three where they exist."""
    source = Path(args.masks)
    if not source.is_dir():
        raise WorkspaceError(f"{source}: not a folder")
    masks: Path | None = source / "mask" if (source / "mask").is_dir() else source
    if masks is not None and not _image_files(masks):
        masks = None
    av = Path(args.av) if args.av else source / "av" if (source / "av").is_dir() else None
    disc = Path(args.disc) if args.disc else source / "disc.csv" if (source / "disc.csv").is_file() else None
    if av is not None and not av.is_dir():
        raise WorkspaceError(f"{av}: not a folder")
    if disc is not None and not disc.is_file():
        raise WorkspaceError(f"{disc}: not a file")
    if masks is None and av is None and disc is None:
        raise WorkspaceError(f"{source}: no mask images found (nor av/ or disc.csv of an export)")
    return masks, av, disc


class _Importer:
    """Pairs files with the workspace's images by stem (or by an export's ``<split>_<stem>`` name) and counts."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.by_name: dict[str, list[ImageEntry]] = {}
        for e in ws.entries:
            names = {e.stem} | ({f"{e.split}_{e.stem}"} if e.split else set())
            for name in names:
                self.by_name.setdefault(name, []).append(e)
        self.refused: list[str] = []
        self.saved = {"mask": 0, "av": 0, "disc": 0}
        self.unchanged = 0

    def entry(self, where: str, name: str) -> ImageEntry | None:
        matches = self.by_name.get(name, [])
        if not matches:
            self.refused.append(f"{where}: no image named {name} in the workspace")
        elif len(matches) > 1:
            self.refused.append(f"{where}: matches several images ({', '.join(e.key for e in matches)})")
        return matches[0] if len(matches) == 1 else None

    def paired(self, folder: Path) -> Iterator[tuple[Path, ImageEntry]]:
        """Each image file of ``folder`` with the one image it names (the others refused)."""
        for f in _image_files(folder):
            e = self.entry(str(f), f.stem)
            if e is not None:
                yield f, e

    def masks(self, folder: Path, reviewer: str) -> None:
        for f, e in self.paired(folder):
            try:
                mask = _imported_mask(f, e)
                current = e.existing_gt()
                previous = read_mask_or_none(current) if current is not None else None
                if previous is not None and np.array_equal(previous, mask):
                    self.unchanged += 1
                    continue
                # The same rule as the window: the version on disk now is the one this import replaces; a save
                # by someone else in between is a conflict, not an overwrite.
                self.ws.save_ground_truth(
                    e,
                    mask,
                    expected_sha=self.ws.current_sha(e),
                    source="import",
                    reviewer=reviewer,
                    status="edited",
                    action="import",
                    imported_from=str(f),
                )
                self.saved["mask"] += 1
            except (SaveConflict, ImageReadError, WorkspaceError) as exc:
                self.refused.append(_one_line(f, exc))

    def labels(self, folder: Path, reviewer: str) -> None:
        """Each A/V mask as a new labels version (the one it replaces stays in the calibre history)."""
        from model_core.calibre_inputs import read_av_mask
        from model_core.errors import RetinaInputError
        from model_core.imageio import image_size

        for f, e in self.paired(folder):
            try:
                labels = read_av_mask(f)
                shape = image_size(e.path)
                if labels.shape != shape:
                    raise RetinaInputError(
                        f, f"A/V mask is {labels.shape[1]}x{labels.shape[0]} but {e.path.name} is {shape[1]}x{shape[0]}"
                    )
                self._save(e, "av", labels, reviewer)
            except (RetinaInputError, ImageReadError, WorkspaceError, OSError) as exc:
                self.refused.append(_one_line(f, exc))

    def discs(self, path: Path, reviewer: str) -> None:
        from model_core.calibre_inputs import read_disc_csv
        from model_core.errors import RetinaInputError

        try:
            discs = read_disc_csv(path)
        except RetinaInputError as exc:
            self.refused.append(_one_line(path, exc))
            return
        for name, disc in discs.items():
            e = self.entry(f"{path} ({name})", name)
            if e is None:
                continue
            try:
                self._save(e, "disc", disc, reviewer)
            except (WorkspaceError, OSError) as exc:
                self.refused.append(_one_line(path, exc))

    def _save(self, e: ImageEntry, kind: str, value: Disc | np.ndarray, reviewer: str) -> None:
        """A new calibre version (note "import"); the one it replaces stays in the history."""
        before = self.ws.calibre.current_sha(e.key, kind)
        if isinstance(value, Disc):
            self.ws.calibre.save_disc(e.key, value, reviewer=reviewer, note="import")
        else:
            self.ws.calibre.save_labels(e.key, value, reviewer=reviewer, note="import")
        if self.ws.calibre.current_sha(e.key, kind) == before:  # the same content: no new version was recorded
            self.unchanged += 1
        else:
            self.saved[kind] += 1


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _one_line(path: Path, exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if str(path) in text else f"{path}: {text}"


def _import(ws: Workspace, args: argparse.Namespace) -> int:
    try:
        masks, av, disc = _import_sources(args)
    except WorkspaceError as exc:
        return _fail(str(exc), 2)
    importer = _Importer(ws)
    if masks is not None:
        importer.masks(masks, args.reviewer)
    if av is not None:
        importer.labels(av, args.reviewer)
    if disc is not None:
        importer.discs(disc, args.reviewer)
    n = importer.saved
    calibre = [f"{n['av']} artery/vein label set(s)"] if av is not None else []
    calibre += [f"{n['disc']} disc(s)"] if disc is not None else []
    print(
        f"{n['mask']} mask(s)"
        + "".join(f", {c}" for c in calibre)
        + f" imported into {ws.root}"
        + (f"; {importer.unchanged} already the current version, left as they are" if importer.unchanged else "")
    )
    for line in importer.refused:
        print(f"refused: {line}", file=sys.stderr)
    return 1 if importer.refused else 0


def _history(ws: Workspace, args: argparse.Namespace) -> int:
    e = _entry(ws, args.image)
    versions = ws.versions(e)
    current = ws.current_sha(e)
    if args.json:
        print(json.dumps({"image": e.key, "current": current, "versions": [v.to_json() for v in versions]}, indent=1))
        return 0
    if not versions:
        print(f"{e.key}: no recorded versions")
    # A restore repeats an earlier content: only the newest row with the content on disk is marked.
    newest = max((i for i, v in enumerate(versions) if v.sha256 == current), default=None)
    for i, v in enumerate(versions):
        changed = "" if v.added_prev is None else f"  +{v.added_prev}/-{v.removed_prev or 0} px"
        mark = "*" if i == newest else " "
        print(
            f"{mark} {readable_time(v.time)}  {v.sha256[:12]}  {v.source:<10} {v.reviewer or '-':<12} "
            f"{v.model or '-'}{changed}  {v.path}"
        )
    return 0


def _restore(ws: Workspace, args: argparse.Namespace) -> int:
    e = _entry(ws, args.image)
    wanted = args.sha256.lower()
    shas = sorted({v.sha256 for v in ws.versions(e) if v.sha256.startswith(wanted)})
    if len(wanted) < 6:
        return _fail(
            f"{e.key}: {args.sha256!r} is too short to name a version: give at least 6 characters of "
            "its sha256 (from `workspace history`)",
            1,
        )
    if len(shas) > 1:
        return _fail(
            f"{e.key}: {args.sha256!r} could be any of {len(shas)} versions: give more of its sha256 "
            "(from `workspace history`)",
            1,
        )
    path = ws.restore(e, shas[0] if shas else wanted, reviewer=args.reviewer)
    print(f"{e.key}: version {(shas[0] if shas else wanted)[:12]} restored to {path}")
    return 0


def _verify(ws: Workspace, args: argparse.Namespace) -> int:
    problems = ws.verify()
    for p in problems:
        print(f"problem: {p}")
    versions = ws.version_count()
    masks = sum(1 for e in ws.entries if e.existing_gt() is not None)
    print(
        f"{ws.root}: {'ok' if not problems else f'{len(problems)} problem(s)'} "
        f"({versions} recorded version(s), {masks} mask file(s) checked)"
    )
    return 0 if not problems else 1


def _teach_av(ws: Workspace, args: argparse.Namespace) -> int:
    """0 when the taught suggestion is in use afterwards, 1 when it is kept unused, 2 when nothing was taught."""
    from .vessels.av_teaching import adopt_candidate, teach_workspace

    if args.steps is not None and args.steps < 1:
        return _fail(f"--steps must be at least 1, got {args.steps}", 2)
    try:
        outcome = teach_workspace(ws, args.steps, progress=_teach_progress)
    except ValueError as exc:
        return _fail(f"{ws.root}: {exc}", 2)
    except OSError as exc:  # the network not kept (disk full, a folder gone): one line, as every write error
        return _fail(f"{exc.filename or ws.meta_dir}: {exc.strerror or exc}", 1)
    for line in outcome.skipped:
        print(f"note: skipped {line}", file=sys.stderr)
    if outcome.taught.verdict == "ask" and args.use and adopt_candidate(ws, outcome.taught.model):
        print(f"Teach artery/vein: the taught suggestion is in use (--use; {outcome.taught.reason})")
        return 0
    print(outcome.message())
    return 0 if outcome.active else 1


def _teach_progress(done: int, total: int) -> None:
    if done % 100 == 0 or done == total:
        print(f"step {done} of {total}", file=sys.stderr, flush=True)
