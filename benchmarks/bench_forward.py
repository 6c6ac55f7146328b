"""CPU forward time at 512x512 for each preset, as a ratio to the reference-size network, and peak memory.

Each preset runs in its own process (so peak RSS is its own), with a fixed thread count (default 2).

    python benchmarks/bench_forward.py [--threads 2] [--size 512] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from model_core.model import ModelConfig, build_model, count_parameters
name, threads, size, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
model = build_model(ModelConfig.preset(name)).eval()
x = torch.rand(1, 1, size, size)
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
with torch.inference_mode():
    model(x)
    for _ in range(repeats):
        t = time.perf_counter(); model(x); times.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"preset": name, "params": count_parameters(model), "median_s": sorted(times)[len(times) // 2],
                  "min_s": min(times), "peak_rss_mb": peak / 1024, "forward_extra_mb": (peak - base_rss) / 1024}))
"""


def run(preset: str, threads: int, size: int, repeats: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, preset, str(threads), str(size), str(repeats)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--presets", nargs="+", default=["reference", "base", "small", "tiny"])
    args = ap.parse_args()
    rows = [run(p, args.threads, args.size, args.repeats if p != "reference" else max(3, args.repeats // 2))
            for p in args.presets]
    ref = next((r for r in rows if r["preset"] == "reference"), rows[0])
    print(f"CPU forward at {args.size}x{args.size}, {args.threads} threads (median of repeats)")
    print(f"{'preset':10} {'params':>12} {'time ms':>9} {'ratio':>7} {'peak RSS MB':>12} {'forward MB':>11}")
    for r in rows:
        print(f"{r['preset']:10} {r['params']:12,d} {r['median_s'] * 1000:9.1f} {r['median_s'] / ref['median_s']:7.3f} "
              f"{r['peak_rss_mb']:12.0f} {r['forward_extra_mb']:11.0f}")


if __name__ == "__main__":
    main()
