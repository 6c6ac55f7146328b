"""How much of a fine-tune's gain is its threshold? Dice of kept models across thresholds, and threshold rules.

Takes the weights ``bench_finetune.py --save-kept`` wrote (and the parent) and reports, per model, the mean
per-image Dice on the camera's test photos and on ``drive/test`` at every threshold of the grid, as
``bench_finetune.py`` scores them; then what the threshold rules would keep:

* ``held-out``: the best pooled Dice on the held-out correction (what the app does);
* ``all corrections``: the best pooled Dice over all 5 corrections, the 4 taught ones included;
* ``area match``: where the held-out photo's predicted vessel area equals its correction's (a Dice-optimal
  threshold of a calibrated model predicts about as many vessel pixels as there are; the area is a smoother
  function of the threshold than the Dice of one photo);
* ``oracle``: the best Dice on the test photos themselves, the ceiling no rule can pass.

``--step 0.01`` scores a grid five times finer than the app's (``THRESHOLD_GRID``, 0.05): whether the grid's
coarseness costs anything. Several models at once give the rules' means over all of them.

The parent's row shows what choosing a threshold alone, without training, would give. For models of
``bench_finetune.py``'s photo split (its default), from the same ``--weights``; after ``--split regions`` or
``--split none`` the held-out photo was taught too, and only the ``oracle`` rule means what it says.

    python benchmarks/bench_thresholds.py KEPT.pt [KEPT2.pt ...] [--target stare|far-stare] [--parent FILE] \\
        [--step 0.01] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from bench_finetune import make_far_stare  # noqa: E402

from model_core.checkpoint import load_checkpoint  # noqa: E402
from model_core.data import _find_by_stem, discover, fov_stems, load_sample, prepare  # noqa: E402
from model_core.finetune import plan_split  # noqa: E402
from model_core.forgetting import network, probabilities  # noqa: E402
from model_core.imageio import read_mask  # noqa: E402
from model_core.metrics import THRESHOLD_GRID, Confusion  # noqa: E402
from model_core.predictor import VesselPredictor  # noqa: E402
from model_core.resources import default_model_path  # noqa: E402


def mean_dice_curve(predictor, samples, fov_dir: Path | None, grid: np.ndarray) -> np.ndarray:
    """Mean per-image Dice at every threshold: bench_finetune's score (whole photo unless FOVs are given)."""
    total = np.zeros(len(grid))
    for s in samples:
        rgb, truth, _, _ = load_sample(s)
        fov = read_mask(_find_by_stem(fov_dir, s.image.stem, fov_stems)).astype(bool) if fov_dir else None
        total += [c.dice for c in Confusion.sweep(predictor.predict(rgb), truth.astype(bool), fov, grid)]
    return total / len(samples)


def pooled_counts(ckpt, samples, grid: np.ndarray) -> list[Confusion]:
    """Pooled counts at every threshold as fine-tuning validates (model_core.engine.validate)."""
    net = network(ckpt)
    conf = [Confusion() for _ in grid]
    for s in samples:
        im = prepare(s, ckpt.preprocess)
        swept = Confusion.sweep(probabilities(net, im.x), im.vessels > 0, im.fov > 0, grid)
        conf = [a + b for a, b in zip(conf, swept, strict=True)]
    return conf


def best_dice(conf: list[Confusion]) -> int:
    return int(np.nanargmax([c.dice for c in conf]))


def area_match(conf: list[Confusion]) -> int:
    """The index of the threshold whose predicted vessel area (tp + fp) is nearest the reference's (tp + fn)."""
    return int(np.argmin([abs(c.fp - c.fn) for c in conf]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="+", type=Path)
    ap.add_argument("--target", choices=("stare", "far-stare"), default="stare")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--images", type=int, default=5, help="corrections, as in bench_finetune.py")
    ap.add_argument(
        "--parent",
        type=Path,
        default=None,
        help="the models' parent (bench_finetune --weights; default: the bundled model)",
    )
    ap.add_argument(
        "--step",
        type=float,
        default=None,
        help="threshold grid step, a divisor of 0.05 (default: the app's grid, THRESHOLD_GRID, 0.05 apart)",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.step is not None and not (0 < args.step <= 0.05 and np.isclose(0.05 / args.step, round(0.05 / args.step))):
        ap.error(f"--step {args.step}: must divide 0.05 (e.g. 0.01, 0.025), so the app's thresholds stay on the grid")
    thresholds = (
        THRESHOLD_GRID if args.step is None else np.round(np.arange(args.step, 1 - args.step / 2, args.step), 4)
    )
    import torch

    torch.set_num_threads(1)
    tmp = tempfile.TemporaryDirectory(prefix="far-stare-")
    root = make_far_stare(args.data, Path(tmp.name)) if args.target == "far-stare" else args.data / "stare"
    corrections = discover(root, split="train")[: args.images]
    plan = plan_split(corrections)
    test, drive = discover(root, split="test"), discover(args.data / "drive", split="test")
    grid = [float(t) for t in thresholds]
    report, base = {"target": args.target, "thresholds": grid, "models": {}}, None
    parent_path = args.parent or default_model_path()
    for path in [parent_path, *args.weights]:
        ckpt = load_checkpoint(path)
        if not np.isclose(thresholds, ckpt.threshold).any():
            raise SystemExit(f"{path}: threshold {ckpt.threshold} is not on the grid that the rules choose from")
        predictor = VesselPredictor(ckpt, device="cpu")
        target = mean_dice_curve(predictor, test, None, thresholds)
        on_drive = mean_dice_curve(predictor, drive, args.data / "drive/test/fov", thresholds)
        held_out = pooled_counts(ckpt, plan.val, thresholds)
        rules = {
            "held-out": best_dice(held_out),
            "all corrections": best_dice(pooled_counts(ckpt, corrections, thresholds)),
            "area match": area_match(held_out),
            "oracle": int(np.nanargmax(target)),
        }
        at = int(np.argmin(np.abs(thresholds - ckpt.threshold)))
        if base is None:  # the parent at its own threshold: the "before" of bench_finetune.py
            base = (target[at], on_drive[at])
        name = "parent" if path == parent_path else str(path)
        seed = (ckpt.metadata.get("train_config") or {}).get("seed")
        row = {
            "threshold": ckpt.threshold,
            "seed": seed,
            "target": target.tolist(),
            "drive": on_drive.tolist(),
            "gain": target[at] - base[0],
            "drop": on_drive[at] - base[1],
            "rules": {
                k: {"threshold": grid[i], "gain": target[i] - base[0], "drop": on_drive[i] - base[1]}
                for k, i in rules.items()
            },
        }
        report["models"][name] = row
        print(
            f"{name}: kept threshold {ckpt.threshold:.2f}, gain {row['gain']:+.4f}, DRIVE {row['drop']:+.4f}; "
            + "; ".join(
                f"{k} {r['threshold']:.2f}: {r['gain']:+.4f} / {r['drop']:+.4f}" for k, r in row["rules"].items()
            ),
            flush=True,
        )
    kept = [r for k, r in report["models"].items() if k != "parent"]
    report["means"] = {}
    for rule in kept[0]["rules"]:
        g = float(np.mean([r["rules"][rule]["gain"] for r in kept]))
        d = float(np.mean([r["rules"][rule]["drop"] for r in kept]))
        report["means"][rule] = {"gain": g, "drop": d, "models": len(kept)}
        print(f"mean of {len(kept)} kept models, {rule} threshold: gain {g:+.4f}, DRIVE {d:+.4f}")
    tmp.cleanup()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
