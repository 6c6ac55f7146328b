"""Keep learning's policy (core.model.keep_learning) on real approvals: made through the review session (open,
paint, save, approve) and read back from the workspace's review log, never a counter of the test's own."""

from __future__ import annotations

import os

import pytest
from sample_workspaces import make_workspace

from retina_desktop.core.model.finetune_job import BACKGROUND_NICE, lower_priority
from retina_desktop.core.model.keep_learning import (
    DEFAULT_EVERY,
    RUN_STARTED,
    approvals_since,
    decide,
    log_run_started,
    now_stamp,
)
from retina_desktop.core.model.tasks import load_image
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace


@pytest.fixture
def session(tmp_path):
    r = ReviewSession()
    r.set_workspace(Workspace(make_workspace(tmp_path / "w", 8)))
    yield r
    r.workspace.close()


def approve(r: ReviewSession, key: str) -> None:
    """What the grader does: open the image, paint a stroke, save it, approve it."""
    request, entry = r.begin_load(key)
    s = r.finish_load(request, load_image(None, r.workspace, entry, "m"))
    s.document.stroke_to((5, 5), (30, 30), 3.0, True)
    s.document.end_stroke()
    r.save(auto=False, model="test v0", reviewer="rk")
    r.approve(model="test v0", reviewer="rk")


def test_it_is_off_by_default_and_off_never_starts(session):
    since = now_stamp()
    for key in ("img_00", "img_01", "img_02", "img_03", "img_04"):
        approve(session, key)
    assert DEFAULT_EVERY == 5
    d = decide(session.workspace, on=False, every=5, since=since)
    assert not d.start and d.why == "keep learning is off"


def test_the_fifth_distinct_approval_since_the_mark_starts_a_run(session):
    ws = session.workspace
    approve(session, "img_07")  # before counting started: not counted
    since = now_stamp()
    for i, key in enumerate(("img_00", "img_01", "img_02", "img_03")):
        approve(session, key)
        assert decide(ws, on=True, every=5, since=since).why == f"{i + 1} of 5 approvals for the next run"
    approve(session, "img_01")  # approved again: the same image counts once
    assert not decide(ws, on=True, every=5, since=since).start
    approve(session, "img_04")
    d = decide(ws, on=True, every=5, since=since)
    assert d.start and d.new == ("img_00", "img_01", "img_02", "img_03", "img_04")
    # The run's start is the new mark: the approvals before it are not counted again.
    mark = now_stamp()
    assert approvals_since(ws, mark) == [] and not decide(ws, on=True, every=5, since=mark).start


def test_an_image_no_longer_approved_does_not_count(session):
    ws = session.workspace
    since = now_stamp()
    for key in ("img_00", "img_01"):
        approve(session, key)
    ws.set_status("img_00", "edited")  # edited again after its approval
    assert approvals_since(ws, since) == ["img_01"]


def test_the_count_survives_a_restart(session, tmp_path):
    since = now_stamp()
    for key in ("img_00", "img_01", "img_02"):
        approve(session, key)
    root = session.workspace.root
    session.workspace.close()
    reopened = Workspace(root)  # the app restarted: the review log on disk is all there is
    try:
        assert approvals_since(reopened, since) == ["img_00", "img_01", "img_02"]
    finally:
        reopened.close()
    session.set_workspace(Workspace(root))


def test_it_never_starts_beside_another_run_or_an_unanswered_ask(session):
    ws = session.workspace
    since = now_stamp()
    for key in ("img_00", "img_01"):
        approve(session, key)
    assert decide(ws, on=True, every=2, since=since).start
    assert decide(ws, on=True, every=2, since=since, busy=True).why == "a fine-tune is already running"
    assert not decide(ws, on=True, every=2, since=since, ask_pending=True).start
    assert not decide(None, on=True, every=2, since=since).start


@pytest.mark.skipif(not hasattr(os, "nice"), reason="POSIX niceness")
def test_lower_priority_lowers_a_process_and_reports_its_niceness():
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:  # a child of its own: the test runner keeps its priority
        before, after = pool.apply(_niceness_before_and_after, (BACKGROUND_NICE,))
    assert after == min(19, before + BACKGROUND_NICE)
    assert lower_priority(0) == os.nice(0)  # 0 only reads it


def _niceness_before_and_after(increment: int) -> tuple[int, int | None]:
    before = os.nice(0)
    return before, lower_priority(increment)


def test_a_run_started_in_another_window_restarts_the_count_here_too(session):
    """Two windows on one workspace, both with Keep learning on: the first one's run start is in the shared log, so the
    second, whose own mark is older, does not start a second run on the same approvals."""
    ws = session.workspace
    other = Workspace(ws.root)  # the second window's workspace
    try:
        since = now_stamp()  # both windows started counting here
        for key in ("img_00", "img_01", "img_02", "img_03", "img_04"):
            approve(session, key)
        first = decide(ws, on=True, every=5, since=since)
        assert first.start
        log_run_started(ws, first.new)  # what the first window does as its run starts
        assert other.review_log()[-1]["action"] == RUN_STARTED and other.review_log()[-1]["images"] == list(first.new)
        second = decide(other, on=True, every=5, since=since)
        assert not second.start and second.why == "0 of 5 approvals for the next run"
        approve(session, "img_05")  # approvals after the run's start count in both windows
        assert decide(other, on=True, every=5, since=since).why == "1 of 5 approvals for the next run"
    finally:
        other.close()
