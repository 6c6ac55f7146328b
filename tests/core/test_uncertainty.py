"""uncertainty_of: the unsure share of the vessel area, hand-counted on small probability maps."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from retina_desktop.core.workspace import uncertainty_of


def test_unsure_pixels_over_the_vessel_area():
    # 3 confident vessel pixels (>= 0.75), 2 unsure (0.3, 0.6), background (<= 0.25) that does not count.
    prob = np.array([[0.9, 0.8, 0.75, 0.3], [0.6, 0.25, 0.1, 0.0]], np.float32)
    assert uncertainty_of(prob) == pytest.approx(2 / 5)


def test_only_the_field_of_view_counts():
    prob = np.array([[0.9, 0.5, 0.5, 0.5]], np.float32)
    fov = np.array([[True, True, False, False]])
    assert uncertainty_of(prob, fov) == pytest.approx(1 / 2)
    assert uncertainty_of(prob) == pytest.approx(3 / 4)


def test_no_vessel_no_uncertainty():
    assert uncertainty_of(np.zeros((4, 4), np.float32)) == 0.0
    assert uncertainty_of(np.full((4, 4), 0.5, np.float32), np.zeros((4, 4), bool)) == 0.0


def test_the_same_vessel_pattern_at_another_density_scores_the_same():
    # The old measure (unsure share of the field of view) doubled with twice the vessels; this one does not.
    one = np.zeros((10, 10), np.float32)
    one[2, :] = 0.9
    one[3, :] = 0.5
    two = one.copy()
    two[6, :] = 0.9
    two[7, :] = 0.5
    assert uncertainty_of(one) == uncertainty_of(two) == pytest.approx(0.5)


DRIVE = Path(os.environ.get("RETINA_DATA", "/work/shared/data")) / "drive" / "test"


@pytest.mark.skipif(not (DRIVE / "images").is_dir(), reason="DRIVE test photos not available")
def test_a_blurred_prediction_is_more_uncertain_than_a_sharp_one():
    """On a real probability map, softening it (what a model unsure of the vessel edges does) raises the figure."""
    from scipy import ndimage as ndi

    from model_core.imageio import read_image

    gt = read_image(DRIVE / "masks" / "01_test.png")
    sharp = ((gt[..., 0] if gt.ndim == 3 else gt) > 127).astype(np.float32)
    soft = ndi.gaussian_filter(sharp, 1.5)
    assert uncertainty_of(sharp) == 0.0
    assert uncertainty_of(soft) > 0.3
