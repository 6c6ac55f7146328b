"""Small synthetic workspaces shared by the core and GUI tests (tests/ is on sys.path through its conftest)."""

from __future__ import annotations

from pathlib import Path

from model_core.imageio import write_png_atomic
from model_core.synthetic import make_fundus

SIZE = (160, 150)


def make_workspace(root: Path, count: int = 3, corrupt: tuple[str, ...] = (), size=SIZE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_png_atomic(root / f"img_{i:02d}.png", make_fundus(size[0], size[1], seed=10 + i).image)
    for name in corrupt:
        (root / name).write_bytes(b"this is not an image at all" * 10)
    return root
