from pathlib import Path

import numpy as np
import pytest

from model_core.imageio import mask_to_png, write_png_atomic
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
def synthetic_dataset(tmp_path) -> Path:
    return write_synthetic_dataset(tmp_path / "data", n=3)


@pytest.fixture
def fundus():
    return make_fundus(96, 104, seed=11)


@pytest.fixture
def small_rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)
