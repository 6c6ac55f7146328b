"""Shared fixtures. Qt runs offscreen and QSettings go to a temporary folder, so tests never touch the
user's real settings or need a display."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _isolated_user_dirs(tmp_path_factory):
    """Settings, caches and the model store of the app live in a temporary home during tests."""
    home = tmp_path_factory.mktemp("user-home")
    os.environ["RETINA_DESKTOP_HOME"] = str(home)
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    try:
        from PySide6.QtCore import QSettings

        QSettings.setDefaultFormat(QSettings.IniFormat)
        QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(home / "qsettings"))
    except ImportError:  # pragma: no cover - engine-only installs
        pass
    yield home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def micro_checkpoint_path(tmp_path_factory) -> Path:
    """An untrained, very small model: fast enough for any test that only needs *a* model."""
    import torch

    from model_core.checkpoint import make_checkpoint, save_checkpoint
    from model_core.model import ModelConfig, build_model
    from model_core.preprocess import PreprocessConfig

    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("micro"))
    ckpt = make_checkpoint(model, PreprocessConfig(), {"name": "test-micro", "version": "0", "threshold": 0.5})
    return save_checkpoint(tmp_path_factory.mktemp("models") / "micro.pt", ckpt)


@pytest.fixture
def synthetic_fundus():
    from model_core.synthetic import make_fundus

    return make_fundus(160, 150, seed=3)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
