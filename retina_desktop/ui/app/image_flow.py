"""Opening an image: leave the open one (autosaved, or the grader chooses), decode the new one on a worker while
the list already shows it, then put it on the canvas and the Review panel and predict it if it has no prediction
yet. A newer request makes an older one's result void (``ReviewSession.begin_load``)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QStatusBar

from ...core.model.model_service import ModelHolder
from ...core.model.tasks import LoadedImage, load_image
from ...core.review.review_session import ReviewSession
from ..common.image_ready import ImageReadiness
from ..common.workers import TaskRunner, Worker
from ..prediction.prediction_controller import PredictionController
from .background import MeasureRunner
from .views import WindowViews


class ImageFlow:
    def __init__(
        self,
        review: ReviewSession,
        tasks: TaskRunner,
        model: ModelHolder,
        prediction: PredictionController,
        views: WindowViews,
        status_bar: QStatusBar,
        image_ready: ImageReadiness,
        measure: MeasureRunner,
        show_message: Callable[[str, str], None],
        leave_current_image: Callable[[], bool],
        predict_current: Callable[[], None],
        show_threshold: Callable[[], None],
        update_actions: Callable[[], None],
        opened: Callable[[str], None],
        failed: Callable[[str, str], None],
    ) -> None:
        """``opened(key)`` / ``failed(key, message)``: what came of a request to open an image."""
        self.review, self.tasks, self.model, self.prediction = review, tasks, model, prediction
        self.views, self.status_bar, self.image_ready, self.measure = views, status_bar, image_ready, measure
        self.show_message, self.leave_current_image, self.predict_current = (
            show_message,
            leave_current_image,
            predict_current,
        )
        self.show_threshold, self.update_actions = show_threshold, update_actions
        self.opened, self.failed = opened, failed
        views.image_list.image_activated.connect(self.open_image)
        views.canvas.zoom_changed.connect(self.show_zoom)

    def step_image(self, step: int) -> None:
        r, image = self.review, self.review.image
        current = image.key if image is not None else (r.loading_key or r.current_key)
        key = self.views.image_list.neighbour(current, step)
        if key:
            self.open_image(key)

    def open_image(self, key: str) -> None:
        ws, image, image_list = self.review.workspace, self.review.image, self.views.image_list
        if ws is None:
            return
        if image is not None and image.key == key:
            image_list.select(key)
            return
        if not self.leave_current_image():
            if self.review.image is not None:
                image_list.select(self.review.image.key)
            return
        self.detach_image()
        request, entry = self.review.begin_load(key)
        image_list.select(key)
        self.views.review_panel.image_name_label.setText(entry.name)
        self.views.banner.dismiss()
        self.status_bar.showMessage(f"Opening {entry.name}…")
        w = Worker(load_image, ws, entry, self.model.cache_key, name=f"open {entry.name}")
        w.returned.connect(self.tasks.guard(lambda loaded, r=request: self._loaded(r, loaded)))
        w.errored.connect(self.tasks.guard(lambda msg, r=request, k=key: self._load_failed(r, k, msg)))
        self.tasks.start(w, priority=2)

    def detach_image(self) -> None:
        image = self.review.image
        if image is not None:
            image.document.changed.disconnect(self._document_changed)
            image.document.state_changed.disconnect(self._document_state_changed)
        self.image_ready.closed()
        self.views.canvas.set_image(None)
        self.views.review_panel.clear_image()

    def _load_failed(self, request: int, key: str, message: str) -> None:
        if self.review.has_key(key):
            self.views.image_list.model.set_error(key, message)
        if not self.review.load_failed(request):
            return
        self.show_message(message, "error")
        self.status_bar.clearMessage()
        self.update_actions()
        self.failed(key, message)

    def _loaded(self, request: int, loaded: LoadedImage) -> None:
        s = self.review.finish_load(request, loaded)
        if s is None:
            return  # the grader moved on while it was decoding
        entry, doc, canvas = s.entry, s.document, self.views.canvas
        self.views.image_list.model.set_error(entry.key, None)
        doc.changed.connect(self._document_changed)
        doc.state_changed.connect(self._document_state_changed)
        canvas.set_image(loaded.rgb, loaded.model_view)
        canvas.set_probability(loaded.probability)
        canvas.set_document(doc)
        h, w = loaded.rgb.shape[:2]
        self.views.review_panel.image_name_label.setText(f"{entry.name}  ({w}×{h})")
        if loaded.ground_truth_problem:
            self.show_message(loaded.ground_truth_problem, "warning")
        self.status_bar.showMessage(f"Opened {entry.name}", 3000)
        self.show_zoom()
        self.show_threshold()
        self.update_actions()
        self.opened(entry.key)
        self.image_ready.opened(entry.key, has_prediction=loaded.probability is not None)
        if loaded.probability is None:
            self.predict_current()
            if self.prediction.model_error is not None:
                self.image_ready.settle(entry.key)  # no model: nothing to wait for
        else:
            self.measure.schedule()

    def show_zoom(self, *_args: object) -> None:
        zoom = self.views.canvas.zoom_factor()
        self.views.review_panel.zoom_label.setText(f"{zoom * 100:.0f} %" if self.review.image is not None else "–")

    def _document_changed(self, _bbox: object) -> None:
        if self.views.banner.level in ("warning", "info"):
            self.views.banner.dismiss()  # a later successful edit supersedes e.g. a refused Fill
        self.measure.schedule()

    def _document_state_changed(self) -> None:
        image = self.review.image
        if image is not None:
            self.views.image_list.model.set_dirty(image.key, image.document.unsaved)
        self.show_threshold()
        self.update_actions()
