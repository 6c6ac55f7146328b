"""Counts in words: "1 pixel", "2 pixels", "1,024 images" (never "1 pixels" or "piece(s)")."""

from __future__ import annotations


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` with the noun in the number it needs; ``plural`` for a noun that does not just take an "s"."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"
