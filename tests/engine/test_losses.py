import pytest
import torch

from model_core.losses import FocalTverskyLoss, VesselLoss, soft_cldice_loss, soft_skeleton


def _logits(p):
    return torch.logit(torch.tensor(p, dtype=torch.float32).clamp(1e-6, 1 - 1e-6))


def test_focal_tversky_by_hand():
    p = [[0.9, 0.2], [0.6, 0.1]]
    t = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    loss = FocalTverskyLoss(alpha=0.7, beta=0.3, gamma=0.75, smooth=1.0)(_logits(p), t)
    tp, fp, fn = 0.9 + 0.2, 0.6 + 0.1, 0.1 + 0.8
    ti = (tp + 1) / (tp + 0.7 * fp + 0.3 * fn + 1)
    assert loss.item() == pytest.approx((1 - ti) ** 0.75, rel=1e-4)


def test_alpha_penalises_false_positives_and_beta_false_negatives():
    t = torch.tensor([[1.0, 0.0]])
    false_pos = _logits([[0.99, 0.99]])
    false_neg = _logits([[0.01, 0.01]])
    fp_heavy = FocalTverskyLoss(alpha=0.9, beta=0.1, smooth=0.0)
    fn_heavy = FocalTverskyLoss(alpha=0.1, beta=0.9, smooth=0.0)
    assert fp_heavy(false_pos, t) > fn_heavy(false_pos, t)
    assert fn_heavy(false_neg, t) > fp_heavy(false_neg, t)


def test_valid_mask_ignores_pixels_outside():
    t = torch.tensor([[1.0, 0.0, 0.0]])
    logits = _logits([[0.99, 0.01, 0.99]])
    valid = torch.tensor([[1.0, 1.0, 0.0]])
    assert VesselLoss(bce_weight=1.0)(logits, t, valid).item() < 0.05
    assert VesselLoss(bce_weight=1.0)(logits, t).item() > 0.5


def test_soft_cldice_is_low_for_perfect_and_high_for_broken():
    t = torch.zeros(1, 1, 20, 60)
    t[..., 9:12, 2:58] = 1
    good = t * 20 - 10
    broken = good.clone()
    broken[..., :, 28:32] = -10
    good_loss, broken_loss = soft_cldice_loss(good, t).item(), soft_cldice_loss(broken, t).item()
    assert good_loss < 0.01
    # 4 of 56 centre-line pixels are missing: topology sensitivity drops to about 52/56.
    assert broken_loss == pytest.approx(1 - 2 * (52 / 56) / (1 + 52 / 56), abs=0.01)
    assert soft_skeleton(t).sum() < t.sum()


def test_combined_loss_is_differentiable():
    logits = torch.zeros(2, 1, 16, 16, requires_grad=True)
    target = (torch.rand(2, 1, 16, 16) > 0.8).float()
    VesselLoss(bce_weight=0.5, cldice_weight=0.2)(logits, target).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
