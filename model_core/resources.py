"""Finds the project's resources (the bundled default model, icons) from source and from a frozen build."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import CheckpointError

DEFAULT_MODEL_NAME = "default_model.pt"


def resources_dir() -> Path:
    """The ``resources/`` folder: inside a PyInstaller bundle, or beside the packages in a checkout."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "resources", here / "resources"):
        if candidate.is_dir():
            return candidate
    return here.parent / "resources"


def resource_path(name: str) -> Path:
    return resources_dir() / name


def default_model_path() -> Path:
    path = resource_path(DEFAULT_MODEL_NAME)
    if not path.is_file():
        raise CheckpointError(path, "the bundled default model is missing; pass --weights FILE "
                                    "(train one with `python -m model_core train`)")
    return path
