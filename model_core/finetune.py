"""Fine-tuning on a grader's corrections, gated so that the model never becomes silently worse.

The original training photos cannot ship with the app, so forgetting is limited without them:
L2-SP (a pull toward the parent's weights), a lower learning rate for the encoder, frozen BatchNorm
statistics, and a moving average of the trajectory. After training, the kept weights are a blend of
parent and child (weight-space interpolation, model_core.forgetting) chosen on the held-out
corrections; optional rehearsal on parent-labelled photos runs during training. The kept weights are
compared with the parent on held-out corrected images and become active only when they score at least
as well; the gate also reports how much they change predictions on photos outside the corrections.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .checkpoint import Checkpoint, weights_sha256
from .checks import is_number
from .data import PreparedImage, Sample, prepare
from .device import select_device
from .engine import CancelToken, EpochReport, TrainConfig, TrainResult, train, validate
from .errors import DatasetError, ImageReadError
from .forgetting import (
    ALPHA_GRID,
    KEEP_GAIN,
    choose_alpha,
    interpolate,
    network,
    photo_rehearsal,
    prediction_drift,
    probabilities,
    synthetic_rehearsal,
)
from .gate import GateEvidence, Verdict, decide, paired_gain, tile_counts
from .model_store import ModelStore, ModelVersion

# The loss shapes what the probabilities mean (and so the threshold the parent was calibrated at): a child
# keeps its parent's loss unless told otherwise, or its probabilities drift away from that threshold.
INHERITED_LOSS_TERMS = ("alpha", "beta", "gamma", "bce_weight", "cldice_weight")
# Weight-space interpolation is on by default (see benchmarks/bench_finetune.py for what it measured).
WISE_KEEP = KEEP_GAIN
# Rehearsal on parent-labelled photos is on by default: from v3 on 5 photos (seed 0, 57 × 20 steps) it cut the
# drop on DRIVE from -0.012 to -0.005 on STARE at the same gain (+0.037 / +0.038) and from -0.020 to -0.005 on the
# far-camera STARE (+0.140 against +0.150); seeds 1 and 2 with it: STARE +0.041 / -0.009 and +0.041 / -0.010
# (docs/benchmarks/finetune_benchmark_wise_*_both_*.json). Each source alone, far camera, seed 0: unreviewed photos
# +0.133 / -0.005, synthetic photos +0.146 / -0.009; together +0.140 / -0.005, so both are used. A learning rate of
# 3e-3 instead of 2e-3 did not raise the STARE gain (3 seeds: +0.039 / -0.010). The reports of the runs without
# rehearsal, with one source and at 3e-3 are in git history (`git ls-tree --name-only b91a6eb docs/` lists them).
REHEARSAL_SHARE = 0.25
# Pixels around a correction weighted like the correction itself (cfg.correction_weight), at the network's scale.
# Weighting only the changed pixels is one-sided: where the grader painted a missed vessel every changed pixel is
# vessel, and a loss that sees those alone is lowered by painting vessel everywhere near them. Two pixels bring in
# the background on both sides of a missed 1-2 px vessel (its edges, where a thickened prediction goes wrong) and
# the boundary pixels of an erased false vessel, so the weighted pixels teach a vessel's width as well as its
# presence; the network's input is a 540-px FOV, where thin vessels are 1-3 px wide.
CORRECTION_MARGIN_PX = 2
# Synthetic photos made for rehearsal (when cfg.rehearsal_share > 0) and, without unreviewed photos, for drift.
SYNTHETIC_IMAGES = 6


def finetune_config(parent: Checkpoint | None = None, **overrides: Any) -> TrainConfig:
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
    #   seed 1: +0.014 / -0.016; repeated: +0.034 / -0.020 and +0.033 / -0.013
    #   (`git show b91a6eb:docs/finetune_benchmark_cpu_repeats.json`).
    # Plain fine-tuning (the naive probe) lost 0.11 on DRIVE.
    # Validating and keeping a moving average of the weights (ema_decay 0.99, ~100-step horizon), from v3:
    #   seed 0: +0.030 / -0.011; seed 1: +0.038 / -0.016; seed 2: +0.037 / -0.016, where the raw weights gave
    #   +0.019 / -0.018 (`git show b91a6eb:docs/finetune_benchmark_cpu_ema.json`). The score on one held-out photo
    #   rises smoothly instead of jumping, so the best epoch is less often a lucky one (the raw seed-2 run scored as
    #   high there and gained half as much).
    base: dict[str, Any] = dict(
        epochs=30,
        steps_per_epoch=20,
        batch_size=8,
        patch_size=128,
        lr=2e-3,
        bce_weight=0.5,
        patience=30,
        l2sp_weight=3e-4,
        encoder_lr_scale=0.3,
        freeze_bn=True,
        ema_decay=0.99,
        wise_keep=WISE_KEEP,
        rehearsal_share=REHEARSAL_SHARE,
    )
    base.update(_parent_loss(parent))
    base.update(overrides)
    return TrainConfig(**base)


def _parent_loss(parent: Checkpoint | None) -> dict[str, float]:
    """The parent's loss terms that are usable numbers; anything odd in a foreign file is ignored."""
    record = parent.metadata.get("train_config") if parent is not None else None
    if not isinstance(record, dict):
        return {}
    return {k: float(record[k]) for k in INHERITED_LOSS_TERMS if is_number(record.get(k)) and record[k] >= 0}


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
        return FinetunePlan(
            samples,
            samples,
            "only 1 corrected image: it is used for training and validation, so the gate cannot measure generalisation",
        )
    n_val = max(1, round(n * 0.25))
    # Every 4th image, deterministically, so the same corrections always give the same split.
    order = list(range(n))
    val_idx = set(order[:: max(1, n // n_val)][:n_val])
    val = [s for i, s in enumerate(samples) if i in val_idx]
    train_s = [s for i, s in enumerate(samples) if i not in val_idx]
    return FinetunePlan(
        train_s,
        val,
        f"{len(train_s)} image{'s' if len(train_s) != 1 else ''} for training, {len(val)} held out for validation",
    )


@dataclass
class FinetuneOutcome:
    result: TrainResult
    plan: FinetunePlan
    parent_dice: float
    new_dice: float
    accepted: bool  # the gate's verdict was "accept" (the version becomes active by itself)
    reason: str
    version: ModelVersion | None = None
    verdict: Verdict = "reject"
    evidence: GateEvidence | None = None
    history: list[EpochReport] = field(default_factory=list)
    alpha: float = 1.0  # the weight-space interpolation kept (1: the fine-tuned weights themselves)
    alpha_scores: dict[float, float] = field(default_factory=dict)  # held-out Dice along the line
    drift: float | None = None  # share of the vessel map changed on photos outside the corrections
    drift_source: str = ""


def finetune(
    parent: Checkpoint,
    samples: list[Sample],
    cfg: TrainConfig | None = None,
    store: ModelStore | None = None,
    parent_id: str | None = None,
    activate: bool = True,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    cancel: CancelToken | None = None,
    unreviewed: list[Path] | None = None,
) -> FinetuneOutcome:
    """``unreviewed``: photos nobody corrected (the workspace's others): rehearsal material when
    ``cfg.rehearsal_share`` > 0, and where the gate measures drift."""
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
    device = select_device(cfg.device)
    photos = photo_rehearsal(parent, list(unreviewed or []), device=device)
    synthetic = (
        synthetic_rehearsal(parent, SYNTHETIC_IMAGES, cfg.seed, device) if cfg.rehearsal_share > 0 or not photos else []
    )
    rehearsal = [im.as_prepared() for im in photos + synthetic] if cfg.rehearsal_share > 0 else None
    parent_record = {"name": parent.name, "version": parent.version, "sha256": parent.sha256}
    meta: dict[str, Any] = {"name": parent.name, "parent": parent_record}
    weighted = cfg.correction_weight != 1.0
    changed = corrected_pixels(parent, train_imgs, device) if cfg.focus_share > 0 or weighted else None
    focus = changed if cfg.focus_share > 0 else None
    weights = None
    if changed is not None and weighted:
        weights = correction_weights(changed, cfg.correction_weight)
        meta["correction_weighting"] = correction_record(changed, train_imgs, cfg.correction_weight)
    result = train(
        train_imgs,
        val_imgs,
        parent.model_config,
        parent.preprocess,
        cfg,
        init=parent,
        on_epoch=on_epoch,
        on_step=on_step,
        cancel=cancel,
        metadata=meta,
        rehearsal=rehearsal,
        focus=focus,
        weights=weights,
    )
    new_dice = result.best_val_dice
    alpha = 1.0
    alpha_scores: dict[float, float] = {}
    usable = result.stop_reason != "cancelled" and not result.failed
    if usable and cfg.wise_keep > 0 and val_imgs and not math.isnan(result.initial_val_dice):
        alpha, alpha_scores, new_dice = _interpolate_child(parent, result, val_imgs, cfg, device)
    ckpt = result.checkpoint
    # The child keeps its own calibrated threshold, whatever the verdict: it is the one it is judged at, and the
    # one it would use if the grader activates it later.
    ckpt.metadata["threshold"] = result.threshold if usable else parent.threshold
    ckpt.metadata["wise_alpha"] = alpha
    drift, drift_source = None, ""
    if usable:
        drift_source = "unreviewed photos" if photos else "synthetic photos"
        drift = prediction_drift(
            parent.threshold, network(ckpt, device=device), ckpt.threshold, photos or synthetic, device
        )
        ckpt.metadata["drift"] = {"share": drift, "on": drift_source, "images": len(photos or synthetic)}
    evidence = (
        held_out_evidence(parent, ckpt, val_imgs, drift, drift_source, plan.train is plan.val, device)
        if usable and val_imgs
        else None
    )
    verdict = decide(evidence, result.stop_reason)
    ckpt.metadata["gate"] = {"verdict": verdict.verdict, "reason": verdict.reason}
    if evidence is not None:
        ckpt.metadata["gate"]["evidence"] = evidence.to_dict()
    outcome = FinetuneOutcome(
        result,
        plan,
        result.initial_val_dice,  # the validation figures; the gate's own are in ``evidence``
        new_dice,
        verdict.accepted,
        verdict.reason,
        history=result.history,
        alpha=alpha,
        alpha_scores=alpha_scores,
        drift=drift,
        drift_source=drift_source,
        verdict=verdict.verdict,
        evidence=evidence,
    )
    accepted, reason = verdict.accepted, verdict.reason
    if store is not None and usable:
        info = {
            "label": f"fine-tuned from {parent_id or parent.version}",
            "parent": parent_id or parent.version,
            "images": {"train": [s.image.name for s in plan.train], "val": [s.image.name for s in plan.val]},
            "split_note": plan.note,
            "settings": cfg.to_dict(),
            "metrics": {
                "val_dice_before": result.initial_val_dice,
                "val_dice_after": new_dice,
                "val_dice_child": result.best_val_dice,
                "drift": outcome.drift,
            },
            "wise": {"alpha": alpha, "keep": cfg.wise_keep, "val_dice": {str(a): d for a, d in alpha_scores.items()}},
            "drift_source": outcome.drift_source,
            "rehearsal": {"photos": len(photos), "synthetic": len(synthetic)} if rehearsal else None,
            "accepted": accepted,
            "verdict": verdict.verdict,
            "reason": reason,
            "evidence": evidence.to_dict() if evidence else None,
            "stop_reason": result.stop_reason,
            "wall_s": round(result.wall_s, 1),
            "epochs_run": len(result.history),
        }
        outcome.version = store.add(ckpt, info)
        if accepted and activate:
            store.activate(outcome.version.id)
    return outcome


def held_out_evidence(
    parent: Checkpoint,
    child: Checkpoint,
    val_imgs: list[PreparedImage],
    drift: float | None,
    drift_source: str,
    shared: bool,
    device: torch.device,
) -> GateEvidence:
    """Parent and child, each at its own threshold, on the same tiles of the held-out corrections."""
    parent_net, child_net = network(parent, device=device), network(child, device=device)
    truths, fovs = [im.vessels for im in val_imgs], [im.fov for im in val_imgs]
    parent_masks = [probabilities(parent_net, im.x, device) >= parent.threshold for im in val_imgs]
    child_masks = [probabilities(child_net, im.x, device) >= child.threshold for im in val_imgs]
    before, after, low, high, tiles = paired_gain(
        tile_counts(parent_masks, truths, fovs), tile_counts(child_masks, truths, fovs)
    )
    return GateEvidence(
        photos=len(val_imgs),
        tiles=tiles,
        parent_dice=before,
        child_dice=after,
        gain=after - before,
        gain_low=low,
        gain_high=high,
        drift=drift,
        drift_source=drift_source,
        threshold_before=parent.threshold,
        threshold_after=child.threshold,
        shared=shared,
    )


def corrected_pixels(parent: Checkpoint, images: list[PreparedImage], device: torch.device) -> list[np.ndarray]:
    """Per image (at the network's scale), where the parent's mask at its threshold and the correction
    disagree: what the grader changed when starting from this parent's prediction, and in any case what the
    parent gets wrong. Pixels outside the FOV are included; the sampler leaves them out."""
    net = network(parent, device=device)
    return [(probabilities(net, im.x, device) >= parent.threshold) != (im.vessels > 0) for im in images]


def correction_weights(changed: list[np.ndarray], weight: float) -> list[np.ndarray]:
    """Per image, each pixel's weight in the loss: ``weight`` on the changed pixels and within
    ``CORRECTION_MARGIN_PX`` of them, 1 elsewhere."""
    return [np.where(near_correction(c), np.float32(weight), np.float32(1.0)).astype(np.float32) for c in changed]


def near_correction(changed: np.ndarray) -> np.ndarray:
    """The changed pixels and those within ``CORRECTION_MARGIN_PX`` of them (a disc, at the network's scale)."""
    if CORRECTION_MARGIN_PX <= 0 or not changed.any():
        return changed.astype(bool)
    side = 2 * CORRECTION_MARGIN_PX + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    return cv2.dilate(changed.astype(np.uint8), disc) > 0


def correction_record(changed: list[np.ndarray], images: list[PreparedImage], weight: float) -> dict[str, Any]:
    """What the version records about its correction weighting: the weight, the margin and how much of the
    corrections' FOV it covered."""
    fov = sum(int((im.fov > 0).sum()) for im in images)
    near = sum(int((near_correction(c) & (im.fov > 0)).sum()) for c, im in zip(changed, images, strict=True))
    return {
        "weight": weight,
        "margin_px": CORRECTION_MARGIN_PX,
        "changed_share": sum(int((c & (im.fov > 0)).sum()) for c, im in zip(changed, images, strict=True))
        / max(fov, 1),
        "weighted_share": near / max(fov, 1),
    }


def _interpolate_child(
    parent: Checkpoint, result: TrainResult, val_imgs: list[PreparedImage], cfg: TrainConfig, device: torch.device
) -> tuple[float, dict[float, float], float]:
    """Score the line between parent and child on the held-out corrections, keep the α ``choose_alpha``
    picks, and put its weights and threshold into ``result.checkpoint``. Returns (α, scores, its Dice)."""
    child = result.checkpoint
    scores: dict[float, float] = {}
    thresholds: dict[float, float] = {}
    for a in ALPHA_GRID:
        weights = interpolate(parent.state_dict, child.state_dict, a)
        at_half, _, th, at_best = validate(network(child, weights, device), val_imgs, device)
        scores[a], thresholds[a] = (at_best if cfg.select_at_best_threshold else at_half), th
    base = scores[0.0]
    alpha = choose_alpha({a: d - base for a, d in scores.items()}, cfg.wise_keep)
    if alpha != 1.0:
        child.state_dict = interpolate(parent.state_dict, child.state_dict, alpha)
        child.sha256 = weights_sha256(child.state_dict)
        result.threshold = thresholds[alpha]
        child.metadata.update({"val_dice": scores[alpha], "val_threshold": thresholds[alpha]})
    child.metadata["wise_thresholds"] = {str(a): t for a, t in thresholds.items()}
    return alpha, scores, scores[alpha]
