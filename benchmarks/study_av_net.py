"""The study behind model_core.av_net's design: how its logit becomes labels, and self-training without labels.

Needs ../shared/data/drive (test with av_centreline/ and zone_b/, and train). Two ways to teach the network:

- ``taught``: the reference A/V labels of DRIVE test 01-05 (uncertain left untaught), judged on 06-20;
- ``pseudo``: no labels at all. The automatic suggestion on DRIVE train's 20 photos, its confident share
  (``--keep``, by |belief|) of the segments, judged on all 20 test photos.

Each judged four ways, accuracy on the artery and vein centre-line pixels in zone C (bench_calibre's protocol): the
network per pixel; its logit averaged per skeleton segment; that carried by artery_vein.propagate (what ships);
and re-centred at the area balance point before propagating.

    python benchmarks/study_av_net.py taught|pseudo [--steps 1500] [--keep 0.5] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from bench_calibre import DRIVE_TEST, accuracy, load, spread_to_vessels

from model_core import av_net
from model_core.artery_vein import WIDTH, _photo_features, balance_point, paint_segments, propagate, suggest_av
from model_core.imageio import read_image, read_mask

DRIVE_TRAIN = DRIVE_TEST.parent / "train"


def pseudo_examples(keep: float) -> list[av_net.AVExample]:
    examples = []
    for i in range(21, 41):
        stem = f"{i}_training"
        photo = read_image(DRIVE_TRAIN / "images" / f"{stem}.tif")
        mask = read_mask(DRIVE_TRAIN / "masks" / f"{stem}.png")
        fov = read_mask(DRIVE_TRAIN / "fov" / f"{stem}.png")
        s = suggest_av(photo, mask, fov)
        g, score = s.graph, s.score
        confident = np.abs(score) >= np.quantile(np.abs(score[1:]), 1 - keep)
        confident[0] = False
        on = (g.label > 0) & confident[np.maximum(g.label, 0)]
        centre = np.zeros(mask.shape, np.uint8)
        centre[g.rows[on], g.cols[on]] = np.where(score[g.label[on]] > 0, 1, 2)
        examples.append(av_net.example(photo, mask, fov, spread_to_vessels(centre, mask), stem))
    return examples


def judge(net, p) -> dict[str, float]:
    logit = av_net.pixel_logits(net, p["photo"], p["mask"], p["fov"])
    graph, raw, _feats = _photo_features(p["photo"], p["mask"], p["fov"])
    n = graph.segments + 1
    seg = np.maximum(graph.label, 0)
    mean = np.bincount(seg, weights=logit[graph.rows, graph.cols], minlength=n) / np.maximum(
        np.bincount(seg, minlength=n), 1
    )
    mean[0] = 0.0
    centred = mean - balance_point(mean, graph.length, raw[:, WIDTH])
    centred[0] = 0.0
    ways = {
        "pixel": np.where(p["mask"], np.where(logit > 0, 1, 2), 0).astype(np.uint8),
        "segment": paint_segments(graph, mean, p["mask"]),
        "propagated": paint_segments(graph, propagate(graph, mean, raw[:, WIDTH]), p["mask"]),
        "centred+propagated": paint_segments(graph, propagate(graph, centred, raw[:, WIDTH]), p["mask"]),
    }
    return {k: accuracy(v, p["centre"], p["disc"]) for k, v in ways.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["taught", "pseudo"])
    ap.add_argument("--steps", type=int, default=av_net.TEACH_STEPS)
    ap.add_argument("--keep", type=float, default=0.5, help="pseudo: share of segments kept, by |belief|")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    stems = [f"{i:02d}_test" for i in range(1, 21)]
    photos = {s: load(s) for s in stems}
    if args.mode == "taught":
        examples = [
            av_net.example(photos[s]["photo"], photos[s]["mask"], photos[s]["fov"],
                           spread_to_vessels(photos[s]["centre"], photos[s]["mask"]), s)
            for s in stems[:5]
        ]  # fmt: skip
        judged = stems[5:]
    else:
        examples, judged = pseudo_examples(args.keep), stems
    net = av_net.teach(examples, args.steps, args.seed).net
    results = {s: judge(net, photos[s]) for s in judged}
    for way in next(iter(results.values())):
        print(f"{args.mode} {way}: {statistics.mean(r[way] for r in results.values()):.3f} on {len(judged)} photos")


if __name__ == "__main__":
    if not Path(DRIVE_TEST / "av_centreline").is_dir():
        raise SystemExit(f"{DRIVE_TEST}: DRIVE test with av_centreline/ not found")
    main()
