"""Small background helpers of the main window: thumbnails for the image list and the measure panel's numbers.

Both run in the window's ``TaskRunner`` and drop results that are no longer wanted (another workspace,
another image, a newer request).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from ...core.model.tasks import make_thumbnails
from ...core.paths import user_cache_dir
from ...core.vessels.measure import measure_correction
from ..common.workers import TaskRunner, Worker


class ThumbnailLoader(QObject):
    """Collects the keys the list asks for during 30 ms and makes their thumbnails in one low-priority worker."""

    def __init__(self, tasks: TaskRunner, review, image_list, parent: QObject | None = None):
        super().__init__(parent)
        self.tasks, self.review, self.image_list = tasks, review, image_list
        self._pending: list[str] = []
        self.timer = QTimer(self, singleShot=True, interval=30)
        self.timer.timeout.connect(self._load)
        image_list.model.thumbnails_wanted.connect(self.want)

    def want(self, keys: list[str]) -> None:
        self._pending.extend(keys)
        self.timer.start()

    def _load(self) -> None:
        ws = self.review.workspace
        if not self._pending or ws is None:
            return
        keys, self._pending = self._pending, []
        entries = [ws.entry(k) for k in keys if self.review.has_key(k)]
        cache = user_cache_dir() / "thumbnails"
        cache.mkdir(parents=True, exist_ok=True)
        w = Worker(make_thumbnails, ws, entries, cache, name="thumbnails")
        w.yielded.connect(
            self.tasks.guard(lambda kv, ws=ws: ws is self.review.workspace and self.image_list.model.set_thumbnail(*kv))
        )
        self.tasks.start(w, priority=-1)


class MeasureRunner(QObject):
    """Recomputes the prediction-vs-mask measures 350 ms after the last change; shows only the newest."""

    def __init__(self, tasks: TaskRunner, review, labels: dict, parent: QObject | None = None):
        super().__init__(parent)
        self.tasks, self.review, self.labels = tasks, review, labels
        self._request = 0
        self.timer = QTimer(self, singleShot=True, interval=350)
        self.timer.timeout.connect(self._start)

    def schedule(self, *_args) -> None:
        self.timer.start()

    def _start(self) -> None:
        s = self.review.image
        if s is None or s.probability is None:
            return
        self._request += 1
        req, key = self._request, s.key
        prob, mask, fov, t = s.probability, s.document.mask.copy(), s.loaded.fov, self.review.threshold
        w = Worker(lambda ctx: measure_correction(prob, mask, t, fov), name="measure")
        w.returned.connect(self.tasks.guard(lambda m, r=req, k=key: self._show(r, k, m)))
        self.tasks.start(w, priority=0)

    def _show(self, request: int, key: str, m) -> None:
        s = self.review.image
        if request != self._request or s is None or s.key != key:
            return
        for name, value in m.as_rows():
            self.labels[name].setText(value)
