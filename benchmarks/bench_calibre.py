"""Optic disc, artery/vein suggestion and calibre (CRAE, CRVE, AVR) on DRIVE test, and calibre's time.

Needs ../shared/data/drive/test (images/, masks/, fov/, av_centreline/, zone_b/; PROVENANCE.md). Measures:

- disc: model_core.optic_disc.detect_disc on each photo (with its reference mask and FOV) against the disc
  behind the manual zone B ring (disc_from_zone_b): hits (centre within 0.25 disc diameters, target >= 18 of
  20) and the IoU of the zone B drawn from the detected disc with the manual ring (target >= 0.6 on average);
- A/V: accuracy of model_core.artery_vein.suggest_av on the artery and vein centre-line pixels of
  av_centreline/ inside zone C (from the manual ring's disc), on the reference mask's skeleton (the labels lie
  exactly on it): unsupervised on all 20, and taught by the labels of photos 01-05, evaluated on 06-20 beside
  the unsupervised score on the same 15, two ways: the segment-feature regression (fit_av_model) and the
  network (model_core.av_net.teach, as the app's Teach artery/vein does; --net-steps, 0 skips it), with the
  AVR of the network's labels and the detected disc against the reference;
- calibre per photo: (a) reference mask + manual disc + reference A/V labels (each vessel pixel takes its
  nearest labelled centre-line pixel's label; green = uncertain) and (b) reference mask + detected disc +
  suggested A/V; mean absolute AVR difference (target <= 0.05), and the same with (c) the detected disc and
  reference A/V and (d) the manual disc and suggested A/V, to tell the disc's share from the labels';
- time of measure_calibre on a 3504x2336 mask (DRIVE 01_test's reference scaled up 6.2x as in
  bench_measure.py, with its disc and A/V labels scaled alike; target <= 1 s).

    python benchmarks/bench_calibre.py [--repeats 5] [--net-steps 1500] [--json docs/benchmarks/calibre_drive_test.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from model_core import av_net
from model_core.artery_vein import fit_av_model, photo_features, suggest_av
from model_core.calibre import ZONE_C, Calibre, Disc, measure_calibre, zone_mask
from model_core.imageio import read_image, read_mask, read_raw
from model_core.optic_disc import detect_disc, disc_from_zone_b, zone_iou

DRIVE_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "drive" / "test"
SIZE = (3504, 2336)
TAUGHT_BY = 5


def centreline_labels(path: Path) -> np.ndarray:
    """av_centreline's RGB as 0 / 1 artery (red) / 2 vein (blue) / 3 uncertain (green)."""
    rgb = read_raw(path)[..., :3]
    hi = rgb > 127
    out = np.zeros(rgb.shape[:2], np.uint8)
    out[hi[..., 0] & ~hi[..., 1] & ~hi[..., 2]] = 1
    out[hi[..., 2] & ~hi[..., 0] & ~hi[..., 1]] = 2
    out[hi[..., 1] & ~hi[..., 0] & ~hi[..., 2]] = 3
    return out


def spread_to_vessels(centre: np.ndarray, vessels: np.ndarray) -> np.ndarray:
    """Each vessel pixel takes the label of its nearest labelled centre-line pixel."""
    seeds = (centre == 0).astype(np.uint8)
    _, nearest = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.r_[np.uint8(0), centre[centre > 0]]  # labels number the seed pixels in raster order
    out = np.zeros_like(centre)
    out[vessels] = lut[nearest[vessels]]
    return out


def load(stem: str) -> dict[str, object]:
    return {
        "photo": read_image(DRIVE_TEST / "images" / f"{stem}.tif"),
        "mask": read_mask(DRIVE_TEST / "masks" / f"{stem}.png"),
        "fov": read_mask(DRIVE_TEST / "fov" / f"{stem}.png"),
        "centre": centreline_labels(DRIVE_TEST / "av_centreline" / f"{stem}.png"),
        "disc": disc_from_zone_b(read_mask(DRIVE_TEST / "zone_b" / f"{stem}.png")),
        "ring": read_mask(DRIVE_TEST / "zone_b" / f"{stem}.png"),
    }


def accuracy(labels: np.ndarray, centre: np.ndarray, disc: Disc) -> float:
    judged = ((centre == 1) | (centre == 2)) & zone_mask(centre.shape, disc, ZONE_C)
    return float(np.mean(labels[judged] == centre[judged]))


def _value(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def calibre_row(c: Calibre) -> dict[str, object]:
    return {
        "crae": _value(c.crae),
        "crve": _value(c.crve),
        "avr": _value(c.avr),
        "n_arterioles": c.n_arterioles,
        "n_venules": c.n_venules,
        "reason": c.reason,
    }


def timing(repeats: int) -> dict[str, float]:
    data = load("01_test")
    scale = SIZE[0] / data["mask"].shape[1]
    mask = cv2.resize(data["mask"].astype(np.float32), SIZE, interpolation=cv2.INTER_CUBIC) >= 0.5
    labels = spread_to_vessels(data["centre"], data["mask"])
    av = cv2.resize(labels, SIZE, interpolation=cv2.INTER_NEAREST)
    d = data["disc"]
    disc = Disc(d.x * scale, d.y * SIZE[1] / data["mask"].shape[0], d.diameter * scale)
    result = measure_calibre(mask, av, disc)  # warm-up
    times, cpu = [], []
    for _ in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        measure_calibre(mask, av, disc)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print(
        f"calibre on one {SIZE[0]}x{SIZE[1]} mask (01_test scaled up {scale:.1f}x, disc {disc.diameter:.0f} px): "
        f"median {statistics.median(times):.3f} s, min {min(times):.3f} s, CPU median {statistics.median(cpu):.3f} s "
        f"(target <= 1 s); CRAE {result.crae}, CRVE {result.crve}"
    )
    return {"median_s": statistics.median(times), "min_s": min(times), "cpu_median_s": statistics.median(cpu)}


def segment_counts(centre: np.ndarray, graph_label: np.ndarray, rows: np.ndarray, cols: np.ndarray, n: int):
    lab = centre[rows, cols]
    seg = np.maximum(graph_label, 0)
    arteries = np.bincount(seg, weights=(lab == 1).astype(np.float64), minlength=n)
    veins = np.bincount(seg, weights=(lab == 2).astype(np.float64), minlength=n)
    return arteries, veins


def taught_network(photos: dict, stems: list[str], per_photo: list[dict], steps: int) -> dict[str, object]:
    """The A/V network taught by the reference labels of photos 01-05 (spread from the centre line to the
    reference mask, uncertain left untaught, as a grader's A/V mask holds them), judged on 06-20."""
    examples = []
    for s in stems[:TAUGHT_BY]:
        p = photos[s]
        examples.append(av_net.example(p["photo"], p["mask"], p["fov"], spread_to_vessels(p["centre"], p["mask"]), s))
    started = time.perf_counter()
    result = av_net.teach(examples, steps)
    seconds = time.perf_counter() - started
    accs, diffs = [], []
    for row, s in zip(per_photo, stems, strict=True):
        if s in stems[:TAUGHT_BY]:
            continue
        p = photos[s]
        labels = av_net.taught_suggestion(result.net, p["photo"], p["mask"], p["fov"])
        row["av_accuracy_taught_net"] = round(accuracy(labels, p["centre"], p["disc"]), 4)
        accs.append(row["av_accuracy_taught_net"])
        found = detect_disc(p["photo"], p["mask"], p["fov"])
        taught = calibre_row(measure_calibre(p["mask"], labels, found)) if found is not None else None
        row["automatic_taught_net"] = taught
        ref = row["reference"]["avr"]
        if taught is not None and ref is not None and taught["avr"] is not None:
            diffs.append(abs(ref - taught["avr"]))
    print(
        f"A/V network taught by 01-05 ({result.steps} steps, {seconds:.0f} s, final loss {result.final_loss:.3f}): "
        f"accuracy on 06-20 {statistics.mean(accs):.3f}; AVR with the detected disc, mean |difference| "
        f"{statistics.mean(diffs):.3f} on {len(diffs)} photos"
    )
    return {
        "av_accuracy_taught_net_06_20": round(statistics.mean(accs), 4),
        "avr_mean_abs_difference_taught_net_06_20": round(statistics.mean(diffs), 4) if diffs else None,
        "avr_photos_compared_taught_net": len(diffs),
        "net_steps": result.steps,
        "net_teach_seconds": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="write the figures to this JSON file")
    ap.add_argument("--net-steps", type=int, default=av_net.TEACH_STEPS, help="A/V network's steps (0: skip it)")
    args = ap.parse_args()
    if not (DRIVE_TEST / "zone_b").is_dir():
        raise SystemExit(f"{DRIVE_TEST}: DRIVE test with zone_b/ and av_centreline/ not found")
    stems = [f"{i:02d}_test" for i in range(1, 21)]
    photos = {s: load(s) for s in stems}
    per_photo = []
    for s in stems:
        p = photos[s]
        found = detect_disc(p["photo"], p["mask"], p["fov"])
        assert found is not None
        manual: Disc = p["disc"]
        offset = math.hypot(found.x - manual.x, found.y - manual.y) / manual.diameter
        iou = zone_iou(zone_mask(p["ring"].shape, found), p["ring"])
        suggestion = suggest_av(p["photo"], p["mask"], p["fov"])
        reference_av = spread_to_vessels(p["centre"], p["mask"])
        ref = measure_calibre(p["mask"], reference_av, manual)
        auto = measure_calibre(p["mask"], suggestion.labels, found)
        disc_only = measure_calibre(p["mask"], reference_av, found)
        labels_only = measure_calibre(p["mask"], suggestion.labels, manual)
        per_photo.append(
            {
                "image": s,
                "disc_offset_dd": round(offset, 3),
                "zone_b_iou": round(iou, 3),
                "av_accuracy_auto": round(accuracy(suggestion.labels, p["centre"], manual), 4),
                "reference": calibre_row(ref),
                "automatic": calibre_row(auto),
                "detected_disc_reference_av": calibre_row(disc_only),
                "manual_disc_suggested_av": calibre_row(labels_only),
            }
        )
    # Taught by the first five photos' labels, judged on the other fifteen.
    examples = []
    for s in stems[:TAUGHT_BY]:
        p = photos[s]
        graph, feats = photo_features(p["photo"], p["mask"], p["fov"])
        arteries, veins = segment_counts(p["centre"], graph.label, graph.rows, graph.cols, graph.segments + 1)
        examples.append((feats, arteries, veins))
    model = fit_av_model(examples)
    taught, untaught = [], []
    for row, s in zip(per_photo, stems, strict=True):
        if s in stems[:TAUGHT_BY]:
            continue
        p = photos[s]
        row["av_accuracy_taught"] = round(
            accuracy(suggest_av(p["photo"], p["mask"], p["fov"], model).labels, p["centre"], p["disc"]), 4
        )
        taught.append(row["av_accuracy_taught"])
        untaught.append(row["av_accuracy_auto"])
    net_figures = taught_network(photos, stems, per_photo, args.net_steps) if args.net_steps > 0 else {}

    hits = sum(r["disc_offset_dd"] <= 0.25 for r in per_photo)
    mean_iou = statistics.mean(r["zone_b_iou"] for r in per_photo)
    auto_acc = statistics.mean(r["av_accuracy_auto"] for r in per_photo)
    both = [r for r in per_photo if r["reference"]["avr"] is not None and r["automatic"]["avr"] is not None]
    avr_diff = statistics.mean(abs(r["reference"]["avr"] - r["automatic"]["avr"]) for r in both) if both else None
    print(
        f"{'image':8} {'disc dd':>7} {'IoU':>5} {'A/V':>5} {'taught':>6}  "
        f"{'CRAE ref':>8} {'CRVE ref':>8} {'AVR ref':>7}  {'CRAE auto':>9} {'CRVE auto':>9} {'AVR auto':>8}"
    )
    for r in per_photo:
        a, b = r["reference"], r["automatic"]
        t = r.get("av_accuracy_taught")

        def f(x, w=8, d=2):
            return f"{x:>{w}.{d}f}" if x is not None else f"{'-':>{w}}"

        print(
            f"{r['image']:8} {r['disc_offset_dd']:7.2f} {r['zone_b_iou']:5.2f} {r['av_accuracy_auto']:5.3f} "
            f"{f(t, 6, 3)}  {f(a['crae'])} {f(a['crve'])} {f(a['avr'], 7, 3)}  "
            f"{f(b['crae'], 9)} {f(b['crve'], 9)} {f(b['avr'], 8, 3)}"
        )
    print(f"disc hits {hits}/20 (target >= 18); zone B IoU mean {mean_iou:.3f} (target >= 0.6)")
    print(
        f"A/V accuracy, zone C, artery+vein centre-line pixels: automatic {auto_acc:.3f} on 20; "
        f"on 06-20: automatic {statistics.mean(untaught):.3f}, taught by 01-05 {statistics.mean(taught):.3f} "
        "(target 0.85; LWNet, supervised: 0.874 all labelled pixels, 0.887 zone B)"
    )
    print(
        f"AVR reference vs automatic: mean |difference| {avr_diff:.3f} on {len(both)} photos (target <= 0.05)"
        if avr_diff is not None
        else "AVR: no photo with both values"
    )
    disc_pairs = [
        (r["reference"]["avr"], r["detected_disc_reference_av"]["avr"])
        for r in per_photo
        if r["reference"]["avr"] is not None and r["detected_disc_reference_av"]["avr"] is not None
    ]
    disc_diff = statistics.mean(abs(a - b) for a, b in disc_pairs) if disc_pairs else None
    if disc_diff is not None:
        print(f"  of which the disc alone (detected disc, reference A/V): {disc_diff:.3f} on {len(disc_pairs)} photos")
    label_pairs = [
        (r["reference"]["avr"], r["manual_disc_suggested_av"]["avr"])
        for r in per_photo
        if r["reference"]["avr"] is not None and r["manual_disc_suggested_av"]["avr"] is not None
    ]
    label_diff = statistics.mean(abs(a - b) for a, b in label_pairs) if label_pairs else None
    if label_diff is not None:
        print(f"  and the labels alone (manual disc, suggested A/V): {label_diff:.3f} on {len(label_pairs)} photos")
    figures = {
        "disc_hits": hits,
        "zone_b_iou_mean": round(mean_iou, 4),
        "av_accuracy_auto_20": round(auto_acc, 4),
        "av_accuracy_auto_06_20": round(statistics.mean(untaught), 4),
        "av_accuracy_taught_06_20": round(statistics.mean(taught), 4),
        "avr_mean_abs_difference": None if avr_diff is None else round(avr_diff, 4),
        "avr_photos_compared": len(both),
        "avr_mean_abs_difference_detected_disc_reference_av": None if disc_diff is None else round(disc_diff, 4),
        "avr_mean_abs_difference_manual_disc_suggested_av": None if label_diff is None else round(label_diff, 4),
        **net_figures,
        "calibre_time_3504x2336": timing(args.repeats),
        "per_photo": per_photo,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
        print("wrote", args.json)


if __name__ == "__main__":
    main()
