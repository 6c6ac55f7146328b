"""Teach artery/vein: the grader's saved A/V labels teach the suggestion of the workspace's other photos. Qt-free.

``model_core.av_net`` holds the network, its training and its gate; this module holds the workspace's side:

- ``labelled_photos`` (worker): the images whose A/V labels and vessel mask are saved, read for teaching (a photo
  that cannot be used is one line, and skipped);
- ``teach_workspace`` (worker): teach on them, judge on the held-out ones, and keep the network in the workspace
  (``MODEL_FILE``), active when the gate accepts;
- ``adopt_candidate``: the grader's yes to an "ask"; ``activate`` / ``deactivate``: the taught suggestion on and off;
- ``active_model``: the network the calibre view suggests with, None for the automatic suggestion.

The network is derived data (its labels, the ground truth, are versioned in the calibre records): an accepted
or adopted one replaces the former; one asked about or rejected waits beside it and never displaces the one in
use. Which network is in use is the workspace setting ``ACTIVE_SETTING``: the sha256 of its weights, so a file
replaced behind the app's back (another window teaching) is not used under the old answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from model_core.atomic import check_writable
from model_core.errors import CheckpointError, RetinaInputError
from model_core.imageio import read_image, read_mask
from model_core.late_import import late_import
from model_core.preprocess import estimate_fov

from ..workspace import Workspace, WorkspaceError
from ..workspace.calibre_records import CalibreFileDamaged

if TYPE_CHECKING:  # torch loads on first use, on a worker, never on the window's start-up path
    from model_core.av_net import AVNet, LabelledPhoto, TaughtAV


def _av_net() -> ModuleType:
    """``model_core.av_net``, imported on first use (what it returns is typed where it is used)."""
    return late_import("model_core.av_net")


def _sha(model: AVNet) -> str:
    return str(late_import("model_core.checkpoint").weights_sha256(model.state_dict))


log = logging.getLogger("retina_desktop")

MODEL_FILE = "artery_vein_model.pt"  # the network the gate accepted or the grader adopted
CANDIDATE_FILE = "artery_vein_model.candidate.pt"  # the last one taught that the gate asked about or rejected
ACTIVE_SETTING = "artery_vein_model"


def model_path(ws: Workspace) -> Path:
    return ws.meta_dir / MODEL_FILE


def labelled_photos(ws: Workspace) -> tuple[list[LabelledPhoto], list[str]]:
    """The photos with saved A/V labels and a saved vessel mask, in workspace order, and one line per labelled
    photo that cannot be used."""
    keys = set(ws.calibre.image_keys())
    photos: list[LabelledPhoto] = []
    skipped: list[str] = []
    for e in ws.entries:
        if e.key not in keys:
            continue
        gt = e.existing_gt()
        try:
            rgb = read_image(e.path)
            labels = ws.calibre.read_labels(e.key, rgb.shape[:2])
            if labels is None:
                continue
            if gt is None:
                skipped.append(f"{e.name}: its vessel mask is not saved, so its labels cannot teach")
                continue
            vessels = read_mask(gt)
        except (CalibreFileDamaged, RetinaInputError, OSError, ValueError) as exc:
            skipped.append(str(exc).splitlines()[0])
            continue
        if vessels.shape != labels.shape:
            skipped.append(f"{gt}: the vessel mask and the photo {e.name} differ in size")
            continue
        photos.append(_av_net().LabelledPhoto(e.key, rgb, vessels.astype(bool), estimate_fov(rgb), labels))
    return photos, skipped


@dataclass
class TeachOutcome:
    taught: TaughtAV
    path: Path
    active: bool  # the gate accepted it: the calibre view suggests with it now
    skipped: list[str]

    def message(self) -> str:
        t = self.taught
        if t.cancelled:
            return "Teach artery/vein: cancelled; the suggestion is unchanged"
        if t.verdict == "accept":
            return f"Teach artery/vein: the taught suggestion is in use ({t.reason})"
        if t.verdict == "ask":
            return f"Teach artery/vein: not in use until you say so ({t.reason})"
        return f"Teach artery/vein: kept unused ({t.reason})"


def teach_workspace(
    ws: Workspace,
    steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> TeachOutcome:
    """Teach on the workspace's labelled photos, judge, keep. Accepted, the network replaces ``MODEL_FILE`` and is
    in use; asked or rejected, it is kept as ``CANDIDATE_FILE`` and the network in use, if any, stays in use (the
    grader's yes to an ask: ``adopt_candidate``). ValueError (one line) when there is too little to learn from;
    WorkspaceError when the records cannot be written."""
    if ws.read_only_records is not None:
        raise WorkspaceError(ws.read_only_records)
    try:  # found now, not after the training: an unwritable records folder, a full disk
        check_writable(candidate_path(ws))
    except OSError as exc:
        raise WorkspaceError(
            f"{candidate_path(ws).parent}: the taught network could not be kept there ({exc})"
        ) from None
    photos, skipped = labelled_photos(ws)
    net = _av_net()
    in_use = active_model(ws)  # what a new network must beat
    taught = net.teach_from_labels(
        photos, steps or net.TEACH_STEPS, progress=progress, cancelled=cancelled, in_use=in_use
    )
    if taught.cancelled or cancelled():
        taught.cancelled = True
        return TeachOutcome(taught, model_path(ws), False, skipped)
    active = taught.verdict == "accept"
    path = net.save_av_net(model_path(ws) if active else candidate_path(ws), taught.model)
    if active:
        ws.set_setting(ACTIVE_SETTING, _sha(taught.model))
        candidate_path(ws).unlink(missing_ok=True)
    return TeachOutcome(taught, path, active, skipped)


def candidate_path(ws: Workspace) -> Path:
    return ws.meta_dir / CANDIDATE_FILE


def saved_model(ws: Workspace) -> AVNet | None:
    """The network kept for use (``MODEL_FILE``), in use or not; None when there is none or it cannot be read
    (logged: a damaged file is derived data, and teaching again writes a new one)."""
    return _load(model_path(ws))


def _load(path: Path) -> AVNet | None:
    if not path.exists():
        return None
    try:
        model: AVNet = _av_net().load_av_net(path)
    except CheckpointError as exc:
        log.warning("%s", exc)
        return None
    return model


def active_setting(ws: Workspace) -> object:
    return ws.setting(ACTIVE_SETTING)


def active_model(ws: Workspace) -> AVNet | None:
    """The network the grader's answer (or the gate) put in use; None: the automatic suggestion."""
    return active_model_at(model_path(ws), active_setting(ws))


def active_model_at(path: Path, wanted: object) -> AVNet | None:
    """``active_model`` from the setting's value read beforehand (a worker reads the file, the UI the setting)."""
    model = _load(path) if isinstance(wanted, str) else None
    return model if model is not None and _sha(model) == wanted else None


def activate(ws: Workspace) -> bool:
    """Use the network kept for use again (*Use the taught artery/vein suggestion*); False when there is none."""
    model = saved_model(ws)
    if model is None:
        return False
    ws.set_setting(ACTIVE_SETTING, _sha(model))
    return True


def adopt_candidate(ws: Workspace, expected: AVNet | None = None) -> bool:
    """The grader's yes to an ask: the last taught network replaces the one kept for use, and is in use; False when
    there is no readable candidate, or it is not ``expected`` (the one asked about: another window taught since)."""
    model = _load(candidate_path(ws))
    if model is None or (expected is not None and _sha(model) != _sha(expected)):
        return False
    candidate_path(ws).replace(model_path(ws))
    ws.set_setting(ACTIVE_SETTING, _sha(model))
    return True


def deactivate(ws: Workspace) -> None:
    ws.set_setting(ACTIVE_SETTING, None)


def labels_with(model: AVNet | None) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray] | None:
    """``suggest(rgb, vessels, fov) -> labels`` with a taught network, for ``calibre_review.prepare``; None for the
    automatic suggestion."""
    if model is None:
        return None
    net = model.build()

    def suggest(rgb: np.ndarray, vessels: np.ndarray, fov: np.ndarray | None) -> np.ndarray:
        labels: np.ndarray = _av_net().taught_suggestion(net, rgb, vessels, fov)
        return labels

    return suggest
