"""An artery/vein classifier the grader's labels teach: a small Attention U-Net over the photo's colour.

``model_core.artery_vein``'s suggestion is unsupervised, and the logistic regression over its seven segment
features that labels could teach gained almost nothing (DRIVE test 06-20: 0.760 -> 0.762, taught by 01-05). The
features are per-segment means; what a grader sees is the colour across and along a vessel in its surroundings,
which a network learns from a few photos. Measured with ``benchmarks/bench_calibre.py`` (DRIVE test,
taught by the reference labels of 01-05, judged on 06-20, artery and vein centre-line pixels in zone C; the
design's steps with ``benchmarks/study_av_net.py``):

- per pixel, the network alone: 0.794; its logit averaged over each skeleton segment: 0.807;
- then carried along the vessels by ``artery_vein.propagate`` (the same links and belief propagation as the
  unsupervised suggestion): 0.839 in that experiment, and **0.844** as shipped (uncertain pixels left untaught),
  against 0.760 unsupervised and 0.762 for the taught regression; with the detected disc the AVR of its labels
  differs from the reference's by 0.060 on average (0.137 with the automatic labels, the same 14 photos). Centring the
  segment scores at the area balance point first, as the unsupervised score is, lost (0.825), so it is not done.
- trained on the unsupervised suggestion's confident half of DRIVE train's segments instead of a grader's labels
  (self-training, no labels at all): 0.670, worse than the suggestion it learned from, so the unlabelled
  workspace keeps the unsupervised suggestion.

Input (``av_inputs``), at the vessel model's FOV scale (``FOV_DIAMETER``, so a 3504x2336 photo costs what a DRIVE
photo costs): the red, green and blue channels each divided by their local background (the non-vessel FOV pixels,
Gaussian sigma ``BACKGROUND_SIGMA``) less 1, and the vessel mask. Output: one logit per pixel, artery where > 0.
The loss is binary cross-entropy on the labelled vessel pixels only (artery 1, vein 2; uncertain 3 and background
are not taught). Training (``teach``): random ``CROP`` crops holding labelled vessels, rotations, flips and a
per-channel gain (the camera's white balance), AdamW with a one-cycle schedule.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from .artery_vein import AVSuggestion, suggest_av
from .calibre import ARTERY, VEIN
from .checkpoint import save_payload, weights_sha256
from .errors import CheckpointError
from .gate import BOOTSTRAP_RESAMPLES, CONFIDENCE, MIN_PHOTOS_TO_ACCEPT
from .model import AttentionUNet, ModelConfig, pad_to_multiple
from .preprocess import PreprocessConfig, estimate_fov, resize_to_scale, scale_factor

FORMAT_NAME = "retina-desktop-av-net"
FORMAT_VERSION = 1
AV_INPUT_CHANNELS = 4  # red, green, blue (each over its background), vessel mask
WIDTHS = (16, 32, 64, 128)  # 0.49 M parameters
FOV_DIAMETER = 540.0  # the bundled vessel model's scale; DRIVE's FOV is about 540 px across
BACKGROUND_SIGMA = 8.0
CHANNEL_GAIN = 3.0  # the background-relative colour is within +-0.3 of 0: spread it to about unit scale
CROP = 160
BATCH = 8
# 1500 steps: the DRIVE figures above, about 16 min on 2 cores (750 steps: 0.830 and AVR 0.063, in 9 min).
TEACH_STEPS = 1500
LEARNING_RATE = 3e-3
MIN_LABELLED_PIXELS = 50  # a crop with fewer labelled vessel pixels is drawn again

Progress = Callable[[int, int], None]


def av_config() -> ModelConfig:
    return ModelConfig(widths=WIDTHS, in_channels=AV_INPUT_CHANNELS)


def build_av_net() -> AttentionUNet:
    return AttentionUNet(av_config())


def _scale(fov: NDArray[np.bool_]) -> float:
    return scale_factor(fov, PreprocessConfig(fov_diameter=FOV_DIAMETER))


def av_inputs(rgb: NDArray[np.generic], vessels: NDArray[np.bool_], fov: NDArray[np.bool_]) -> NDArray[np.float32]:
    """The network's (4, H, W) input at the photo's own size (``scaled`` brings it to FOV_DIAMETER)."""
    background = ((~vessels) & fov).astype(np.float32)
    den = cv2.GaussianBlur(background, (0, 0), BACKGROUND_SIGMA)
    planes = []
    for c in range(3):
        channel = np.asarray(rgb[..., c], np.float32)
        num = cv2.GaussianBlur(channel * background, (0, 0), BACKGROUND_SIGMA)
        back = np.maximum(num / np.maximum(den, 1e-3), 1.0)
        planes.append(np.where(fov, channel / back - 1.0, 0.0) * CHANNEL_GAIN)
    planes.append(vessels.astype(np.float32))
    return np.stack(planes).astype(np.float32)


@dataclass
class AVExample:
    """One photo at the network's scale: its input and its labels (0 untaught, 1 artery, 2 vein)."""

    inputs: NDArray[np.float32]
    labels: NDArray[np.uint8]
    name: str = ""


def scaled(
    rgb: NDArray[np.generic], vessels: NDArray[np.generic], fov: NDArray[np.generic] | None
) -> tuple[NDArray[np.float32], float]:
    """The input at FOV_DIAMETER and the factor it was scaled by."""
    mask = np.asarray(vessels, np.bool_)
    if fov is None or np.shape(fov) != mask.shape:  # as teaching from a workspace does: its photos come without one
        field_ = np.asarray(estimate_fov(np.ascontiguousarray(rgb[..., :3])), np.bool_)
    else:
        field_ = np.asarray(fov, np.bool_)
    s = _scale(field_)
    rgb_s = resize_to_scale(np.ascontiguousarray(rgb[..., :3]), s)
    mask_s = resize_to_scale(mask.astype(np.float32), s) >= 0.5
    fov_s = resize_to_scale(field_.astype(np.float32), s) >= 0.5
    return av_inputs(rgb_s, mask_s, fov_s), s


def example(
    rgb: NDArray[np.generic],
    vessels: NDArray[np.generic],
    fov: NDArray[np.generic] | None,
    labels: NDArray[np.uint8],
    name: str = "",
) -> AVExample:
    """A labelled photo (labels: the A/V mask, 0-3, of the vessel mask's size) for ``teach``."""
    if np.shape(labels) != np.shape(vessels):
        what = name or "A/V labels"
        raise ValueError(f"{what}: labels {np.shape(labels)} and vessel mask {np.shape(vessels)} differ in size")
    x, s = scaled(rgb, vessels, fov)
    taught = np.where((labels == ARTERY) | (labels == VEIN), labels, 0).astype(np.uint8)
    taught = resize_to_scale(taught, s, cv2.INTER_NEAREST)
    taught = np.where(x[3] > 0, taught, 0).astype(np.uint8)
    return AVExample(x, taught, name)


def _crop(ex: AVExample, rng: np.random.Generator) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    h, w = ex.inputs.shape[1:]
    size_h, size_w = min(CROP, h), min(CROP, w)
    r = col = 0
    for _ in range(20):
        r, col = int(rng.integers(0, h - size_h + 1)), int(rng.integers(0, w - size_w + 1))
        if np.count_nonzero(ex.labels[r : r + size_h, col : col + size_w]) >= MIN_LABELLED_PIXELS:
            break
    x = ex.inputs[:, r : r + size_h, col : col + size_w]
    y = ex.labels[r : r + size_h, col : col + size_w]
    k = int(rng.integers(4))
    x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
    if rng.random() < 0.5:
        x, y = x[:, :, ::-1], y[:, ::-1]
    x = x.copy()
    x[:3] *= (1.0 + 0.15 * rng.standard_normal(3)).astype(np.float32)[:, None, None]
    if x.shape[1:] != (CROP, CROP):  # a photo smaller than a crop: padded, the padding untaught
        ph, pw = CROP - x.shape[1], CROP - x.shape[2]
        x = np.pad(x, ((0, 0), (0, ph), (0, pw)))
        y = np.pad(y, ((0, ph), (0, pw)))
    return x, np.ascontiguousarray(y)


@dataclass
class TeachResult:
    net: AttentionUNet
    steps: int  # steps done (fewer than asked when cancelled)
    final_loss: float
    cancelled: bool = False


def teach(
    examples: list[AVExample],
    steps: int = TEACH_STEPS,
    seed: int = 0,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> TeachResult:
    """Train a fresh network on ``examples``' labelled vessel pixels."""
    usable = [e for e in examples if np.count_nonzero(e.labels) > 0]
    if not usable:
        raise ValueError("no artery or vein labels to learn from")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_av_net()
    opt = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LEARNING_RATE, total_steps=steps, pct_start=0.1)
    net.train()
    loss_value, done, stopped = math.nan, 0, False
    while done < steps:
        if cancelled():
            stopped = True
            break
        batch = [_crop(usable[int(rng.integers(len(usable)))], rng) for _ in range(BATCH)]
        y = torch.from_numpy(np.stack([b[1] for b in batch]).astype(np.int64))
        taught = y > 0
        if not bool(taught.any()):  # sparse labels: every crop missed them; draw again (a step is a taught batch)
            continue
        x = torch.from_numpy(np.stack([b[0] for b in batch]))
        logit = net(x)[:, 0]
        loss = F.binary_cross_entropy_with_logits(logit[taught], (y[taught] == ARTERY).float())
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        schedule.step()
        loss_value, done = float(loss.item()), done + 1
        if not math.isfinite(loss_value):
            raise ValueError("artery/vein training diverged (the loss is not a number)")
        if progress is not None and (done % 10 == 0 or done == steps):
            progress(done, steps)
    net.eval()
    return TeachResult(net, done, loss_value, cancelled=stopped)


def pixel_logits(
    net: AttentionUNet, rgb: NDArray[np.generic], vessels: NDArray[np.generic], fov: NDArray[np.generic] | None
) -> NDArray[np.float32]:
    """The network's artery logit per pixel at the photo's size (the mean of the photo and its mirror image)."""
    x, s = scaled(rgb, vessels, fov)
    h, w = x.shape[1:]
    t = pad_to_multiple(torch.from_numpy(x)[None], 2**net.config.depth)
    with torch.inference_mode():
        out = (net(t)[0, 0] + net(t.flip(-1))[0, 0].flip(-1))[:h, :w] / 2
    logit = out.numpy().astype(np.float32)
    height, width = np.shape(vessels)[:2]
    if s != 1.0 or logit.shape != (height, width):
        logit = cv2.resize(logit, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(logit, np.float32)


# ------------------------------------------------------------------------------------------------ the file --
@dataclass
class AVNet:
    """A taught network and what it was taught on and judged by (``metadata``: examples, steps, evidence)."""

    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)

    def build(self) -> AttentionUNet:
        net = build_av_net()
        net.load_state_dict(self.state_dict)
        net.eval()
        return net

    @classmethod
    def of(cls, net: AttentionUNet, metadata: dict[str, Any] | None = None) -> AVNet:
        state = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in net.state_dict().items()}
        return cls(state, dict(metadata or {}))


def save_av_net(path: str | os.PathLike[str], model: AVNet) -> Path:
    """Written atomically: an interrupted save leaves the former file."""
    path = Path(path)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model_config": av_config().to_dict(),
        "state_dict": model.state_dict,
        "metadata": model.metadata,
        "sha256": weights_sha256(model.state_dict),
    }
    return save_payload(path, payload)


def load_av_net(path: str | os.PathLike[str]) -> AVNet:
    """Read with ``weights_only=True`` (data, never code); a damaged or foreign file raises CheckpointError
    naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "artery/vein model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many types for truncated/foreign/unsafe files
        raise CheckpointError(path, "not a loadable artery/vein model (corrupt, truncated or foreign)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(path, "not a Retina Desktop artery/vein model")
    version = payload.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(path, f"artery/vein model format {version!r} is not one this program reads")
    state, metadata = payload.get("state_dict"), payload.get("metadata", {})
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, "artery/vein model has no weights")
    if payload.get("sha256") != weights_sha256(state):
        raise CheckpointError(path, "weights do not match their recorded sha256 (file damaged)")
    model = AVNet(state, dict(metadata) if isinstance(metadata, dict) else {})
    try:
        model.build()
    except RuntimeError:
        raise CheckpointError(path, "weights do not fit the artery/vein network") from None
    return model


# ------------------------------------------------------------------------------------------------ the gate --
AUTOMATIC = "the automatic suggestion"
IN_USE = "the taught suggestion in use"


@dataclass
class AVEvidence:
    """The taught suggestion against the one it would replace (``baseline``: the automatic suggestion, or the taught
    network in use) on held-out labelled photos, pixel by pixel on the skeleton; the bootstrap resamples the vessel
    segments (``model_core.gate``'s resamples and confidence)."""

    photos: int
    segments: int
    pixels: int
    before: float  # the baseline's accuracy on the held-out artery/vein skeleton pixels
    taught: float
    gain_low: float
    gain_high: float
    baseline: str = AUTOMATIC

    @property
    def gain(self) -> float:
        return self.taught - self.before

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AVEvidence:
        def number(key: str) -> float:
            v = d.get(key)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan

        return cls(
            int(d.get("photos", 0) or 0), int(d.get("segments", 0) or 0), int(d.get("pixels", 0) or 0),
            number("before"), number("taught"), number("gain_low"), number("gain_high"),
            str(d.get("baseline", AUTOMATIC)),
        )  # fmt: skip

    def sentence(self) -> str:
        photos = f"{self.photos} held-out photo{'s' if self.photos != 1 else ''}"
        return (
            f"judged on {photos} ({self.segments} vessel pieces) against {self.baseline}: artery/vein accuracy "
            f"{self.before:.2f} -> "
            f"{self.taught:.2f} ({self.gain:+.2f}, interval {self.gain_low:+.2f} to {self.gain_high:+.2f})"
        )


def segment_hits(
    graph_label: NDArray[np.integer],
    rows: NDArray[np.integer],
    cols: NDArray[np.integer],
    segments: int,
    predicted: NDArray[np.uint8],
    labels: NDArray[np.uint8],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per segment (rows 0..segments): the artery/vein-labelled skeleton pixels and how many ``predicted`` gets
    right."""
    seg = np.maximum(np.asarray(graph_label), 0).astype(np.int64)
    truth, guess = labels[rows, cols], predicted[rows, cols]
    judged = (truth == ARTERY) | (truth == VEIN)
    n = np.bincount(seg, weights=judged.astype(np.float64), minlength=segments + 1)
    right = np.bincount(seg, weights=(judged & (guess == truth)).astype(np.float64), minlength=segments + 1)
    n[0] = right[0] = 0
    return n.astype(np.int64), right.astype(np.int64)


def paired_accuracy_gain(
    n: NDArray[np.int64], unsupervised: NDArray[np.int64], taught: NDArray[np.int64], seed: int = 0
) -> tuple[float, float, float, float, int]:
    """(unsupervised accuracy, taught accuracy, gain interval low, high, segments used) over the segments with
    labelled pixels: a paired bootstrap resampling segments."""
    used = n > 0
    n, unsupervised, taught = n[used], unsupervised[used], taught[used]
    k = int(n.size)
    if k == 0:
        return math.nan, math.nan, math.nan, math.nan, 0
    pick = np.random.default_rng(seed).integers(0, k, size=(BOOTSTRAP_RESAMPLES, k))
    total = n[pick].sum(axis=1)
    gains = (taught[pick].sum(axis=1) - unsupervised[pick].sum(axis=1)) / total
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(gains, [tail, 1 - tail])
    return float(unsupervised.sum() / n.sum()), float(taught.sum() / n.sum()), float(low), float(high), k


def decide_av(evidence: AVEvidence | None) -> tuple[str, str]:
    """(verdict, reason): reject when worse or unjudged, accept when the gain is clear of zero on
    ``gate.MIN_PHOTOS_TO_ACCEPT`` held-out photos, ask otherwise (the fine-tuning gate's rules)."""
    if evidence is None or evidence.pixels == 0 or math.isnan(evidence.taught):
        return "reject", "no held-out artery/vein labels to judge it on"
    said = evidence.sentence()
    if evidence.gain < 0:
        return "reject", f"worse: {said}"
    doubts = []
    if evidence.photos < MIN_PHOTOS_TO_ACCEPT:
        doubts.append(f"fewer than {MIN_PHOTOS_TO_ACCEPT} held-out photos")
    if not evidence.gain_low > 0:
        doubts.append("the gain is not clear of zero")
    if doubts:
        return "ask", f"{'; '.join(doubts)}: {said}"
    return "accept", f"better: {said}"


# ------------------------------------------------------------------------------------- teach and judge --
@dataclass
class LabelledPhoto:
    """A photo the grader labelled: its vessel mask (the saved one), FOV and A/V mask (0-3)."""

    name: str
    rgb: NDArray[np.uint8]
    vessels: NDArray[np.bool_]
    fov: NDArray[np.bool_] | None
    labels: NDArray[np.uint8]


MIN_PHOTOS_TO_TEACH = 2  # one to learn from and one to judge on


def held_out_count(photos: int) -> int:
    """Photos kept back to judge on: one in four, at least one (5 labelled: 4 teach, 1 judges)."""
    return max(1, photos // 4)


@dataclass
class TaughtAV:
    model: AVNet
    verdict: str  # accept, ask, reject
    reason: str
    evidence: AVEvidence | None
    cancelled: bool = False


def taught_suggestion(
    net: AttentionUNet, rgb: NDArray[np.generic], vessels: NDArray[np.generic], fov: NDArray[np.generic] | None
) -> NDArray[np.uint8]:
    """The A/V label image the taught network suggests for a photo and its vessel mask."""
    return _taught(net, rgb, vessels, fov).labels


def _taught(
    net: AttentionUNet, rgb: NDArray[np.generic], vessels: NDArray[np.generic], fov: NDArray[np.generic] | None
) -> AVSuggestion:
    return suggest_av(rgb, vessels, fov, pixel_score=pixel_logits(net, rgb, vessels, fov))


def judge(
    net: AttentionUNet,
    held_out: list[LabelledPhoto],
    baseline: AttentionUNet | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> AVEvidence | None:
    """The taught suggestion against ``baseline``'s (the automatic one when None) on ``held_out``'s labelled
    skeleton pixels; None when cancelled between photos."""
    none = np.zeros(0, np.int64)
    ns, befores, taughts = [none], [none], [none]
    for p in held_out:
        if cancelled():
            return None
        before = suggest_av(p.rgb, p.vessels, p.fov) if baseline is None else _taught(baseline, p.rgb, p.vessels, p.fov)
        taught = _taught(net, p.rgb, p.vessels, p.fov)
        g = before.graph  # the same mask, so the same segments for both
        n, right_before = segment_hits(g.label, g.rows, g.cols, g.segments, before.labels, p.labels)
        _, right_taught = segment_hits(g.label, g.rows, g.cols, g.segments, taught.labels, p.labels)
        ns.append(n)
        befores.append(right_before)
        taughts.append(right_taught)
    n_all = np.concatenate(ns)
    a, t, low, high, k = paired_accuracy_gain(n_all, np.concatenate(befores), np.concatenate(taughts))
    return AVEvidence(len(held_out), k, int(n_all.sum()), a, t, low, high, AUTOMATIC if baseline is None else IN_USE)


def teach_from_labels(
    photos: list[LabelledPhoto],
    steps: int = TEACH_STEPS,
    seed: int = 0,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    in_use: AVNet | None = None,
) -> TaughtAV:
    """Teach on all but ``held_out_count`` of ``photos`` (the last ones in the order given), judge on those
    against what it would replace (``in_use``, the taught network in use, else the automatic suggestion: a new
    network never silently displaces a better one), and give the gate's verdict. The network kept is the one
    judged. The one in use may have been taught on the photos now held out, which favours it: a conservative
    comparison."""
    labelled = [p for p in photos if np.count_nonzero((p.labels == ARTERY) | (p.labels == VEIN)) > 0]
    if len(labelled) < MIN_PHOTOS_TO_TEACH:
        raise ValueError(
            f"label arteries and veins on at least {MIN_PHOTOS_TO_TEACH} photos first "
            f"({len(labelled)} labelled): one teaches, one judges"
        )
    keep = held_out_count(len(labelled))
    teach_on, judge_on = labelled[:-keep], labelled[-keep:]
    examples = [example(p.rgb, p.vessels, p.fov, p.labels, p.name) for p in teach_on]
    result = teach(examples, steps, seed, progress, cancelled)
    metadata: dict[str, Any] = {
        "taught_on": [p.name for p in teach_on],
        "judged_on": [p.name for p in judge_on],
        "steps": result.steps,
        "final_loss": result.final_loss,
        "seed": seed,
    }
    if result.cancelled:
        return TaughtAV(AVNet.of(result.net, metadata), "reject", "cancelled before it finished", None, True)
    evidence = judge(result.net, judge_on, in_use.build() if in_use is not None else None, cancelled)
    if evidence is None:
        return TaughtAV(AVNet.of(result.net, metadata), "reject", "cancelled before it finished", None, True)
    verdict, reason = decide_av(evidence)
    metadata.update(verdict=verdict, reason=reason, evidence=evidence.to_dict())
    return TaughtAV(AVNet.of(result.net, metadata), verdict, reason, evidence)
