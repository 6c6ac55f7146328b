import math

import numpy as np
import pytest

from model_core.metrics import (
    CenterlineCount,
    Confusion,
    MetricAccumulator,
    cldice,
    roc_auc,
    segmentation_metrics,
)


def test_confusion_and_derived_metrics_by_hand():
    truth = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], bool)
    c = Confusion.of(pred, truth)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 1, 4)
    assert c.dice == pytest.approx(4 / 6)
    assert c.iou == pytest.approx(2 / 4)
    assert c.accuracy == pytest.approx(6 / 8)
    assert c.sensitivity == pytest.approx(2 / 3)
    assert c.specificity == pytest.approx(4 / 5)


def test_fov_restricts_the_counts():
    truth = np.array([[1, 0, 0, 1]], bool)
    pred = np.array([[1, 1, 0, 0]], bool)
    fov = np.array([[1, 1, 1, 0]], bool)
    c = Confusion.of(pred, truth, fov)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 1, 0, 1)


def test_auc_by_hand_with_ties():
    # positives 0.9, 0.4; negatives 0.4, 0.1, 0.6. Pairs (pos > neg): 0.9 beats all 3; 0.4 beats 0.1,
    # ties 0.4 (half), loses to 0.6 -> (3 + 1 + 0.5) / 6.
    prob = np.array([0.9, 0.4, 0.4, 0.1, 0.6], np.float32)
    truth = np.array([1, 1, 0, 0, 0], bool)
    assert roc_auc(prob, truth) == pytest.approx(4.5 / 6)
    assert roc_auc(truth.astype(np.float32), truth) == 1.0
    assert math.isnan(roc_auc(prob, np.zeros(5, bool)))


def test_cldice_follows_the_published_definition_with_thinning_skeletons():
    # Shit et al. (CVPR 2021): Tprec = |S(P) & L| / |S(P)|, Tsens = |S(L) & P| / |S(L)|, S a thinning.
    truth = np.zeros((12, 40), bool)
    truth[4:6, 2:22] = True  # a vessel 2 px thick, 20 long. Zhang-Suen's first sub-iteration deletes the
    #                           south-east boundary: the bottom row goes, the top row (20 px) is its skeleton
    truth[0:5, 36] = True  # a 1-px vessel (its own skeleton, 5 px) that the prediction misses
    pred = np.zeros_like(truth)
    pred[4, 2:32] = True  # a 1-px line (its own skeleton, 30 px) along the vessel's top row, 10 px past it
    # S(P) & L: the 20 px of row 4 inside the vessel -> Tprec 20/30; S(L) & P: the top row, 20 of 25 -> Tsens 4/5.
    count = CenterlineCount.of(pred, truth)
    assert (count.pred_skeleton, count.pred_skeleton_in_truth) == (30, 20)
    assert (count.truth_skeleton, count.truth_skeleton_in_pred) == (25, 20)
    assert count.topology_precision == pytest.approx(2 / 3) and count.topology_sensitivity == pytest.approx(4 / 5)
    expected = 2 * (2 / 3) * (4 / 5) / (2 / 3 + 4 / 5)  # = 8/11
    assert cldice(pred, truth) == pytest.approx(8 / 11) == pytest.approx(expected)
    # The morphological (Lantuejoul) skeleton used before kept the whole 2-px vessel (40 px: nothing of it
    # survives an erosion), Tsens 20/45 and clDice 8/15: not the published number.
    assert cldice(pred, truth) != pytest.approx(8 / 15, abs=0.01)
    # Pooled over images, the four counts add up.
    acc = MetricAccumulator()
    acc.add("a", pred.astype(np.float32), truth)
    acc.add("b", pred.astype(np.float32), truth)
    assert acc.pooled()["cldice"] == pytest.approx(8 / 11) and acc.per_image["a"]["cldice"] == pytest.approx(8 / 11)


def test_cldice_of_a_mask_touching_every_edge():
    full = np.ones((9, 9), bool)
    assert cldice(full, full) == 1.0
    assert cldice(np.zeros((9, 9), bool), np.zeros((9, 9), bool)) == 1.0
    assert cldice(full, np.zeros((9, 9), bool)) == 0.0


def test_means_of_a_metric_no_image_has_are_nan_without_warnings():
    import warnings

    acc = MetricAccumulator()
    acc.add("empty", np.zeros((8, 8), np.float32), np.zeros((8, 8), bool))  # no vessels: no AUC
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, std = acc.mean(), acc.std()
    assert math.isnan(mean["auc"]) and math.isnan(std["auc"]) and mean["specificity"] == 1.0


def test_cldice_perfect_and_disjoint():
    m = np.zeros((20, 40), bool)
    m[8:13, 5:35] = True
    assert cldice(m, m) == 1.0
    other = np.zeros_like(m)
    other[0:2, :] = True
    assert cldice(other, m) == 0.0


def test_cldice_rewards_connectivity_more_than_dice_does():
    truth = np.zeros((20, 60), bool)
    truth[9:12, 2:58] = True
    broken = truth.copy()
    broken[:, 28:32] = False  # a gap that splits the vessel
    thick = truth.copy()
    thick[8:13, 2:58] = True  # fatter but connected
    assert cldice(thick, truth) > cldice(broken, truth)


def test_segmentation_metrics_and_accumulator_pool_counts():
    truth1 = np.array([[1, 0], [0, 0]], bool)
    prob1 = np.array([[0.8, 0.6], [0.1, 0.2]], np.float32)
    truth2 = np.array([[1, 1], [0, 0]], bool)
    prob2 = np.array([[0.7, 0.3], [0.2, 0.1]], np.float32)
    m1 = segmentation_metrics(prob1, truth1)
    assert m1["dice"] == pytest.approx(2 / 3) and m1["auc"] == 1.0
    acc = MetricAccumulator(threshold=0.5)
    acc.add("a", prob1, truth1)
    acc.add("b", prob2, truth2)
    # pooled: tp=2, fp=1, fn=1 -> Dice 4/6; mean of per-image Dice (2/3, 2/3)
    assert acc.pooled()["dice"] == pytest.approx(4 / 6)
    assert acc.mean()["dice"] == pytest.approx(2 / 3)
    assert acc.std()["dice"] == pytest.approx(0.0)
    # pooled AUC over the 8 pixels: positives .8,.7,.3; negatives .6,.1,.2,.2,.1
    # .8 and .7 beat all 5; .3 beats 4 -> 14 / 15
    assert acc.pooled()["auc"] == pytest.approx(14 / 15)


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in size"):
        segmentation_metrics(np.zeros((2, 2)), np.zeros((3, 2), bool))


def test_sweep_counts_each_threshold_and_the_grid_is_exact_decimals():
    from model_core.metrics import THRESHOLD_GRID

    prob = np.array([[0.1, 0.4], [0.6, 0.9]])
    truth = np.array([[0, 1], [1, 1]], bool)
    low, mid, high = Confusion.sweep(prob, truth, thresholds=[0.05, 0.5, 0.95])
    assert (low.tp, low.fp, low.fn, low.tn) == (3, 1, 0, 0)
    assert (mid.tp, mid.fp, mid.fn, mid.tn) == (2, 0, 1, 1)
    assert (high.tp, high.fp, high.fn, high.tn) == (0, 0, 3, 1)
    assert len(THRESHOLD_GRID) == 19 and THRESHOLD_GRID[10] == 0.55 and THRESHOLD_GRID[-1] == 0.95
