"""The CUDA path (mixed precision training, GPU inference). Skipped where no GPU is present."""

import numpy as np
import pytest
import torch

from model_core.data import PreparedImage
from model_core.engine import TrainConfig, train
from model_core.model import ModelConfig
from model_core.predictor import VesselPredictor
from model_core.preprocess import PreprocessConfig, model_input
from model_core.synthetic import make_fundus

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_mixed_precision_training_and_inference_on_cuda():
    pre = PreprocessConfig(fov_diameter=None)
    f = make_fundus(128, 128, seed=5)
    im = PreparedImage("s", model_input(f.image, pre), f.vessels.astype(np.uint8), f.fov.astype(np.uint8), 1.0)
    cfg = TrainConfig(
        epochs=8, steps_per_epoch=25, batch_size=4, patch_size=64, lr=1e-2, augment=False, device="cuda", amp=True
    )
    result = train([im], [im], ModelConfig.preset("micro"), pre, cfg)
    assert result.checkpoint.metadata["device"].startswith("GPU")
    assert result.best_val_dice > 0.85
    gpu = VesselPredictor(result.checkpoint, device="cuda").predict(f.image)
    cpu = VesselPredictor(result.checkpoint, device="cpu").predict(f.image)
    assert np.abs(gpu - cpu).max() < 1e-3
