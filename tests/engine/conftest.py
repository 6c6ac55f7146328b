from pathlib import Path

import numpy as np
import pytest
import torch

from model_core.data import discover, prepare_all
from model_core.engine import TrainConfig, train
from model_core.imageio import mask_to_png, write_png_atomic
from model_core.model import ModelConfig
from model_core.preprocess import PreprocessConfig
from model_core.synthetic import make_fundus


def write_synthetic_dataset(
    root: Path, n: int = 3, size: tuple[int, int] = (96, 104), mask_dir: str = "masks", seed: int = 0
) -> Path:
    for i in range(n):
        f = make_fundus(*size, seed=seed + i)
        write_png_atomic(root / "images" / f"img{i}.png", f.image)
        write_png_atomic(root / mask_dir / f"img{i}.png", mask_to_png(f.vessels))
    return root


@pytest.fixture
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def synthetic_dataset(tmp_path) -> Path:
    return write_synthetic_dataset(tmp_path / "data", n=3)


@pytest.fixture
def fundus():
    return make_fundus(96, 104, seed=11)


@pytest.fixture
def small_rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def parent_and_data(tmp_path_factory):
    """A micro model trained briefly on synthetic fundus images, and corrections of other synthetic images."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ft")
    pre = PreprocessConfig(fov_diameter=None)
    train_s = discover(write_synthetic_dataset(root / "train", n=2, size=(128, 128), seed=20))
    imgs = prepare_all(train_s, pre)
    cfg = TrainConfig(epochs=4, steps_per_epoch=20, batch_size=4, patch_size=64, lr=1e-2, augment=False)
    parent = train(imgs, imgs, ModelConfig.preset("micro"), pre, cfg).checkpoint
    parent.metadata.update({"name": "parent", "version": "p1"})
    corrections = discover(write_synthetic_dataset(root / "corr", n=4, size=(128, 128), seed=40))
    return parent, corrections
