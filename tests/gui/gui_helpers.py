"""Helpers shared by the GUI tests (imported by name: tests/gui is on sys.path)."""

from __future__ import annotations

import numpy as np
from sample_workspaces import SIZE, make_workspace  # noqa: F401  (re-exported for the GUI tests)


class RecordingPrompter:
    """Answers questions without dialogs and remembers what was asked."""

    def __init__(self, unsaved="discard", confirm=True, dataset_masks="overwrite"):
        self.unsaved_answer, self.confirm_answer = unsaved, confirm
        self.dataset_masks_answer = dataset_masks
        self.asked: list[tuple[str, str]] = []

    def ask_unsaved(self, image_name, can_save=True):
        self.asked.append(("unsaved", image_name))
        return self.unsaved_answer

    def ask_dataset_masks(self, workspace_name):
        self.asked.append(("dataset_masks", workspace_name))
        return self.dataset_masks_answer

    def confirm(self, title, text, ok_text="OK", object_name=""):
        self.asked.append(("confirm", text))
        return self.confirm_answer

    def error(self, title, text):
        self.asked.append(("error", text))

    def info(self, title, text):
        self.asked.append(("info", text))

    def choose_folder(self, title, start=""):
        return ""


def open_and_predict(qtbot, window, folder, timeout=30000):
    with qtbot.waitSignal(window.prediction_shown, timeout=timeout):
        assert window.workspaces.open_workspace(folder)
    return window.review.image


def blank(window):
    """Start from an empty mask so painted pixels are easy to check."""
    doc = window.review.image.document
    doc.reset(np.zeros(doc.shape, bool), "prediction", saved=True)
    return doc


def open_and_paint(qtbot, window, folder, points=((20, 20), (120, 120))):
    """Open ``folder``, blank the first image's mask and paint one brush stroke on it: an unsaved edit."""
    open_and_predict(qtbot, window, folder)
    doc = blank(window)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, list(points))
    return doc


def send_mouse(widget, kind: str, pos, buttons=None):
    """Deliver a real QMouseEvent to ``widget`` (the canvas viewport), as the window system would."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    types = {
        "press": QMouseEvent.Type.MouseButtonPress,
        "move": QMouseEvent.Type.MouseMove,
        "release": QMouseEvent.Type.MouseButtonRelease,
    }
    left = Qt.MouseButton.LeftButton
    button = Qt.MouseButton.NoButton if kind == "move" else left
    if buttons is None:
        buttons = Qt.MouseButton.NoButton if kind == "release" else left
    local = QPointF(pos)
    ev = QMouseEvent(types[kind], local, widget.mapToGlobal(local), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def stroke(canvas, image_points):
    """Press, drag through and release at image coordinates; returns the image points the view saw."""
    vp = canvas.viewport()
    widget_pts = [canvas.image_to_widget(x, y) for x, y in image_points]
    send_mouse(vp, "press", widget_pts[0])
    for p in widget_pts[1:]:
        send_mouse(vp, "move", p)
    send_mouse(vp, "release", widget_pts[-1])
    return [canvas.widget_to_image(p) for p in widget_pts]


class SafetyPrompter(RecordingPrompter):
    """Also answers the save-safety questions (conflict, failed save, choosing a version), from lists of
    answers taken in order."""

    def __init__(self, conflict=("mine",), save_failed=("cancel",), item=None, **kw):
        super().__init__(**kw)
        self.conflict_answers, self.save_failed_answers, self.item = list(conflict), list(save_failed), item

    def ask_conflict(self, image_name, message):
        self.asked.append(("conflict", message))
        return self.conflict_answers.pop(0) if self.conflict_answers else "cancel"

    def ask_save_failed(self, image_name, message, disk_full=False, can_discard=False, can_export=None):
        self.asked.append(("save_failed", message, disk_full, can_discard))
        return self.save_failed_answers.pop(0) if self.save_failed_answers else "cancel"

    def choose_item(self, title, label, items):
        self.asked.append(("item", items))
        return self.item

    def choose_folder(self, title, start=""):
        return getattr(self, "folder", "")


def shown_canvas(qtbot, review, size: tuple[int, int]):
    """An image canvas of ``size`` (width, height), shown, with the review session's open image and mask on it."""
    from retina_desktop.ui.review.canvas import ImageCanvas

    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(*size)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(review.image.loaded.rgb)
    canvas.set_document(review.image.document)
    return canvas


def review_of_photo(folder, rgb, mask, probability, threshold: float = 0.5):
    """A review session with ``folder/photo.png`` (``rgb``) open, its prediction ``probability`` at
    ``threshold`` and ``mask`` on screen: what the vessel features see once an image is predicted."""
    from model_core.imageio import write_png_atomic
    from retina_desktop.core.model.tasks import load_image
    from retina_desktop.core.review.review_session import ReviewSession
    from retina_desktop.core.workspace import Workspace

    write_png_atomic(folder / "photo.png", rgb)
    ws = Workspace(folder)
    review = ReviewSession()
    review.set_workspace(ws)
    request, entry = review.begin_load("photo")
    assert review.finish_load(request, load_image(None, ws, entry, "no model")) is not None
    review.image.probability = probability
    review.threshold = threshold
    review.image.document.replace("vessels", mask)
    return review


def task_runner(qtbot, owner):
    """A ``TaskRunner`` for a feature built alone, shut down before pytest-qt closes and deletes the test's widgets.
    pytest-qt does that before the fixtures' own teardown, so a worker's result delivered in between reached items
    already deleted ("Internal C++ object (LabelsItem) already deleted", seen once on a loaded machine); the window
    itself shuts its tasks down before its widgets go."""
    from PySide6.QtWidgets import QWidget

    from retina_desktop.ui.common.workers import TaskRunner

    tasks = TaskRunner(owner)
    keeper = QWidget()
    qtbot.addWidget(keeper, before_close_func=lambda _w: tasks.shutdown())
    return tasks
