"""``retina-desktop --self-test`` and ``--measure-startup``: check an install (frozen or from source).

The self-test drives the real main window offscreen, in a temporary home that is deleted afterwards
(settings, demo images, saved masks and the export all go there; nothing is written beside the
executable or into the user's folders). It prints one line per step and returns 0 only when all pass:

    [ok] model file: ...       the checkpoint exists (the bundled default model, or --weights FILE)
    [ok] resources: ...        icons and stylesheet resolve through model_core.resources
    [ok] window: ...           the main window is shown (time since the process started)
    [ok] model: ...            the model loads on its worker thread
    [ok] predict: ...          a demo image is predicted
    [ok] paint: ...            a brush stroke changes the mask
    [ok] save: ...             the mask is saved as ground truth and reads back identical
    [ok] export: ...           the export writes the mask in the reference layout, identical
    [ok] child process: ...    a "spawn" child process starts and answers (fine-tuning runs in one;
                               in a frozen build this needs multiprocessing.freeze_support())
    [ok] close: ...            the window closes and every worker thread ends
    self-test passed: ...

A failing step prints ``[FAIL] <step>: <one line>`` and the self-test stops with exit status 1.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .ui.common.prompter import Prompter

_INTERPRETER_T0 = time.time()
STEP_TIMEOUT_S = 300.0


class SelfTestFailure(Exception):
    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step, self.message = step, message


def process_start_epoch() -> float:
    """When this process was started (wall clock), so "launch to window" includes interpreter start-up
    and, in a frozen build, the bootloader. Linux reads /proc; elsewhere the time this module was imported."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        with open("/proc/stat", encoding="ascii") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return btime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return _INTERPRETER_T0


class _Printer:
    def __init__(self, stream=None):
        # A windowed build on Windows has no stdout: write next to the other temporary files instead.
        self.stream = stream or sys.stdout
        if self.stream is None:
            # Open for the whole self-test, closed by the interpreter at exit: a context manager would close it
            # after the first line.
            self.stream = open(Path(tempfile.gettempdir()) / "retina-desktop-self-test.txt", "w", encoding="utf-8")  # noqa: SIM115

    def __call__(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def _quiet_prompter(errors: list[str]) -> Prompter:
    """A prompter that answers without dialogs (the self-test must never wait for a click); the errors it was
    told go to ``errors``. Qt is imported here, not with this module: the spawned child process imports it."""
    from .ui.common.prompter import Prompter

    class QuietPrompter(Prompter):
        def ask_unsaved(self, image_name: str, can_save: bool = True) -> str:
            return "discard"

        def confirm(self, title: str, text: str, ok_text: str = "OK", object_name: str = "") -> bool:
            return True

        def ask_dataset_masks(self, workspace_name: str) -> str:
            return "corrected"  # the self-test never writes over a data set's own masks

        def ask_conflict(self, image_name: str, message: str) -> str:
            return "cancel"  # nothing saved: the step that saves fails and says so

        def ask_save_failed(
            self,
            image_name: str,
            message: str,
            disk_full: bool = False,
            can_discard: bool = False,
            can_export: bool | None = None,
        ) -> str:
            return "cancel"

        def error(self, title: str, text: str) -> None:
            errors.append(f"{title}: {text}")

        def info(self, title: str, text: str) -> None:
            pass

        def choose_folder(self, title: str, start: str = "") -> str:
            return ""

        def choose_item(self, title: str, label: str, items: list[str]) -> int | None:
            return None

    return QuietPrompter(None)


def _wait(cond, timeout: float, step: str, what: str) -> None:
    """Run the event loop until ``cond()`` is true (checked every 20 ms) or fail the step."""
    from PySide6.QtCore import QEventLoop, QTimer

    if cond():
        return
    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(20)

    def check() -> None:
        if cond() or time.monotonic() > deadline:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    loop.exec()
    timer.stop()
    if not cond():
        raise SelfTestFailure(step, f"timed out after {timeout:.0f} s waiting for {what}")


def _stroke(canvas, points) -> None:
    """A real mouse stroke (press, moves, release) on the canvas, as the window system delivers it."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    vp = canvas.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    pts = [QPointF(canvas.image_to_widget(x, y)) for x, y in points]
    seq = [(QMouseEvent.Type.MouseButtonPress, pts[0], left, left)]
    seq += [(QMouseEvent.Type.MouseMove, p, none, left) for p in pts[1:]]
    seq += [(QMouseEvent.Type.MouseButtonRelease, pts[-1], left, none)]
    for kind, p, button, buttons in seq:
        QApplication.sendEvent(
            vp, QMouseEvent(kind, p, vp.mapToGlobal(p), button, buttons, Qt.KeyboardModifier.NoModifier)
        )


def _child_echo(queue, value) -> None:
    """Runs in the spawned child: module level, so the child can import it by name."""
    queue.put(("pong", value, os.getpid()))


def _check_child_process(timeout: float = 120.0) -> str:
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")  # what fine-tuning uses
    q = ctx.Queue()
    t = time.monotonic()
    proc = ctx.Process(target=_child_echo, args=(q, 42), daemon=True)
    proc.start()
    try:
        answer = q.get(timeout=timeout)
    except queue_mod.Empty:
        proc.kill()
        proc.join(5)
        raise SelfTestFailure(
            "child process", f"a spawned process did not answer within {timeout:.0f} s (exit code {proc.exitcode})"
        ) from None
    proc.join(30)
    if answer[:2] != ("pong", 42) or proc.exitcode != 0:
        raise SelfTestFailure("child process", f"unexpected answer {answer!r}, exit code {proc.exitcode}")
    return f"spawned pid {answer[2]} answered in {time.monotonic() - t:.2f} s"


def _model_path(weights: str | None) -> Path:
    from model_core.errors import CheckpointError
    from model_core.resources import default_model_path

    if weights:
        path = Path(weights)
        if not path.is_file():
            raise SelfTestFailure("model file", f"{path}: no such file (--weights)")
        return path
    try:
        return default_model_path()
    except CheckpointError as exc:
        raise SelfTestFailure("model file", str(exc).replace("\n", " ")) from None


def _check_resources() -> str:
    from model_core.resources import resources_dir

    from .ui.app.appearance import icon_files, stylesheet

    icons = icon_files()
    if not icons:
        raise SelfTestFailure("resources", f"no app icon under {resources_dir() / 'icons'}")
    if not stylesheet().strip():
        raise SelfTestFailure("resources", f"stylesheet missing or empty: {resources_dir() / 'style.qss'}")
    return f"{resources_dir()} ({len(icons)} icon files, stylesheet)"


def _show_window(app, home: Path, checkpoint: Path | None, launched: float, errors: list[str]):
    from PySide6.QtCore import QSettings

    from .ui.app.main_window import MainWindow
    from .ui.common.settings import AppSettings

    settings = AppSettings(QSettings(str(home / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(checkpoint_path=checkpoint, settings=settings)
    window.prompter = _quiet_prompter(errors)
    window.show()
    _wait(
        lambda: window.windowHandle() is not None and window.windowHandle().isExposed(),
        60,
        "window",
        "the window to be exposed",
    )
    return window, time.time() - launched


def run_self_test(weights: str | None = None, out=None) -> int:
    """The self-test; returns the exit status."""
    say = _Printer(out)
    launched = process_start_epoch()
    t0 = time.monotonic()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="retina-desktop-self-test-"))
    os.environ["RETINA_DESKTOP_HOME"] = str(tmp / "home")
    window = None
    steps = 0
    try:
        from . import __version__

        frozen = " (frozen build)" if getattr(sys, "frozen", False) else ""
        say(f"retina-desktop {__version__}{frozen} self-test in {tmp}")
        path = _model_path(weights)
        say(f"[ok] model file: {path} ({path.stat().st_size / 1e6:.1f} MB)")
        steps += 1
        say(f"[ok] resources: {_check_resources()}")
        steps += 1

        from .ui.app.appearance import create_application

        app = create_application()
        errors: list[str] = []  # what the window's prompter was told
        window, shown_after = _show_window(app, tmp, path, launched, errors)
        say(f"[ok] window: shown {shown_after:.2f} s after launch (Qt platform {app.platformName()})")
        steps += 1

        t = time.monotonic()
        _wait(
            lambda: window.prediction.info is not None or window.prediction.model_error is not None,
            STEP_TIMEOUT_S,
            "model",
            "the model to load",
        )
        if window.prediction.info is None:
            raise SelfTestFailure("model", window.prediction.model_error or "not loaded")
        info = window.prediction.info
        say(f"[ok] model: {info.description} on {info.device}, loaded in {time.monotonic() - t:.2f} s")
        steps += 1

        from .core.demo import ensure_demo_workspace

        t = time.monotonic()
        folder = ensure_demo_workspace(tmp / "demo", count=2)
        shown: list[str] = []
        failed: list[str] = []
        window.prediction_shown.connect(shown.append)
        window.image_failed.connect(lambda key, msg: failed.append(msg))
        if not window.workspaces.open_workspace(folder):
            raise SelfTestFailure("predict", f"the demo workspace {folder} did not open")
        _wait(lambda: shown or failed, STEP_TIMEOUT_S, "predict", "the first prediction")
        if failed:
            raise SelfTestFailure("predict", failed[0])
        s = window.review.image
        prob = s.probability
        if prob is None or not np.isfinite(prob).all() or prob.min() < 0 or prob.max() > 1:
            raise SelfTestFailure("predict", "the probabilities are missing or outside [0, 1]")
        h, w = prob.shape
        say(
            f"[ok] predict: {s.entry.name} ({w}x{h}) in {time.monotonic() - t:.2f} s, "
            f"{100 * s.document.mask.mean():.1f}% vessel pixels at threshold {window.review.threshold:.2f}"
        )
        steps += 1

        doc = s.document
        before = doc.mask.copy()
        undo_before = doc.undo_count
        window.canvas.fit()
        window.edit_tools.set_tool("brush")
        window.edit_tools.set_brush_radius(6.0)
        y = h * 0.5
        points = [(w * 0.2, y), (w * 0.5, y + 5), (w * 0.8, y)]
        _stroke(window.canvas, points)
        changed = int(np.count_nonzero(doc.mask != before))
        if doc.undo_count != undo_before + 1 or changed == 0 or not doc.mask[int(y), int(w * 0.2)]:
            raise SelfTestFailure("paint", f"the brush stroke did not paint (changed {changed} pixels)")
        say(f"[ok] paint: one brush stroke set {changed} pixels")
        steps += 1

        if not window.saving.save_current(auto=False):
            raise SelfTestFailure("save", "; ".join(errors) or "saving failed")
        from model_core.imageio import read_mask

        gt = s.entry.existing_gt()
        if gt is None or not np.array_equal(read_mask(gt), doc.mask):
            raise SelfTestFailure("save", f"the saved mask {gt} does not read back identical")
        say(f"[ok] save: ground truth {gt}")
        steps += 1

        from .core.review.export import ExportOptions

        dest = tmp / "export"
        results: list = []
        window.export_finished.connect(results.append)
        if window.commands.export_to(ExportOptions(dest)) is None:
            raise SelfTestFailure("export", "the export did not start")
        _wait(lambda: results, STEP_TIMEOUT_S, "export", "the export to finish")
        summary = results[0]
        if isinstance(summary, str):
            raise SelfTestFailure("export", summary)
        exported = dest / "mask" / f"{s.entry.stem}.png"
        if s.key not in summary.written or not np.array_equal(read_mask(exported), doc.mask):
            raise SelfTestFailure("export", f"{exported} is missing or differs from the saved mask")
        say(f"[ok] export: {len(summary.written)} mask(s) written to {dest}")
        steps += 1

        say(f"[ok] child process: {_check_child_process()}")
        steps += 1

        window.close()
        window.shutdown()
        if window.tasks.pool.activeThreadCount():
            raise SelfTestFailure("close", "worker threads still running after closing")
        window = None
        say("[ok] close: window closed, worker threads stopped")
        steps += 1
        say(f"self-test passed: {steps} steps in {time.monotonic() - t0:.1f} s")
        return 0
    except SelfTestFailure as exc:
        say(f"[FAIL] {exc.step}: {exc.message}")
        return 1
    except Exception as exc:  # noqa: BLE001 - one line for support, not a traceback
        say(f"[FAIL] unexpected error after {steps} steps: {type(exc).__name__}: {exc}")
        return 1
    finally:
        if window is not None:
            window.prompter = _quiet_prompter([])
            window.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def measure_startup(weights: str | None = None, out=None) -> int:
    """Launch-to-window time (and to the first prediction), with a temporary home like the first run.

    Uses the platform Qt picks (run it under ``xvfb-run`` or with ``QT_QPA_PLATFORM=offscreen``).
    """
    say = _Printer(out)
    launched = process_start_epoch()
    tmp = Path(tempfile.mkdtemp(prefix="retina-desktop-startup-"))
    os.environ["RETINA_DESKTOP_HOME"] = str(tmp / "home")
    window = None
    try:
        from .ui.app.appearance import create_application

        app = create_application()
        checkpoint = Path(weights) if weights else None
        window, shown_after = _show_window(app, tmp, checkpoint, launched, [])
        say(f"startup: window shown {shown_after:.2f} s after launch (Qt platform {app.platformName()})")
        shown: list[str] = []
        window.prediction_shown.connect(shown.append)
        window.workspaces.start(None)  # first run: the demo workspace
        try:
            _wait(
                lambda: shown or window.prediction.model_error is not None,
                STEP_TIMEOUT_S,
                "startup",
                "the first prediction",
            )
        except SelfTestFailure as exc:
            say(f"startup: {exc.message}")
            return 1
        if shown:
            say(f"startup: first prediction shown {time.time() - launched:.2f} s after launch")
        else:
            say(f"startup: no model ({window.prediction.model_error}); window timing only")
        return 0
    finally:
        if window is not None:
            window.prompter = _quiet_prompter([])
            window.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
