"""Estimate ``model_core.artery_vein.LINK_SAME_PROBABILITY`` without any artery/vein labels.

    python benchmarks/estimate_av_links.py [DATA]        # default ../shared/data/drive/train

DATA is a data set with photos and vessel masks (no A/V labels needed; DRIVE train has none). On each photo, the
segments whose colour score (``suggest_av``'s, before propagation) is clearly one kind are taken as labelled by
it: width at least CONFIDENT_WIDTH px (the thick vessels, whose colour separates the kinds well) and |score| in
the photo's upper half. For every link of ``model_core.junctions`` between two such segments, the share whose two
scores have the same sign is counted per link kind, for long and short arms. The colour score is not always
right, so these shares lie nearer 0.5 than the truth: the couplings they give are weaker, never stronger, than the
anatomy's. The printed table is what the module ships; the DRIVE test A/V labels are for evaluation only and
are never read here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_core import artery_vein as av, junctions  # noqa: E402
from model_core.data import discover, load_sample  # noqa: E402

CONFIDENT_WIDTH = 3.0
MIN_LINKS = 20  # fewer links of a kind than this: the cell is reported, and the long arms' value used


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "drive" / "train"
    kinds = len(junctions.KIND_NAMES)
    same = np.zeros((kinds, 2))
    total = np.zeros((kinds, 2))
    for s in discover(data):
        rgb, vessels, fov, _ = load_sample(s)
        graph, raw, feats = av._photo_features(rgb, vessels > 0, fov > 0)
        width = raw[:, av.WIDTH]
        score = feats[:, av.FEATURES.index("red")] + feats[:, av.FEATURES.index("green")]
        score = score - av.balance_point(score, graph.length, width)
        score[0] = 0.0
        strength = np.abs(score)
        thick = width >= CONFIDENT_WIDTH
        thick[0] = False
        if not thick.any():
            continue
        confident = thick & (strength >= np.median(strength[thick]))
        links = junctions.junction_links(graph, width)
        length = np.r_[1.0, graph.length]
        long = length >= np.maximum(junctions.ARM_RADIUS_MIN, junctions.ARM_RADIUS_WIDTHS * width)
        for a, b, kind in zip(links.a, links.b, links.kind, strict=True):
            if confident[a] and confident[b]:
                col = 0 if long[a] and long[b] else 1
                total[kind, col] += 1
                same[kind, col] += np.sign(score[a]) == np.sign(score[b])
        print(f"{s.name}: {int(total.sum())} confident links so far", flush=True)
    share = np.divide(same, total, out=np.full_like(same, np.nan), where=total > 0)
    print("\nkind            long: p_same (links)   short: p_same (links)")
    for k, name in enumerate(junctions.KIND_NAMES):
        print(f"{name:14s}  {share[k, 0]:.3f} ({int(total[k, 0]):4d})        {share[k, 1]:.3f} ({int(total[k, 1]):4d})")
    print("\nLINK_SAME_PROBABILITY = {")
    for k, name in enumerate(junctions.KIND_NAMES):
        long_p = share[k, 0] if total[k, 0] >= MIN_LINKS else 0.5
        short_p = share[k, 1] if total[k, 1] >= MIN_LINKS else long_p
        print(f"    junctions.{name.upper()}: ({long_p:.2f}, {short_p:.2f}),")
    print("}")


if __name__ == "__main__":
    main()
