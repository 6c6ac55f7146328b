"""The user's model versions: each fine-tune run adds one, and only a gated one becomes active.

Layout under the store root (by default the platformdirs user data folder, ``.../models``)::

    <root>/<version-id>/model.pt      checkpoint (engine format)
    <root>/<version-id>/version.json  parent, images used, settings, metrics before/after, date, decision
    <root>/active.json                which version the app and CLI use ("default" = the bundled model)

Every file is written atomically, so a crash never leaves the store pointing at a half-written model.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_json_atomic
from .errors import CheckpointError
from .resources import default_model_path, user_data_dir

if TYPE_CHECKING:
    from .checkpoint import Checkpoint

DEFAULT_ID = "default"


def _bundled_name(model_path: Path) -> str:
    """ "v<version> (bundled)" from the model card beside the bundled model (cheap: no checkpoint load)."""
    try:
        version = json.loads((model_path.parent / "model_card.json").read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        version = None
    if not isinstance(version, (str, int)) or not str(version):
        return DEFAULT_ID
    version = str(version)
    return f"{version if version.startswith('v') else 'v' + version} (bundled)"


@dataclass
class ModelVersion:
    id: str
    path: Path
    info: dict[str, Any]

    @property
    def label(self) -> str:
        return str(self.info.get("label", self.id))

    @property
    def name(self) -> str:
        """What the app calls this version: its id, or "v3 (bundled)" for the bundled model, whose
        checkpoint the status bar describes as "<model> v3"."""
        return self.info.get("display_name") or self.id


class ModelStore:
    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else user_data_dir() / "models"

    def _default_version(self) -> ModelVersion | None:
        try:
            path = default_model_path()
        except CheckpointError:
            return None
        return ModelVersion(
            DEFAULT_ID, path, {"label": "bundled default model", "parent": None, "display_name": _bundled_name(path)}
        )

    def versions(self) -> list[ModelVersion]:
        out = [v for v in [self._default_version()] if v is not None]
        if self.root.is_dir():
            for d in sorted(self.root.iterdir()):
                meta = d / "version.json"
                if d.is_dir() and meta.is_file() and (d / "model.pt").is_file():
                    try:
                        info = json.loads(meta.read_text(encoding="utf-8"))
                    except (OSError, ValueError):
                        continue  # a damaged entry must not hide the others
                    if not isinstance(info, dict):
                        continue
                    out.append(ModelVersion(d.name, d / "model.pt", info))
        return out

    def get(self, version_id: str) -> ModelVersion:
        for v in self.versions():
            if v.id == version_id:
                return v
        raise KeyError(f"no model version {version_id!r} in {self.root}")

    def active(self) -> ModelVersion | None:
        state = self.root / "active.json"
        if state.is_file():
            try:
                wanted = json.loads(state.read_text(encoding="utf-8")).get("active", DEFAULT_ID)
                return self.get(wanted)
            except (OSError, ValueError, KeyError, AttributeError, TypeError):
                pass  # fall back to the bundled model rather than fail to start
        return self._default_version()

    def activate(self, version_id: str) -> ModelVersion:
        version = self.get(version_id)
        since = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json_atomic(self.root / "active.json", {"active": version.id, "since": since})
        return version

    def _next_id(self) -> str:
        numbers = [
            int(m.group(1))
            for d in (self.root.iterdir() if self.root.is_dir() else [])
            if (m := re.match(r"v(\d+)", d.name))
        ]
        return f"v{max(numbers, default=0) + 1:03d}-{time.strftime('%Y%m%d-%H%M%S')}"

    def add(self, ckpt: Checkpoint, info: dict[str, Any]) -> ModelVersion:
        """Store a new version (not yet active). Its checkpoint's metadata carries the version id."""
        vid = self._next_id()
        folder = self.root / vid
        ckpt.metadata["version"] = vid
        from .checkpoint import save_checkpoint  # late: torch costs 1.3 s at launch, and listing versions needs none

        save_checkpoint(folder / "model.pt", ckpt)
        info = {"id": vid, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **info}
        write_json_atomic(folder / "version.json", info)
        return ModelVersion(vid, folder / "model.pt", info)

    def load(self, version: ModelVersion) -> Checkpoint:
        from .checkpoint import load_checkpoint  # late, as in add()

        return load_checkpoint(version.path)

    def active_problem(self) -> str | None:
        """Why ``active()`` fell back to the bundled model, in one line (None: it did not)."""
        state = self.root / "active.json"
        if not state.is_file():
            return None
        try:
            wanted = json.loads(state.read_text(encoding="utf-8")).get("active", DEFAULT_ID)
        except (OSError, ValueError, AttributeError) as exc:
            return f"{state}: unreadable ({exc.__class__.__name__}); using the bundled default model"
        if not isinstance(wanted, str):
            return f"{state}: names no model version; using the bundled default model"
        if wanted != DEFAULT_ID and all(v.id != wanted for v in self.versions()):
            return f"{state}: model version {wanted!r} is missing or damaged; using the bundled default model"
        return None
