"""Every prediction run of the app, in one place: loading the model, the open image, *Predict all* and the
re-prediction after a model switch. It owns their workers, their cancel, their failure counts and signals;
the main window and the fine-tune code ask it, never each other's privates.

Errors are routed by type: a ``CheckpointError`` (or anything while loading the model) means there is no
model; any other error is one image's or one run's problem and is reported as a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from model_core.errors import CheckpointError

from ...core.model.model_service import ModelHolder, ModelInfo
from ...core.model.tasks import PredictionFailure, load_model, predict_images
from ...core.workspace import ImageEntry, Workspace
from ..common.workers import TaskRunner, Worker, user_message


@dataclass
class BatchSummary:
    """How a multi-image run ended."""

    label: str  # "Predicting" / "Re-predicting"
    total: int
    predicted: int = 0
    failed: list[str] = field(default_factory=list)  # keys that could not be read or predicted
    cancelled: bool = False

    def text(self) -> str:
        if self.cancelled:
            return f"{self.label} cancelled after {self.predicted} of {self.total} images"
        if self.failed:
            return (
                f"{len(self.failed)} of {self.total} images could not be read or predicted (marked 'error' in "
                "the list; hover one for the reason). The others are predicted."
            )
        if self.predicted == 0:
            return f"All {self.total} images already had a prediction"
        return f"Done: {self.predicted} image{'s' if self.predicted != 1 else ''} predicted"


class PredictionController(QObject):
    model_loaded = Signal(object, bool)  # ModelInfo, activated (True after a model switch, False on first load)
    model_failed = Signal(str)
    result = Signal(object)  # PredictionResult, from any run
    failure = Signal(object)  # PredictionFailure: one image could not be read or predicted
    error = Signal(str)  # a run failed for another reason than a missing model
    batch_progress = Signal(str, int, int, str)  # label, done, total, image name
    batch_finished = Signal(object)  # BatchSummary
    busy_changed = Signal()

    def __init__(self, tasks: TaskRunner, holder: ModelHolder, parent: QObject | None = None):
        super().__init__(parent)
        self.tasks = tasks
        self.model = holder
        self.info: ModelInfo | None = None
        self.model_error: str | None = None
        self._predicting: dict[str, int] = {}  # key -> model generation of the run in flight
        self._batch: Worker | None = None

    # --------------------------------------------------------------------- model --
    def load_model(self, activated: bool = False) -> Worker:
        """Load the model in use (after ``holder.switch_to`` for a switch: ``activated=True``)."""
        self.info = None
        w = Worker(load_model, self.model, name="load model")
        w.returned.connect(self.tasks.guard(lambda info: self._loaded(info, activated)))
        w.errored.connect(self.tasks.guard(self._load_failed))
        self.tasks.start(w, priority=1)
        return w

    def _loaded(self, info: ModelInfo, activated: bool) -> None:
        self.info, self.model_error = info, None
        self.model_loaded.emit(info, activated)

    def _load_failed(self, message: str) -> None:
        self.model_error = message
        self.model_failed.emit(message)

    def _run_failed(self, exc: BaseException) -> None:
        if isinstance(exc, CheckpointError):
            self._load_failed(user_message(exc))
        else:
            self.error.emit(user_message(exc))

    # ------------------------------------------------------------------------ runs --
    @property
    def batch_running(self) -> bool:
        return self._batch is not None

    def is_predicting(self, key: str) -> bool:
        return key in self._predicting

    def predict_one(self, workspace: Workspace, entry: ImageEntry) -> Worker | None:
        """Predict one image (the open one); None when the model in use is already predicting it.

        A run of a previous model does not count: after a switch it stops without a result (see
        ``predict_images``), so the open image is asked for again with the new model.
        """
        generation = self.model.generation
        if self._predicting.get(entry.key) == generation:
            return None
        self._predicting[entry.key] = generation
        w = Worker(
            predict_images,
            self.model,
            workspace,
            [entry],
            self.model.cache_key,
            generation=generation,
            name=f"predict {entry.key}",
        )
        w.yielded.connect(self.tasks.guard(self._item))
        w.failed.connect(self.tasks.guard(self._run_failed))
        w.finished.connect(self.tasks.guard(lambda k=entry.key, g=generation: self._one_done(k, g)))
        self.tasks.start(w, priority=1)
        return w

    def _one_done(self, key: str, generation: int) -> None:
        if self._predicting.get(key) == generation:
            del self._predicting[key]

    def predict_all(self, workspace: Workspace) -> Worker | None:
        """Every image without a cached prediction of the model in use."""
        return self._start_batch("Predicting", workspace, list(workspace.entries), "predict all")

    def repredict(self, workspace: Workspace, entries: list[ImageEntry]) -> Worker | None:
        """The given images (not yet reviewed) with the model now active."""
        return self._start_batch("Re-predicting", workspace, entries, "re-predict unreviewed")

    def _start_batch(self, label: str, workspace: Workspace, entries: list[ImageEntry], name: str) -> Worker | None:
        if self._batch is not None or not entries or self.model_error is not None:
            return None
        summary = BatchSummary(label, len(entries))
        w = Worker(
            predict_images,
            self.model,
            workspace,
            entries,
            self.model.cache_key,
            skip_cached=True,
            generation=self.model.generation,
            name=name,
        )
        w.yielded.connect(self.tasks.guard(lambda item, s=summary: self._batch_item(s, item)))
        w.progress.connect(self.tasks.guard(lambda d, t, text: self.batch_progress.emit(label, d, t, text)))
        w.failed.connect(self.tasks.guard(self._run_failed))
        w.finished.connect(self.tasks.guard(lambda s=summary, wk=w: self._batch_done(s, wk)))
        self._batch = w
        self.tasks.start(w)
        self.batch_progress.emit(label, 0, len(entries), "")
        self.busy_changed.emit()
        return w

    def _batch_item(self, summary: BatchSummary, item) -> None:
        if isinstance(item, PredictionFailure):
            summary.failed.append(item.key)
        else:
            summary.predicted += 1
        self._item(item)

    def _batch_done(self, summary: BatchSummary, worker: Worker) -> None:
        if worker is not self._batch:
            return
        self._batch = None
        summary.cancelled = worker.is_cancelled
        self.busy_changed.emit()
        self.batch_finished.emit(summary)

    def _item(self, item) -> None:
        if isinstance(item, PredictionFailure):
            self.failure.emit(item)
        else:
            self.result.emit(item)

    def cancel(self) -> None:
        if self._batch is not None:
            self._batch.cancel()
