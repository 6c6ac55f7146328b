import numpy as np
import pytest

from model_core.errors import ImageReadError
from model_core.predictor import VesselPredictor


@pytest.fixture(scope="module")
def predictor(micro_checkpoint_path):
    return VesselPredictor(micro_checkpoint_path, device="cpu")


@pytest.mark.parametrize("h,w", [(584, 565), (960, 999), (37, 53), (8, 8)])
def test_output_has_exactly_the_input_size(predictor, h, w):
    rgb = np.random.default_rng(h).integers(0, 255, (h, w, 3), dtype=np.uint8)
    prob = predictor.predict(rgb)
    assert prob.shape == (h, w) and prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0


def test_degenerate_sizes_are_rejected_clearly(predictor):
    with pytest.raises(ImageReadError, match="3x1 pixels"):
        predictor.predict(np.zeros((1, 3, 3), np.uint8))


def test_outside_the_fov_is_zero(predictor, fundus):
    pred = predictor.predict_full(fundus.image)
    assert (pred.fov == fundus.fov).mean() > 0.98
    assert (pred.probability[~pred.fov] == 0).all()


def test_large_photos_are_rescaled_by_fov_diameter(micro_checkpoint_path):
    from model_core.synthetic import make_fundus

    big = make_fundus(584 * 2, 565 * 2, seed=1)
    pred = VesselPredictor(micro_checkpoint_path, device="cpu").predict_full(big.image)
    # The synthetic FOV is 93 % of the short side; the model was trained at 540 px.
    assert pred.scale == pytest.approx(540 / (0.93 * 565 * 2), rel=0.03)
    assert pred.probability.shape == big.vessels.shape


def test_tiling_matches_a_single_pass(micro_checkpoint_path):
    rgb = np.random.default_rng(5).integers(40, 200, (300, 260, 3), dtype=np.uint8)
    whole = VesselPredictor(micro_checkpoint_path, device="cpu", tile=1024)
    tiled = VesselPredictor(micro_checkpoint_path, device="cpu", tile=128, overlap=32)
    a, b = whole.predict(rgb), tiled.predict(rgb)
    # Tiles see less context at their borders, so allow small differences, but no seams.
    assert np.abs(a - b).mean() < 0.02


def test_flip_tta_and_batch(predictor, fundus):
    tta = VesselPredictor(predictor.checkpoint, device="cpu", tta=True)
    single = tta.predict(fundus.image)
    assert single.shape == fundus.vessels.shape
    flipped = tta.predict(np.ascontiguousarray(fundus.image[:, ::-1]))
    # Horizontal flip TTA is flip-equivariant up to the vertical-flip term and padding.
    assert np.abs(flipped[:, ::-1] - single).mean() < 0.05
    assert [p.shape for p in predictor.predict_batch([fundus.image, fundus.image[:50]])] == [(96, 104), (50, 104)]
