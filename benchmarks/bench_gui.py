"""GUI benchmarks for Retina Desktop (run offscreen; no display needed).

    OMP_NUM_THREADS=1 python benchmarks/bench_gui.py [--weights FILE] [--moves 300] [--with-training] [--brush-only]
    python benchmarks/bench_gui.py --brush-only --with-av-teaching   (torch's default threads, as the app has them)

1. Brush latency on a 3504x2336 photo: time from a brush mouse-move event sent to the canvas
   viewport to the end of the repaint that shows it (median and p95; target <= 16 ms median).
   With --with-training it is measured three times: before, while and after a real background fine-tune
   (Keep learning's: the app's child process, one thread, lowered priority, from --weights or the bundled model,
   on 5 synthetic corrected photos) runs, and the ratio of "while" to the mean of before and after is printed.
2. Memory of 200 undo steps (brush strokes) on that photo: the history's own bytes and the growth
   of the process's resident memory (target <= 150 MB).
3. Launch to a displayed prediction on the demo workspace on CPU: a fresh process, first run
   (the demo images are generated) and second run (demo present, prediction cached).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_checkpoint(folder: Path) -> Path:
    import torch

    from model_core.checkpoint import make_checkpoint as mk, save_checkpoint
    from model_core.model import ModelConfig, build_model
    from model_core.preprocess import PreprocessConfig

    torch.manual_seed(0)
    model = build_model(ModelConfig.preset("micro"))
    info = {"name": "bench-micro (untrained)", "version": "0"}
    return save_checkpoint(folder / "bench-micro.pt", mk(model, PreprocessConfig(), info))


def pick_weights(arg: str | None, tmp: Path) -> tuple[Path, str]:
    if arg:
        return Path(arg), "given"
    try:
        from model_core.resources import default_model_path

        return default_model_path(), "bundled default model"
    except Exception:  # noqa: BLE001 - fall back to an untrained micro model
        return make_checkpoint(tmp), "untrained micro model (bundled default model absent)"


def teach_av_until(stop, started) -> None:
    """Teach artery/vein as the app does (model_core.av_net.teach on a worker thread of the app's process, torch's
    default threads) on a synthetic DRIVE-sized photo, until ``stop`` is set."""
    from model_core import av_net
    from model_core.synthetic import make_fundus

    f = make_fundus(584, 565, seed=3)
    vessels = np.asarray(f.vessels, bool)
    labels = np.where(vessels, np.where(np.arange(565)[None, :] < 282, 1, 2), 0).astype(np.uint8)
    example = av_net.example(f.image, vessels, None, labels)
    av_net.teach([example], 10**6, progress=lambda d, t: started.set(), cancelled=stop.is_set)


def bench_brush_and_undo(
    tmp: Path,
    moves: int,
    training_parent: Path | None = None,
    brush_only: bool = False,
    training_seconds: float = 20,
    av_teaching: bool = False,
) -> dict:
    import cv2
    from PySide6.QtCore import QEvent, QObject, QPointF, QSettings, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from model_core.imageio import write_png_atomic
    from model_core.synthetic import make_fundus
    from retina_desktop.ui.app.main_window import MainWindow
    from retina_desktop.ui.common.settings import AppSettings

    app = QApplication.instance() or QApplication([])
    folder = tmp / "big"
    folder.mkdir()
    small = make_fundus(584, 876, seed=5).image
    write_png_atomic(folder / "big_3504x2336.png", cv2.resize(small, (3504, 2336), interpolation=cv2.INTER_CUBIC))
    settings = AppSettings(QSettings(str(tmp / "bench.ini"), QSettings.Format.IniFormat))
    win = MainWindow(checkpoint_path=tmp / "no-model.pt", settings=settings)  # painting needs no model
    win.resize(1600, 1000)
    win.show()
    opened = []
    win.image_opened.connect(opened.append)
    win.workspaces.open_workspace(folder)
    t_end = time.time() + 60
    while not opened and time.time() < t_end:
        app.processEvents()
    assert opened, "the 3504x2336 image did not open"
    win.edit_tools.set_tool("brush")
    win.edit_tools.set_brush_radius(8)
    canvas = win.canvas
    vp = canvas.viewport()

    class PaintWatch(QObject):
        painted = False

        def eventFilter(self, obj, ev):
            if ev.type() == QEvent.Type.Paint:
                self.painted = True
            return False

    watch = PaintWatch()
    vp.installEventFilter(watch)

    def send(kind, pos, buttons):
        types = {
            "press": QEvent.Type.MouseButtonPress,
            "move": QEvent.Type.MouseMove,
            "release": QEvent.Type.MouseButtonRelease,
        }
        btn = Qt.MouseButton.NoButton if kind == "move" else Qt.MouseButton.LeftButton
        p = QPointF(pos)
        event = QMouseEvent(types[kind], p, vp.mapToGlobal(p), btn, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(vp, event)

    def measure_brush(min_s: float = 0.0) -> dict:
        """Strokes of ``moves`` moves at each zoom, repeated until they took ``min_s`` seconds (at least one)."""
        results = {}
        for zoom_name, setup in (("fit", canvas.fit), ("1:1", canvas.one_to_one)):
            setup()
            for _ in range(5):
                app.processEvents()
            h, w = 2336, 3504
            times = []
            paints0 = canvas.overlay.paint_count
            left = Qt.MouseButton.LeftButton
            t_start = time.perf_counter()
            while not times or time.perf_counter() - t_start < min_s:
                rng = np.random.default_rng(0)
                x, y = w / 2, h / 2
                send("press", canvas.image_to_widget(x, y), left)
                app.processEvents()
                for i in range(moves):
                    ang = i * 0.07
                    x += 6 * np.cos(ang) + rng.normal(0, 1)
                    y += 6 * np.sin(ang * 0.7) + rng.normal(0, 1)
                    pos = canvas.image_to_widget(x, y)
                    watch.painted = False
                    t0 = time.perf_counter()
                    send("move", pos, left)
                    deadline = t0 + 1.0
                    while not watch.painted and time.perf_counter() < deadline:
                        app.processEvents()
                    times.append((time.perf_counter() - t0) * 1000.0)
                send("release", canvas.image_to_widget(x, y), Qt.MouseButton.NoButton)
                app.processEvents()
            t = np.array(times)
            # A full repaint of the viewport (what a pan or zoom costs), for comparison.
            full = []
            for _ in range(10):
                t0 = time.perf_counter()
                vp.repaint()
                full.append((time.perf_counter() - t0) * 1000.0)
            results[zoom_name] = {
                "median_ms": round(float(np.median(t)), 2),
                "p95_ms": round(float(np.percentile(t, 95)), 2),
                "max_ms": round(float(t.max()), 2),
                "moves": len(times),
                "overlay_paints": canvas.overlay.paint_count - paints0,
                "full_viewport_repaint_median_ms": round(float(np.median(full)), 2),
            }

        return results

    results = measure_brush()
    if av_teaching:
        import threading

        stop, started = threading.Event(), threading.Event()
        teaching = {"before": measure_brush(training_seconds)}
        thread = threading.Thread(target=teach_av_until, args=(stop, started), daemon=True)
        thread.start()
        while not started.is_set():  # its first ten steps done: it is at full speed
            app.processEvents()
            time.sleep(0.01)
        teaching["while"] = measure_brush(training_seconds)
        stop.set()
        thread.join()
        teaching["after"] = measure_brush(training_seconds)
        results["with_av_teaching"] = teaching
    training = None
    if training_parent is not None:
        # Each phase as long as the run is measured: the figures compare like with like, and a training step of the
        # bundled model on one thread takes seconds, so a 300-move stroke (under a second) could miss every step.
        measure = lambda: measure_brush(training_seconds)  # noqa: E731
        training = {"before": measure(), **brush_while_training(app, tmp, training_parent, measure)}
        training["after"] = measure()
    if brush_only:
        win.review.image.document.mark_saved()
        win.prompter.ask_unsaved = lambda *a, **k: "discard"
        win.close()
        win.shutdown()
        return {"image": "3504x2336", "brush_move_to_repaint": results, "with_training": training}

    # 200 undo steps on the 3504x2336 mask.
    doc = win.review.image.document
    doc.reset(np.zeros(doc.shape, bool), "prediction", saved=True)
    import gc

    gc.collect()
    rss0 = rss_mb()
    rng = np.random.default_rng(1)
    for _ in range(200):
        doc.begin_stroke()
        p = (rng.uniform(100, 3400), rng.uniform(100, 2230))
        for _ in range(40):
            q = (p[0] + rng.normal(0, 12), p[1] + rng.normal(0, 12))
            doc.stroke_to(p, q, rng.uniform(2, 15), True)
            p = q
        doc.end_stroke()
    gc.collect()
    rss1 = rss_mb()
    undo = {
        "steps": doc.undo_count,
        "history_mb": round(doc.history_bytes / 2**20, 3),
        "rss_growth_mb": round(rss1 - rss0, 1),
        "full_mask_mb": round(doc.mask.nbytes / 2**20, 1),
    }
    # Ctrl+S runs on the UI thread (its questions keep their order): PNG encode, the previous version copied
    # into the history, atomic write with fsync, review log.
    save_ms = []
    for i in range(5):
        doc.begin_stroke()
        doc.stroke_to((200.0 + 40 * i, 300.0), (900.0 + 40 * i, 1500.0), 6.0, True)
        doc.end_stroke()
        t0 = time.perf_counter()
        assert win.saving.save_current(), "save failed"
        save_ms.append((time.perf_counter() - t0) * 1000.0)
    save = {
        "median_ms": round(float(np.median(save_ms)), 1),
        "max_ms": round(float(max(save_ms)), 1),
        "first_ms": round(save_ms[0], 1),
        "saves": len(save_ms),
    }
    # The autosave timer's save: the UI thread only copies the mask; a worker writes it.
    ui_ms, total_ms = [], []
    for i in range(5):
        doc.begin_stroke()
        doc.stroke_to((260.0 + 40 * i, 300.0), (960.0 + 40 * i, 1500.0), 6.0, True)
        doc.end_stroke()
        t0 = time.perf_counter()
        win.commands.autosave()
        ui_ms.append((time.perf_counter() - t0) * 1000.0)
        assert win.saving.in_flight, "the autosave did not start"
        while win.saving.in_flight:  # the worker's outcome arrives as an event
            app.processEvents()
            time.sleep(0.001)
        total_ms.append((time.perf_counter() - t0) * 1000.0)
        assert not doc.unsaved, "the autosave did not save"
    save["autosave_ui_thread_median_ms"] = round(float(np.median(ui_ms)), 1)
    save["autosave_until_saved_median_ms"] = round(float(np.median(total_ms)), 1)
    t0 = time.perf_counter()
    while doc.undo():
        pass
    undo["undo_all_s"] = round(time.perf_counter() - t0, 3)
    win.review.image.document.mark_saved()
    win.prompter.ask_unsaved = lambda *a, **k: "discard"
    win.close()
    win.shutdown()
    return {
        "image": "3504x2336",
        "brush_move_to_repaint": results,
        "with_training": training,
        "undo_200_steps": undo,
        "save_ui_thread": save,
    }


def brush_while_training(app, tmp: Path, parent: Path, measure_brush) -> dict:
    """Keep learning's run, as the app starts it (``FinetuneController.start(background=True)``): the same job in the
    app's supervised child process, one thread at lowered priority, the device's default budget. Once it is inside
    its training loop (its first step reported), the brush is measured; then the run is cancelled."""

    from model_core.imageio import write_png_atomic
    from model_core.synthetic import make_fundus
    from retina_desktop.core.model.finetune_job import (
        BACKGROUND_NICE,
        BACKGROUND_THREADS,
        FinetuneJob,
        Started,
        Step,
        budget_overrides,
    )
    from retina_desktop.ui.finetune.training_process import TrainingProcess

    folder = tmp / "corrected"
    folder.mkdir()
    samples = []
    for i in range(5):
        f = make_fundus(584, 876, seed=20 + i)
        image, mask = folder / f"photo_{i}.png", folder / f"photo_{i}_mask.png"
        write_png_atomic(image, f.image)  # as the brush benchmark writes its photo
        write_png_atomic(mask, (f.vessels > 0).astype(np.uint8) * 255)
        samples.append((str(image), str(mask)))
    job = FinetuneJob(
        str(parent),
        None,
        samples,
        str(tmp / "bench-store"),
        budget_overrides("cpu"),
        BACKGROUND_THREADS,
        [],
        BACKGROUND_NICE,
    )
    run = TrainingProcess()
    started: list[Started] = []
    steps: list[Step] = []
    ended: list[str] = []
    run.message.connect(
        lambda m: started.append(m) if isinstance(m, Started) else steps.append(m) if isinstance(m, Step) else None
    )
    run.failed.connect(lambda m: ended.append(f"failed: {m}"))
    run.finished.connect(lambda _out: ended.append("finished"))
    run.cancelled.connect(lambda _s: ended.append("cancelled"))
    run.start(job.as_dict())
    deadline = time.time() + 600
    while not steps and not ended and time.time() < deadline:
        app.processEvents()
        time.sleep(0.01)  # waiting for the child's first step; nothing is measured here
    if not steps:
        run.shutdown()
        raise SystemExit(f"the background fine-tune never reached its training loop ({ended or 'timed out'})")
    steps0 = len(steps)
    t0 = time.time()
    during = measure_brush()
    measured_s = time.time() - t0
    steps_during = len(steps) - steps0
    still_running = run.running and not ended
    run.cancel()
    while run.running:
        app.processEvents()
        time.sleep(0.01)
    return {
        "during": during,
        "training": {
            "parent": parent.name,
            "threads": started[0].threads if started else None,
            "niceness": started[0].niceness if started else None,
            "steps_during_measurement": steps_during,
            "measurement_s": round(measured_s, 1),
            "running_throughout": bool(still_running),
        },
    }


CHILD = r"""
import os, sys, time
t_import = time.perf_counter()
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, sys.argv[2])
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QTimer
import pyqtgraph as pg
pg.setConfigOptions(imageAxisOrder="row-major")
app = QApplication([])
from retina_desktop.ui.app.main_window import MainWindow
w = MainWindow(checkpoint_path=sys.argv[1])
w.show()
def done(key):
    print("SHOWN", time.time(), key, flush=True)
    w.shutdown()
    app.quit()
w.prediction_shown.connect(done)
w.image_opened.connect(lambda k: w.review.image.probability is not None and done(k))
QTimer.singleShot(600000, app.quit)
w.workspaces.start(None)
app.exec()
"""


def bench_launch(weights: Path, tmp: Path) -> dict:
    home = tmp / "launch-home"
    env = dict(
        os.environ,
        RETINA_DESKTOP_HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        QT_QPA_PLATFORM="offscreen",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"),
    )
    out = {}
    for run in ("first_run_s", "second_run_s"):
        t0 = time.time()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(weights), str(ROOT)], env=env, capture_output=True, text=True, timeout=900
        )
        shown = [line for line in proc.stdout.splitlines() if line.startswith("SHOWN")]
        if not shown:
            out[run] = None
            out[run.replace("_s", "_error")] = (proc.stderr or proc.stdout)[-500:]
            continue
        out[run] = round(float(shown[0].split()[1]) - t0, 2)
    return out


def print_training_figures(t: dict, which: str) -> None:
    tr = t["training"]
    print(
        f"background fine-tune of the {which}: {tr['threads']} thread(s), niceness {tr['niceness']}, "
        f"{tr['steps_during_measurement']} training steps during the {tr['measurement_s']} s of brush measurement "
        f"(running throughout: {tr['running_throughout']})"
    )
    for zoom in ("fit", "1:1"):
        before, during, after = (t[k][zoom] for k in ("before", "during", "after"))
        without = (before["median_ms"] + after["median_ms"]) / 2
        print(
            f"brush move -> repaint ({zoom}): median without training {before['median_ms']} ms before / "
            f"{after['median_ms']} ms after, with training {during['median_ms']} ms "
            f"(ratio {during['median_ms'] / max(without, 1e-9):.2f}); p95 {before['p95_ms']} / {after['p95_ms']} "
            f"without, {during['p95_ms']} ms with"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--weights",
        help="checkpoint for the launch benchmark (default: the bundled model, else an untrained micro model)",
    )
    ap.add_argument("--moves", type=int, default=300)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument(
        "--with-training",
        action="store_true",
        help="also measure the brush while a background fine-tune (Keep learning's: 1 thread, low priority) runs",
    )
    ap.add_argument(
        "--training-seconds",
        type=float,
        default=20.0,
        help="with --with-training: seconds of strokes at each zoom before, while and after the run (default 20)",
    )
    ap.add_argument("--brush-only", action="store_true", help="only the brush figures (no undo, save or launch)")
    ap.add_argument(
        "--with-av-teaching",
        action="store_true",
        help="also measure the brush before, while and after Teach artery/vein runs (in the app's process)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ["RETINA_DESKTOP_HOME"] = str(tmp / "home")
        weights, which = pick_weights(args.weights, tmp)
        res = bench_brush_and_undo(
            tmp,
            args.moves,
            weights if args.with_training else None,
            args.brush_only,
            args.training_seconds,
            args.with_av_teaching,
        )
        if not args.brush_only:
            res["launch_to_prediction_demo_cpu"] = {"model": which, **bench_launch(weights, tmp)}
    res["cpu_threads"] = os.cpu_count()
    print(json.dumps(res, indent=2))
    b = res["brush_move_to_repaint"]["fit"]
    for zoom in ("fit", "1:1") if "with_av_teaching" in res["brush_move_to_repaint"] else ():
        t = res["brush_move_to_repaint"]["with_av_teaching"]
        calm = (t["before"][zoom]["median_ms"] + t["after"][zoom]["median_ms"]) / 2
        print(
            f"brush ({zoom}) while teaching artery/vein: median {t['while'][zoom]['median_ms']} ms, p95 "
            f"{t['while'][zoom]['p95_ms']} ms, against {calm:.2f} ms before and after "
            f"({t['while'][zoom]['median_ms'] / max(calm, 1e-9):.2f}x)"
        )
    print(
        f"\nbrush move -> repaint (fit view): median {b['median_ms']} ms, p95 {b['p95_ms']} ms (target <= 16 ms median)"
    )
    if res.get("with_training"):
        print_training_figures(res["with_training"], which)
    if args.brush_only:
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
        return 0
    u = res["undo_200_steps"]
    print(f"200 undo steps: history {u['history_mb']} MB, RSS growth {u['rss_growth_mb']} MB (target <= 150 MB)")
    sv = res["save_ui_thread"]
    print(
        f"save of the 3504x2336 mask on the UI thread (Ctrl+S): median {sv['median_ms']} ms, max {sv['max_ms']} ms "
        f"(first save {sv['first_ms']} ms)"
    )
    print(
        f"autosave of that mask: {sv['autosave_ui_thread_median_ms']} ms on the UI thread, saved after "
        f"{sv['autosave_until_saved_median_ms']} ms (medians of 5)"
    )
    lt = res["launch_to_prediction_demo_cpu"]
    print(
        f"launch -> prediction on demo (CPU, {lt['model']}): first run {lt['first_run_s']} s, "
        f"second run {lt['second_run_s']} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
