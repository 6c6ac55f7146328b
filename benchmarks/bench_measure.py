"""Time of the vessel measurements (model_core.morphometry.measure) on one 3504x2336 mask (HRF's size).

The mask is DRIVE's first test reference scaled up 6.2x (cubic, cut at half: smooth edges, no blocks), or,
without ../shared/data, a synthetic fundus drawn at that size. Scaled-up DRIVE vessels are up to ~50 px wide,
so the thinning needs many passes: a hard case. The skeleton and its graph are model_core.skeleton's (the
project's one vessel geometry; the thinning is scikit-image's), so the "skeletonize" and "graph" stages are
also what the app's vessel graph spends on them.

    python benchmarks/bench_measure.py [--repeats 5] [--source drive|synthetic] [--mask FILE]

Prints the median and minimum seconds of the whole measurement, and the median of each stage. It also prints
the process's CPU seconds: on a machine shared with other work the wall time stretches with the load, while
the CPU time stays near what an idle core would take (the measurement is single-threaded but for OpenCV).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from model_core import morphometry as M
from model_core.imageio import read_mask
from model_core.skeleton import skeleton_graph, skeletonize

SIZE = (3504, 2336)  # width, height
DRIVE_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "drive" / "test" / "masks" / "01_test.png"


def make_mask(source: str, path: str | None) -> tuple[np.ndarray, str]:
    if path:
        return read_mask(path), path
    if source == "drive" and DRIVE_REFERENCE.exists():
        small = read_mask(DRIVE_REFERENCE).astype(np.float32)
        return cv2.resize(small, SIZE, interpolation=cv2.INTER_CUBIC) >= 0.5, f"{DRIVE_REFERENCE.name} scaled up"
    from model_core.synthetic import make_fundus

    return make_fundus(SIZE[1], SIZE[0], seed=0).vessels.astype(bool), "synthetic fundus"


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--source", choices=["drive", "synthetic"], default="drive")
    ap.add_argument("--mask", help="measure this mask file instead")
    args = ap.parse_args()
    mask, what = make_mask(args.source, args.mask)
    result = M.measure(mask)  # warm-up: imports, allocations
    totals, cpu, stages = [], [], {"skeletonize": [], "fractal_dimension": [], "width": [], "graph": []}
    for _ in range(args.repeats):
        c = time.process_time()
        _, total = timed(M.measure, mask)
        cpu.append(time.process_time() - c)
        totals.append(total)
        skel, t = timed(skeletonize, mask)
        stages["skeletonize"].append(t)
        stages["fractal_dimension"].append(timed(M.fractal_dimension, mask)[1])
        stages["width"].append(timed(M.mean_width, mask, skel)[1])
        stages["graph"].append(timed(skeleton_graph, skel)[1])
    h, w = mask.shape
    print(f"measure one {w}x{h} mask ({what}, {np.count_nonzero(mask) / mask.size:.1%} vessel), {args.repeats} repeats")
    print(
        f"median {statistics.median(totals):.3f} s, min {min(totals):.3f} s (target <= 1 s); "
        f"CPU time median {statistics.median(cpu):.3f} s"
    )
    for name, ts in stages.items():
        print(f"  {name:18} {statistics.median(ts):.3f} s")
    print("result:", result)


if __name__ == "__main__":
    main()
