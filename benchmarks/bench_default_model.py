"""The default model's scorecard: accuracy on the three test splits, CPU speed ratio, file size.

Every accuracy figure comes from `python -m model_core evaluate` (run as a subprocess, JSON output);
nothing is typed by hand. With --write-card the model card in resources/ is (re)written from them.

    python benchmarks/bench_default_model.py [--weights FILE] [--data ../shared/data] [--write-card]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_core.checkpoint import file_sha256, load_checkpoint  # noqa: E402
from model_core.resources import default_model_path  # noqa: E402

# (key, label, data folder, FOV folder or None, target Dice, target AUC, reference-notebook Dice, AUC)
SUITES = [
    ("kaggle", "`retina-kaggle` test, whole image", "retina-kaggle", None, 0.825, 0.980, 0.8129, 0.9727),
    ("drive", "`drive` test, native 565×584, inside FOV masks", "drive", "drive/test/fov", 0.815, 0.978, None, None),
    ("stare", "`stare` test, whole image", "stare", None, 0.78, None, None, None),
]


def evaluate(weights: Path, data: Path, fov: Path | None, tta: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.json"
        cmd = [sys.executable, "-m", "model_core", "evaluate", str(data), "--weights", str(weights), "--json", str(out)]
        if fov is not None:
            cmd += ["--fov", str(fov)]
        if tta:
            cmd.append("--tta")
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def speed_ratio(weights: Path, threads: int = 2, size: int = 512, repeats: int = 5) -> dict:
    import torch

    from model_core.model import ModelConfig, build_model

    torch.set_num_threads(threads)
    ours = load_checkpoint(weights).build()
    ref = build_model(ModelConfig.preset("reference")).eval()
    x = torch.rand(1, 1, size, size)
    times = {"ours": [], "reference": []}
    with torch.inference_mode():
        ours(x), ref(x)
        for _ in range(repeats):  # interleaved, so machine load affects both alike
            for name, m in (("ours", ours), ("reference", ref)):
                t = time.perf_counter()
                m(x)
                times[name].append(time.perf_counter() - t)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    return {
        "ours_ms": med["ours"] * 1000,
        "reference_ms": med["reference"] * 1000,
        "ratio": med["ours"] / med["reference"],
        "threads": threads,
        "size": size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--tta", action="store_true")
    ap.add_argument("--write-card", action="store_true", help="rewrite resources/MODEL_CARD.md and model_card.json")
    ap.add_argument(
        "--selection", type=Path, help="Markdown file: how this run was chosen over earlier ones (goes into the card)"
    )
    ap.add_argument(
        "--machine-note",
        default="",
        help="what else shared the training machine, where its files came from (goes into the card)",
    )
    args = ap.parse_args()
    weights = args.weights or default_model_path()
    ckpt = load_checkpoint(weights)

    results = {}
    for key, _label, folder, fov, *_ in SUITES:
        results[key] = evaluate(weights, args.data / folder, args.data / fov if fov else None, args.tta)
    speed = speed_ratio(weights)
    size_mb = weights.stat().st_size / 1e6

    rows = []
    for key, label, _, _, t_dice, t_auc, ref_dice, ref_auc in SUITES:
        r = results[key]
        dice = r["mean"]["dice"]
        rows.append((f"{label}: Dice", ref_dice, f"≥ {t_dice}", dice, r["std"]["dice"], dice >= t_dice))
        if t_auc is not None:
            auc = r["mean"]["auc"]
            rows.append((f"{label}: AUC", ref_auc, f"≥ {t_auc}", auc, r["std"]["auc"], auc >= t_auc))
    rows.append(
        (
            "CPU forward 512×512, 2 threads, ratio to reference-size network",
            1.0,
            "≤ 0.10",
            speed["ratio"],
            None,
            speed["ratio"] <= 0.10,
        )
    )
    rows.append(("weights file (MB)", 125, "≤ 20", size_mb, None, size_mb <= 20))

    lines = [
        "| measure | reference notebook | target | this model (mean ± sd per image) | met |",
        "|---|---|---|---|---|",
    ]
    for name, ref, target, value, sd, ok in rows:
        v = f"{value:.4f}" + (f" ± {sd:.4f}" if sd is not None else "")
        lines.append(f"| {name} | {'—' if ref is None else ref} | {target} | {v} | {'yes' if ok else 'NO'} |")
    table = "\n".join(lines)

    detail = [
        "| test set | images | threshold | Dice | IoU | accuracy | sensitivity | specificity | AUC | clDice |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label, *_ in SUITES:
        r = results[key]
        cells = " | ".join(
            f"{r['mean'][k]:.4f} ± {r['std'][k]:.4f}"
            for k in ("dice", "iou", "accuracy", "sensitivity", "specificity", "auc", "cldice")
        )
        detail.append(f"| {label} | {r['images']} | {r['threshold']:.2f} | {cells} |")
    detail = "\n".join(detail)
    print(table)
    print()
    print(detail)
    print(f"\nspeed: ours {speed['ours_ms']:.0f} ms, reference {speed['reference_ms']:.0f} ms at 512², 2 threads")
    if args.write_card:
        selection = args.selection.read_text().strip() if args.selection else ""
        write_card(weights, ckpt, results, speed, size_mb, rows, table, detail, args.tta, selection, args.machine_note)


def threshold_choice(meta: dict, cfg: dict) -> str:
    """How the recorded threshold (and the best epoch) were chosen, from the run's own metadata."""
    val = "the held-out validation images (training split only)"
    if meta.get("val_resample"):
        sizes = ", ".join(f"{f:g}" for f in meta["val_resample"])
        val = (
            f"the held-out validation images (training split only), each at native size and also resized to "
            f"{sizes} of it (mask resized linearly and cut at one half, as `retina-kaggle`'s were)"
        )
    cal = meta.get("threshold_calibration")
    if cal and abs(cal["threshold"] - meta.get("threshold", 0.5)) < 1e-9:
        sizes = ", ".join(r for r in cal["renderings"] if r != "native")
        also = (
            f" and resized to {sizes} as resized data sets store them (mask resized linearly, cut at one half)"
            if sizes
            else ""
        )
        return (
            f"chosen after training by `python -m model_core calibrate`: the best mean pooled Dice over the "
            f"held-out training photos ({', '.join(cal['images'])}) predicted at native size (inside the FOV "
            f"masks){also}, each scored as the test splits are; fixed before any test image was scored "
            f"(training's own validation had picked {meta.get('val_threshold', float('nan')):.2f})"
        )
    if (
        meta.get("threshold") is not None
        and meta.get("val_threshold") is not None
        and abs(meta["threshold"] - meta["val_threshold"]) > 1e-9
    ):
        return (
            f"set by hand with `--threshold` (the validation-optimal one was {meta['val_threshold']:.2f}), "
            "fixed before any test image was scored"
        )
    how = f"the threshold with the best pooled Dice on {val}, fixed before any test image was scored"
    if cfg.get("select_at_best_threshold"):
        how += "; the best epoch is the one with the highest such Dice"
    return how


def reproducibility_text(cfg: dict, meta: dict) -> str:
    """What a rerun of the recorded command gives, from the run's own config and device."""
    gpu = str(meta.get("device", "")).startswith("GPU")
    if cfg.get("minutes"):
        text = (
            f"The run had a {cfg['minutes']:g}-minute wall-time budget and its cosine schedule follows the "
            "clock, so the number of steps depends on the machine's speed: a rerun gives close, not "
            "bit-identical, weights. Without `--minutes` a run is step-based and bit-reproducible on CPU "
            "(tested)."
        )
    else:
        text = (
            "Step-based and seeded."
            if gpu
            else "Step-based and seeded: a rerun on CPU reproduces the weights bit for bit (tested)."
        )
    if gpu:
        text += (
            " This run was on a GPU, whose kernels are not bit-deterministic; the figures below were all "
            "measured on CPU."
        )
    return text


def selection_dice_label(meta: dict, cfg: dict) -> str:
    at = "at that epoch's best threshold" if cfg.get("select_at_best_threshold") else "at threshold 0.5"
    over = " over native and resized renderings" if meta.get("val_resample") else ""
    return f"pooled validation Dice {at}{over}"


def write_card(
    weights, ckpt, results, speed, size_mb, rows, table, detail, tta, selection: str = "", machine_note: str = ""
) -> None:
    from model_core.model import count_parameters

    meta = ckpt.metadata
    cfg = meta.get("train_config", {})
    today = dt.date.today().isoformat()
    card = {
        "name": ckpt.name,
        "version": ckpt.version,
        "date": today,
        "file": weights.name,
        "file_sha256": file_sha256(weights),
        "weights_sha256": ckpt.sha256,
        "file_mb": round(size_mb, 2),
        "architecture": {
            "type": "Attention U-Net",
            "widths": list(ckpt.model_config.widths),
            "parameters": count_parameters(ckpt.build()),
        },
        "preprocessing": ckpt.preprocess.to_dict(),
        "training": {
            "command": meta.get("command"),
            "data": meta.get("data"),
            "seed": cfg.get("seed"),
            "epochs_run": meta.get("epochs_run"),
            "best_epoch": meta.get("best_epoch"),
            "wall_s": meta.get("wall_s"),
            "hardware": meta.get("device"),
            "stop_reason": meta.get("stop_reason"),
            "train_images": meta.get("train_images"),
            "val_images": meta.get("val_images"),
            "config": cfg,
            "validation_dice": meta.get("val_dice"),
        },
        "threshold": ckpt.threshold,
        "threshold_choice": threshold_choice(meta, cfg),
        "test_time_augmentation": tta,
        "evaluation": {
            k: {kk: v[kk] for kk in ("images", "threshold", "mean", "std", "pooled", "fov", "data")}
            for k, v in results.items()
        },
        "speed": speed,
        "evaluated_on": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "training_machine_note": machine_note,
    }
    res = ROOT / "resources"
    reproducibility = reproducibility_text(cfg, meta)
    card["training"]["reproducibility"] = reproducibility
    calibrate_line = ""
    if meta.get("threshold_calibration", {}).get("command"):
        calibrate_line = (
            f"      {meta['threshold_calibration']['command']}\n\n"
            f"  The second command chooses the threshold (see above) and writes the file shipped as "
            f"`resources/{weights.name}`.\n"
        )
    resample_note = ""
    if cfg.get("resample_p"):
        from model_core.data import PatchSampler

        low, high = PatchSampler.RESAMPLE_RANGE
        resample_note = (
            f"; {cfg['resample_p']:.0%} of patches are shrunk to {low:.0%}–{high:.0%} and enlarged again, "
            "as a photo stored smaller than the model's working scale arrives"
        )
    if meta.get("train_resample"):
        sizes = ", ".join(f"{f:g}" for f in meta["train_resample"])
        resample_note += (
            f"; each training photo is also used as a resized data set would store it at {sizes} of its "
            "size (`--train-resample`)"
        )
    unmet = [name for name, _, _, _, _, ok in rows if not ok]
    card["targets_not_met"] = unmet
    card["selection"] = selection
    shortfalls = ("\n".join(f"- Target not met: {name}." for name in unmet) + "\n") if unmet else ""
    (res / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    widths = "-".join(map(str, ckpt.model_config.widths))
    tiles = f"{ckpt.preprocess.clahe_tiles}×{ckpt.preprocess.clahe_tiles}"
    wall = f"{float(meta.get('wall_s', 0)) / 60:.0f} min on {meta.get('device')}"
    if machine_note:
        wall += f" ({machine_note})"
    folders = meta.get("data")
    folders = folders if isinstance(folders, list) else [folders]
    data_line = (
        ", ".join(f"`{f}`" for f in folders)
        + " (the training splits, native size; `retina-kaggle` is DRIVE resized and was not used"
        + (
            f"; each training photo also rendered {meta['camera_renderings']} times as other cameras would take it, "
            "and each held-out photo once, by `model_core.camera`"
            if meta.get("camera_renderings")
            else ""
        )
        + ")"
    )
    selection_section = f"## How this run was chosen\n{selection}\n\n" if selection else ""
    md = f"""# Model card: {ckpt.name} v{ckpt.version}

Bundled default model of Retina Desktop. Written by `python benchmarks/bench_default_model.py --write-card`
on {today}; every number below comes from `python -m model_core evaluate` (see `model_card.json`).

## Model
- Attention U-Net, widths {widths}, {card["architecture"]["parameters"]:,} parameters,
  file `{weights.name}` {size_mb:.1f} MB (sha256 `{card["file_sha256"][:16]}…`, weights sha256 `{ckpt.sha256[:16]}…`).
- Input: green channel + CLAHE (clip {ckpt.preprocess.clahe_clip}, {tiles} tiles);
  each photo is rescaled so that its estimated field of view is {ckpt.preprocess.fov_diameter:g} px wide, and the
  probabilities are mapped back to the photo's size.
- Threshold {ckpt.threshold:.2f}: {card["threshold_choice"]}.

## Training
- Data: {data_line}. {len(meta.get("train_images", []))} images for training,
  {len(meta.get("val_images", []))} held out for validation ({", ".join(meta.get("val_images", []))}).
  No test image was used for training, selection or threshold.
- Command ({meta.get("device")}, seed {cfg.get("seed")}):

      {meta.get("command")}
{calibrate_line}
  {reproducibility}

- Loss: Focal-Tversky (α={cfg.get("alpha")}, β={cfg.get("beta")}, γ={cfg.get("gamma")}) + {cfg.get("bce_weight")} × BCE;
  AdamW lr {cfg.get("lr")}, cosine schedule, {cfg.get("batch_size")} patches of {cfg.get("patch_size")}² per step.
- Augmentation: flips, 90° turns, affine (scale ±15 %, rotation ±30°), brightness/contrast/gamma, mild blur
  and noise{resample_note}.
- Ran {meta.get("epochs_run")} epochs of {cfg.get("steps_per_epoch")} steps; best {selection_dice_label(meta, cfg)}
  {meta.get("val_dice", float("nan")):.4f} at epoch {meta.get("best_epoch")}; {meta.get("stop_reason")};
  wall time {wall}.
- Training log: `resources/default_model_training.log`.

{selection_section}## Results (test splits; mean over images, ± standard deviation)
{table}

All metrics:

{detail}

Test-time augmentation: {"on" if tta else "off"}. Speed: {speed["ours_ms"]:.0f} ms vs {speed["reference_ms"]:.0f} ms
for the reference-size network (34.9 M parameters) at 512×512, 2 CPU threads, timed interleaved in one run.

## Limits
{shortfalls}- Trained on 16 photos of one camera (DRIVE, Canon CR5 45°, mostly healthy eyes). Expect lower accuracy on
  pathological eyes and other cameras; fine-tune on your own corrections in the app.
- The `stare` figures are a cross-camera test: nothing from STARE was seen in training.
"""
    (res / "MODEL_CARD.md").write_text(md)
    print(f"wrote {res / 'MODEL_CARD.md'} and model_card.json")


if __name__ == "__main__":
    main()
