"""The built-in demo workspace: synthetic fundus photos made by the project's own generator.

Written once into the user data folder, so a first run has something real to review without any
download. The workspace is marked synthetic and the UI says so.

At the first launch the images are made in a child interpreter when one can be started: there they use the
second core instead of taking turns for one interpreter lock with the model's loading (torch's import alone
holds it for 1.3 s), which is what the first prediction waits for.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from model_core.imageio import write_png_atomic
from model_core.synthetic import make_fundus

from .paths import demo_workspace_dir

DEMO_COUNT = 6
DEMO_SIZE = (584, 565)  # DRIVE's height x width
DEMO_TITLE = "Demo workspace (synthetic images)"

log = logging.getLogger("retina_desktop")


def demo_image_path(folder: Path, index: int) -> Path:
    return folder / f"synthetic_{index + 1:02d}.png"


def make_demo_image(folder: Path, index: int, size: tuple[int, int] = DEMO_SIZE) -> Path:
    """Write demo image ``index`` (the same pixels on every machine: its seed is fixed)."""
    path = demo_image_path(folder, index)
    write_png_atomic(path, make_fundus(size[0], size[1], seed=1000 + index).image)
    return path


def ensure_demo_workspace(
    folder: Path | None = None,
    count: int = DEMO_COUNT,
    size: tuple[int, int] = DEMO_SIZE,
    progress: Callable[[int, int, str], None] | None = None,
    separate_process: bool = False,
) -> Path:
    """Create the demo images that are missing and return the folder (a flat workspace).

    ``separate_process``: make them in a child interpreter (see the module's note); whatever it did not make
    (it could not start, or failed) is made here, so the result is the same either way."""
    from .workspace import META_DIR_NAME, write_workspace_info

    folder = Path(folder) if folder is not None else demo_workspace_dir()
    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(count) if not demo_image_path(folder, i).is_file()]
    if separate_process and missing and not getattr(sys, "frozen", False):  # a frozen app has no -m to run
        _make_in_child(folder, missing, size, count, progress)
    still = [i for i in missing if not demo_image_path(folder, i).is_file()]  # what no child made
    for done, i in enumerate(still, start=count - len(still)):
        if progress is not None:
            progress(done, count, demo_image_path(folder, i).name)
        make_demo_image(folder, i, size)
    write_workspace_info(folder / META_DIR_NAME, {"synthetic": True, "title": DEMO_TITLE})
    if progress is not None:
        progress(count, count, "done")
    return folder


def _make_in_child(
    folder: Path,
    indices: list[int],
    size: tuple[int, int],
    count: int,
    progress: Callable[[int, int, str], None] | None,
) -> None:
    # The child imports this package from where this process found it, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    args = [sys.executable, "-m", "retina_desktop.core.demo", str(folder), str(size[0]), str(size[1])]
    try:
        with subprocess.Popen(
            [*args, *map(str, indices)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        ) as child:
            assert child.stdout is not None
            for done, line in enumerate(child.stdout, start=count - len(indices)):
                if progress is not None:
                    progress(done, count, line.strip())
            _, err = child.communicate()
        if child.returncode:
            log.warning("demo images in a child process failed (%s); making them here", err.strip()[-300:])
    except OSError as exc:
        log.warning("demo images: no child process (%s); making them here", exc)


if __name__ == "__main__":  # the child of _make_in_child: FOLDER HEIGHT WIDTH INDEX...
    _folder, _h, _w, *_indices = sys.argv[1:]
    for _i in map(int, _indices):
        print(make_demo_image(Path(_folder), _i, (int(_h), int(_w))).name, flush=True)
