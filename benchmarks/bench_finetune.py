"""The adaptation benchmark: fine-tune the default model on 5 corrected photos of a new camera.

Treats 5 images of `stare/train` as the grader's corrections (their ground-truth masks), fine-tunes
with a wall-time budget, and reports Dice and AUC on `stare/test` (the new clinic) and `drive/test`
(forgetting) before and after, plus the wall time. Compare strategies with --strategy.

    python benchmarks/bench_finetune.py [--minutes 10] [--strategy default|plain] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_core.checkpoint import load_checkpoint  # noqa: E402
from model_core.cli import evaluate_samples  # noqa: E402
from model_core.data import discover  # noqa: E402
from model_core.finetune import finetune, finetune_config  # noqa: E402
from model_core.predictor import VesselPredictor  # noqa: E402
from model_core.resources import default_model_path  # noqa: E402

STRATEGIES = {
    # The shipped defaults: L2-SP toward the parent, slower encoder, frozen BatchNorm statistics, a moving
    # average of the weights.
    "default": {},
    # The defaults before the moving average (v3's first measurements).
    "no-ema": {"ema_decay": 0.0},
    # The first defaults: gentler, early stop after 8 epochs without a better validation Dice.
    "gentle": {"lr": 3e-4, "l2sp_weight": 1e-3, "patience": 8},
    # Between the two: lr 1e-3, weak pull, no early stop on the tiny validation set.
    "strong": {"lr": 1e-3, "l2sp_weight": 1e-4, "patience": 1000},
    # The naive probe: plain Focal-Tversky(+BCE) fine-tuning, nothing against forgetting.
    "plain": {"l2sp_weight": 0.0, "encoder_lr_scale": 1.0, "freeze_bn": False, "lr": 1e-3},
}


def scores(ckpt, data: Path, device: str) -> dict:
    predictor = VesselPredictor(ckpt, device=device)
    out = {}
    for key, folder, fov in (("stare", "stare", None), ("drive", "drive", "drive/test/fov")):
        acc = evaluate_samples(predictor, discover(data / folder, split="test"), predictor.threshold,
                               data / fov if fov else None, progress=False)
        out[key] = {"dice": acc.mean()["dice"], "auc": acc.mean()["auc"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--strategy", choices=list(STRATEGIES), default="default")
    ap.add_argument("--device", default=None)
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="fine-tuning seed (runs on a few images vary with it)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--save", type=Path, help="also write the fine-tuned checkpoint here")
    args = ap.parse_args()
    device = args.device or "cpu"
    parent = load_checkpoint(args.weights or default_model_path())
    corrections = discover(args.data / "stare", split="train")[: args.images]
    before = scores(parent, args.data, device)
    cfg = finetune_config(parent, epochs=10_000, minutes=args.minutes, device=args.device, seed=args.seed,
                          **STRATEGIES[args.strategy])
    t0 = time.monotonic()
    outcome = finetune(parent, corrections, cfg,
                       on_epoch=lambda r: print(f"  epoch {r.epoch} loss {r.train_loss:.4f} val_dice {r.val_dice:.4f} "
                                                f"{r.elapsed_s:.0f}s", file=sys.stderr))
    wall = time.monotonic() - t0
    chosen = outcome.result.checkpoint if outcome.accepted else parent
    after = scores(outcome.result.checkpoint, args.data, device)
    if args.save:
        from model_core.checkpoint import save_checkpoint

        save_checkpoint(args.save, outcome.result.checkpoint)
    # The child's threshold is picked on the one held-out correction; the stare/train photos that were not
    # corrections (never seen in fine-tuning, not test) show whether it beats keeping the parent's.
    unused = discover(args.data / "stare", split="train")[args.images:]
    child = VesselPredictor(outcome.result.checkpoint, device=device)
    threshold_check = {
        "images": [s.name for s in unused],
        "parent": evaluate_samples(VesselPredictor(parent, device=device), unused, parent.threshold,
                                   progress=False).mean()["dice"],
        "child_at_its_threshold": evaluate_samples(child, unused, child.threshold, progress=False).mean()["dice"],
        "child_at_parent_threshold": evaluate_samples(child, unused, parent.threshold, progress=False).mean()["dice"],
    } if unused else {}
    report = {
        "strategy": args.strategy, "seed": args.seed,
        "threshold": {"parent": parent.threshold, "fine_tuned": outcome.result.checkpoint.threshold}, "device": outcome.result.checkpoint.metadata.get("device"), "minutes_budget": args.minutes,
        "wall_s": round(wall, 1), "epochs": len(outcome.history), "corrections": [s.name for s in corrections],
        "split": outcome.plan.note, "gate": {"accepted": outcome.accepted, "reason": outcome.reason},
        "before": before, "after_finetuned": after,
        "active_after_gate": "fine-tuned" if chosen is not parent else "parent",
        "delta": {k: {m: after[k][m] - before[k][m] for m in ("dice", "auc")} for k in before},
        "threshold_check_unused_stare_train": threshold_check,
    }
    print(f"strategy {args.strategy}, {report['device']}, {wall / 60:.1f} min, {report['epochs']} epochs; {outcome.plan.note}")
    print(f"gate: {'ACCEPT' if outcome.accepted else 'REJECT'} ({outcome.reason}); threshold "
          f"{parent.threshold:.2f} -> {outcome.result.checkpoint.threshold:.2f}")
    print(f"{'':12}{'Dice before':>12}{'after':>8}{'delta':>8}{'AUC before':>12}{'after':>8}{'delta':>8}")
    for k, label in (("stare", "stare/test"), ("drive", "drive/test")):
        b, a = before[k], after[k]
        print(f"{label:12}{b['dice']:12.4f}{a['dice']:8.4f}{a['dice'] - b['dice']:+8.4f}"
              f"{b['auc']:12.4f}{a['auc']:8.4f}{a['auc'] - b['auc']:+8.4f}")
    if threshold_check:
        print(f"stare/train photos not used ({len(threshold_check['images'])}), Dice: parent "
              f"{threshold_check['parent']:.4f}; fine-tuned at its threshold {threshold_check['child_at_its_threshold']:.4f},"
              f" at the parent's {threshold_check['child_at_parent_threshold']:.4f}")
    print(f"targets: stare Dice gain >= +0.04 -> {'met' if report['delta']['stare']['dice'] >= 0.04 else 'NOT met'}; "
          f"drive Dice drop <= 0.02 -> {'met' if report['delta']['drive']['dice'] >= -0.02 else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
