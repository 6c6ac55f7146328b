"""How much of a model's Dice gap could thresholding, post-processing or input scale close? (held-out only)

Scores a checkpoint on the photos its training held out: DRIVE training photos at native size inside the
FOV, and the same photos as `retina-kaggle` ships them (512x512; train ``i.png`` is DRIVE training photo
``21 + i // 4`` in four versions, see PROVENANCE.md). For each set it prints the mean per-image Dice at:

- the checkpoint's threshold, and the best single threshold for the set (an upper bound on recalibrating);
- each image's own best threshold (an oracle: no rule that sees no labels can do better by thresholding);
- a label-free per-image cut: the mask that maximises the Dice expected under the image's own probabilities;
- hysteresis thresholding (keep weak pixels connected to strong ones), best (low, high) pair;
- the FOV diameter the photos are rescaled to before the network, swept around the trained one.

Nothing here looks at a test split, so it can guide decisions. If the oracle rows are close to the fixed
threshold, the gap to a target is in the network's probabilities, not in how they are cut.

    python benchmarks/bench_headroom.py [--weights FILE] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_core.checkpoint import load_checkpoint  # noqa: E402
from model_core.data import discover, load_sample  # noqa: E402
from model_core.metrics import THRESHOLD_GRID, Confusion  # noqa: E402
from model_core.predictor import VesselPredictor  # noqa: E402
from model_core.resources import default_model_path  # noqa: E402

SCALES = (0.9, 1.0, 1.1, 1.2)  # multiples of the trained FOV diameter
HYSTERESIS_HIGH = (0.65, 0.75, 0.85, 0.95)


def kaggle_names(drive_name: str) -> list[str]:
    """The four retina-kaggle training renderings of DRIVE training photo ``NN_training``."""
    k = int(drive_name.split("_")[0]) - 21
    return [str(4 * k + j) for j in range(4)]


def hysteresis(prob: np.ndarray, low: float, high: float) -> np.ndarray:
    n, labels = cv2.connectedComponents((prob >= low).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[prob >= high])] = True
    keep[0] = False
    return keep[labels]


def expected_dice_cut(prob: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    """The top-k pixels maximising 2 * sum(top-k p) / (k + sum(p)): the best mask if p were calibrated."""
    p = prob[region] if region is not None else prob.ravel()
    q = np.sort(p)[::-1]
    k = int(np.argmax(2 * np.cumsum(q) / (np.arange(1, q.size + 1) + q.sum())))
    return prob >= q[k]


def per_image_dice(probs, truths, masks, cut) -> float:
    return float(np.mean([Confusion.of(cut(p), t, m).dice for p, t, m in zip(probs, truths, masks, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ckpt = load_checkpoint(args.weights or default_model_path())
    held = list(ckpt.metadata.get("val_images") or [])
    if not held:
        sys.exit(f"{args.weights or default_model_path()}: the checkpoint records no held-out images")
    drive = {s.name: s for s in discover(args.data / "drive", "train")}
    kaggle = {s.name: s for s in discover(args.data / "retina-kaggle", "train")}
    sets = {
        "drive, native, in FOV": [load_sample(drive[n]) for n in held],
        "retina-kaggle renderings": [load_sample(kaggle[k]) for n in held for k in kaggle_names(n)],
    }
    print(f"{ckpt.name} v{ckpt.version}, threshold {ckpt.threshold:.2f}; held-out photos: {', '.join(held)}")
    t0 = ckpt.threshold
    for title, samples in sets.items():
        truths = [v > 0 for _, v, _, _ in samples]
        masks = [(f > 0) if given else None for _, _, f, given in samples]
        print(f"\n{title} ({len(samples)} images), mean per-image Dice")
        for factor in SCALES:
            pre = dataclasses.replace(ckpt.preprocess, fov_diameter=ckpt.preprocess.fov_diameter * factor)
            predictor = VesselPredictor(dataclasses.replace(ckpt, preprocess=pre), device=args.device)
            probs = [predictor.predict(rgb) for rgb, *_ in samples]
            # image x threshold Dice, counted once: the best single threshold and the oracle both read it
            dice = np.array(
                [[c.dice for c in Confusion.sweep(p, t, m)] for p, t, m in zip(probs, truths, masks, strict=True)]
            )
            curve = dice.mean(axis=0)
            best = int(np.argmax(curve))
            label = f"FOV diameter {pre.fov_diameter:.0f}"
            print(
                f"  {label:<22} at {t0:.2f}: {per_image_dice(probs, truths, masks, lambda p: p >= t0):.4f}"
                f"   best single threshold {curve[best]:.4f} (at {THRESHOLD_GRID[best]:.2f})"
            )
            if factor != 1.0:
                continue
            oracle = dice.max(axis=1).mean()
            hyst = max(
                (per_image_dice(probs, truths, masks, lambda p, lo=lo, hi=hi: hysteresis(p, lo, hi)), lo, hi)
                for lo in THRESHOLD_GRID
                if 0.2 <= lo <= 0.6
                for hi in HYSTERESIS_HIGH
                if hi > lo
            )
            label_free = np.mean(
                [Confusion.of(expected_dice_cut(p, m), t, m).dice for p, t, m in zip(probs, truths, masks, strict=True)]
            )
            print(f"  {'':<22} each image at its own best threshold (oracle): {oracle:.4f}")
            print(f"  {'':<22} each image cut at its expected-Dice optimum (no labels): {label_free:.4f}")
            print(f"  {'':<22} hysteresis, best pair: {hyst[0]:.4f} (low {hyst[1]:.2f}, high {hyst[2]:.2f})")


if __name__ == "__main__":
    main()
