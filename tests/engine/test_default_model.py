"""The bundled default model: intact, as described by its model card, and a real vessel segmenter."""

import json

import pytest

from model_core.checkpoint import file_sha256, load_checkpoint
from model_core.imageio import read_image, read_mask
from model_core.metrics import Confusion
from model_core.predictor import VesselPredictor
from model_core.resources import default_model_path, resource_path


@pytest.fixture(scope="module")
def card():
    return json.loads(resource_path("model_card.json").read_text())


def test_bundled_checkpoint_loads_and_matches_its_card(card):
    path = default_model_path()
    ckpt = load_checkpoint(path)
    assert file_sha256(path) == card["file_sha256"]
    assert ckpt.sha256 == card["weights_sha256"]
    assert list(ckpt.model_config.widths) == card["architecture"]["widths"]
    assert ckpt.threshold == pytest.approx(card["threshold"])
    assert path.stat().st_size <= 20e6


def test_predicts_a_real_drive_test_image(shared_data):
    image = shared_data / "drive" / "test" / "images" / "01_test.tif"
    truth = read_mask(shared_data / "drive" / "test" / "masks" / "01_test.png")
    fov = read_mask(shared_data / "drive" / "test" / "fov" / "01_test.png")
    predictor = VesselPredictor(default_model_path(), device="cpu")
    prob = predictor.predict(read_image(image))
    assert prob.shape == truth.shape
    assert Confusion.of(prob >= predictor.threshold, truth, fov).dice > 0.75
