"""Does a W-Net-style second stage lift the bundled model? (held-out photos only, never a test split)

Little W-Net (Galdran et al., Sci Rep 2022) refines a first U-Net's probabilities with a second one. This trains
only the second stage, on top of the frozen bundled model: a small Attention U-Net that reads the preprocessed
photo and the first stage's probability and adds a correction to its logit. The correction's last layer starts at
zero, so the cascade starts exactly at the bundled model and training can only move it from there.

Data and augmentation are the bundled model's (DRIVE and STARE train, two camera renderings of every training
photo, 30 % of patches softened; the same held-out photos, natively, resized by 0.88 and as one camera rendering),
and the score is the training's own validation: pooled Dice at the best threshold over those renderings.
Every ``--every`` steps it prints the cascade's figures beside the bundled model's, and keeps the best weights.

    python benchmarks/bench_cascade.py [--minutes 60] [--widths 8,16,32,64] [--out cascade_stage2.pt]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from model_core.checkpoint import load_checkpoint
from model_core.cli import _split_train_val
from model_core.data import PatchSampler, PreparedImage, discover, prepare_all
from model_core.engine import seed_everything
from model_core.losses import VesselLoss
from model_core.metrics import THRESHOLD_GRID, Confusion, RocHistogram
from model_core.model import AttentionUNet, ConvBlock, ModelConfig, pad_to_multiple, to_fast_layout
from model_core.resources import default_model_path

DATA = ("../shared/data/drive", "../shared/data/stare")


class SecondStage(torch.nn.Module):
    """The first stage's logit plus a correction read from (photo, first stage's probability)."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.net = AttentionUNet(ModelConfig(widths=widths))
        self.net.encoders[0] = ConvBlock(2, widths[0])  # two input channels
        torch.nn.init.zeros_(self.net.head.weight)
        torch.nn.init.zeros_(self.net.head.bias)

    def forward(self, x: torch.Tensor, first_logit: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = first_logit + self.net(torch.cat([x, torch.sigmoid(first_logit)], 1))
        return out


@torch.inference_mode()
def score(
    first: torch.nn.Module, second: SecondStage | None, images: list[PreparedImage]
) -> tuple[float, float, float]:
    """(pooled Dice at the best threshold, that threshold, pooled AUC) inside the FOV."""
    conf = [Confusion() for _ in THRESHOLD_GRID]
    roc = RocHistogram()
    for im in images:
        h, w = im.x.shape
        t = pad_to_multiple(torch.from_numpy(im.x)[None, None], 16)
        logit = first(t)
        if second is not None:
            second.eval()
            logit = second(t, logit)
            second.train()
        prob = torch.sigmoid(logit)[0, 0, :h, :w].numpy()
        fov, truth = im.fov > 0, im.vessels > 0
        roc = roc + RocHistogram.of(prob, truth, fov)
        conf = [a + b for a, b in zip(conf, Confusion.sweep(prob, truth, fov, THRESHOLD_GRID), strict=True)]
    dice = [c.dice for c in conf]
    best = int(np.nanargmax(dice))
    return float(dice[best]), float(THRESHOLD_GRID[best]), float(roc.auc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--widths", default="8,16,32,64")
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--out", default="cascade_stage2.pt")
    args = ap.parse_args()
    torch.set_num_threads(2)
    seed_everything(0)
    ck = load_checkpoint(default_model_path())
    first = to_fast_layout(ck.build().eval())
    for p in first.parameters():
        p.requires_grad_(False)
    pre, train_s, val_s = ck.preprocess, [], []
    for folder in DATA:
        t, v = _split_train_val(discover(folder, split="train"), 0.2, 0)
        train_s, val_s = train_s + t, val_s + v
    train = prepare_all(train_s, pre) + [im for k in range(2) for im in prepare_all(train_s, pre, camera=k)]
    val = prepare_all(val_s, pre) + prepare_all(val_s, pre, resample=0.88) + prepare_all(val_s, pre, camera=999)
    second = to_fast_layout(SecondStage(tuple(int(w) for w in args.widths.split(","))))
    n_params = sum(p.numel() for p in second.parameters())
    print(f"held out: {', '.join(s.name for s in val_s)}; second stage {n_params} parameters", flush=True)
    print("bundled model alone: Dice {:.4f} at {:.2f}, AUC {:.4f}".format(*score(first, None, val)), flush=True)
    sampler = PatchSampler(train, 128, seed=1, augment=True, resample_p=0.3)
    loss_fn = VesselLoss(0.5, 0.5, 0.75, 0.5, 0.0)
    opt = torch.optim.AdamW(second.parameters(), lr=2e-3, weight_decay=1e-4)
    t0, step, best = time.monotonic(), 0, -1.0
    while (done := (time.monotonic() - t0) / (args.minutes * 60)) < 1:
        for g in opt.param_groups:  # cosine over the wall-time budget, as `train --minutes`
            g["lr"] = 2e-3 * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * done)))
        x, y, v = (torch.from_numpy(a).contiguous(memory_format=torch.channels_last) for a in sampler.batch(12))
        with torch.no_grad():
            first_logit = first(x)
        loss = loss_fn(second(x, first_logit), y, v)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % args.every == 0:
            dice, th, auc = score(first, second, val)
            print(f"step {step} ({time.monotonic() - t0:.0f} s): cascade Dice {dice:.4f} at {th:.2f}, AUC {auc:.4f}")
            if dice > best:
                best = dice
                torch.save(second.state_dict(), args.out)
    dice, th, auc = score(first, second, val)
    print(f"after {step} steps: cascade Dice {dice:.4f} at {th:.2f}, AUC {auc:.4f}", flush=True)


if __name__ == "__main__":
    main()
