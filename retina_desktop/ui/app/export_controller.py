"""Export from the app: the dialog, one export run at a time in a worker, its progress and its outcome."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from ...core.review.export import ExportOptions, export_masks
from ...core.workspace import Workspace
from ..common.settings import AppSettings
from ..common.workers import TaskRunner, Worker
from .dialogs import ExportDialog, default_export_folder


class ExportController(QObject):
    progress = Signal(str, int, int, str)  # label, done, total, text
    finished = Signal(object)  # an ExportSummary, or the one-line error message
    busy_changed = Signal()

    def __init__(self, tasks: TaskRunner, parent: QObject | None = None):
        super().__init__(parent)
        self.tasks = tasks
        self.worker: Worker | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None

    def ask(self, parent: QWidget, workspace: Workspace, settings: AppSettings) -> ExportOptions | None:
        # The dialog starts from this workspace's last destination and the last options (the settings).
        dlg = ExportDialog(parent, default_export_folder(workspace.root), settings, str(workspace.root))
        return dlg.options() if dlg.exec() else None

    def start(self, workspace, options: ExportOptions) -> Worker | None:
        if self.worker is not None:
            return None
        g = self.tasks.guard
        w = Worker(
            lambda ctx: export_masks(workspace, options, progress=ctx.progress, cancelled=lambda: ctx.cancelled),
            name="export",
        )
        w.progress.connect(g(lambda d, t, s: self.progress.emit("Exporting", d, t, s)))
        w.returned.connect(g(self.finished.emit))
        w.errored.connect(g(self.finished.emit))
        w.finished.connect(g(self._done))
        self.worker = w
        self.busy_changed.emit()
        self.tasks.start(w)
        return w

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _done(self) -> None:
        self.worker = None
        self.busy_changed.emit()
