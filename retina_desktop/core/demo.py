"""The built-in demo workspace: synthetic fundus photos made by the project's own generator.

Written once into the user data folder, so a first run has something real to review without any
download. The workspace is marked synthetic and the UI says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model_core.imageio import write_png_atomic
from model_core.synthetic import make_fundus

from .paths import demo_workspace_dir

DEMO_COUNT = 6
DEMO_SIZE = (584, 565)  # DRIVE's height x width
DEMO_TITLE = "Demo workspace (synthetic images)"


def ensure_demo_workspace(
    folder: Path | None = None,
    count: int = DEMO_COUNT,
    size: tuple[int, int] = DEMO_SIZE,
    progress: Callable[[int, int, str], None] | None = None,
) -> Path:
    """Create the demo images that are missing and return the folder (a flat workspace)."""
    from .workspace import META_DIR_NAME, write_workspace_info

    folder = Path(folder) if folder is not None else demo_workspace_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = folder / f"synthetic_{i + 1:02d}.png"
        if progress is not None:
            progress(i, count, path.name)
        if not path.is_file():
            fundus = make_fundus(size[0], size[1], seed=1000 + i)
            write_png_atomic(path, fundus.image)
    write_workspace_info(folder / META_DIR_NAME, {"synthetic": True, "title": DEMO_TITLE})
    if progress is not None:
        progress(count, count, "done")
    return folder
