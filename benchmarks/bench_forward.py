"""CPU forward time at 512x512 for each preset, as a ratio to the reference-size network, and peak memory; and the
forward pass against the fp32 limit of this CPU.

Each preset runs in its own process (so peak RSS is its own), with a fixed thread count (default 2). Each also
counts its FLOPs at that size (``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix products, 2
per multiply-add; the element-wise layers are not counted) and divides them by its median time.

The fp32 limit is measured, not taken from a data sheet: ``torch.mm`` of two large fp32 matrices (2 n^3 FLOPs) with
the same thread count, best of the repeats, before and after the presets (the machine is shared; the better of the
two is the limit). Then the bundled model's forward alone on one DRIVE test photo, as the predictor feeds it
(FOV rescaled, green + CLAHE, padded): its FLOPs, its time and the share of the limit it reaches.

    python benchmarks/bench_forward.py [--threads 2] [--size 512] [--repeats 5] [--mm-size 2048]
                                       [--photo ../shared/data/drive/test/images/01_test.tif]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time, torch
from torch.utils.flop_counter import FlopCounterMode
from model_core.model import ModelConfig, build_model, count_parameters, to_fast_layout
name, threads, size, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
model = to_fast_layout(build_model(ModelConfig.preset(name)).eval())  # the layout the predictor runs
x = torch.rand(1, 1, size, size)
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
with torch.inference_mode():
    model(x)
    for _ in range(repeats):
        t = time.perf_counter(); model(x); times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with FlopCounterMode(display=False) as counter:
        model(x)
print(json.dumps({"preset": name, "params": count_parameters(model), "median_s": sorted(times)[len(times) // 2],
                  "min_s": min(times), "peak_rss_mb": peak / 1024, "forward_extra_mb": (peak - base_rss) / 1024,
                  "flops": counter.get_total_flops()}))
"""

# The fp32 limit: best GFLOP/s of torch.mm of two n x n fp32 matrices.
CHILD_MM = r"""
import json, sys, time, torch
threads, n, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
a, b = torch.rand(n, n), torch.rand(n, n)
c = torch.mm(a, b)  # warm-up: allocation, the BLAS's thread pool
times = []
for _ in range(repeats):
    t = time.perf_counter(); torch.mm(a, b, out=c); times.append(time.perf_counter() - t)
print(json.dumps({"n": n, "flops": 2 * n ** 3, "min_s": min(times), "median_s": sorted(times)[len(times) // 2],
                  "gflops": 2 * n ** 3 / min(times) / 1e9}))
"""

# The bundled model's forward alone on one photo, prepared as VesselPredictor prepares it.
CHILD_PHOTO = r"""
import json, sys, time, torch
from torch.utils.flop_counter import FlopCounterMode
from model_core.checkpoint import load_checkpoint
from model_core.imageio import read_image
from model_core.model import count_parameters, pad_to_multiple, to_fast_layout
from model_core.preprocess import estimate_fov, model_input, resize_to_scale, scale_factor
from model_core.resources import default_model_path
photo, threads, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
ckpt = load_checkpoint(default_model_path())
model = to_fast_layout(ckpt.build().eval())
rgb = read_image(photo)
x = model_input(resize_to_scale(rgb, scale_factor(estimate_fov(rgb), ckpt.preprocess)), ckpt.preprocess)
t = pad_to_multiple(torch.from_numpy(x)[None, None], 2 ** ckpt.model_config.depth)
times = []
with torch.inference_mode():
    with FlopCounterMode(display=False) as counter:
        model(t)
    for _ in range(repeats):
        t0 = time.perf_counter(); model(t); times.append(time.perf_counter() - t0)
print(json.dumps({"photo": photo, "photo_size": list(rgb.shape[:2]), "input_size": list(t.shape[2:]),
                  "params": count_parameters(model), "flops": counter.get_total_flops(),
                  "median_s": sorted(times)[len(times) // 2], "min_s": min(times)}))
"""


def _child(script: str, *argv: object) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, argv)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(preset: str, threads: int, size: int, repeats: int) -> dict:
    return _child(CHILD, preset, threads, size, repeats)


def fp32_limit(threads: int, n: int, repeats: int = 5) -> dict:
    return _child(CHILD_MM, threads, n, repeats)


def share_of_limit(flops: float, seconds: float, limit_gflops: float) -> float:
    """The share of the CPU's fp32 limit a forward of ``flops`` in ``seconds`` reaches."""
    return flops / seconds / 1e9 / limit_gflops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--presets", nargs="+", default=["reference", "base", "small", "tiny"])
    ap.add_argument("--mm-size", type=int, default=2048, help="n of the n x n fp32 torch.mm (default 2048)")
    ap.add_argument(
        "--photo",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "drive" / "test" / "images" / "01_test.tif",
        help="the photo the bundled model's forward is timed on (default: DRIVE test 01)",
    )
    args = ap.parse_args()
    if not args.photo.is_file():
        sys.exit(f"error: {args.photo}: photo not found (--photo names it)")
    mm_before = fp32_limit(args.threads, args.mm_size)
    rows = [
        run(p, args.threads, args.size, args.repeats if p != "reference" else max(3, args.repeats // 2))
        for p in args.presets
    ]
    photo = _child(CHILD_PHOTO, args.photo, args.threads, args.repeats)
    mm_after = fp32_limit(args.threads, args.mm_size)
    limit = max(mm_before["gflops"], mm_after["gflops"])

    ref = next((r for r in rows if r["preset"] == "reference"), rows[0])
    print(
        f"CPU fp32 limit: torch.mm {args.mm_size}x{args.mm_size}, {args.threads} threads, best of 5: "
        f"{mm_before['gflops']:.1f} GFLOP/s before the presets, {mm_after['gflops']:.1f} after; limit {limit:.1f}"
    )
    print(
        f"\nCPU forward at {args.size}x{args.size}, {args.threads} threads (median of repeats; GFLOP: "
        "convolutions, 2 per multiply-add)"
    )
    print(
        f"{'preset':10} {'params':>12} {'time ms':>9} {'ratio':>7} {'peak RSS MB':>12} {'forward MB':>11} "
        f"{'GFLOP':>7} {'GFLOP/s':>8} {'of limit':>9}"
    )
    for r in rows:
        share = share_of_limit(r["flops"], r["median_s"], limit)
        print(
            f"{r['preset']:10} {r['params']:12,d} {r['median_s'] * 1000:9.1f} {r['median_s'] / ref['median_s']:7.3f} "
            f"{r['peak_rss_mb']:12.0f} {r['forward_extra_mb']:11.0f} {r['flops'] / 1e9:7.1f} "
            f"{r['flops'] / r['median_s'] / 1e9:8.1f} {share:9.1%}"
        )
    h, w = photo["photo_size"]
    ih, iw = photo["input_size"]
    print(
        f"\nbundled model ({photo['params']:,} parameters), forward alone on {args.photo.name} ({w}x{h}, "
        f"network input {iw}x{ih}), {args.threads} threads:"
    )
    print(
        f"  {photo['flops'] / 1e9:.2f} GFLOP per photo; median {photo['median_s'] * 1000:.0f} ms "
        f"(best {photo['min_s'] * 1000:.0f} ms) = {photo['flops'] / photo['median_s'] / 1e9:.1f} GFLOP/s, "
        f"{share_of_limit(photo['flops'], photo['median_s'], limit):.1%} of the fp32 limit "
        f"(best: {share_of_limit(photo['flops'], photo['min_s'], limit):.1%})"
    )


if __name__ == "__main__":
    main()
