"""Fine-tuning on a grader's corrections, gated so that the model never becomes silently worse.

The original training photos cannot ship with the app, so forgetting is limited without them:
L2-SP (a pull toward the parent's weights), a lower learning rate for the encoder, and frozen
BatchNorm statistics; the weights kept are a moving average of the trajectory. The new weights are
compared with the parent on held-out corrected images and become active only when they score at
least as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .checkpoint import Checkpoint
from .data import Sample, prepare
from .errors import DatasetError, ImageReadError
from .engine import CancelToken, EpochReport, TrainConfig, TrainResult, train
from .model_store import ModelStore, ModelVersion


# The loss shapes what the probabilities mean (and so the threshold the parent was calibrated at): a child
# keeps its parent's loss unless told otherwise, or its probabilities drift away from that threshold.
INHERITED_LOSS_TERMS = ("alpha", "beta", "gamma", "bce_weight", "cldice_weight")


def finetune_config(parent: Checkpoint | None = None, **overrides) -> TrainConfig:
    """Defaults for fine-tuning from a handful of corrections (see benchmarks/bench_finetune.py).

    With ``parent``, its training loss (``INHERITED_LOSS_TERMS``) replaces the generic one; ``overrides``
    win over both.
    """
    # Measured with benchmarks/bench_finetune.py (default model; 5 STARE photos as corrections, 4 train + 1 val;
    # 10-CPU-minute budget; one run each), Dice change on stare/test / drive/test:
    #   lr 3e-4, L2-SP 1e-3, patience 8 ("gentle"):        +0.014 / -0.011
    #   lr 1e-3, L2-SP 1e-4, no early stop ("strong"):      +0.032 / -0.016
    #   lr 2e-3, L2-SP 3e-4, patience 30 (these defaults):  +0.050 / -0.018 (7.9 min)
    # The same defaults from the second default model (v2, which starts at 0.801 on stare/test instead of 0.779):
    #   seed 0: +0.014 / -0.018; seed 1: +0.038 / -0.020 -- a handful of images makes runs vary with the seed.
    # From v3 (0.803 on stare/test; symmetric loss, inherited by the child): seed 0: +0.030 / -0.017;
    #   seed 1: +0.014 / -0.016; repeated: +0.034 / -0.020 and +0.033 / -0.013 (docs/finetune_benchmark_cpu*.json).
    # Plain fine-tuning (the naive probe) lost 0.11 on DRIVE.
    # Validating and keeping a moving average of the weights (ema_decay 0.99, ~100-step horizon), from v3:
    #   seed 0: +0.030 / -0.011; seed 1: +0.038 / -0.016; seed 2: +0.037 / -0.016, where the raw weights gave
    #   +0.019 / -0.018 (docs/finetune_benchmark_cpu_ema.json). The score on one held-out photo rises smoothly
    #   instead of jumping, so the best epoch is less often a lucky one (the raw seed-2 run scored as high there
    #   and gained half as much).
    base = dict(epochs=30, steps_per_epoch=20, batch_size=8, patch_size=128, lr=2e-3, bce_weight=0.5,
                patience=30, l2sp_weight=3e-4, encoder_lr_scale=0.3, freeze_bn=True, ema_decay=0.99)
    base.update(_parent_loss(parent))
    base.update(overrides)
    return TrainConfig(**base)


def _parent_loss(parent: Checkpoint | None) -> dict:
    """The parent's loss terms that are usable numbers; anything odd in a foreign file is ignored."""
    record = parent.metadata.get("train_config") if parent is not None else None
    if not isinstance(record, dict):
        return {}
    usable = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
    return {k: float(record[k]) for k in INHERITED_LOSS_TERMS if usable(record.get(k))}


@dataclass
class FinetunePlan:
    train: list[Sample]
    val: list[Sample]
    note: str


def plan_split(samples: list[Sample]) -> FinetunePlan:
    """Hold out a quarter of the corrections (at least one) for validation.

    With a single correction there is nothing to hold out: it is used for both, and the grader is told
    that the gate then only checks that the model fits that image at least as well as before.
    """
    n = len(samples)
    if n == 0:
        raise ValueError("no corrected images to fine-tune on")
    if n == 1:
        return FinetunePlan(samples, samples, "only 1 corrected image: it is used for training and validation, "
                                              "so the gate cannot measure generalisation")
    n_val = max(1, round(n * 0.25))
    # Every 4th image, deterministically, so the same corrections always give the same split.
    order = list(range(n))
    val_idx = set(order[::max(1, n // n_val)][:n_val])
    val = [s for i, s in enumerate(samples) if i in val_idx]
    train_s = [s for i, s in enumerate(samples) if i not in val_idx]
    return FinetunePlan(train_s, val, f"{len(train_s)} image{'s' if len(train_s) != 1 else ''} for training, "
                                      f"{len(val)} held out for validation")


@dataclass
class FinetuneOutcome:
    result: TrainResult
    plan: FinetunePlan
    parent_dice: float
    new_dice: float
    accepted: bool
    reason: str
    version: ModelVersion | None = None
    history: list[EpochReport] = field(default_factory=list)


def gate(parent_dice: float, new_dice: float, stop_reason: str) -> tuple[bool, str]:
    if stop_reason.startswith("non-finite"):
        return False, f"training failed ({stop_reason})"
    if stop_reason == "cancelled":
        return False, "cancelled before it finished"
    if math.isnan(new_dice):
        return False, "no validation score"
    if math.isnan(parent_dice) or new_dice >= parent_dice:
        return True, f"validation Dice {new_dice:.4f} is at least the parent's {parent_dice:.4f}"
    return False, f"validation Dice {new_dice:.4f} is below the parent's {parent_dice:.4f}"


def finetune(parent: Checkpoint, samples: list[Sample], cfg: TrainConfig | None = None,
             store: ModelStore | None = None, parent_id: str | None = None, activate: bool = True,
             on_epoch=None, on_step=None, cancel: CancelToken | None = None) -> FinetuneOutcome:
    cfg = cfg or finetune_config(parent)
    # One unusable correction (deleted, unreadable, mask of the wrong size) is left out, not fatal.
    prepared, skipped = {}, []
    for sample in samples:
        try:
            prepared[sample] = prepare(sample, parent.preprocess)
        except (ImageReadError, DatasetError) as exc:
            skipped.append(str(exc))
    plan = plan_split([s for s in samples if s in prepared])
    if skipped:
        plan.note += f"; left out {len(skipped)} unusable: " + "; ".join(skipped)
    train_imgs = [prepared[s] for s in plan.train]
    val_imgs = [prepared[s] for s in plan.val]
    meta = {"name": parent.name, "parent": {"name": parent.name, "version": parent.version, "sha256": parent.sha256}}
    result = train(train_imgs, val_imgs, parent.model_config, parent.preprocess, cfg, init=parent,
                   on_epoch=on_epoch, on_step=on_step, cancel=cancel, metadata=meta)
    accepted, reason = gate(result.initial_val_dice, result.best_val_dice, result.stop_reason)
    outcome = FinetuneOutcome(result, plan, result.initial_val_dice, result.best_val_dice, accepted, reason,
                              history=result.history)
    ckpt = result.checkpoint
    ckpt.metadata["threshold"] = result.threshold if accepted else parent.threshold
    if store is not None and result.stop_reason != "cancelled" and not result.failed:
        info = {
            "label": f"fine-tuned from {parent_id or parent.version}",
            "parent": parent_id or parent.version,
            "images": {"train": [s.image.name for s in plan.train], "val": [s.image.name for s in plan.val]},
            "split_note": plan.note,
            "settings": cfg.to_dict(),
            "metrics": {"val_dice_before": result.initial_val_dice, "val_dice_after": result.best_val_dice},
            "accepted": accepted, "reason": reason, "stop_reason": result.stop_reason,
            "wall_s": round(result.wall_s, 1), "epochs_run": len(result.history),
        }
        outcome.version = store.add(ckpt, info)
        if accepted and activate:
            store.activate(outcome.version.id)
    return outcome
