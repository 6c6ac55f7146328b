"""``benchmarks/bench_correction.py --weights``: a fine-tuned version's predictions, at its own threshold."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from model_core.checkpoint import load_checkpoint, save_checkpoint
from model_core.data import discover, load_sample
from model_core.predictor import VesselPredictor

from .conftest import write_synthetic_dataset


def _bench():
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_correction.py"
    spec = importlib.util.spec_from_file_location("bench_correction", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_correction"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_weights_give_that_versions_predictions_and_recorded_threshold(tmp_path, micro_checkpoint_path):
    bc = _bench()
    ckpt = load_checkpoint(micro_checkpoint_path)
    ckpt.metadata.update({"threshold": 0.37, "version": "3-finetuned"})
    child = save_checkpoint(tmp_path / "child.pt", ckpt)
    threshold, name = bc.model_threshold(child)
    assert threshold == 0.37 and name == "test-micro v3-finetuned (child.pt)"
    data = write_synthetic_dataset(tmp_path / "d", n=2, size=(96, 96))
    cache = tmp_path / "cache"
    (name0, _rgb, _, _, prob, _), _ = list(bc.load(data, None, cache, child))
    expected = VesselPredictor(child, device="cpu").predict(load_sample(discover(data)[0])[0])
    assert name0 == discover(data)[0].name and np.allclose(prob, expected, atol=1e-6)
    # Its maps are cached apart from the bundled model's (same photo names, another model).
    assert (cache / bc.model_key(child) / f"{name0}.npy").is_file() and not (cache / f"{name0}.npy").exists()
