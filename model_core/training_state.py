"""A training run's state at the end of an epoch, so an interrupted run can carry on where it stopped.

A two-hour CPU training is long enough to meet a reboot, a closed laptop or a killed terminal. After every epoch
``train`` writes this file atomically beside the checkpoint it will write (``<out>.state``): the weights, the
optimiser's moments, the schedule, the moving average, the best epoch so far, the time used and every random
generator (torch's, the patch sampler's, the augmentation's). Resumed from it, a step-based run gives the same
weights, bit for bit, as one that was never interrupted (tested); a run with a wall-time budget carries its used
time over, so its schedule still ends annealed within the budget.

The file is loaded with ``weights_only=True`` like a checkpoint: tensors, numbers, strings and containers only.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_open
from .errors import RetinaInputError

STATE_FORMAT = "retina-desktop-training-state"
STATE_VERSION = 1


class TrainingStateError(RetinaInputError):
    """A training-state file that cannot be resumed from."""


@dataclass
class TrainingState:
    epoch: int  # epochs completed
    elapsed_s: float
    fingerprint: dict[str, Any]  # what must match for a resume to continue the same run
    model: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]
    ema: dict[str, Any] | None
    best_state: dict[str, torch.Tensor]
    best_metadata: dict[str, Any]
    progress: dict[str, Any]  # best_dice, best_epoch, stale, best_threshold, epoch_times
    history: list[dict[str, Any]]
    rng: dict[str, Any] = field(default_factory=dict)


def generator_states(generators: list[np.random.Generator | random.Random]) -> list[Any]:
    return [g.bit_generator.state if isinstance(g, np.random.Generator) else g.getstate() for g in generators]


def restore_generators(generators: list[np.random.Generator | random.Random], states: list[Any]) -> None:
    if len(generators) != len(states):
        raise ValueError(f"{len(states)} saved random generators for {len(generators)}")
    for g, s in zip(generators, states, strict=True):
        if isinstance(g, np.random.Generator):
            g.bit_generator.state = s
        else:
            g.setstate(s)


def state_path_for(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".state")


def save_state(path: str | os.PathLike[str], state: TrainingState) -> Path:
    path = Path(path)
    payload = {"format": STATE_FORMAT, "format_version": STATE_VERSION, **state.__dict__}
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def load_state(path: str | os.PathLike[str]) -> TrainingState:
    path = Path(path)
    if not path.is_file():
        raise TrainingStateError(path, "no saved training state to resume from (the run finished or never started)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many types for truncated or foreign files
        raise TrainingStateError(path, "not a loadable training state (corrupt or truncated file)") from None
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise TrainingStateError(path, "not a Retina Desktop training state")
    version = payload.pop("format_version", None)
    if not isinstance(version, int) or version != STATE_VERSION:
        raise TrainingStateError(path, f"training-state version {version!r}; this program resumes version 1")
    payload.pop("format")
    try:
        return TrainingState(**payload)
    except TypeError as exc:
        raise TrainingStateError(path, f"training state is missing or has an unknown field ({exc})") from None
