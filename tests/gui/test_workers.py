"""The background workers: cancel before start, errors as one line and by type, the closing guard."""

from __future__ import annotations

import pytest

from model_core.errors import ImageReadError
from retina_desktop.ui.common.workers import TaskRunner, Worker


@pytest.fixture
def runner(qtbot):
    r = TaskRunner(max_threads=1)
    yield r
    r.shutdown()


def test_a_worker_cancelled_before_it_starts_never_runs_its_function(qtbot, runner):
    calls, returned = [], []
    w = Worker(lambda ctx: calls.append(1) or 42, name="never")
    w.returned.connect(returned.append)
    w.cancel()
    with qtbot.waitSignal(w.finished, timeout=5000):
        runner.start(w)
    assert calls == [] and returned == [] and w.is_cancelled and w.done.is_set()
    qtbot.waitUntil(lambda: runner.active == [])  # the runner lets go of it once it has finished


def test_a_worker_sees_a_cancel_that_arrives_while_it_runs(qtbot, runner):
    import threading

    started, release = threading.Event(), threading.Event()

    def fn(ctx):
        started.set()
        release.wait(5)
        return "cancelled" if ctx.cancelled else "finished"

    w = Worker(fn)
    with qtbot.waitSignal(w.returned, timeout=5000) as got:
        runner.start(w)
        assert started.wait(5)
        w.cancel()
        release.set()
    assert got.args == ["cancelled"]


@pytest.mark.parametrize(
    "exc,message",
    [
        (ImageReadError("/data/a.png", "not a readable image"), "/data/a.png: not a readable image"),
        (FileNotFoundError(2, "No such file or directory", "/data/b.png"), "/data/b.png: No such file or directory"),
        (RuntimeError("boom\nsecond line"), "unexpected RuntimeError: boom second line"),
        (MemoryError(), "not enough memory for this operation"),
    ],
)
def test_worker_errors_become_one_line_and_keep_their_type(qtbot, runner, exc, message):
    def fail(ctx):
        raise exc

    w = Worker(fail, name="failing")
    failed, returned = [], []
    w.failed.connect(failed.append)
    w.returned.connect(returned.append)
    with qtbot.waitSignal(w.errored, timeout=5000) as err:
        runner.start(w)
    qtbot.waitUntil(lambda: len(failed) == 1)
    assert err.args == [message] and returned == []
    assert failed == [exc] and type(failed[0]) is type(exc)


def test_results_queued_before_shutdown_are_dropped_by_the_guard(qtbot, runner):
    got = []
    w = Worker(lambda ctx: "late")
    w.returned.connect(runner.guard(got.append))
    runner.start(w)
    assert w.done.wait(5)  # it has finished on its thread; the result waits in the UI thread's queue
    runner.shutdown()
    qtbot.wait(20)
    assert got == [] and runner.closed


def test_work_started_after_shutdown_never_runs(qtbot, runner):
    """A follow-up asked for while the window closes must not run past its signals' owner."""
    calls = []
    runner.shutdown()
    w = runner.run(lambda ctx: calls.append(1))
    runner.pool.waitForDone(5000)
    assert calls == [] and w.is_cancelled and runner.active == []


def test_every_worker_signal_of_the_app_is_connected_through_the_closing_guard():
    """The closing policy is one rule: a handler of a worker's signal goes through ``TaskRunner.guard``."""
    import re
    from pathlib import Path

    import retina_desktop.ui as ui

    pattern = re.compile(r"\b(w|worker|est)\.(returned|yielded|errored|failed|progress|finished)\.connect\((.*)")
    unguarded, seen = [], 0
    for path in sorted(Path(ui.__file__).parent.rglob("*.py")):
        if path.name == "workers.py":  # the runner's own bookkeeping
            continue
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines, 1):
            if line.rstrip().endswith(".connect(") and n < len(lines):
                line = line.rstrip() + lines[n].strip()  # the formatter puts a long call's argument on the next line
            m = pattern.search(line)
            seen += bool(m)
            if m and not re.match(r"(g|(\w+\.)*guard)\(", m.group(3)):  # g(...), guard(...), x.tasks.guard(...)
                unguarded.append(f"{path.relative_to(Path(ui.__file__).parent)}:{n}: {line.strip()}")
    assert not unguarded, "\n".join(unguarded)
    assert seen >= 15  # the pattern does find the app's connections
