"""At launch the first prediction has the CPU to itself: the vessel tools, compare mode and the measurements start
their workers once the prediction is on screen, not when the image opens."""

from __future__ import annotations

from model_core.imageio import mask_to_png, write_png_atomic
from model_core.synthetic import make_fundus

# The workers of the features that wait for the prediction (their Worker names).
DEFERRED = ("compare ", "vessel measurements", "vessel analysis", "dice")


def _record_starts(window) -> list[tuple[str, bool]]:
    """(worker name, whether the open image's prediction was on screen) for each worker the window starts."""
    started: list[tuple[str, bool]] = []
    start = window.tasks.start

    def recording_start(worker, priority=0):
        shown = window.review.image is not None and window.review.image.probability is not None
        started.append((worker.name, shown))
        return start(worker, priority)

    window.tasks.start = recording_start
    return started


def test_feature_workers_start_after_the_first_prediction_is_shown(qtbot, window, tmp_path):
    folder = tmp_path / "ws"
    (folder / "masks").mkdir(parents=True)
    sample = make_fundus(96, 128, seed=3)
    write_png_atomic(folder / "a.png", sample.image)
    write_png_atomic(folder / "masks" / "a.png", mask_to_png(sample.vessels))  # a reference: compare has work
    window.topology_dock.show()  # the topology review analyses every mask it sees
    started = _record_starts(window)
    with qtbot.waitSignal(window.compare.masks_loaded, timeout=30000):
        assert window.workspaces.open_workspace(folder)
    qtbot.waitUntil(lambda: window.vessel_tools.fresh, timeout=30000)
    qtbot.waitUntil(lambda: window.features.measurements.latest is not None, timeout=30000)
    names = [name for name, _ in started]
    assert any(n.startswith("predict ") for n in names), names
    feature_starts = [(n, after) for n, after in started if n.startswith(DEFERRED)]
    assert {n.split(" ")[0] for n, _ in feature_starts} >= {"compare", "vessel", "dice"}, names
    early = [n for n, after in feature_starts if not after]
    assert not early, f"started before the prediction was on screen: {early}"
