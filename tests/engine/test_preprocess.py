import numpy as np

from model_core.preprocess import (
    PreprocessConfig,
    estimate_fov,
    fov_diameter,
    green_clahe,
    model_input,
    resize_to_scale,
    scale_factor,
)
from model_core.synthetic import make_fundus


def test_fov_estimate_matches_the_true_disc():
    f = make_fundus(300, 320, seed=2)
    est = estimate_fov(f.image)
    assert (est == f.fov).mean() > 0.99
    assert abs(fov_diameter(est) - fov_diameter(f.fov)) <= 4


def test_image_without_dark_surround_is_all_fov(rng):
    img = rng.integers(90, 200, (64, 80, 3), dtype=np.uint8)
    assert estimate_fov(img).all()


def test_fov_diameter_uses_the_widest_extent():
    fov = np.zeros((100, 200), bool)
    fov[20:80, 10:190] = True  # a disc cropped top and bottom
    assert fov_diameter(fov) == 180


def test_scale_factor_brings_the_fov_to_the_trained_diameter():
    fov = np.zeros((1200, 1200), bool)
    fov[100:1100, 100:1100] = True
    assert scale_factor(fov, PreprocessConfig(fov_diameter=500)) == 0.5
    assert scale_factor(fov, PreprocessConfig(fov_diameter=None)) == 1.0
    # Small mismatches are not worth a resampling blur.
    assert scale_factor(fov, PreprocessConfig(fov_diameter=1010)) == 1.0
    assert resize_to_scale(np.zeros((100, 60)), 0.5).shape == (50, 30)


def test_model_input_is_green_clahe_in_unit_range():
    f = make_fundus(120, 110, seed=1)
    x = model_input(f.image)
    assert x.dtype == np.float32 and x.shape == (120, 110) and x.min() >= 0 and x.max() <= 1
    assert np.array_equal((x * 255).round().astype(np.uint8), green_clahe(f.image))
    # The red channel must not leak in: changing it leaves the model input unchanged.
    other = f.image.copy()
    other[..., 0] = 0
    assert np.array_equal(model_input(other), x)
