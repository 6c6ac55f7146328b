import math

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


def test_a_weight_map_of_one_region_gives_that_regions_loss_alone_by_hand():
    # 2 x 3 pixels; the weight is 0 except on the right column (weight 2), where p = (0.8, 0.3), t = (1, 0).
    p = [[0.9, 0.2, 0.8], [0.6, 0.1, 0.3]]
    t = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    w = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 2.0]])
    loss = VesselLoss(alpha=0.7, beta=0.3, gamma=0.75, bce_weight=0.5)(_logits(p), t, weight=w)
    tp, fp, fn = 2 * 0.8, 2 * 0.3, 2 * 0.2
    ti = (tp + 1) / (tp + 0.7 * fp + 0.3 * fn + 1)
    bce = (2 * -math.log(0.8) + 2 * -math.log(1 - 0.3)) / 4  # a weighted mean: sum(w * bce) / sum(w)
    assert loss.item() == pytest.approx((1 - ti) ** 0.75 + 0.5 * bce, rel=1e-4)
    # The region's loss alone is what the weights give: the same pixels with weight 1 each, twice over.
    region = _logits([[0.8], [0.3]]), torch.tensor([[1.0], [0.0]])
    focal_alone = FocalTverskyLoss(0.7, 0.3, 0.75, smooth=0.5)(*region)  # counts doubled = smooth halved
    assert loss.item() == pytest.approx(focal_alone.item() + 0.5 * bce, rel=1e-4)


def test_weights_multiply_the_valid_mask_and_ones_change_nothing():
    logits = torch.randn(2, 1, 8, 8)
    target = (torch.rand(2, 1, 8, 8) > 0.7).float()
    valid = (torch.rand(2, 1, 8, 8) > 0.2).float()
    loss = VesselLoss(bce_weight=0.5, cldice_weight=0.3)
    plain = loss(logits, target, valid)
    assert loss(logits, target, valid, torch.ones_like(valid)).item() == pytest.approx(plain.item(), rel=1e-6)
    # Outside the valid region a weight counts for nothing, however large.
    huge = torch.where(valid > 0, 1.0, 1000.0)
    assert loss(logits, target, valid, huge).item() == pytest.approx(plain.item(), rel=1e-6)
    # Weighting the wrong pixels up makes the loss larger.
    wrong = ((torch.sigmoid(logits) > 0.5) != (target > 0)).float()
    assert loss(logits, target, valid, 1 + 4 * wrong) > plain


def test_soft_skeleton_of_a_thick_line_is_thin_and_centred():
    t = torch.zeros(1, 1, 24, 40)
    t[..., 8:15, 4:36] = 1  # 7 px thick, rows 8..14: the centre row is 11
    skel = soft_skeleton(t)
    rows = skel[0, 0, :, 10:30].sum(dim=1)  # away from the ends, where a skeleton forks into the corners
    assert rows[11] == pytest.approx(20.0, abs=1e-5)  # the whole centre row, value 1
    assert rows.sum() - rows[11] < 1e-5  # and nothing else: one pixel thick
    assert skel.sum() < t.sum() / 5


def test_soft_cldice_charges_breaking_a_thin_vessel_more_than_thickening_it_by_as_many_pixels():
    t = torch.zeros(1, 1, 20, 60)
    t[..., 10, 2:58] = 1  # a 1-px vessel
    perfect = t * 20 - 10
    broken, thickened, one_sided = perfect.clone(), perfect.clone(), perfect.clone()
    broken[..., 10, 26:34] = -10  # 8 vessel pixels taken away: a gap
    thickened[..., 9, 26:30] = thickened[..., 11, 26:30] = 10  # 8 background pixels added, 4 on each side
    one_sided[..., 11, 26:34] = 10  # 8 added on one side: a 2-px stretch, whose soft skeleton is 2 px wide
    for wrong in (broken, thickened, one_sided):
        assert (torch.sigmoid(wrong) > 0.5).ne(t > 0).sum() == 8
    cl = {
        name: soft_cldice_loss(v, t).item()
        for name, v in (("perfect", perfect), ("broken", broken), ("thick", thickened), ("one-sided", one_sided))
    }
    assert cl["perfect"] < 1e-3
    # 8 of 56 centre-line pixels are missing: topology sensitivity drops to 48/56.
    assert cl["broken"] == pytest.approx(1 - 2 * (48 / 56) / (1 + 48 / 56), abs=0.01)
    assert cl["thick"] < 1e-3 < cl["broken"]
    assert cl["broken"] > cl["one-sided"]
    # An overlap loss charges the gap and the thickening nearly alike: that is what the term adds.
    overlap = FocalTverskyLoss(0.5, 0.5)
    assert overlap(broken, t).item() < 1.2 * overlap(thickened, t).item()


def test_soft_cldice_ignores_what_lies_outside_the_valid_region():
    t = torch.zeros(1, 1, 20, 40)
    t[..., 10, 2:38] = 1
    logits = t * 20 - 10
    logits[..., 3, 2:38] = 10  # a false vessel, outside the valid region
    valid = torch.ones_like(t)
    valid[..., :6, :] = 0
    assert soft_cldice_loss(logits, t, valid).item() < 1e-3 < soft_cldice_loss(logits, t).item()
