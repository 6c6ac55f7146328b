"""One training engine for `train` and `finetune`: patches, AdamW, Focal-Tversky, validation each epoch.

Runs unchanged under ``torchrun`` (DistributedDataParallel): each rank samples its own patches, the
gradients are averaged, every rank validates on the same held-out images (so early-stopping decisions
agree without extra messages) and only rank 0 writes files.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .checkpoint import Checkpoint, make_checkpoint, weights_sha256
from .data import PatchSampler, PreparedImage
from .device import describe_device, select_device
from .losses import VesselLoss
from .metrics import THRESHOLD_GRID, Confusion, RocHistogram
from .model import ModelConfig, build_model, pad_to_multiple, to_fast_layout, unwrap
from .preprocess import PreprocessConfig
from .training_state import (
    TrainingState,
    TrainingStateError,
    generator_states,
    load_state,
    restore_generators,
    save_state,
)

# VesselLoss is re-exported: the loss this module builds, which the app's fine-tune fault hook replaces.
__all__ = [
    "CancelToken",
    "EpochReport",
    "TrainConfig",
    "TrainResult",
    "VesselLoss",
    "is_distributed",
    "rank",
    "seed_everything",
    "soft_target_loss",
    "train",
    "validate",
]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class CancelToken:
    """Cooperative cancel: the engine checks it between steps; any thread may set it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class TrainConfig:
    epochs: int = 50
    minutes: float | None = None  # wall-time budget; stops after the epoch that exceeds it
    steps_per_epoch: int = 100
    batch_size: int = 8
    patch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    alpha: float = 0.7
    beta: float = 0.3
    gamma: float = 0.75
    bce_weight: float = 0.5
    cldice_weight: float = 0.0  # off: +0.122 against +0.113 on that reduced protocol, DRIVE -0.007 against -0.003
    patience: int = 12  # epochs without a better validation Dice before stopping
    seed: int = 0
    device: str | None = None
    amp: bool = True  # mixed precision, CUDA only
    grad_clip: float = 1.0
    # Fine-tuning without the original data: pull toward the parent's weights (L2-SP) and slow the encoder.
    l2sp_weight: float = 0.0
    encoder_lr_scale: float = 1.0
    freeze_bn: bool = False
    augment: bool = True
    # Share of patches put through a downsample-upsample round trip: a photo saved smaller than the FOV
    # size the model works at is enlarged again before prediction, and arrives softer than training data.
    resample_p: float = 0.0
    # Pick the best epoch by validation Dice at that epoch's best threshold (the one the checkpoint will
    # record) rather than at 0.5: a model whose calibration drifts is not penalised for it.
    select_at_best_threshold: bool = False
    # Validate and keep an exponential moving average of the weights (0: off). With a handful of photos
    # the raw weights swing from epoch to epoch; the average is what a later epoch would settle on.
    ema_decay: float = 0.0
    # Data-free rehearsal (model_core.forgetting): this share of each batch's patches comes from images the
    # parent labelled, taught as soft targets with this weight, so the batch, and a step's cost, stay the same.
    rehearsal_share: float = 0.0
    rehearsal_weight: float = 1.0
    # Share of the corrections' patches (rehearsal patches aside) centred on a pixel of ``train(focus=...)``:
    # where the parent's mask and the correction disagree, so the steps go where the grader corrected. The
    # rest, and all of an image with no such pixel in its FOV, are centred anywhere in the FOV.
    focus_share: float = 0.0
    # Weight in the Focal-Tversky and BCE terms of the pixels where the parent's mask and the correction disagree,
    # and of a margin around them (model_core.finetune.CORRECTION_MARGIN_PX), against 1 for the rest: the steps
    # learn most from what the grader fixed. 1 turns it off; it needs ``train(weights=...)``. Off by default: on a
    # reduced protocol (far-STARE, 10 epochs, 3 seeds) weight 4 raised the gain from +0.113 to +0.126 but pushed the
    # drift on unreviewed photos past the gate's limit in 2 seeds and saved no grader time on the seed measured
    # (docs/benchmarks.md, "Correction weight and soft-clDice"); the full protocol has not been run.
    correction_weight: float = 1.0
    # Weight-space interpolation after training (finetune(), not train()): the smallest α toward the child
    # that keeps this share of its best held-out gain; 0 keeps the child itself.
    wise_keep: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpochReport:
    epoch: int
    epochs: int
    train_loss: float
    val_dice: float
    val_auc: float
    best_dice: float
    elapsed_s: float
    eta_s: float
    improved: bool


@dataclass
class TrainResult:
    checkpoint: Checkpoint  # the best weights by validation Dice (the initial ones if nothing improved)
    history: list[EpochReport] = field(default_factory=list)
    stop_reason: str = "completed"
    initial_val_dice: float = float("nan")
    best_val_dice: float = float("nan")
    best_epoch: int = 0
    threshold: float = 0.5
    wall_s: float = 0.0

    @property
    def failed(self) -> bool:
        return self.stop_reason.startswith("non-finite")


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


@torch.inference_mode()
def validate(
    model: torch.nn.Module, images: list[PreparedImage], device: torch.device, thresholds: np.ndarray | None = None
) -> tuple[float, float, float, float]:
    """(pooled Dice at 0.5, pooled AUC, the threshold with the best pooled Dice, that Dice) inside the FOV."""
    model.eval()
    inner = unwrap(model)
    multiple = 2**inner.config.depth
    thresholds = THRESHOLD_GRID if thresholds is None else thresholds
    conf = [Confusion() for _ in thresholds]
    roc = RocHistogram()
    for im in images:
        h, w = im.x.shape
        t = pad_to_multiple(torch.from_numpy(im.x)[None, None].to(device), multiple)
        prob = torch.sigmoid(inner(t).float())[0, 0, :h, :w].cpu().numpy()
        fov = im.fov > 0
        truth = im.vessels > 0
        roc = roc + RocHistogram.of(prob, truth, fov)
        conf = [a + b for a, b in zip(conf, Confusion.sweep(prob, truth, fov, thresholds), strict=True)]
    dices = [c.dice for c in conf]
    at_half = int(np.argmin(np.abs(thresholds - 0.5)))
    best = int(np.nanargmax(dices))
    return dices[at_half], roc.auc, float(thresholds[best]), dices[best]


def _validate_everywhere(
    net: torch.nn.Module, images: list[PreparedImage], device: torch.device
) -> tuple[float, float, float, float]:
    """Validation whose result every rank agrees on: rank 0's, broadcast (BatchNorm buffers may differ)."""
    values = validate(net, images, device)
    if not is_distributed():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    at_half, auc, threshold, at_best = (float(v) for v in t.tolist())
    return at_half, auc, threshold, at_best


def _agree(decision: bool, device: torch.device) -> bool:
    """Rank 0's decision on every rank: clocks differ between processes, and a rank that stopped alone
    would leave the others waiting forever in the next gradient all-reduce."""
    if not is_distributed():
        return decision
    t = torch.tensor([1.0 if decision else 0.0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


# What AveragedModel hands its multi_avg_fn: the averaged and the current parameters (and buffers).
_Tensors = tuple[torch.Tensor, ...] | list[torch.Tensor]


def _moving_average(decay: float, from_scratch: bool) -> Callable[[_Tensors, _Tensors, torch.Tensor | int], None]:
    """AveragedModel's update: an exponential moving average whose decay ramps up to ``decay``.

    From trained weights (fine-tuning, ``--init``) the ramp is a plain mean of the weights so far, until it
    would weigh the newest less than ``1 - decay``: without a ramp, a fine-tune of a few dozen steps would
    keep mostly the weights after its first step. From random weights a plain mean would drag the random
    start along (0.999 keeps a mean of the first 1000 steps, a fifth of it still there 1500 steps later), so
    the ramp is timm's ``(1 + n) / (10 + n)``, which forgets the first steps within a few dozen.
    """

    @torch.no_grad()
    def update(averaged: _Tensors, current: _Tensors, n_averaged: torch.Tensor | int) -> None:
        n = int(n_averaged)
        keep = min(decay, (1 + n) / (10 + n) if from_scratch else n / (n + 1))
        for a, c in zip(averaged, current, strict=True):
            if a.is_floating_point():
                a.lerp_(c, 1.0 - keep)
            else:  # BatchNorm's step counters: an average of counts means nothing, follow the model
                a.copy_(c)

    return update


def soft_target_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy against soft targets (the parent's probabilities), averaged over taught pixels."""
    per_pixel = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)


def _param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    enc = [p for n, p in model.named_parameters() if n.startswith("encoders.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("encoders.")]
    return [{"params": enc, "lr": cfg.lr * cfg.encoder_lr_scale}, {"params": rest, "lr": cfg.lr}]


def _run_fingerprint(
    cfg: TrainConfig,
    model_config: ModelConfig,
    train_images: list[PreparedImage],
    val_images: list[PreparedImage],
    rehearsal: list[PreparedImage] | None,
) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one: its settings (the device aside) and its images."""
    settings = {k: v for k, v in cfg.to_dict().items() if k != "device"}

    def images(ims: list[PreparedImage] | None) -> list[list[Any]]:
        return [[im.name, *im.x.shape] for im in ims or []]

    return {
        "settings": settings,
        "widths": list(model_config.widths),
        "train": images(train_images),
        "val": images(val_images),
        "rehearsal": images(rehearsal),
    }


def train(
    train_images: list[PreparedImage],
    val_images: list[PreparedImage],
    model_config: ModelConfig,
    preprocess: PreprocessConfig,
    cfg: TrainConfig,
    init: Checkpoint | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    cancel: CancelToken | None = None,
    metadata: dict[str, Any] | None = None,
    rehearsal: list[PreparedImage] | None = None,
    focus: list[np.ndarray] | None = None,
    weights: list[np.ndarray] | None = None,
    state_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> TrainResult:
    """``rehearsal``: images whose ``vessels`` hold soft targets and ``fov`` the pixels to teach
    (model_core.forgetting.RehearsalImage.as_prepared); used when ``cfg.rehearsal_share`` > 0.
    ``focus``: per training image, the pixels to centre ``cfg.focus_share`` of its patches on.
    ``weights``: per training image, each pixel's weight in the loss (``cfg.correction_weight`` made into maps,
    model_core.finetune.correction_weights); None weighs every pixel alike.
    ``state_path``: where the run's state is written after every epoch (``model_core.training_state``);
    ``resume``: carry on from the state there instead of starting afresh (the settings and images must match)."""
    if cfg.focus_share > 0 and focus is None:
        raise ValueError("focus_share needs focus maps (train(focus=...))")
    if cfg.correction_weight != 1.0 and weights is None:
        raise ValueError("correction_weight needs weight maps (train(weights=...))")
    if resume and state_path is None:
        raise ValueError("resume needs the state_path to resume from")
    if resume and is_distributed():
        # The state holds rank 0's random generators only: every rank would draw rank 0's patches.
        raise TrainingStateError(state_path, "a torchrun run cannot be resumed yet; resume it in one process")
    saved = load_state(state_path) if resume and state_path is not None else None
    t0 = time.monotonic()
    seed_everything(cfg.seed)
    device = select_device(cfg.device)
    if is_distributed() and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    model = build_model(init.model_config if init else model_config)
    if init is not None:
        model.load_state_dict(init.state_dict)
        model_config = init.model_config
    to_fast_layout(model.to(device))
    anchor = [p.detach().clone() for p in model.parameters()] if cfg.l2sp_weight else None
    net = torch.nn.parallel.DistributedDataParallel(model) if is_distributed() else model
    ema = None
    if cfg.ema_decay:
        average = _moving_average(cfg.ema_decay, from_scratch=init is None)
        ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=average, use_buffers=True)
    scored = ema.module if ema is not None else net  # the weights that are validated and saved

    loss_fn = VesselLoss(cfg.alpha, cfg.beta, cfg.gamma, cfg.bce_weight, cfg.cldice_weight)
    opt = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    warmup = 0.03 if init is None else 0.0

    def lr_factor(step: int) -> float:
        # Progress is the larger of steps done and time used, so a wall-time budget still ends annealed.
        done = step / total_steps
        if cfg.minutes:
            done = max(done, (time.monotonic() - t0) / (cfg.minutes * 60))
        done = min(done, 1.0)
        if done < warmup:
            return 0.1 + 0.9 * done / warmup
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (done - warmup) / (1 - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    sampler = PatchSampler(
        train_images,
        cfg.patch_size,
        seed=cfg.seed + 1000 * rank(),
        augment=cfg.augment,
        resample_p=cfg.resample_p,
        focus=focus,
        focus_p=cfg.focus_share,
        weights=weights,
    )
    n_rehearse = min(cfg.batch_size - 1, round(cfg.batch_size * cfg.rehearsal_share)) if rehearsal else 0
    rehearse = (
        PatchSampler(rehearsal, cfg.patch_size, seed=cfg.seed + 7 + 1000 * rank(), augment=cfg.augment)
        if rehearsal and n_rehearse
        else None
    )

    base_meta = {
        "preset_widths": list(model_config.widths),
        "train_config": cfg.to_dict(),
        "device": describe_device(device),
        **(metadata or {}),
    }
    best = make_checkpoint(model, preprocess, base_meta)
    init_dice, best_th = float("nan"), 0.5
    if init is not None and val_images and saved is None:
        at_half, _, best_th, at_best = _validate_everywhere(net, val_images, device)
        init_dice = at_best if cfg.select_at_best_threshold else at_half
    # The best *trained* weights are returned even when the parent scored higher: the caller gates on
    # initial_val_dice vs best_val_dice, and a silent "nothing changed" would hide a failed fine-tune.
    best_dice = -1.0
    result = TrainResult(best, initial_val_dice=init_dice, threshold=best_th)
    best_epoch, stale, reason = 0, 0, "completed"
    epoch_times: list[float] = []
    fingerprint = _run_fingerprint(cfg, model_config, train_images, val_images, rehearsal)
    start_epoch = 1
    if saved is not None:
        if saved.fingerprint != fingerprint:
            raise TrainingStateError(
                state_path, "was saved by another run (its settings or images differ); start afresh without --resume"
            )
        model.load_state_dict(saved.model)
        opt.load_state_dict(saved.optimizer)
        sched.load_state_dict(saved.scheduler)
        scaler.load_state_dict(saved.scaler)
        if ema is not None and saved.ema is not None:
            ema.load_state_dict(saved.ema)
        best_weights = saved.best_state
        best = Checkpoint(model_config, preprocess, best_weights, saved.best_metadata, weights_sha256(best_weights))
        p = saved.progress
        best_dice, best_epoch, stale, best_th = p["best_dice"], p["best_epoch"], p["stale"], p["best_threshold"]
        epoch_times = list(p["epoch_times"])
        result = TrainResult(best, initial_val_dice=p["initial_val_dice"], threshold=best_th)
        result.history = [EpochReport(**h) for h in saved.history]
        torch.set_rng_state(saved.rng["torch"])
        restore_generators(sampler.generators(), saved.rng["sampler"])
        if rehearse is not None:
            restore_generators(rehearse.generators(), saved.rng["rehearsal"])
        t0 = time.monotonic() - saved.elapsed_s  # the schedule and the budget count the time already used
        start_epoch = saved.epoch + 1

    def save_run_state(epoch: int) -> None:
        if state_path is None or rank() != 0:
            return
        state = TrainingState(
            epoch=epoch,
            elapsed_s=time.monotonic() - t0,
            fingerprint=fingerprint,
            model=model.state_dict(),
            optimizer=opt.state_dict(),
            scheduler=sched.state_dict(),
            scaler=scaler.state_dict(),
            ema=ema.state_dict() if ema is not None else None,
            best_state=best.state_dict,
            best_metadata=best.metadata,
            progress={
                "best_dice": best_dice,
                "best_epoch": best_epoch,
                "stale": stale,
                "best_threshold": best_th,
                "epoch_times": epoch_times,
                "initial_val_dice": result.initial_val_dice,
            },
            history=[asdict(h) for h in result.history],
            rng={
                "torch": torch.get_rng_state(),
                "sampler": generator_states(sampler.generators()),
                "rehearsal": generator_states(rehearse.generators()) if rehearse is not None else [],
            },
        )
        save_state(state_path, state)

    for epoch in range(start_epoch, cfg.epochs + 1):
        e0 = time.monotonic()
        net.train()
        if cfg.freeze_bn:
            # With a handful of images, batch statistics are noise: keep the parent's running statistics.
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        losses = []
        for step in range(cfg.steps_per_epoch):
            if cancel is not None and cancel.cancelled:
                reason = "cancelled"
                break
            x, y, v, w = (
                torch.from_numpy(a).to(device, non_blocking=True)
                for a in sampler.weighted_batch(cfg.batch_size - n_rehearse)
            )
            if rehearse is not None:
                xr, yr, vr = (torch.from_numpy(a).to(device, non_blocking=True) for a in rehearse.batch(n_rehearse))
                x = torch.cat([x, xr])
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                logits = net(x)
            n = len(y)
            loss = loss_fn(logits[:n].float(), y, v, w if weights is not None else None)
            if rehearse is not None:
                loss = loss + cfg.rehearsal_weight * soft_target_loss(logits[n:].float(), yr, vr)
            if anchor is not None:
                drift = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True))
                loss = loss + cfg.l2sp_weight * drift
            bad = torch.tensor(0.0 if torch.isfinite(loss) else 1.0, device=device)
            if is_distributed():
                dist.all_reduce(bad)
            if bad.item() > 0:
                reason = f"non-finite loss at epoch {epoch}, step {step + 1}; kept the last good weights"
                break
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(epoch, step + 1, losses[-1])
        if reason != "completed":
            break
        nan = float("nan")
        at_half, val_auc, th, at_best = (
            _validate_everywhere(scored, val_images, device) if val_images else (nan, nan, 0.5, nan)
        )
        val_dice = at_best if cfg.select_at_best_threshold else at_half
        improved = (val_dice > best_dice) if not math.isnan(val_dice) else True
        if improved:
            best_dice, best_epoch, stale, best_th = (val_dice if not math.isnan(val_dice) else best_dice), epoch, 0, th
            best = make_checkpoint(scored, preprocess, base_meta)
        else:
            stale += 1
        epoch_times.append(time.monotonic() - e0)
        elapsed = time.monotonic() - t0
        remaining = cfg.epochs - epoch
        if cfg.minutes:
            remaining = min(remaining, max(0, int((cfg.minutes * 60 - elapsed) / np.mean(epoch_times))))
        report = EpochReport(
            epoch,
            cfg.epochs,
            float(np.mean(losses)) if losses else float("nan"),
            val_dice,
            val_auc,
            best_dice,
            elapsed,
            remaining * float(np.mean(epoch_times)),
            improved,
        )
        result.history.append(report)
        save_run_state(epoch)
        if on_epoch is not None:
            on_epoch(report)
        if stale >= cfg.patience:
            reason = f"early stop: no better validation Dice for {cfg.patience} epochs"
            break
        if cfg.minutes and _agree(elapsed + np.mean(epoch_times) > cfg.minutes * 60, device):
            reason = f"time budget of {cfg.minutes:g} min reached"
            break
    result.checkpoint = best
    result.stop_reason = reason
    result.best_val_dice = best_dice
    result.best_epoch = best_epoch
    result.threshold = best_th
    result.wall_s = time.monotonic() - t0
    best.metadata.update(
        {
            "best_epoch": best_epoch,
            "val_dice": best_dice,
            "val_threshold": best_th,
            "stop_reason": reason,
            "wall_s": round(result.wall_s, 1),
            "epochs_run": len(result.history),
        }
    )
    return result
