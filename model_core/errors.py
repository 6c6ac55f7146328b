"""Errors the engine raises for bad input. Each message is one line that names the file and the problem."""

from __future__ import annotations

import os
from pathlib import Path


class RetinaInputError(ValueError):
    """Bad user input: the message is fit to show a user as it is."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class ImageReadError(RetinaInputError):
    """An image or mask file cannot be read or is not usable."""


class DatasetError(RetinaInputError):
    """A data-set folder is malformed (unpaired files, mismatched sizes, nothing found)."""


class CheckpointError(RetinaInputError):
    """A checkpoint file is corrupt, truncated, foreign or of an unknown version."""
