import numpy as np
import pytest

from retina_desktop.core.vessels.measure import measure_correction


def test_an_edit_outside_the_field_of_view_counts_everywhere_but_accuracy_and_auc():
    prob = np.zeros((10, 10), np.float32)
    prob[2:8, 5] = 0.9  # a predicted vessel of 6 pixels, inside the FOV
    fov = np.zeros((10, 10), bool)
    fov[1:9, 1:9] = True
    corrected = prob >= 0.5
    corrected[0, 0:4] = True  # 4 pixels painted in the dark corner, outside the FOV
    corrected[2, 5] = False  # 1 predicted pixel erased
    m = measure_correction(prob, corrected, 0.5, fov)
    assert (m.pixels_added, m.pixels_removed, m.vessel_pixels) == (4, 1, 9)
    # Whole image: tp 5, fp 1, fn 4 -> Dice 10 / 15, IoU 5 / 10.
    assert m.dice == pytest.approx(10 / 15) and m.iou == pytest.approx(0.5)
    # Inside the 64-pixel FOV only the erased pixel disagrees.
    assert m.accuracy == pytest.approx(63 / 64)
