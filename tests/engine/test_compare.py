"""A mask against a reference: the numbers and the difference image of compare mode, by hand."""

import math

import numpy as np
import pytest

from model_core.metrics import (
    DIFF_FN,
    DIFF_FP,
    DIFF_TN,
    DIFF_TP,
    DIFFERENCE_COLOURS,
    agreement,
    difference_labels,
    difference_rgba,
)


def _pair():
    reference = np.zeros((6, 12), bool)
    reference[2, 0:10] = True  # a 1-px vessel of 10 px
    mask = np.zeros((6, 12), bool)
    mask[2, 0:8] = True  # 8 of them found (TP 8, FN 2)
    mask[4, 0:4] = True  # and a 4-px false vessel (FP 4); TN = 72 - 14 = 58
    return mask, reference


def test_agreement_by_hand():
    mask, reference = _pair()
    a = agreement(mask, reference)
    assert a.dice == pytest.approx(16 / 22)
    assert a.sensitivity == pytest.approx(8 / 10)
    assert a.specificity == pytest.approx(58 / 62)
    # 1-px lines are their own skeletons: topology precision 8/12, sensitivity 8/10, harmonic mean 8/11.
    assert a.cldice == pytest.approx(8 / 11)
    assert list(a.as_dict()) == ["dice", "cldice", "sensitivity", "specificity"]


def test_dice_and_cldice_are_symmetric_for_two_graders():
    mask, reference = _pair()
    ab, ba = agreement(mask, reference), agreement(reference, mask)
    assert ab.dice == ba.dice and ab.cldice == pytest.approx(ba.cldice)
    # Sensitivity and specificity take the second argument as the truth: swapped, FP and FN trade places.
    assert ba.sensitivity == pytest.approx(8 / 12) and ba.specificity == pytest.approx(58 / 60)


def test_difference_labels_by_hand_and_fov():
    mask, reference = _pair()
    labels = difference_labels(mask, reference)
    assert labels.dtype == np.uint8
    assert (labels[2, 0:8] == DIFF_TP).all() and (labels[2, 8:10] == DIFF_FN).all()
    assert (labels[4, 0:4] == DIFF_FP).all()
    assert np.count_nonzero(labels == DIFF_TN) == 58
    fov = np.ones_like(mask)
    fov[:, 6:] = False
    inside = difference_labels(mask, reference, fov)
    assert np.bincount(inside.ravel(), minlength=4).tolist() == [72 - 6 - 4, 6, 4, 0]
    a = agreement(mask, reference, fov)
    assert a.dice == pytest.approx(12 / 16) and a.sensitivity == 1.0


def test_difference_overlay_colours_are_distinct_and_background_transparent():
    mask, reference = _pair()
    rgba = difference_rgba(difference_labels(mask, reference), alpha=200)
    assert rgba.shape == (6, 12, 4) and rgba.dtype == np.uint8
    assert tuple(rgba[0, 0]) == (0, 0, 0, 0)
    assert tuple(rgba[2, 0]) == (0x56, 0xB4, 0xE9, 200)  # TP sky blue
    assert tuple(rgba[4, 0]) == (0xD5, 0x5E, 0x00, 200)  # FP vermillion
    assert tuple(rgba[2, 9]) == (0xF0, 0xE4, 0x42, 200)  # FN yellow
    assert len(set(DIFFERENCE_COLOURS.values())) == 3


def test_empty_reference_gives_nan_sensitivity_not_an_error():
    a = agreement(np.zeros((8, 8), bool), np.zeros((8, 8), bool))
    assert a.dice == 1.0 and a.cldice == 1.0 and math.isnan(a.sensitivity) and a.specificity == 1.0


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in size"):
        difference_labels(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
