"""What the save tests share: a review session on a workspace, an image opened in it, a brush stroke, a
prediction arriving, the hash a history file is named by, and the environment of a child process."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from retina_desktop.core.model.tasks import PredictionResult, load_image
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace

REPOSITORY = Path(__file__).resolve().parents[3]


def child_env() -> dict[str, str]:
    """A child process imports this checkout (not an installed copy) and runs on one thread."""
    return dict(os.environ, PYTHONPATH=str(REPOSITORY), OMP_NUM_THREADS="1")


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def session_on(root: Path) -> ReviewSession:
    r = ReviewSession()
    r.set_workspace(Workspace(root))
    return r


def open_image(r: ReviewSession, key: str) -> Any:
    request, entry = r.begin_load(key)
    return r.finish_load(request, load_image(None, r.workspace, entry, "m"))


def paint(doc: Any, p0: tuple[float, float], p1: tuple[float, float], value: bool = True, radius: float = 3.0) -> None:
    doc.stroke_to(p0, p1, radius, value)
    doc.end_stroke()


def predict(r: ReviewSession, key: str, seed: int = 0) -> np.ndarray:
    """A random probability map for the open image arrives as the prediction of model "test v0"."""
    s = r.image
    prob = np.random.default_rng(seed).random(s.document.shape, dtype=np.float32)
    r.prediction_arrived(PredictionResult(key, prob, np.ones(prob.shape, bool), 0.1, "test v0"))
    return prob


def kill_inside_saves(saver: Any, root: Path, rounds: int, seed: int, most_done: int, wait_s: float) -> list[str]:
    """Fork ``saver(root, fd, round)`` ``rounds`` times; let each report 1..``most_done`` finished saves on ``fd``
    (a line each), then SIGKILL it at a random point inside the next one. Returns every line reported done."""
    import random
    import select
    import signal

    reported: list[str] = []
    rnd = random.Random(seed)
    for round_ in range(rounds):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(r)
            saver(root, w, round_)
        os.close(w)
        buf = b""
        wanted = rnd.randint(1, most_done)
        while buf.count(b"\n") < wanted:  # let it finish a few saves, then kill it inside the next one
            ready, _, _ = select.select([r], [], [], wait_s)
            assert ready, "the saver made no progress"
            chunk = os.read(r, 4096)
            assert chunk, "the saver died on its own"
            buf += chunk
        select.select([], [], [], rnd.random() * 0.02)  # a random point inside the following save
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        while chunk := os.read(r, 4096):
            buf += chunk
        os.close(r)
        reported += buf.decode().splitlines()
    return reported
