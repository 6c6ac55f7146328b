"""Checks of values read from files a person can edit (checkpoints, records): is it a usable number?"""

from __future__ import annotations

import math
from pathlib import Path

from .errors import RetinaInputError


def is_number(value: object) -> bool:
    """A finite int or float (not a bool, a string, None or NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require_same_size(
    path: Path, what: str, shape: tuple[int, ...], mask_name: str, mask_shape: tuple[int, ...]
) -> None:
    """A companion of a vessel mask (FOV, A/V labels) must have its size: else one line naming the file."""
    if shape[:2] != mask_shape[:2]:
        raise RetinaInputError(
            path, f"{what} is {shape[1]}x{shape[0]}, its vessel mask {mask_name} {mask_shape[1]}x{mask_shape[0]}"
        )
