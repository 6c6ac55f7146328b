"""`python -m model_core {train,predict,evaluate,finetune}`: the engine without the app.

Bad input ends in one line on stderr naming the file and the problem (exit status 2), never a
traceback. Under ``torchrun`` the train and finetune commands run DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .checks import require_same_size
from .errors import RetinaInputError

if TYPE_CHECKING:  # the commands import what they use when they run: `--help` stays fast
    from .calibre import Calibre
    from .calibre_inputs import CalibreInputs
    from .data import Sample
    from .engine import EpochReport, TrainConfig
    from .metrics import MetricAccumulator
    from .predictor import VesselPredictor

_T = TypeVar("_T")

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _progress(iterable: Iterable[_T], **kw: Any) -> Iterator[_T]:
    """``iterable`` with a progress bar on stderr."""
    bar: Iterator[_T] = _bar(iterable, **kw)
    return bar


def _bar(iterable: Iterable[Any] | None = None, **kw: Any) -> Any:
    """A tqdm bar on stderr (tqdm has no type information)."""
    from tqdm import tqdm

    return tqdm(iterable, file=sys.stderr, dynamic_ncols=True, disable=kw.pop("disable", False), **kw)


def _skip(message: str) -> None:
    """A one-line error about one input, on its own line even while a progress bar is drawn."""
    from tqdm import tqdm

    tqdm.write(f"error: {message}", file=sys.stderr)


def _predictor(args: argparse.Namespace) -> VesselPredictor:
    from .predictor import load_predictor

    return load_predictor(args.weights, device=args.device, tta=args.tta)


def _expand_inputs(
    inputs: list[str], folder_files: Callable[[Path], list[Path]] | None = None
) -> tuple[list[Path], list[str]]:
    """Files named, plus the images of folders named (by the data-set rule, or ``folder_files``): (files, problems)."""
    from .data import image_folders, list_images

    if folder_files is None:

        def folder_files(p: Path) -> list[Path]:
            return [f for folder in image_folders(p) for f in list_images(folder.images)]

    files: list[Path] = []
    problems: list[str] = []
    for item in inputs:
        p = Path(item)
        try:
            is_dir, exists = p.is_dir(), p.exists()
        except OSError as exc:  # a name longer than the file system takes, a folder that may not be looked into
            problems.append(f"{p}: {_problem(exc)}")
            continue
        if is_dir:
            found = folder_files(p)
            if not found:
                problems.append(f"{p}: folder contains no images")
            files.extend(found)
        elif exists:
            files.append(p)
        else:
            problems.append(f"{p}: file not found")
    return files, problems


def _problem(exc: OSError) -> str:
    return "file name too long" if exc.errno == errno.ENAMETOOLONG else (exc.strerror or str(exc))


def cmd_predict(args: argparse.Namespace) -> int:
    from .data import name_length, name_max
    from .imageio import mask_to_png, prob_to_png16, read_image, write_png_atomic

    out = Path(args.out)
    if out.is_file() or (out.is_symlink() and not out.exists()):
        raise RetinaInputError(out, "is a file, not a folder; --out names the folder the masks go to")
    files, problems = _expand_inputs(args.inputs)
    for msg in problems:
        print(f"error: {msg}", file=sys.stderr)
    predictor = _predictor(args)
    threshold = predictor.threshold if args.threshold is None else args.threshold
    failed = len(problems)
    seen: dict[str, Path] = {}
    inputs = {p.resolve() for p in files}
    longest_name = name_max(out)
    for path in _progress(files, desc="predict", unit="image"):
        if path.stem in seen:  # a.png and a.tif would both write DIR/a.png
            _skip(f"{path}: same name as {seen[path.stem]}; its outputs would overwrite; skipped")
            failed += 1
            continue
        seen[path.stem] = path
        targets = [out / f"{path.stem}.png", out / f"{path.stem}_prob.png"]
        too_long = next((t for t in targets if name_length(t.name) > longest_name), None)
        if too_long is not None:  # (and every look at it below would raise)
            _skip(
                f"{path}: file name too long for its output {too_long} ({name_length(too_long.name)} long, at "
                f"most {longest_name} in {out}); skipped"
            )
            failed += 1
            continue
        # --out pointed at the photos' own folder (or at a folder of corrected masks) must not cost a file.
        clash = next((t for t in targets if t.resolve() in inputs), None)
        if clash is not None:
            _skip(f"{path}: its mask would replace the input image {clash}; choose another --out; skipped")
            failed += 1
            continue
        in_the_way = next((t for t in targets if t.is_dir()), None)
        if in_the_way is not None:  # one image's problem, not the run's
            _skip(f"{path}: a folder is in the way of its output {in_the_way}; skipped")
            failed += 1
            continue
        existing = [t for t in targets if t.exists()]
        if existing and not args.overwrite:
            _skip(f"{path}: {existing[0]} already exists; pass --overwrite to replace it; skipped")
            failed += 1
            continue
        try:
            rgb = read_image(path)
            prob = predictor.predict(rgb)
        except RetinaInputError as exc:
            _skip(str(exc))
            failed += 1
            continue
        try:
            # The longer name first: if it is too long (the atomic write's temporary name is longer still), no
            # output of this image is written, rather than a mask without its probability map.
            write_png_atomic(out / f"{path.stem}_prob.png", prob_to_png16(prob))
            write_png_atomic(out / f"{path.stem}.png", mask_to_png(prob >= threshold))
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise  # a full disk or a read-only folder stops the run (main says so in one line)
            _skip(f"{path}: file name too long for its output {exc.filename}; skipped")
            failed += 1
    print(
        f"wrote {len(files) - (failed - len(problems))} of {len(files) + len(problems)} images to {out} "
        f"(model {predictor.description}, threshold {threshold:g}, {predictor.device_description})"
    )
    return EXIT_FAILED if failed else 0


def evaluate_samples(
    predictor: VesselPredictor,
    samples: list[Sample],
    threshold: float,
    fov_dir: Path | None = None,
    progress: bool = True,
) -> MetricAccumulator:
    from .data import _find_by_stem, fov_stems, load_sample, read_fov
    from .errors import DatasetError
    from .metrics import MetricAccumulator

    acc = MetricAccumulator(threshold=threshold)
    for s in _progress(samples, desc="evaluate", unit="image", disable=not progress):
        rgb, truth, _, _ = load_sample(s)
        fov = None
        if fov_dir is not None:
            fov_path = _find_by_stem(fov_dir, s.image.stem, fov_stems)
            if fov_path is None:
                raise DatasetError(s.image, f"has no FOV mask in {fov_dir}")
            fov = read_fov(fov_path, truth.shape)
        acc.add(s.name, predictor.predict(rgb), truth, fov)
    return acc


def _format_metrics_table(summary: dict[str, Any]) -> str:
    from .metrics import METRIC_NAMES

    lines = [f"{'':14}" + "".join(f"{k:>12}" for k in METRIC_NAMES)]
    for row in ("mean", "std", "pooled"):
        lines.append(f"{row:14}" + "".join(f"{summary[row][k]:12.4f}" for k in METRIC_NAMES))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import SPLIT_NAMES, discover

    if args.split not in SPLIT_NAMES:
        raise RetinaInputError(Path(args.data), f"--split {args.split!r} is not one of {', '.join(SPLIT_NAMES)}")
    samples = discover(args.data, split=args.split)
    if args.json:
        from .atomic import check_writable

        check_writable(args.json)  # a read-only --json folder is reported before the evaluation, not after it
    predictor = _predictor(args)
    threshold = predictor.threshold if args.threshold is None else args.threshold
    acc = evaluate_samples(predictor, samples, threshold, Path(args.fov) if args.fov else None)
    summary = acc.summary()
    summary.update(
        {
            "data": str(args.data),
            "split": args.split,
            "fov": args.fov or "whole image",
            "model": predictor.description,
            "weights_sha256": predictor.checkpoint.sha256,
            "tta": args.tta,
            "device": predictor.device_description,
        }
    )
    print(
        f"{len(samples)} images from {args.data} ({'inside FOV masks' if args.fov else 'whole image'}), "
        f"model {predictor.description}, threshold {threshold:g}"
    )
    print(_format_metrics_table(summary))
    if args.json:
        from .atomic import write_json_atomic

        write_json_atomic(args.json, summary)
    return 0


MAX_RESIZE = 12000  # px a side: larger than any fundus camera's photo; 40000x40000 ran out of 24 GiB unannounced


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if 8 <= w <= MAX_RESIZE and 8 <= h <= MAX_RESIZE:
            return w, h
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a size like 512x512 (8 to {MAX_RESIZE} px a side)")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import calibrate, held_out
    from .checkpoint import save_checkpoint
    from .data import discover
    from .metrics import THRESHOLD_GRID

    predictor = _predictor(args)
    ckpt = predictor.checkpoint
    samples = held_out([s for folder in args.data for s in discover(folder, split="train")], ckpt)
    result = calibrate(
        predictor, samples, args.resize or [], progress=lambda it: _progress(it, desc="calibrate", unit="image")
    )
    for key in result.renderings:
        curve = result.curves[key]
        print(f"{key:>10}: " + " ".join(f"{t:.2f}:{d:.4f}" for t, d in zip(THRESHOLD_GRID, curve, strict=True)))
    print(f"threshold {result.threshold:.2f} (was {ckpt.threshold:.2f}); held-out images: {', '.join(result.images)}")
    ckpt.metadata["threshold"] = result.threshold
    ckpt.metadata["threshold_calibration"] = {**result.to_dict(), "command": _command_line(args)}
    save_checkpoint(args.out, ckpt)
    print(f"saved {args.out}")
    return 0


def _split_train_val(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(samples))
    n_val = 0 if len(samples) < 2 or val_fraction <= 0 else max(1, round(len(samples) * val_fraction))
    val = [samples[i] for i in sorted(order[:n_val])]
    train = [samples[i] for i in sorted(order[n_val:])]
    return train, val


TRAINING_OPTIONS = (
    "epochs",
    "minutes",
    "steps_per_epoch",
    "batch_size",
    "patch_size",
    "lr",
    "weight_decay",
    "alpha",
    "beta",
    "gamma",
    "bce_weight",
    "cldice_weight",
    "patience",
    "seed",
    "device",
    "l2sp_weight",
    "encoder_lr_scale",
    "resample_p",
    "select_at_best_threshold",
    "ema_decay",
    "wise_keep",
    "rehearsal_share",
    "rehearsal_weight",
    "focus_share",
    "correction_weight",
)


def _given_training_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in TRAINING_OPTIONS if getattr(args, k, None) is not None}


def _train_config(args: argparse.Namespace) -> TrainConfig:
    from .engine import TrainConfig

    return TrainConfig(**_given_training_options(args))


def _setup_distributed() -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return True


def _end_distributed() -> None:
    """Leave the process group together. Without the barrier a rank that is done first (rank 1, while rank 0 is
    still writing the checkpoint) tears its gloo pairs down under a peer still using them, which can abort the
    peer's transport thread (SIGABRT). After an error the barrier is skipped: the other ranks may never reach it."""
    import torch.distributed as dist

    if sys.exc_info()[0] is None:
        dist.barrier()
    dist.destroy_process_group()


def _epoch_line(r: EpochReport) -> str:
    return (
        f"epoch {r.epoch}/{r.epochs} loss {r.train_loss:.4f} val_dice {r.val_dice:.4f} "
        f"val_auc {r.val_auc:.4f} best {r.best_dice:.4f} {r.elapsed_s:.0f}s{' *' if r.improved else ''}"
    )


class _TrainingProgress:
    """tqdm bar plus one log line per epoch; silent on ranks other than 0."""

    def __init__(self, total: int, desc: str, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = _bar(total=total, desc=desc, unit="step", disable=quiet)
        self.lines: list[str] = []

    def on_step(self, epoch: int, step: int, loss: float) -> None:
        self.bar.update(1)
        self.bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}")

    def on_epoch(self, r: EpochReport) -> None:
        line = _epoch_line(r)
        self.lines.append(line)
        if not self.quiet:
            self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import save_checkpoint
    from .data import discover, prepare_all
    from .engine import rank, train
    from .model import ModelConfig
    from .preprocess import PreprocessConfig
    from .training_state import state_path_for

    distributed = _setup_distributed()
    try:
        cfg = _train_config(args)
        train_s, val_s = [], []
        for folder in args.data:
            # Each data set holds out its own share, so every camera is validated on.
            t, v = _split_train_val(discover(folder, split="train"), args.val_fraction, cfg.seed)
            train_s += t
            val_s += v
        init = None
        if args.init:
            # Continue from earlier weights (a second training stage): their architecture and preprocessing win.
            from .checkpoint import load_checkpoint

            init = load_checkpoint(args.init)
            preprocess, model_config = init.preprocess, init.model_config
        else:
            preprocess = PreprocessConfig(fov_diameter=args.fov_diameter or None)
            model_config = ModelConfig.preset(args.preset)
        train_imgs, val_imgs = prepare_all(train_s, preprocess), prepare_all(val_s, preprocess)
        for f in args.train_resample or []:
            train_imgs += prepare_all(train_s, preprocess, resample=f)
        for f in args.val_resample or []:
            val_imgs += prepare_all(val_s, preprocess, resample=f)
        for k in range(args.camera_renderings):
            train_imgs += prepare_all(train_s, preprocess, camera=cfg.seed * 1000 + k)
        if args.camera_renderings:
            # Held-out renderings use seeds no training rendering has.
            val_imgs += prepare_all(val_s, preprocess, camera=cfg.seed * 1000 + 999)
        quiet = rank() != 0
        if not quiet:
            print(
                f"{len(train_imgs)} training and {len(val_imgs)} validation images from {', '.join(args.data)}; "
                f"validation: {', '.join(s.name for s in val_s) or 'none'}",
                file=sys.stderr,
            )
        progress = _TrainingProgress(cfg.epochs * cfg.steps_per_epoch, "train", quiet)
        meta = {
            "name": args.name,
            "version": args.version or "1",
            "data": str(args.data[0]) if len(args.data) == 1 else [str(d) for d in args.data],
            "camera_renderings": args.camera_renderings,
            "train_images": [s.name for s in train_s],
            "val_images": [s.name for s in val_s],
            "train_resample": args.train_resample or [],
            "val_resample": args.val_resample or [],
            "command": _command_line(args),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if init is not None:
            meta["init"] = {
                "sha256": init.sha256,
                "command": init.metadata.get("command"),
                "wall_s": init.metadata.get("wall_s"),
                "epochs_run": init.metadata.get("epochs_run"),
                "log": init.metadata.get("log"),
            }
        state_path = state_path_for(args.out)
        if args.resume and not quiet:
            print(f"resuming from {state_path}", file=sys.stderr)
        result = train(
            train_imgs,
            val_imgs,
            model_config,
            preprocess,
            cfg,
            init=init,
            on_epoch=progress.on_epoch,
            on_step=progress.on_step,
            metadata=meta,
            state_path=state_path,
            resume=args.resume,
        )
        progress.close()
        if not quiet:
            result.checkpoint.metadata["threshold"] = args.threshold if args.threshold is not None else result.threshold
            # From the history, not the lines printed: after a resume it holds the epochs before the interruption too.
            result.checkpoint.metadata["log"] = [_epoch_line(r) for r in result.history]
            save_checkpoint(args.out, result.checkpoint)
            state_path.unlink(missing_ok=True)  # the run is done: nothing is left to resume
            print(
                f"{result.stop_reason}; best validation Dice {result.best_val_dice:.4f} at epoch "
                f"{result.best_epoch} (threshold {result.checkpoint.metadata['threshold']:.2f}); "
                f"{result.wall_s / 60:.1f} min; saved {args.out}",
                file=sys.stderr,
            )
        return EXIT_FAILED if result.failed else 0
    finally:
        if distributed:
            _end_distributed()


EXIT_REJECTED = 3
EXIT_ASK = 4  # the gate leaves the choice to the grader: the version is saved, not activated


def cmd_finetune(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint, save_checkpoint
    from .data import discover
    from .engine import rank
    from .finetune import finetune, finetune_config

    distributed = _setup_distributed()
    try:
        parent = load_checkpoint(args.weights)
        samples = discover(args.data, split="train")
        cfg = finetune_config(parent, **_given_training_options(args))
        if args.minutes is not None and args.epochs is None:
            cfg.epochs = 10_000  # the time budget decides
        unreviewed = _listed_images(args.unreviewed) if args.unreviewed else None  # before the bar is drawn
        quiet = rank() != 0
        progress = _TrainingProgress(cfg.epochs * cfg.steps_per_epoch, "finetune", quiet)
        outcome = finetune(
            parent, samples, cfg, on_epoch=progress.on_epoch, on_step=progress.on_step, unreviewed=unreviewed
        )
        progress.close()
        if quiet:
            return 0
        ckpt = outcome.result.checkpoint
        ckpt.metadata.update(
            {
                "version": args.version or f"{parent.version}-finetuned",
                "log": progress.lines,
                "gate": {
                    **ckpt.metadata.get("gate", {}),
                    "accepted": outcome.accepted,
                    "verdict": outcome.verdict,
                    "reason": outcome.reason,
                    "val_dice_before": outcome.parent_dice,
                    "val_dice_after": outcome.new_dice,
                    "split": outcome.plan.note,
                    "val_images": [s.name for s in outcome.plan.val],
                    "wise_alpha": outcome.alpha,
                    "drift": outcome.drift,
                    "drift_source": outcome.drift_source,
                },
            }
        )
        save_checkpoint(args.out, ckpt)
        result = outcome.result
        print(
            f"{outcome.plan.note}; {result.stop_reason}; {result.wall_s / 60:.1f} min; saved {args.out}",
            file=sys.stderr,
        )
        # One line a script can read: the verdict first (accept, ask or reject), then why.
        print(f"gate: {outcome.verdict} ({outcome.reason})")
        if outcome.drift is not None:
            print(
                f"kept weights: {outcome.alpha:.1f} of the way from parent to fine-tuned; predictions on "
                f"{outcome.drift_source} change by {outcome.drift:.1%}"
            )
        if outcome.result.failed:
            return EXIT_FAILED
        return {"accept": 0, "ask": EXIT_ASK}.get(outcome.verdict, EXIT_REJECTED)
    finally:
        if distributed:
            _end_distributed()


def _listed_images(folder: str) -> list[Path]:
    from .data import _listed
    from .errors import DatasetError

    root = Path(folder)
    if root.is_file():
        raise DatasetError(root, "is a file; --unreviewed names a folder of photos")
    if not root.is_dir():
        raise DatasetError(root, "--unreviewed folder not found")
    return _listed(root / "images" if (root / "images").is_dir() else root)


def _number_in(
    accepts: Callable[[float], bool], what: str, convert: Callable[[str], float] = float
) -> Callable[[str], float]:
    """An argparse type: a number (``convert``: float or int) that ``accepts``, else a one-line error
    "'TEXT' is not WHAT"."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = float("nan")
        if not accepts(value):  # NaN fails every comparison
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


_size_factor = _number_in(lambda f: 0 < f < 1, "a size factor between 0 and 1")
_probability = _number_in(lambda t: 0 <= t <= 1, "a threshold between 0 and 1")
_decay = _number_in(lambda d: 0 <= d < 1, "a decay between 0 (off) and 1 (exclusive)")
_count = _number_in(lambda n: n >= 1, "a whole number of at least 1", int)
_minutes = _number_in(lambda m: 0 < m < float("inf"), "a number of minutes above 0")
_positive = _number_in(lambda x: 0 < x < float("inf"), "a number above 0")
_non_negative = _number_in(lambda x: 0 <= x < float("inf"), "a number of at least 0")
_whole_non_negative = _number_in(lambda n: n >= 0, "a whole number of at least 0", int)
# Every preset halves the patch at most 4 times on the way down, and the way up must meet the same sizes.
_patch = _number_in(lambda n: n >= 32 and n % 16 == 0, "a patch size of at least 32 px, a multiple of 16", int)
_fraction = _number_in(lambda f: 0 < f < 1, "a share between 0 and 1 (exclusive)")
_fov_px = _number_in(lambda d: d == 0 or 8 <= d <= 20000, "0 (off) or a diameter of 8 to 20000 px")


def _add_training_options(p: argparse.ArgumentParser, finetune: bool) -> None:
    if finetune:
        p.add_argument("data", help="data-set folder (images/ + masks/, or with train/; or photos + ground_truth/)")
    else:
        p.add_argument(
            "data",
            nargs="+",
            help="data-set folders (images/ + masks/, or with train/; or photos + ground_truth/); each gives "
            "its own share of held-out photos",
        )
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--epochs", type=_count)
    p.add_argument("--minutes", type=_minutes, help="wall-time budget")
    p.add_argument("--steps-per-epoch", type=_count)
    p.add_argument("--batch-size", type=_count)
    p.add_argument("--patch-size", type=_patch)
    p.add_argument("--lr", type=_positive)
    p.add_argument("--weight-decay", type=_non_negative)
    p.add_argument("--alpha", type=_non_negative, help="Focal-Tversky weight of false positives")
    p.add_argument("--beta", type=_non_negative, help="Focal-Tversky weight of false negatives")
    p.add_argument("--gamma", type=_positive)
    p.add_argument("--bce-weight", type=_non_negative)
    p.add_argument("--cldice-weight", type=_non_negative)
    p.add_argument("--patience", type=_count)
    p.add_argument("--seed", type=_whole_non_negative)
    p.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    p.add_argument(
        "--ema-decay",
        type=_decay,
        metavar="D",
        help="validate and save a moving average of the weights, horizon about 1/(1-D) steps; "
        f"0 turns it off (default: {'0.99' if finetune else 'off'})",
    )
    p.add_argument("--name", default="retina-vessels")
    p.add_argument(
        "--version",
        help="recorded in the checkpoint (default: "
        + ("the parent's version followed by -finetuned)" if finetune else "1)"),
    )
    if finetune:
        p.add_argument("--weights", required=True, help="checkpoint to start from")
        p.add_argument("--l2sp-weight", type=_non_negative)
        p.add_argument("--encoder-lr-scale", type=_non_negative)
        p.add_argument(
            "--wise-keep",
            type=_probability,
            metavar="K",
            help="keep the weights on the line from parent to fine-tuned that are closest to the parent "
            "and keep K of the best held-out gain (weight-space interpolation); 0 keeps the "
            "fine-tuned weights (default: 0.9)",
        )
        p.add_argument(
            "--unreviewed",
            metavar="FOLDER",
            help="photos nobody corrected (same camera or others): the drift on them is reported, "
            "and with --rehearsal-share they are rehearsed with the parent's confident labels",
        )
        p.add_argument(
            "--rehearsal-share",
            type=_probability,
            metavar="S",
            help="share of each batch drawn from rehearsal images labelled by the parent "
            "(synthetic photos, plus --unreviewed ones); 0 turns it off (default: 0.25)",
        )
        p.add_argument("--rehearsal-weight", type=_non_negative, help="weight of the rehearsal loss (default 1)")
        p.add_argument(
            "--focus-share",
            type=_probability,
            metavar="S",
            help="share of the corrections' patches centred where the parent's mask and the "
            "correction disagree (default: 0, patches anywhere in the FOV)",
        )
        p.add_argument(
            "--correction-weight",
            type=_positive,
            metavar="W",
            help="weight in the loss of the pixels where the parent's mask and the correction disagree, and "
            "of a 2-px margin around them, against 1 elsewhere; 1 weighs every pixel alike (default: 1)",
        )
    else:
        from .model import PRESETS

        p.add_argument(
            "--val-fraction", type=_fraction, default=0.2, help="share of training images held out for validation"
        )
        p.add_argument(
            "--threshold", type=_probability, help="record this threshold instead of the validation-optimal one"
        )
        p.add_argument("--init", help="start from this checkpoint's weights instead of random ones")
        p.add_argument(
            "--resample-aug",
            dest="resample_p",
            type=_probability,
            help="share of patches softened by a downsample-upsample round trip (photos saved small)",
        )
        p.add_argument(
            "--train-resample",
            type=_size_factor,
            action="append",
            metavar="F",
            help="also train on the training images as a resized data set stores them at F of their "
            "size (area-averaged photo, mask cut at half; repeatable)",
        )
        p.add_argument(
            "--val-resample",
            type=_size_factor,
            action="append",
            metavar="F",
            help="also validate on the held-out images resized to F of their size (repeatable)",
        )
        p.add_argument(
            "--camera-renderings",
            type=_whole_non_negative,
            default=0,
            metavar="N",
            help="also train on N renderings of each training photo as other cameras would take it (colour, "
            "gamma, contrast, illumination, blur, noise, JPEG, stored size, framing; model_core.camera), and "
            "validate on one of each held-out photo (default: 0)",
        )
        p.add_argument(
            "--select-at-best-threshold",
            action="store_true",
            default=None,
            help="pick the best epoch by validation Dice at its best threshold, not at 0.5",
        )

        p.add_argument(
            "--resume",
            action="store_true",
            help="carry on an interrupted run from the state it saved after its last epoch (OUT.state); "
            "give the same command otherwise",
        )
        p.add_argument("--preset", default="base", choices=list(PRESETS))
        p.add_argument(
            "--fov-diameter", type=_fov_px, default=540.0, help="FOV diameter images are rescaled to (0: off)"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="write binary masks and 16-bit probability maps")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--weights", help="checkpoint (default: the bundled model)")
    p.add_argument("--threshold", type=_probability, help="default: the model's recorded threshold")
    p.add_argument("--overwrite", action="store_true", help="replace masks already in the output folder")
    p.add_argument("--tta", action="store_true", help="average over flips")
    p.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="metrics of a model on a data set")
    p.add_argument("data")
    p.add_argument("--weights")
    p.add_argument("--fov", help="folder of FOV masks: metrics inside them (default: whole image)")
    p.add_argument("--json", help="also write the metrics as JSON here")
    p.add_argument("--split", default="test", help="sub-folder used when DATA has train/ and test/ (default: test)")
    p.add_argument("--threshold", type=_probability, help="default: the model's recorded threshold")
    p.add_argument("--tta", action="store_true", help="average over flips")
    p.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a model from scratch")
    _add_training_options(p, finetune=False)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("calibrate", help="choose a checkpoint's threshold on its held-out training photos")
    p.add_argument(
        "data", nargs="+", help="the data sets it was trained on (their train/ splits hold the held-out photos)"
    )
    p.add_argument("--weights", required=True, help="checkpoint to calibrate")
    p.add_argument("--out", required=True, help="checkpoint file to write (same weights, new threshold)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument(
        "--resize",
        type=_size,
        action="append",
        metavar="WxH",
        help="also score the photos resized to this size, as resized data sets store them (repeatable)",
    )
    p.add_argument("--tta", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("finetune", help="continue training a checkpoint on new images")
    _add_training_options(p, finetune=True)
    p.set_defaults(func=cmd_finetune)
    _add_measure_command(sub)
    return parser


def _command_line(args: argparse.Namespace) -> str:
    return " ".join(["python -m model_core", *args.argv])


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def _refuse_replacing_inputs(args: argparse.Namespace) -> None:
    """An output (``--out``, ``--json``) must never replace what the run reads, nor an existing checkpoint
    unasked: a checkpoint written over a training photo, or a failed run's weights over a good model, is
    work lost. Checked before any work."""
    if args.command in ("train", "finetune", "calibrate"):
        out, option = Path(args.out), "--out"
    elif args.command == "evaluate" and args.json:
        out, option = Path(args.json), "--json"
    else:
        return
    if not out.exists() or out.is_dir():
        return  # a folder is refused by check_writable with its own message
    from .imageio import is_image_file

    start = getattr(args, "weights", None) if args.command in ("finetune", "calibrate", "evaluate") else args.init
    if start and Path(start).exists() and Path(start).resolve() == out.resolve():
        what = (
            "the checkpoint this run reads"
            if args.command == "evaluate"
            else f"the checkpoint this {args.command} starts from"
        )
        raise RetinaInputError(out, f"is also {what}; choose another {option}")
    if is_image_file(out):  # a photo, a mask or a FOV mask of the data set, or any other picture
        raise RetinaInputError(out, f"is an image; choose another {option}")
    if option == "--json":
        if out.suffix.lower() in CHECKPOINT_SUFFIXES:
            raise RetinaInputError(out, "is a checkpoint; choose another --json")
    elif not args.overwrite:
        raise RetinaInputError(
            out,
            "already exists; pass --overwrite to replace it (the run would replace it "
            "even if it failed), or choose another --out",
        )


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()  # imports torch (the presets): a Ctrl+C this early is still just "interrupted"
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in checkpoints as the command that made them
    try:
        if getattr(args, "device", None):
            from .device import select_device

            select_device(args.device)  # a missing GPU is refused now, not after the data are loaded
        _refuse_replacing_inputs(args)
        if args.command in ("train", "finetune", "calibrate"):
            from .atomic import check_writable

            check_writable(args.out)  # not after an hour of training
        status: int = args.func(args)
        return status
    except RetinaInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # an output folder that is read-only, full or missing
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# --- measure: vessel measurements of masks (issue 16) ------------------------------------------------------------

# DRIVE names its FOV masks 01_test_mask.gif beside 01_test.png; other sets use the mask's own stem.
FOV_STEM_SUFFIXES = ("", "_mask", "_fov")


def _add_measure_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "measure",
        help="vessel measurements of binary masks, as CSV",
        description="Vessel density, fractal dimension, tortuosity, mean width and the segment, "
        "branch-point and end-point counts of each mask (README: Vessel measurements).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="mask files or folders of masks")
    p.add_argument(
        "--fov",
        metavar="DIR",
        help="folder of FOV masks, paired with the masks by file name stem "
        "(STEM, STEM_mask or STEM_fov); density is then vessel pixels / FOV pixels",
    )
    p.add_argument("--csv", required=True, metavar="FILE", help="CSV file to write")
    calibre = p.add_argument_group(
        "calibre (CRAE, CRVE and AVR in zone B, revised Knudtson formula)",
        "Given --disc, the CSV gains the columns crae, crve, avr, n_arterioles, n_venules and calibre_method.",
    )
    calibre.add_argument(
        "--disc",
        metavar="FILE|auto",
        help="CSV image,x,y,diameter (pixels; image = the mask's stem), or 'auto' to detect the disc on the "
        "photos in --images; a mask the file does not list gets empty calibre values",
    )
    calibre.add_argument(
        "--av",
        metavar="DIR",
        help="folder of 8-bit A/V masks with the masks' stems (0 background, 1 artery, 2 vein, 3 uncertain); "
        "without it the automatic A/V suggestion is used (needs --images)",
    )
    calibre.add_argument(
        "--images", metavar="DIR", help="folder of the photos, paired by stem (for --disc auto and the A/V suggestion)"
    )
    calibre.add_argument(
        "--av-model",
        metavar="FILE",
        help="suggest the A/V labels with a network a workspace's labels taught (Edit > Teach artery/vein; "
        "<workspace>/.retina/artery_vein_model.pt) instead of the automatic suggestion",
    )
    scale = calibre.add_mutually_exclusive_group()
    scale.add_argument("--um-per-px", type=_positive, help="calibre in um: the scale")
    scale.add_argument("--disc-um", type=_positive, help="calibre in um: the disc's assumed diameter (1800 is common)")
    p.set_defaults(func=cmd_measure)


def _mask_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    from .data import list_images

    return _expand_inputs(inputs, folder_files=list_images)  # a folder of masks is read flat


def _fov_index(folder: Path) -> dict[str, Path]:
    from .data import list_images

    if not folder.is_dir():
        raise RetinaInputError(folder, "FOV folder not found")
    index: dict[str, Path] = {}
    for p in list_images(folder):
        index.setdefault(p.stem, p)
    return index


def _calibre_inputs(args: argparse.Namespace) -> CalibreInputs | None:
    if not args.disc:
        return None
    from .calibre_inputs import CalibreInputs

    return CalibreInputs.from_args(args.disc, args.av, args.images, args.um_per_px, args.disc_um, args.av_model)


def cmd_measure(args: argparse.Namespace) -> int:
    from .atomic import check_writable
    from .imageio import read_mask, read_vessel_mask
    from .morphometry import measure, write_measurements_csv

    if (args.av or args.images or args.um_per_px or args.disc_um or args.av_model) and not args.disc:
        raise RetinaInputError(
            None, "--av, --av-model, --images, --um-per-px and --disc-um are for calibre: give --disc FILE|auto"
        )
    files, problems = _mask_inputs(args.inputs)
    target = Path(args.csv)
    if target.exists() and any(target.resolve() == f.resolve() for f in files):
        raise RetinaInputError(target, "is one of the input masks; choose another --csv")
    fovs = _fov_index(Path(args.fov)) if args.fov else None
    calibre = _calibre_inputs(args)
    check_writable(target)  # a read-only folder is reported before the measuring, not after it
    for msg in problems:
        print(f"error: {msg}", file=sys.stderr)
    failed = len(problems)
    rows = []
    calibres: list[Calibre] = []
    for path in _progress(files, desc="measure", unit="mask"):
        try:
            mask = read_vessel_mask(path)
            fov = None
            if fovs is not None:
                fov_path = next((fovs[path.stem + s] for s in FOV_STEM_SUFFIXES if path.stem + s in fovs), None)
                if fov_path is None:
                    raise RetinaInputError(path, f"has no FOV mask in {args.fov}")
                fov = read_mask(fov_path)
                require_same_size(fov_path, "FOV mask", fov.shape, path.name, mask.shape)
        except RetinaInputError as exc:
            _skip(f"{exc}; skipped")
            failed += 1
            continue
        rows.append((str(path), measure(mask, fov)))
        if calibre is not None:
            result, problem = calibre.calibre_for(path, mask, fov)
            if problem:
                _skip(f"{problem}; calibre left empty")
            calibres.append(result)
    if calibre is None:
        write_measurements_csv(target, rows)
    else:
        from .atomic import write_bytes_atomic
        from .morphometry import measurements_with_calibre_csv

        table = measurements_with_calibre_csv((i, m, c) for (i, m), c in zip(rows, calibres, strict=True))
        write_bytes_atomic(target, table.encode("utf-8"))
    print(f"measured {len(rows)} of {len(files) + len(problems)} masks; wrote {target}")
    return EXIT_FAILED if failed else 0
