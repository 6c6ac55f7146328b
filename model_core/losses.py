"""Losses on logits: Focal-Tversky, optionally plus BCE (for calibrated probabilities) and soft clDice.

Every term takes an optional per-pixel ``weight`` (the valid-region mask is its 0/1 special case): the
Tversky counts become weighted sums (TP = Σ w·p·t, FP = Σ w·p·(1−t), FN = Σ w·(1−p)·t, as MONAI's and
segmentation_models_pytorch's weighted Dice/Tversky losses do) and BCE a weighted mean, so a pixel of weight
3 counts as three pixels and one of weight 0 not at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pixel_weights(valid: torch.Tensor | None, weight: torch.Tensor | None) -> torch.Tensor | None:
    """The weight of each pixel in the loss: ``valid`` (0/1) times ``weight``; None when both are."""
    if valid is None:
        return weight
    return valid if weight is None else valid * weight


class FocalTverskyLoss(nn.Module):
    """(1 - TI)^gamma with TI = TP / (TP + alpha*FP + beta*FN). alpha weighs false positives, beta false negatives."""

    def __init__(self, alpha: float = 0.7, beta: float = 0.3, gamma: float = 0.75, smooth: float = 1.0) -> None:
        super().__init__()
        self.alpha, self.beta, self.gamma, self.smooth = alpha, beta, gamma, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``valid``: a 0/1 mask or any non-negative per-pixel weight."""
        p, t = torch.sigmoid(logits.float()), target.float()
        w = torch.ones_like(p) if valid is None else valid.float()
        tp = (w * p * t).sum()
        fp = (w * p * (1 - t)).sum()
        fn = (w * (1 - p) * t).sum()
        ti = (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)
        loss: torch.Tensor = (1 - ti).clamp_min(0) ** self.gamma  # Tensor.__pow__ is untyped
        return loss


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy, averaged with ``weight`` (plain mean without)."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    if weight is None:
        return bce.mean()
    return (bce * weight).sum() / weight.sum().clamp_min(1)


# Enough iterations to reach the centre line of the widest vessels a patch at the network's scale holds (about
# 16 px across at a 540-px FOV diameter: each iteration peels one pixel off each side), as the clDice paper's
# 2-D setups use (iter_ 10 for DRIVE-sized vessels).
SKELETON_ITERATIONS = 10


def soft_erode(t: torch.Tensor) -> torch.Tensor:
    """Soft erosion with a plus-shaped element: the minimum over the 4-neighbourhood and the pixel."""
    return torch.minimum(-F.max_pool2d(-t, (3, 1), 1, (1, 0)), -F.max_pool2d(-t, (1, 3), 1, (0, 1)))


def soft_dilate(t: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(t, 3, 1, 1)


def soft_skeleton(x: torch.Tensor, iterations: int = SKELETON_ITERATIONS) -> torch.Tensor:
    """Differentiable skeleton by iterated min/max pooling (Shit et al., CVPR 2021, Algorithm 1): what each
    erosion removes that an opening would not restore, accumulated."""
    skel = F.relu(x - soft_dilate(soft_erode(x)))
    for _ in range(iterations):
        x = soft_erode(x)
        delta = F.relu(x - soft_dilate(soft_erode(x)))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def soft_cldice_loss(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, smooth: float = 1.0
) -> torch.Tensor:
    """1 − clDice, clDice = 2·Tprec·Tsens / (Tprec + Tsens): Tprec is the share of the predicted skeleton inside
    the reference vessels, Tsens the share of the reference skeleton inside the prediction. A broken thin vessel
    loses a piece of the reference skeleton (Tsens falls) where a thickened one loses nothing: overlap losses
    charge both alike. ``valid``: pixels outside it (0) count as background in both."""
    p, t = torch.sigmoid(logits.float()), target.float()
    if valid is not None:
        p, t = p * valid, t * valid
    sp, st = soft_skeleton(p), soft_skeleton(t)
    tprec = ((sp * t).sum() + smooth) / (sp.sum() + smooth)
    tsens = ((st * p).sum() + smooth) / (st.sum() + smooth)
    return 1 - 2 * tprec * tsens / (tprec + tsens)


class VesselLoss(nn.Module):
    """Focal-Tversky + bce_weight * BCE + cldice_weight * soft-clDice, restricted to valid pixels.

    ``weight`` (per pixel, optional) weighs the Focal-Tversky and BCE terms: the fine-tune's correction weight
    (model_core.finetune.correction_weights). soft-clDice takes only the valid mask: a skeleton is a property of
    the whole vessel, and weighting some of its pixels would make a vessel's centre line count unevenly.
    """

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

    def forward(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        valid: torch.Tensor | None = None,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        w = pixel_weights(valid, weight)
        loss: torch.Tensor = self.focal_tversky(logits, target, w)
        if self.bce_weight:
            loss = loss + self.bce_weight * weighted_bce(logits, target, w)
        if self.cldice_weight:
            loss = loss + self.cldice_weight * soft_cldice_loss(logits, target, valid)
        return loss
