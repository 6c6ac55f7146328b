"""The vessel measurements built alone, from the parts MainWindow would hand them (no window)."""

from __future__ import annotations

from gui_helpers import task_runner
from PySide6.QtWidgets import QWidget

from model_core.imageio import write_png_atomic
from model_core.synthetic import make_fundus
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace
from retina_desktop.ui.common.context import Progress
from retina_desktop.ui.common.image_ready import ImageReadiness
from retina_desktop.ui.vessels.measure_panel import VesselMeasureRunner


def test_export_of_a_workspace_without_saved_masks_says_so_and_hides_the_progress(qtbot, tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    write_png_atomic(folder / "a.png", make_fundus(64, 80, seed=1).image)
    review = ReviewSession()
    review.set_workspace(Workspace(folder))
    owner = QWidget()
    qtbot.addWidget(owner)
    tasks = task_runner(qtbot, owner)
    messages: list[tuple[str, str]] = []
    hidden: list[int] = []
    runner = VesselMeasureRunner(
        review,
        tasks,
        ImageReadiness(owner),
        lambda text, level: messages.append((text, level)),
        Progress(lambda *a: None, lambda: hidden.append(1)),
        lambda: None,
        owner,
    )
    out = tmp_path / "measures.csv"
    with qtbot.waitSignal(runner.exported, timeout=30000) as blocker:
        assert runner.export_to(out) is not None
    assert blocker.args == [out] and out.read_text().splitlines()[0].startswith("image")
    assert len(out.read_text().splitlines()) == 1  # the header: no saved mask to measure
    assert messages == [(f"Vessel measurements of 0 mask(s) written to {out}", "info")] and hidden == [1]
    assert runner.export_worker is None
    tasks.shutdown()
