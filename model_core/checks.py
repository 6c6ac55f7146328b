"""Checks of values read from files a person can edit (checkpoints, records): is it a usable number?"""

from __future__ import annotations

import math


def is_number(value: object) -> bool:
    """A finite int or float (not a bool, a string, None or NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
