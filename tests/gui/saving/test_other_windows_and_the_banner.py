"""The workspace banner says who else has the workspace open (also when they open it later), and shows damaged
records and the model fallback."""

from __future__ import annotations

from gui_helpers import make_workspace, open_and_predict

from retina_desktop.core.workspace import Workspace


def test_the_banner_says_who_else_has_the_workspace_open_and_leaving_closes_it(qtbot, window, flat_workspace, tmp_path):
    other = Workspace(flat_workspace)  # another window
    try:
        open_and_predict(qtbot, window, flat_workspace)
        text = window.workspace_banner.text()
        assert "Already open" in text and other.other_windows()  # and this window is listed to the other
        second = make_workspace(tmp_path / "second", 2)
        with qtbot.waitSignal(window.image_opened, timeout=20000):
            assert window.workspaces.open_workspace(second)
        assert other.other_windows() == []  # the window closed the first workspace's session
    finally:
        other.close()


def test_a_window_learns_when_someone_opens_its_workspace_after_it(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    assert "Already open" not in window.workspace_banner.text()
    assert window.workspaces.session_timer.isActive()
    seen = []
    window.message_shown.connect(seen.append)
    late = Workspace(flat_workspace)  # another grader opens it now
    try:
        with qtbot.waitSignal(window.message_shown, timeout=20000):
            window.workspaces.check_others()  # what the timer does every 20 s
        assert "has just opened this workspace too" in seen[-1]
        assert "Already open" in window.workspace_banner.text()
        count = len(seen)
        flow = window.workspaces  # the same grader is not announced twice (what the next check returns)
        flow._others_seen(window.review.workspace, window.review.workspace.other_windows())
        assert len(seen) == count
    finally:
        late.close()
    flow._others_seen(window.review.workspace, window.review.workspace.other_windows())  # they left: the line goes
    assert "Already open" not in window.workspace_banner.text() and len(seen) == count


def test_the_banner_shows_damaged_records_and_the_model_fallback(qtbot, window, flat_workspace):
    meta = flat_workspace / ".retina"
    meta.mkdir()
    (meta / "records.sqlite").write_bytes(b"this is not a database" * 100)
    open_and_predict(qtbot, window, flat_workspace)
    text = window.workspace_banner.text()
    assert "records were damaged" in text and "records.corrupt-" in text
    window.model.notice = "Model version v002 could not be loaded (truncated); using the bundled default model"
    window.prediction.model_loaded.emit(window.prediction.info, False)
    assert "<b>Model:</b> Model version v002 could not be loaded" in window.workspace_banner.text()
