"""Losses on logits: Focal-Tversky, optionally plus BCE (for calibrated probabilities) and soft clDice."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _masked(probs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if valid is None:
        return probs, target
    return probs * valid, target * valid


class FocalTverskyLoss(nn.Module):
    """(1 - TI)^gamma with TI = TP / (TP + alpha*FP + beta*FN). alpha weighs false positives, beta false negatives."""

    def __init__(self, alpha: float = 0.7, beta: float = 0.3, gamma: float = 0.75, smooth: float = 1.0) -> None:
        super().__init__()
        self.alpha, self.beta, self.gamma, self.smooth = alpha, beta, gamma, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        p, t = _masked(torch.sigmoid(logits.float()), target.float(), valid)
        tp = (p * t).sum()
        fp = (p * (1 - t)).sum()  # p is already zero outside the valid region
        fn = ((1 - p) * t).sum()
        ti = (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)
        loss: torch.Tensor = (1 - ti).clamp_min(0) ** self.gamma  # Tensor.__pow__ is untyped
        return loss


def soft_skeleton(x: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """Differentiable skeleton by iterated min/max pooling (Shit et al., 2021)."""

    def erode(t: torch.Tensor) -> torch.Tensor:
        return torch.minimum(-F.max_pool2d(-t, (3, 1), 1, (1, 0)), -F.max_pool2d(-t, (1, 3), 1, (0, 1)))

    def dilate(t: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(t, 3, 1, 1)

    skel = F.relu(x - dilate(erode(x)))
    for _ in range(iterations):
        x = erode(x)
        delta = F.relu(x - dilate(erode(x)))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def soft_cldice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    p, t = torch.sigmoid(logits.float()), target.float()
    sp, st = soft_skeleton(p), soft_skeleton(t)
    tprec = ((sp * t).sum() + smooth) / (sp.sum() + smooth)
    tsens = ((st * p).sum() + smooth) / (st.sum() + smooth)
    return 1 - 2 * tprec * tsens / (tprec + tsens)


class VesselLoss(nn.Module):
    """Focal-Tversky + bce_weight * BCE + cldice_weight * soft-clDice, restricted to valid pixels."""

    def __init__(
        self,
        alpha: float = 0.7,
        beta: float = 0.3,
        gamma: float = 0.75,
        bce_weight: float = 0.0,
        cldice_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.focal_tversky = FocalTverskyLoss(alpha, beta, gamma)
        self.bce_weight, self.cldice_weight = bce_weight, cldice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        loss: torch.Tensor = self.focal_tversky(logits, target, valid)
        if self.bce_weight:
            bce = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
            bce = (bce * valid).sum() / valid.sum().clamp_min(1) if valid is not None else bce.mean()
            loss = loss + self.bce_weight * bce
        if self.cldice_weight:
            loss = loss + self.cldice_weight * soft_cldice_loss(logits, target)
        return loss
