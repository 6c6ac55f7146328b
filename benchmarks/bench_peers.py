"""The bundled model beside a published peer, Little W-Net (Galdran et al., 2022), in one run, with one scorer.

Both models run as their own command-line pipelines, in subprocesses of this Python with the same thread count:
the bundled model as ``python -m model_core predict`` (its checkpoint's calibrated threshold), the peer as
``../shared/peers/lwnet/predict.py`` (the 68 k-parameter W-Net trained on DRIVE train only, its threshold as that
script writes its masks). Each writes ``<stem>.png`` (the mask) and ``<stem>_prob.png`` (16-bit probability);
both are scored here by ``model_core.metrics``: Dice and clDice of the written mask, AUC of the probability map,
mean over photos. Test sets: DRIVE test (inside its FOV masks), STARE test, the reference notebook's
``retina-kaggle`` test and far-STARE (``bench_finetune.far_camera`` applied to STARE test), whole image except
DRIVE; each with and without test-time augmentation (ours: ``--tta``, 3 flips; the peer's ``--tta``, 4 flips).
On DRIVE both models are also scored against the second observer, and the second observer against the first.

ms per photo is the whole predict pipeline (read, preprocess, forward, resize back, write both PNGs), timed the
same way for both, from the times the command's outputs were written: the time from the first photo's last file
to the last photo's, over the photos but one. So process start-up, model loading and the first photo (warm-up),
reported apart as "start-up", are left out, and no second run is needed. The machine is shared, so wall times
follow its load; "CPU s / photo" (the command's CPU time, all threads, start-up included, over the photos) does so
less.

The peer is a yardstick: it is run from ../shared, never loaded by the project's code nor copied into it.

    python benchmarks/bench_peers.py [--sets drive stare kaggle far-stare] [--limit N] [--json OUT]
                                     [--threads 2] [--peer-fov estimated|whole] [--weights FILE]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from bench_finetune import far_camera  # noqa: E402

from model_core.checkpoint import load_checkpoint  # noqa: E402
from model_core.data import Sample, discover, find_mask, load_sample, read_fov  # noqa: E402
from model_core.errors import RetinaInputError  # noqa: E402
from model_core.imageio import (  # noqa: E402
    mask_to_png,
    png16_to_prob,
    read_image,
    read_mask,
    read_raw,
    write_png_atomic,
)
from model_core.metrics import CenterlineCount, Confusion, RocHistogram  # noqa: E402
from model_core.model import count_parameters  # noqa: E402
from model_core.preprocess import estimate_fov  # noqa: E402
from model_core.resources import default_model_path  # noqa: E402

PEER_SCRIPT = ROOT.parent / "shared" / "peers" / "lwnet" / "predict.py"
OURS, PEER = "ours", "lwnet"
SCORES = ("dice", "auc", "cldice")

# key: (label, its data folder under --data; far-STARE is made from STARE test)
SETS: dict[str, tuple[str, str]] = {
    "drive": ("DRIVE test, inside the FOV masks", "drive"),
    "stare": ("STARE test, whole image", "stare"),
    "kaggle": ("retina-kaggle test (the reference notebook's), whole image", "retina-kaggle"),
    "far-stare": ("far-STARE test (bench_finetune's far camera), whole image", "stare"),
}


@dataclass
class TestSet:
    key: str
    label: str
    photos: list[Sample]
    input_dir: Path  # the photos (links to them, or far-STARE's own files), and nothing else
    peer_fov_dir: Path | None  # FOV masks by stem for the peer's crop (None: the whole image)
    scored_in_fov: bool  # scored inside the data set's FOV masks (DRIVE) or over the whole image


@dataclass
class Run:
    """One model on one set with TTA on or off."""

    wall_s: float
    cpu_s: float  # of the whole command, start-up included, all threads
    per_photo_s: float
    first_photo_s: float  # from the command's start to its first photo's outputs: start-up, loading, one photo
    photos: int
    finished_s: list[float] = field(default_factory=list)  # each photo's outputs written, from the command's start
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)
    second_observer: dict[str, dict[str, float]] = field(default_factory=dict)


# --- pure parts (tests/test_bench_peers.py) ---------------------------------------------------------------------


def per_photo_seconds(finished: Sequence[float], started: float) -> tuple[float, float]:
    """(seconds per photo, seconds to the first photo) of a run that started at ``started`` and finished its
    photos at ``finished`` (any order): the span from the first photo to the last over the photos but one, so
    start-up, model loading and the first photo's warm-up stay out of it. With one photo there is no span: its
    whole time, start-up included."""
    if not finished:
        raise ValueError("no photos")
    ends = sorted(finished)
    first = ends[0] - started
    if len(ends) == 1:
        return first, first
    return (ends[-1] - ends[0]) / (len(ends) - 1), first


def photo_scores(mask: np.ndarray, prob: np.ndarray, truth: np.ndarray, fov: np.ndarray | None) -> dict[str, float]:
    """Dice and clDice of a written mask, AUC of its probability map, against ``truth`` inside ``fov``."""
    mask, truth = np.asarray(mask, bool), np.asarray(truth, bool)
    return {
        "dice": Confusion.of(mask, truth, fov).dice,
        "auc": RocHistogram.of(prob, truth, fov).auc,
        "cldice": CenterlineCount.of(mask, truth, fov).cldice,
    }


def observer_scores(observer: np.ndarray, truth: np.ndarray, fov: np.ndarray | None) -> dict[str, float]:
    """One grader's binary mask against another's: Dice and clDice (an AUC of a binary map is not one)."""
    observer, truth = np.asarray(observer, bool), np.asarray(truth, bool)
    return {
        "dice": Confusion.of(observer, truth, fov).dice,
        "auc": float("nan"),
        "cldice": CenterlineCount.of(observer, truth, fov).cldice,
    }


def mean_std(per_image: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation over photos of each score (NaN where no photo has it)."""
    out: dict[str, dict[str, float]] = {"mean": {}, "std": {}}
    for k in SCORES:
        values = np.array([m[k] for m in per_image.values()], np.float64)
        values = values[np.isfinite(values)]
        out["mean"][k] = float(values.mean()) if values.size else float("nan")
        out["std"][k] = float(values.std()) if values.size else float("nan")
    return out


def peer_threshold(script_text: str) -> float | None:
    """The threshold the peer's predict.py cuts its masks at (``(v > T) * 255``), or None if it cannot be read."""
    m = re.search(r"\(v\s*>\s*([0-9]*\.[0-9]+)\)", script_text)
    return float(m.group(1)) if m else None


def _cell(mean: float, std: float | None = None) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None and not math.isnan(std) else "")


# --- the sets ---------------------------------------------------------------------------------------------------


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src.resolve())


def build_set(key: str, data: Path, limit: int | None, tmp: Path, peer_fov: str) -> TestSet:
    label, folder = SETS[key]
    base = tmp / key
    source = discover(data / folder, split="test")[:limit]
    if key == "far-stare":  # made here, in the temporary folder, as bench_finetune makes it
        photos = []
        for s in source:
            rgb, vessels, _, _ = load_sample(s)
            img, mask = far_camera(rgb, vessels, zlib.crc32(s.name.encode()))
            photos.append(
                Sample(
                    write_png_atomic(base / "input" / f"{s.name}.png", img),
                    write_png_atomic(base / "masks" / f"{s.name}.png", mask_to_png(mask)),
                )
            )
    else:
        photos = source
        for s in photos:
            _link(s.image, base / "input" / s.image.name)
    scored_in_fov = key == "drive"
    if scored_in_fov and any(s.fov is None for s in photos):
        missing = next(s for s in photos if s.fov is None)
        raise RetinaInputError(missing.image, "has no FOV mask (DRIVE test is scored inside them)")
    fov_dir: Path | None = None
    if scored_in_fov:  # the official masks, as the peer's authors crop DRIVE
        fov_dir = base / "fov"
        for s in photos:
            assert s.fov is not None
            _link(s.fov, fov_dir / f"{s.name}{s.fov.suffix}")
    elif peer_fov == "estimated":  # the FOV the bundled model finds in the photo itself, so both crop alike
        fov_dir = base / "fov"
        for s in photos:
            write_png_atomic(fov_dir / f"{s.name}.png", mask_to_png(estimate_fov(read_image(s.image))))
    return TestSet(key, label, photos, base / "input", fov_dir, scored_in_fov)


# --- running the two pipelines ----------------------------------------------------------------------------------


def command(model: str, images: Path, out: Path, tta: bool, test_set: TestSet, args: argparse.Namespace) -> list[str]:
    if model == OURS:
        cmd = [sys.executable, "-m", "model_core", "predict", str(images), "--out", str(out), "--device", "cpu"]
        if args.weights:
            cmd += ["--weights", str(args.weights)]
    else:
        cmd = [sys.executable, str(args.peer), str(images), "--out", str(out), "--threads", str(args.threads)]
        if test_set.peer_fov_dir is not None:
            cmd += ["--fov", str(test_set.peer_fov_dir)]
    return cmd + (["--tta"] if tta else [])


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the command and its threads, the clock when it started: the clock the file
    times are on)."""
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started, t0 = time.time(), time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SystemExit(f"error: {shlex.join(cmd)} failed (exit {done.returncode}): {last}")
    return wall, (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime), started


def finished_at(out: Path, stems: Iterable[str]) -> list[float]:
    """When each photo's outputs were all written (the later of its mask and its probability map)."""
    return [
        max((out / name).stat().st_mtime_ns for name in (f"{stem}.png", f"{stem}_prob.png")) / 1e9 for stem in stems
    ]


Scores = dict[str, dict[str, float]]  # photo: score: value


def score_run(out: Path, test_set: TestSet, second_observer: Path | None) -> tuple[Scores, Scores]:
    """Each photo's scores against its reference, and against the second observer's mask when one is given."""
    per_image: Scores = {}
    versus_second: Scores = {}
    for s in test_set.photos:
        assert s.mask is not None
        mask = read_mask(out / f"{s.name}.png")
        prob = png16_to_prob(read_raw(out / f"{s.name}_prob.png"))
        truth = read_mask(s.mask)
        fov = read_fov(s.fov, truth.shape) if test_set.scored_in_fov and s.fov is not None else None
        per_image[s.name] = photo_scores(mask, prob, truth, fov)
        if second_observer is not None:
            versus_second[s.name] = photo_scores(mask, prob, _second_observer_mask(second_observer, s.name), fov)
    return per_image, versus_second


def _second_observer_mask(folder: Path, stem: str) -> np.ndarray:
    path = find_mask(folder, stem)
    if path is None:
        raise RetinaInputError(folder, f"has no second-observer mask of {stem}")
    return read_mask(path)  # 3/253 in DRIVE's files: read_mask cuts 8-bit masks at 128


def run_all(sets: list[TestSet], args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, dict[bool, Run]]]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "PYTHONPATH": str(ROOT),
    }
    second = args.data / "drive" / "test" / "masks_2nd_observer"
    runs: dict[str, dict[str, dict[bool, Run]]] = {}
    for test_set in sets:
        runs[test_set.key] = {OURS: {}, PEER: {}}
        for tta in (False, True):
            for model in (OURS, PEER):  # interleaved, so the shared machine's load falls on both alike
                out = tmp / "out" / test_set.key / f"{model}-{tta}"
                wall, cpu, started = timed(command(model, test_set.input_dir, out, tta, test_set, args), env)
                finished = finished_at(out, (s.name for s in test_set.photos))
                per, first = per_photo_seconds(finished, started)
                per_image, vs_second = score_run(out, test_set, second if test_set.key == "drive" else None)
                runs[test_set.key][model][tta] = Run(
                    wall,
                    cpu,
                    per,
                    first,
                    len(test_set.photos),
                    sorted(t - started for t in finished),
                    per_image,
                    vs_second,
                )
                print(
                    f"  {test_set.key:10} {model:6} TTA {'on ' if tta else 'off'} {per * 1000:7.0f} ms/photo "
                    f"Dice {mean_std(per_image)['mean']['dice']:.4f}",
                    file=sys.stderr,
                )
    return runs


def human_limit(drive: TestSet, data: Path) -> dict[str, dict[str, float]]:
    """The second observer against the first, inside the FOV masks: what a second grader reaches."""
    second = data / "drive" / "test" / "masks_2nd_observer"
    out = {}
    for s in drive.photos:
        assert s.mask is not None and s.fov is not None
        truth = read_mask(s.mask)
        out[s.name] = observer_scores(_second_observer_mask(second, s.name), truth, read_fov(s.fov, truth.shape))
    return out


# --- report -----------------------------------------------------------------------------------------------------


def report(
    sets: list[TestSet],
    runs: dict[str, dict[str, dict[bool, Run]]],
    models: dict[str, str],
    human: dict[str, dict[str, float]] | None,
) -> tuple[str, dict[str, Any]]:
    lines = [
        "| test set | photos | model | TTA | Dice | AUC | clDice | ms / photo | start-up s | CPU s / photo |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    out: dict[str, Any] = {"sets": {}}
    for t in sets:
        out["sets"][t.key] = {
            "label": t.label,
            "photos": [s.name for s in t.photos],
            "scored_in_fov": t.scored_in_fov,
            "runs": {},
        }
        for tta in (False, True):
            for model in (OURS, PEER):
                r = runs[t.key][model][tta]
                stats = mean_std(r.per_image)
                per = r.per_photo_s
                startup = r.first_photo_s - per if r.photos > 1 else float("nan")
                cells = " | ".join(_cell(stats["mean"][k], stats["std"][k]) for k in SCORES)
                lines.append(
                    f"| {t.label} | {r.photos} | {models[model]} | {'on' if tta else 'off'} | {cells} | "
                    f"{per * 1000:.0f}{'' if r.photos > 1 else ' (start-up included)'} | "
                    f"{'—' if math.isnan(startup) else f'{startup:.1f}'} | {r.cpu_s / r.photos:.2f} |"
                )
                out["sets"][t.key]["runs"][f"{model}{'-tta' if tta else ''}"] = {
                    "model": model,
                    "tta": tta,
                    "wall_s": r.wall_s,
                    "cpu_s": r.cpu_s,
                    "first_photo_s": r.first_photo_s,
                    "finished_s": r.finished_s,
                    "ms_per_photo": per * 1000,
                    **stats,
                    "per_image": r.per_image,
                }
    text = "\n".join(lines)
    drive = next((t for t in sets if t.key == "drive"), None)
    if drive is not None and human is not None:
        obs = [
            "| DRIVE test, inside the FOV masks, against the second observer | photos | TTA | Dice | AUC | clDice |",
            "|---|---|---|---|---|---|",
        ]
        out["second_observer"] = {}
        for tta in (False, True):
            for model in (OURS, PEER):
                r = runs["drive"][model][tta]
                stats = mean_std(r.second_observer)
                obs.append(
                    f"| {models[model]} | {r.photos} | {'on' if tta else 'off'} | "
                    + " | ".join(_cell(stats["mean"][k], stats["std"][k]) for k in SCORES)
                    + " |"
                )
                out["second_observer"][f"{model}{'-tta' if tta else ''}"] = {**stats, "per_image": r.second_observer}
        stats = mean_std(human)
        obs.append(
            f"| the second observer against the first (the human limit) | {len(human)} | — | "
            + " | ".join(_cell(stats["mean"][k], stats["std"][k]) for k in SCORES)
            + " |"
        )
        out["human_limit"] = {**stats, "per_image": human}
        text += "\n\n" + "\n".join(obs)
    return text, out


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of photos from 1")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    ap.add_argument("--limit", type=_positive, help="the first N photos of each set (a quick run)")
    ap.add_argument("--json", type=Path, help="also write every figure, per photo, as JSON here")
    ap.add_argument("--threads", type=_positive, default=2, help="torch threads of both models (default 2)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--peer", type=Path, default=PEER_SCRIPT, help="the peer's predict.py")
    ap.add_argument(
        "--peer-fov",
        choices=("estimated", "whole"),
        default="estimated",
        help="the peer's crop where a set has no FOV masks: the FOV the bundled model estimates "
        "(default), or the whole image",
    )
    ap.add_argument("--weights", type=Path, help="our checkpoint (default: the bundled model)")
    args = ap.parse_args(argv)
    try:
        if not args.peer.is_file():
            raise RetinaInputError(args.peer, "the peer's predict.py is not there (--peer names it)")
        ckpt = load_checkpoint(args.weights or default_model_path())
        threshold = peer_threshold(args.peer.read_text())
        peer_cut = f"{threshold:g}" if threshold is not None else "its own"
        version = ckpt.version if ckpt.version.startswith("v") else f"v{ckpt.version}"
        models = {
            OURS: f"bundled {ckpt.name} {version} ({count_parameters(ckpt.build()) / 1e3:.0f} k)",
            PEER: "Little W-Net (68 k)",
        }
        thresholds = {
            OURS: f"{ckpt.threshold:g} (the checkpoint's calibrated threshold)",
            PEER: f"{peer_cut} (as its predict.py cuts its masks)",
        }
        with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp_name:
            tmp = Path(tmp_name)
            sets = [build_set(k, args.data, args.limit, tmp, args.peer_fov) for k in args.sets]
            runs = run_all(sets, args, tmp)
            drive = next((t for t in sets if t.key == "drive"), None)
            human = human_limit(drive, args.data) if drive is not None else None
        table, figures = report(sets, runs, models, human)
    except RetinaInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} torch threads"
    print(
        f"{machine}; mean ± sd over photos; Dice and clDice of each model's written mask, AUC of its "
        "probability map (model_core.metrics)"
    )
    for model in (OURS, PEER):
        print(f"{models[model]}: threshold {thresholds[model]}")
    print(
        "TTA: ours averages the logits of 3 flips (none, horizontal, vertical); Little W-Net the probabilities "
        "of 4 (none, horizontal, vertical, both)."
    )
    print(
        f"Little W-Net's crop where a set has no FOV masks: "
        f"{'the FOV the bundled model estimates' if args.peer_fov == 'estimated' else 'the whole image'}.\n"
    )
    print(table)
    if args.json:
        from model_core.atomic import write_json_atomic

        write_json_atomic(
            args.json,
            {
                "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                "machine": machine,
                "models": models,
                "thresholds": thresholds,
                "peer_fov": args.peer_fov,
                "limit": args.limit,
                **figures,
            },
        )
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
