"""Finds the project's resources (the bundled default model, icons, stylesheet) from source, from an
installed wheel and from a frozen build. The one resolver: the GUI's icons and stylesheet go through it too.

Where ``resources/`` is looked for, first hit wins:

1. ``RETINA_DESKTOP_RESOURCES`` (a folder; for packagers, support and tests),
2. ``sys._MEIPASS/resources`` inside a PyInstaller bundle,
3. ``<checkout>/resources`` beside the packages (source and editable installs),
4. ``<prefix>/share/retina-desktop/resources`` where a wheel installs it (``data-files`` in pyproject.toml),
   for ``sys.prefix`` and the per-user base (``pip install --user``).

Nothing here writes anything: resources are read-only, user data lives in ``retina_desktop.core.paths``.
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

from .errors import CheckpointError

DEFAULT_MODEL_NAME = "default_model.pt"
ENV_OVERRIDE = "RETINA_DESKTOP_RESOURCES"
SHARE_SUBDIR = Path("share") / "retina-desktop" / "resources"


def _candidates() -> list[Path]:
    out: list[Path] = []
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        return [Path(override)]
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return [Path(frozen_root) / "resources"]
    here = Path(__file__).resolve().parent
    out += [here.parent / "resources", here / "resources"]
    prefixes = [sys.prefix, getattr(sys, "base_prefix", sys.prefix)]
    try:
        prefixes.append(site.getuserbase())
    except Exception:  # noqa: BLE001 - site may be stripped in embedded interpreters
        pass
    out += [Path(p) / SHARE_SUBDIR for p in prefixes if p]
    return out


def resources_dir() -> Path:
    """The ``resources/`` folder (the first candidate that exists, else the first candidate)."""
    candidates = _candidates()
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def resource_path(name: str) -> Path:
    return resources_dir() / name


def default_model_path() -> Path:
    path = resource_path(DEFAULT_MODEL_NAME)
    if not path.is_file():
        raise CheckpointError(
            path,
            "the bundled default model is missing; pass --weights FILE (train one with `python -m model_core train`)",
        )
    return path


APP_DIR_NAME = "retina-desktop"
APP_AUTHOR = "RetinaDesktop"


def user_data_dir() -> Path:
    """The user's data folder (model store, demo workspace, logs); ``RETINA_DESKTOP_HOME`` overrides it.

    Not created here: callers that write create what they need.
    """
    override = os.environ.get("RETINA_DESKTOP_HOME")
    if override:
        return Path(override) / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_DIR_NAME, APP_AUTHOR))
