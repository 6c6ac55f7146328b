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
    assert prob.min() >= 0.0 and prob.max() <= 1.0


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


@pytest.fixture(scope="module")
def trained_native():
    """The bundled (trained) model at the photo's own scale, and a synthetic fundus whose vessels it finds:
    an output that varies from 0 to 1 across the image, so a misplaced or badly blended tile shows."""
    import dataclasses

    from model_core.checkpoint import load_checkpoint
    from model_core.preprocess import PreprocessConfig
    from model_core.resources import default_model_path
    from model_core.synthetic import make_fundus

    ckpt = load_checkpoint(default_model_path())
    ckpt = dataclasses.replace(ckpt, preprocess=PreprocessConfig(fov_diameter=None))
    fundus = make_fundus(256, 288, seed=3)  # sides divisible by 16: no padding in the network
    whole = VesselPredictor(ckpt, device="cpu").predict(fundus.image)
    assert whole[fundus.fov].std() > 0.2 and whole.max() > 0.99  # the premise: a map with vessels on it
    return ckpt, fundus, whole


def test_tiling_matches_a_single_pass(trained_native):
    ckpt, fundus, whole = trained_native
    tiled = VesselPredictor(ckpt, device="cpu", tile=192, overlap=48).predict(fundus.image)  # 2 x 2 tiles
    # Tiles see less context near their borders; the blend ramp gives those pixels little weight. Measured:
    # max error 0.105 with the ramp; 0.48 with flat weights; 0.99 when each tile is read 16 px off.
    err = np.abs(tiled - whole)
    assert err.max() < 0.2 and err.mean() < 0.002, f"max error {err.max():.3f}, mean {err.mean():.4f}"


def test_flip_tta_and_batch(trained_native, predictor, fundus):
    import torch

    from model_core.preprocess import model_input

    ckpt, photo, whole = trained_native
    tta = VesselPredictor(ckpt, device="cpu", tta=True)
    pred = tta.predict_full(photo.image)
    got = pred.probability
    # By hand: the logits of the photo and of its two flips, each flipped back, averaged, then the sigmoid.
    model = ckpt.build().eval()
    x = model_input(photo.image, ckpt.preprocess)
    with torch.inference_mode():
        logits = [
            np.flip(model(torch.from_numpy(np.ascontiguousarray(np.flip(x, axes)))[None, None])[0, 0].numpy(), axes)
            for axes in ((), (1,), (0,))
        ]
    expected = 1 / (1 + np.exp(-np.mean(logits, axis=0)))
    expected[~pred.fov] = 0
    err = np.abs(got - expected).max()
    assert err < 1e-4, f"max error {err:.4f}"
    assert np.abs(got - whole).max() > 0.05  # the flips do change the answer: they are not skipped
    assert [p.shape for p in predictor.predict_batch([fundus.image, fundus.image[:50]])] == [(96, 104), (50, 104)]
