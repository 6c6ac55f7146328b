"""Sequence benchmark: the simulated grader works through a data set's photos in order, with a fixed model and with
Keep learning, and the modelled time per photo and cumulatively is reported for brush only and for Proofread.

    python benchmarks/bench_sequence.py DATA --json OUT [--png OUT.png] [--every 5] [--epochs N | --minutes M]
                                         [--limit N] [--seed 0] [--weights CHECKPOINT]

DATA is a data set in the reference layout (``images/`` + ``masks/``, optional ``fov/``), or ``far-stare``: STARE's
train and test photos as the far camera of ``bench_finetune.py`` takes them (made in a temporary folder, never in
the repository), train first.

Protocol (fixed before measuring):

* Each photo is predicted by the model active at that moment, at that model's threshold, and corrected by
  ``bench_correction.py``'s simulated grader (the same rules, costs and pieces): the brush only, and Proofread
  then the vessel tools for what no proposal covers (``proofread``), also where the grader proofreads an image
  only where that saves time (``proofread_where_it_pays``). The corrected photo is approved with its reference
  mask.
* **fixed**: the starting model all along.
* **keep_learning**: after every ``--every`` approvals, as the app's Keep learning does, a fine-tune starts from
  the active model on every approval so far (``model_core.finetune.finetune``, the app's defaults,
  ``finetune_config(parent)``), with up to 8 of the photos not yet reached as the unreviewed photos (the drift
  and the rehearsal), and is gated. ``accept`` becomes the active model by itself, as in the app; ``ask``
  only with ``--take-ask`` (a grader who clicks yes to every question); ``reject`` keeps the active model. The
  budget is the app's CPU minutes (``--minutes``, default 10), or a number of 20-step epochs (``--epochs``)
  so that a run sharing the CPU still trains exactly as much. In the app the grader goes on while the run
  trains; here it finishes before the next photo is predicted (the best case for Keep learning).
* Both runs share the photos before the first fine-tune.

The JSON has per photo, for each run, the model version and the seconds of each tool set, the cumulative seconds,
each fine-tune's verdict and reason, and the totals; ``--png`` draws the cumulative curves.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_correction as bc  # noqa: E402
import numpy as np  # noqa: E402

from model_core.checkpoint import Checkpoint, load_checkpoint  # noqa: E402
from model_core.data import Sample, discover  # noqa: E402
from model_core.resources import default_model_path  # noqa: E402

TOOLS = bc.TOOLS
UNREVIEWED_LIMIT = 8  # as the app's ``unreviewed_photos``


def photos(data: str, tmp: Path) -> list[Sample]:
    if data == "far-stare":
        import bench_finetune as bf

        root = bf.make_far_stare(ROOT.parent / "shared" / "data", tmp)
        return discover(root, split="train") + discover(root, split="test")
    return discover(Path(data))


def spread(samples: list[Sample], limit: int = UNREVIEWED_LIMIT) -> list[Path]:
    step = max(1, -(-len(samples) // limit))
    return [s.image for s in samples[::step][:limit]]


def fine_tune(active: Checkpoint, approved: list[Sample], later: list[Sample], args) -> tuple[Checkpoint, dict]:
    """One Keep-learning run from ``active`` on ``approved``; the model active afterwards and what came of it."""
    from model_core.finetune import finetune, finetune_config

    budget = dict(epochs=args.epochs, minutes=None) if args.epochs else dict(epochs=500, minutes=args.minutes)
    cfg = finetune_config(active, seed=args.seed, device="cpu", **budget)
    t0 = time.monotonic()
    outcome = finetune(active, list(approved), cfg, unreviewed=spread(later))
    taken = outcome.verdict == "accept" or (outcome.verdict == "ask" and args.take_ask)
    kept = outcome.result.checkpoint if taken else active
    return kept, {
        "after_photo": len(approved),
        "verdict": outcome.verdict,
        "reason": outcome.reason,
        "threshold": [active.threshold, outcome.result.checkpoint.threshold],
        "epochs": len(outcome.history),
        "wall_s": round(time.monotonic() - t0, 1),
        "taken": taken,
    }


def run(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    parent = load_checkpoint(args.weights or default_model_path())
    with tempfile.TemporaryDirectory(prefix="bench-sequence-") as tmp:
        samples = photos(args.data, Path(tmp))[: args.limit]
        fixed: list[dict] = []
        learning: list[dict] = []
        runs: list[dict] = []
        active, version = parent, 0
        for i, s in enumerate(samples):
            row = bc.grade_photo(parent, s)
            fixed.append({**row, "model": 0})
            if version == 0:
                learning.append({**row, "model": 0})  # the same model so far: the same photo
            else:
                learning.append({**bc.grade_photo(active, s), "model": version})
            print(
                f"{i + 1:3d} {s.name}: fixed brush {fixed[-1]['brush']:.0f} s "
                f"proofread {fixed[-1]['proofread']:.0f} s; "
                f"keep learning (v{version}) brush {learning[-1]['brush']:.0f} s proofread "
                f"{learning[-1]['proofread']:.0f} s",
                flush=True,
            )
            if (i + 1) % args.every == 0 and i + 1 < len(samples):
                active_next, record = fine_tune(active, samples[: i + 1], samples[i + 1 :], args)
                runs.append(record)
                print(f"    fine-tune after {i + 1}: gate {record['verdict']} ({record['reason']})", flush=True)
                if record["taken"]:
                    active, version = active_next, version + 1
    return {
        "data": args.data,
        "photos": len(samples),
        "every": args.every,
        "budget": {"epochs": args.epochs} if args.epochs else {"minutes": args.minutes},
        "seed": args.seed,
        "take_ask": args.take_ask,
        "model": f"{parent.name} v{parent.version}",
        "fixed": with_totals(fixed),
        "keep_learning": with_totals(learning),
        "fine_tunes": runs,
    }


def with_totals(rows: list[dict]) -> dict:
    cumulative = {tool: np.cumsum([r[tool] for r in rows]).round(1).tolist() for tool in TOOLS}
    return {
        "per_photo": rows,
        "cumulative": cumulative,
        "total": {t: c[-1] if c else 0.0 for t, c in cumulative.items()},
    }


def draw(result: dict, path: Path) -> None:
    """The cumulative curves as a PNG (pyqtgraph, offscreen)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(background="w", foreground="k", antialias=True)
    plot = pg.PlotWidget()
    plot.resize(900, 560)
    item = plot.getPlotItem()
    item.setLabel("bottom", "photos corrected, in order")
    item.setLabel("left", "modelled grader time, cumulative (min)")
    name = "/".join(Path(result["data"]).parts[-2:]) if result["data"] != "far-stare" else "far-STARE"
    item.setTitle(f"{name}: a fine-tune after every {result['every']} approvals (orange lines)")
    item.addLegend(offset=(10, 10))
    x = np.arange(1, result["photos"] + 1)
    solid, dashed = pg.QtCore.Qt.PenStyle.SolidLine, pg.QtCore.Qt.PenStyle.DashLine
    styles = {
        ("fixed", "brush"): ((150, 150, 150), dashed, "brush, fixed model"),
        ("keep_learning", "brush"): ((150, 150, 150), solid, "brush, Keep learning"),
        ("fixed", "proofread"): ((20, 110, 200), dashed, "Proofread + tools, fixed"),
        ("keep_learning", "proofread"): (
            (20, 110, 200),
            pg.QtCore.Qt.PenStyle.SolidLine,
            "Proofread + tools, Keep learning",
        ),
    }
    for (runname, tool), (colour, style, name) in styles.items():
        y = np.asarray(result[runname]["cumulative"][tool]) / 60
        item.plot(x, y, pen=pg.mkPen(colour, width=2.5, style=style), name=name)
    for r in result["fine_tunes"]:
        line = pg.InfiniteLine(r["after_photo"] + 0.5, angle=90, pen=pg.mkPen((200, 120, 0), width=1))
        item.addItem(line)
    plot.show()  # laid out, so the labels and the title are inside the picture
    exporter = pyqtgraph.exporters.ImageExporter(plot.scene())
    exporter.parameters()["width"] = 900
    path.parent.mkdir(parents=True, exist_ok=True)
    exporter.export(str(path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="a data set folder, or far-stare")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--png", type=Path)
    ap.add_argument("--every", type=int, default=5, help="fine-tune after every N approvals (the app's default 5)")
    ap.add_argument("--minutes", type=float, default=10.0, help="CPU minutes per fine-tune (the app's default)")
    ap.add_argument("--epochs", type=int, default=None, help="a step budget of N 20-step epochs instead")
    ap.add_argument("--limit", type=int, default=None, help="only the first N photos")
    ap.add_argument("--take-ask", action="store_true", help="the grader activates every 'ask' verdict too")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", type=Path, default=None, help="start from this checkpoint (default: bundled)")
    args = ap.parse_args()
    result = run(args)
    for name in ("fixed", "keep_learning"):
        t = result[name]["total"]
        print(f"{name:14s} " + "  ".join(f"{tool} {t[tool]:.0f} s" for tool in TOOLS))
    f, k = result["fixed"]["total"], result["keep_learning"]["total"]
    print("keep learning / fixed: " + "  ".join(f"{tool} {k[tool] / max(f[tool], 1e-9):.3f}" for tool in TOOLS))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    if args.png:
        draw(result, args.png)


if __name__ == "__main__":
    from model_core.errors import RetinaInputError

    try:
        main()
    except RetinaInputError as e:  # a missing folder, an unreadable image: one line, no traceback
        sys.exit(f"bench_sequence: {e}")
