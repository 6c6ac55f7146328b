"""Vessel measurements of the mask on screen (density, fractal dimension, tortuosity, width, segments, branch
and end points; ``model_core.morphometry``), and *Export measurements…* for the whole workspace.

A measurement takes 0.5-0.7 s of CPU on a 3504x2336 mask (bench_measure.py), so it runs on a worker 500 ms after the
last save,
threshold change, new prediction or opened image (not after every stroke); only the newest result for the
open image is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QFormLayout, QGroupBox, QLabel, QWidget

from model_core.morphometry import VesselMeasurements, measure

from ...core.review.export import workspace_measurements
from ...core.review.review_session import ReviewSession
from ..common.context import Progress
from ..common.image_ready import ImageReadiness
from ..common.workers import TaskRunner, Worker

ROWS = (
    ("vessel_density", "Vessel density", "{:.2%}", "vessel pixels / field-of-view pixels"),
    ("fractal_dimension", "Fractal dimension", "{:.3f}", "box counting, sizes 2, 4, 8, …"),
    ("tortuosity", "Tortuosity", "{:.3f}", "arc / chord of each skeleton segment, length-weighted mean"),
    ("width_px", "Mean width", "{:.2f} px", "twice the distance to the background along the skeleton"),
    ("segments", "Segments", "{:,}", "skeleton segments between branch and end points"),
    ("branch_points", "Branch points", "{:,}", ""),
    ("end_points", "End points", "{:,}", ""),
)


class MeasurePanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Vessel measurements (mask on screen)", parent)
        self.setObjectName("vessel_measurements")
        self.setToolTip(
            "Measured inside the photo's field of view, after each save, threshold change or new "
            "prediction (README, Vessel measurements)"
        )
        form = QFormLayout(self)
        self.labels: dict[str, QLabel] = {}
        for key, title, _fmt, tip in ROWS:
            lab = QLabel("–")
            lab.setAlignment(Qt.AlignmentFlag.AlignRight)
            lab.setToolTip(tip)
            self.labels[key] = lab
            form.addRow(title, lab)

    def show_values(self, m: VesselMeasurements | None) -> None:
        for key, _title, fmt, _tip in ROWS:
            v = getattr(m, key) if m is not None else None
            self.labels[key].setText("–" if v is None or v != v else fmt.format(v))


class VesselMeasureRunner(QObject):
    measured = Signal(str, object)  # key, VesselMeasurements
    exported = Signal(object)  # the CSV path, or a one-line error

    def __init__(
        self,
        review: ReviewSession,
        tasks: TaskRunner,
        image_ready: ImageReadiness,
        show_message: Callable[[str, str], None],
        progress: Progress,
        save_open_image: Callable[[], object],
        dialog_parent: QWidget,
    ) -> None:
        super().__init__(dialog_parent)
        self.review, self.tasks, self.image_ready = review, tasks, image_ready
        self.show_message, self.progress, self.save_open_image = show_message, progress, save_open_image
        self.dialog_parent = dialog_parent
        self.panel = MeasurePanel()
        self.latest = None
        self._request = 0
        self.timer = QTimer(self, singleShot=True, interval=500)
        self.timer.timeout.connect(self._start)
        review.image_opened.connect(lambda _s: self.panel.show_values(None))
        image_ready.ready.connect(lambda _k: self.timer.start())  # after the first prediction
        review.saved.connect(lambda *_a: self.timer.start())
        review.prediction_shown.connect(lambda _k: self.timer.start())
        review.threshold_changed.connect(lambda _t: self.timer.start())
        self.export_worker: Worker | None = None

    def _start(self) -> None:
        s = self.review.image
        if s is None or self.image_ready.ready_key != s.key:
            return  # a threshold or save before the prediction is on screen: measured when it is
        self._request += 1
        req, key, mask, fov = self._request, s.key, s.document.mask.copy(), s.loaded.fov
        w = Worker(
            lambda ctx: measure(mask, fov if fov is not None and fov.shape == mask.shape else None),
            name="vessel measurements",
        )
        w.returned.connect(self.tasks.guard(lambda m, r=req, k=key: self._show(r, k, m)))
        self.tasks.start(w, priority=0)

    def _show(self, request: int, key: str, m) -> None:
        s = self.review.image
        if request != self._request or s is None or s.key != key:
            return
        self.latest = m
        self.panel.show_values(m)
        self.measured.emit(key, m)

    # ------------------------------------------------------------------ workspace CSV --
    def export_dialog(self) -> None:
        ws = self.review.workspace
        if ws is None:
            return
        self.save_open_image()  # the open image's edits count
        path, _ = QFileDialog.getSaveFileName(
            self.dialog_parent, "Export vessel measurements", str(ws.root / "vessel_measurements.csv"), "CSV (*.csv)"
        )
        if path:
            self.export_to(Path(path))

    def export_to(self, path: Path) -> Worker | None:
        ws = self.review.workspace
        if ws is None or self.export_worker is not None:
            return None
        w = Worker(workspace_measurements, ws, Path(path), name="export measurements")
        g = self.tasks.guard
        w.progress.connect(g(lambda d, t, s: self.progress.show("Measuring", d, t, s)))
        w.returned.connect(g(lambda result, p=Path(path): self._exported(p, result)))
        w.errored.connect(g(lambda msg: self._export_failed(msg)))
        self.export_worker = w
        self.tasks.start(w)
        return w

    def _exported(self, path: Path, result) -> None:
        rows, problems = result
        self.export_worker = None
        self.progress.hide()
        text = f"Vessel measurements of {len(rows)} mask(s) written to {path}"
        self.show_message(
            text + (f"; {len(problems)} not measured: {problems[0]}" if problems else ""),
            "warning" if problems else "info",
        )
        self.exported.emit(path)

    def _export_failed(self, message: str) -> None:
        self.export_worker = None
        self.progress.hide()
        self.show_message(f"Measurements not exported: {message}", "error")
        self.exported.emit(message)
