"""The fine-tune run itself, executed in a child process, and the pieces the dialog needs. Qt-free.

Why a child process (``multiprocessing`` "spawn") rather than a thread of the app's pool:

* the UI stays smooth: a training loop holds the GIL between torch kernels (sampling, augmentation,
  the optimiser's Python code), which on a 2-core machine makes painting stutter; a process has its
  own interpreter and runs with one core fewer than the machine has;
* cancel is immediate and unconditional: the engine's cooperative cancel is tried first (it is
  checked between steps) and the process is terminated if it has not ended 1.5 s later, so a slow
  step or a long validation pass cannot delay it;
* failures are contained: an exception, a NaN loss, running out of memory, even a hard crash of the
  native code (segfault, the OS killing it) only ends the child; the app reads its exit code.

The child never touches the active model: it only adds a version to the store (``activate=False``);
the app activates it after reading the outcome, and never after the grader cancelled. Messages go
back through a ``multiprocessing.Queue`` as the small dataclasses below (plain data, picklable), polled
by a Qt timer; every run ends in exactly one ``Done`` or ``Failed``.
The cost is a start-up of about 2 s (a fresh interpreter importing torch) per run.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, cast

if TYPE_CHECKING:  # importing model_core.data at start-up would load albumentations before the window shows
    from model_core.data import Sample
    from model_core.engine import CancelToken, EpochReport

    from ..workspace import Workspace

FAULT_ENV = "RETINA_DESKTOP_FINETUNE_FAULT"  # test hook, read in the child: raise | nan | oom | crash
DEFAULT_MINUTES = {"cuda": 3.0, "mps": 5.0, "cpu": 10.0}
DEFAULT_EPOCHS = 30
TIME_MODE_MAX_EPOCHS = 500  # with a time budget the clock (or early stopping) ends the run
# A background run (Keep learning) must never slow painting: one torch thread, so it takes at most one core, and a
# lower scheduling priority, so the UI's threads win that core whenever they want it (bench_gui --with-training).
BACKGROUND_THREADS = 1
BACKGROUND_NICE = 10  # POSIX niceness added; Windows gets its "below normal" priority class

TrainOverrides = dict[str, Any]  # TrainConfig fields by name, as ``finetune_config(**overrides)`` takes them


def corrected_samples(workspace: Workspace) -> list[Sample]:
    """The approved images whose ground-truth mask is on disk, in workspace order."""
    from model_core.data import Sample

    out: list[Sample] = []
    for e in workspace.entries:
        if workspace.status(e.key) != "approved":
            continue
        gt = e.existing_gt()
        if gt is not None:
            out.append(Sample(e.path, gt))
    return out


def unreviewed_photos(workspace: Workspace, limit: int = 8) -> list[str]:
    """Photos nobody has edited or approved, spread over the workspace: the fine-tune's rehearsal material
    and where its drift is measured (model_core.forgetting). At most ``limit``: labelling them costs time."""
    keys = [e for e in workspace.entries if workspace.status(e.key) in ("new", "predicted")]
    step = max(1, -(-len(keys) // limit))
    return [str(e.path) for e in keys[::step][:limit]]


def kept_model_words(info: Mapping[str, object]) -> list[str]:
    """What the kept model is, in a grader's words: its blend of new and previous weights and how much it
    changes predictions elsewhere. ``info``: a Done outcome, or the same keys from a version's record."""
    words: list[str] = []
    alpha = info.get("alpha")
    if isinstance(alpha, (int, float)) and 0 < alpha < 1:
        words.append(
            f"a {alpha:.0%} / {1 - alpha:.0%} blend of the fine-tuned and the previous model, which "
            "scored as well on your held-out corrections and stays closer to the previous model elsewhere"
        )
    drift = info.get("drift")
    if isinstance(drift, (int, float)):
        where = (
            "other photos in this workspace"
            if info.get("drift_source") == "unreviewed photos"
            else "synthetic test photos"
        )
        words.append(f"changes predictions on {where} by {drift:.1%}")
    return words


def training_threads() -> int:
    """Leave one core to the UI."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class Started:
    device: str
    pid: int
    threads: int = 0  # torch's intra-op threads in the child, as it reports them
    niceness: int | None = None  # the child's niceness after lowering it (None: not a POSIX system)


@dataclass(frozen=True)
class Plan:
    train: int
    val: int
    note: str


@dataclass(frozen=True)
class Note:
    """Something the grader should know that does not stop the run (e.g. images left out)."""

    text: str


@dataclass(frozen=True)
class Step:
    epoch: int
    step: int
    loss: float
    elapsed: float  # seconds since training began


class EpochReportDict(TypedDict):
    """``model_core.engine.EpochReport`` as plain data (``dataclasses.asdict``)."""

    epoch: int
    epochs: int
    train_loss: float
    val_dice: float
    val_auc: float
    best_dice: float
    elapsed_s: float
    eta_s: float
    improved: bool


@dataclass(frozen=True)
class Epoch:
    report: EpochReportDict


class _DoneFields(TypedDict):
    accepted: bool  # the gate's verdict is "accept": the app activates the new version by itself
    verdict: str  # "accept", "ask" (activated only on the grader's click) or "reject" (kept, unused)
    reason: str  # the gate's words
    evidence: str | None  # the evidence in one sentence (model_core.gate.GateEvidence.sentence)
    stop_reason: str  # the engine's: "completed", "cancelled", "non-finite loss …"
    failed: bool
    cancelled: bool
    parent_dice: float | None  # held-out Dice before and after (None: not measured)
    new_dice: float | None
    version: str | None  # the store version added (never activated by the child)
    version_path: str | None
    train: int  # images trained on and validated on
    val: int
    note: str
    shared: bool  # one image, training and validating
    wall_s: float
    epochs_run: int
    device: str
    missing: list[str]  # images no longer on disk, left out
    alpha: float  # the blend of fine-tuned and parent weights kept
    drift: float | None
    drift_source: str
    drift_images: int | None


class DoneOutcome(_DoneFields, total=False):
    """What a finished run reports (``child_main``); ``activated`` is set by the app once it has tried."""

    activated: bool


@dataclass(frozen=True)
class Done:
    outcome: DoneOutcome


@dataclass(frozen=True)
class Failed:
    message: str  # one line for the user
    kind: str  # "out_of_memory" | "missing_file" | "error", from the exception's type
    traceback: str = ""


ChildMessage = Started | Plan | Note | Step | Epoch | Done | Failed


class FinetuneJobDict(TypedDict):
    """``FinetuneJob.as_dict()``: what ``child_main`` gets (plain data, picklable)."""

    parent_path: str
    parent_id: str | None
    samples: list[tuple[str, str]]
    store_root: str
    overrides: TrainOverrides
    threads: int
    unreviewed: list[str]
    nice: int


@dataclass
class FinetuneJob:
    parent_path: str
    parent_id: str | None  # the store version fine-tuned, None for a checkpoint given with --weights
    samples: list[tuple[str, str]]  # (image, mask)
    store_root: str
    overrides: TrainOverrides = field(default_factory=dict)
    threads: int = 1
    unreviewed: list[str] = field(default_factory=list)  # photos for rehearsal and the drift measure
    nice: int = 0  # how much to lower the child's priority (BACKGROUND_NICE for Keep learning's runs)

    def as_dict(self) -> FinetuneJobDict:
        return cast(FinetuneJobDict, asdict(self))  # the same fields, by construction


def budget_overrides(device_type: str, minutes: float | None = None, epochs: int | None = None) -> TrainOverrides:
    """A time budget (default by device) or an epoch count, as TrainConfig overrides."""
    if epochs is not None:
        return {"epochs": int(epochs), "minutes": None}
    return {"epochs": TIME_MODE_MAX_EPOCHS, "minutes": float(minutes or DEFAULT_MINUTES.get(device_type, 10.0))}


def measure_step_seconds(
    parent_path: str | os.PathLike[str],
    overrides: Mapping[str, Any],
    steps: int = 3,
    cancelled: Callable[[], bool] = lambda: False,
) -> float:
    """Seconds per training step of this model at these settings, timed on random patches.

    Runs in a worker thread of the app (a few seconds at most); the first step is a warm-up and is not
    counted. The result is scaled to the child's thread count, as the app's process may use more.
    """
    import torch

    from model_core.checkpoint import load_checkpoint
    from model_core.device import select_device
    from model_core.finetune import finetune_config
    from model_core.losses import VesselLoss
    from model_core.model import to_fast_layout

    ckpt = load_checkpoint(parent_path)
    cfg = finetune_config(ckpt, **overrides)  # the parent's loss, clDice included, is what the run will compute
    device = select_device(cfg.device)
    model = to_fast_layout(ckpt.build().to(device).train())  # the layout the real run trains in
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    loss_fn = VesselLoss(cfg.alpha, cfg.beta, cfg.gamma, cfg.bce_weight, cfg.cldice_weight)
    x = torch.rand(cfg.batch_size, 1, cfg.patch_size, cfg.patch_size, device=device)
    y = (torch.rand_like(x) > 0.9).float()
    v = torch.ones_like(x)
    times: list[float] = []
    for _ in range(steps):
        if cancelled():
            break
        t0 = time.perf_counter()
        loss = loss_fn(model(x).float(), y, v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if not times:
        return float("nan")
    step = min(times[1:] or times)
    if device.type == "cpu":
        step *= max(1.0, torch.get_num_threads() / training_threads()) ** 0.7  # sub-linear thread scaling
    return step


EPOCH_OVERHEAD = 1.15  # an epoch's validation pass costs about 15 % of its training steps
START_S = 5.0  # loading the parent and preparing the images


def estimate_epochs(step_s: float, cfg_overrides: Mapping[str, Any]) -> int:
    """Epochs the run will do. With a time budget the engine's own rule: it validates the parent first and
    starts another epoch only while one more still fits, and always does at least one."""
    from model_core.finetune import finetune_config

    cfg = finetune_config(**cfg_overrides)
    if not cfg.minutes:
        return cfg.epochs
    epoch_s = cfg.steps_per_epoch * step_s * EPOCH_OVERHEAD
    first_validation = epoch_s - cfg.steps_per_epoch * step_s
    fit = int((cfg.minutes * 60 - first_validation) // max(epoch_s, 1e-9))
    return max(1, min(cfg.epochs, fit))


def estimate_seconds(step_s: float, cfg_overrides: Mapping[str, Any]) -> float:
    """Whole-run estimate: the epochs of ``estimate_epochs`` plus the first validation and start-up."""
    from model_core.finetune import finetune_config

    cfg = finetune_config(**cfg_overrides)
    train_s = cfg.steps_per_epoch * step_s
    return START_S + train_s * (EPOCH_OVERHEAD - 1) + estimate_epochs(step_s, cfg_overrides) * train_s * EPOCH_OVERHEAD


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    # The CPU allocator raises a plain RuntimeError; its message is the only mark it has.
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc).lower()


def failure_of(exc: BaseException, device: str = "", tb: str = "") -> Failed:
    """The ``Failed`` message for ``exc``, its kind decided by the exception's type."""
    if _is_out_of_memory(exc):
        where = f" on {device}" if device else ""
        return Failed(
            f"ran out of memory{where}. Close other programs that use the "
            f"{'GPU' if 'GPU' in device else 'memory'} and try again, or fine-tune on fewer images at once.",
            "out_of_memory",
            tb,
        )
    if isinstance(exc, FileNotFoundError):
        return Failed(f"a file is missing: {exc.filename or exc}", "missing_file", tb)
    first = " ".join(f"{type(exc).__name__}: {exc}".split())
    return Failed(first if len(first) < 300 else first[:297] + "…", "error", tb)


def _inject_fault(kind: str) -> str:
    """Test hook: make this run fail in a chosen way (never set in normal use)."""
    import torch

    from model_core import engine
    from model_core.losses import VesselLoss

    if kind == "raise":
        raise RuntimeError("injected failure for testing")
    if kind == "nan":

        class NanLoss(VesselLoss):
            def forward(
                self,
                logits: torch.Tensor,
                target: torch.Tensor,
                valid: torch.Tensor | None = None,
                weight: torch.Tensor | None = None,
            ) -> torch.Tensor:
                return logits.float().mean() * float("nan")

        engine.VesselLoss = NanLoss  # type: ignore[misc]  # a test hook swaps the class the engine builds
    return kind


class MessageQueue(Protocol):
    """Where the child puts its messages: a ``multiprocessing`` queue (tests: an in-process stand-in)."""

    def put(self, message: ChildMessage, /) -> None: ...

    def close(self) -> None: ...

    def join_thread(self) -> None: ...


class CancelEvent(Protocol):
    """Set by the app to ask for a cancel: a ``multiprocessing`` event (tests: a ``threading.Event``)."""

    def wait(self, timeout: float | None = None) -> bool: ...


def child_main(job: FinetuneJobDict, out: MessageQueue, cancel_event: CancelEvent) -> None:
    """Entry point of the child process. Every outcome ends in exactly one ``Done`` or ``Failed`` message."""
    exit_with_parent()
    device_text = ""
    try:
        niceness = lower_priority(int(job.get("nice", 0)))
        import torch

        torch.set_num_threads(max(1, int(job.get("threads", 1))))
        from model_core.checkpoint import load_checkpoint
        from model_core.device import describe_device, select_device
        from model_core.finetune import finetune, finetune_config, plan_split
        from model_core.model_store import ModelStore

        token = _watched_cancel(cancel_event)
        parent = load_checkpoint(job["parent_path"])
        cfg = finetune_config(parent, **job["overrides"])
        device = select_device(cfg.device)
        device_text = describe_device(device)
        out.put(Started(device_text, os.getpid(), torch.get_num_threads(), niceness))

        samples, missing = _samples_on_disk(job, out)
        plan = plan_split(samples)
        out.put(Plan(len(plan.train), len(plan.val), plan.note))

        fault = _inject_fault(os.environ.get(FAULT_ENV, ""))
        t0 = time.monotonic()

        def on_step(epoch: int, step: int, loss: float) -> None:
            if fault == "crash":
                os._exit(70)  # a hard crash: no message, no clean-up
            if fault == "oom":
                raise MemoryError("injected out-of-memory for testing")
            out.put(Step(epoch, step, float(loss), time.monotonic() - t0))

        def on_epoch(report: EpochReport) -> None:
            out.put(Epoch(cast(EpochReportDict, asdict(report))))  # the same fields, by construction

        unreviewed = [Path(p) for p in job.get("unreviewed", []) if Path(p).is_file()]
        outcome = finetune(
            parent,
            samples,
            cfg,
            store=ModelStore(job["store_root"]),
            parent_id=job["parent_id"],
            activate=False,
            on_epoch=on_epoch,
            on_step=on_step,
            cancel=token,
            unreviewed=unreviewed,
        )
        out.put(_done(outcome, device_text, missing, len(unreviewed)))
    except BaseException as exc:  # noqa: BLE001 - the app must get a message, whatever happened
        out.put(failure_of(exc, device_text, traceback.format_exc()))
    finally:
        out.close()
        out.join_thread()  # everything sent has reached the pipe before the process ends


def lower_priority(increment: int) -> int | None:
    """Lower this process's scheduling priority by ``increment`` (0: leave it); returns the niceness it has now
    (None where there is no niceness). Best effort: a system that refuses leaves the run at normal priority."""
    if hasattr(os, "nice"):
        try:
            return os.nice(max(0, increment))  # os.nice(0) reads the niceness without changing it
        except OSError:
            return None
    if increment > 0 and os.name == "nt":  # pragma: no cover - Windows only
        import ctypes

        below_normal = 0x4000  # BELOW_NORMAL_PRIORITY_CLASS
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), below_normal)
    return None


def _watched_cancel(cancel_event: CancelEvent) -> CancelToken:
    """A token that a thread of this process cancels when the app sets ``cancel_event``."""
    from model_core.engine import CancelToken

    token = CancelToken()

    def watch() -> None:
        while not token.cancelled:
            if cancel_event.wait(0.05):
                token.cancel()

    threading.Thread(target=watch, daemon=True, name="cancel-watch").start()
    return token


def _samples_on_disk(job: FinetuneJobDict, out: MessageQueue) -> tuple[list[Any], list[str]]:
    """The job's corrected images still on disk (a Note names those that are gone; none left is an error)."""
    from model_core.data import Sample

    samples: list[Sample] = []
    missing: list[str] = []
    for image, mask in job["samples"]:
        if Path(image).is_file() and Path(mask).is_file():
            samples.append(Sample(Path(image), Path(mask)))
        else:
            missing.append(Path(image).name)
    if missing:
        out.put(
            Note(
                f"{len(missing)} image(s) no longer on disk were left out: {', '.join(missing[:5])}"
                + (" …" if len(missing) > 5 else "")
            )
        )
    if not samples:
        raise ValueError("none of the corrected images is on disk any more")
    return samples, missing


def _done(outcome: Any, device_text: str, missing: list[str], unreviewed: int) -> Done:
    """The Done message of a finished run: what the window shows and records."""
    r = outcome.result
    return Done(
        {
            "accepted": outcome.accepted,
            "verdict": outcome.verdict,  # accept (activate), ask (activate on the grader's click), reject
            "reason": outcome.reason,
            "evidence": outcome.evidence.sentence() if outcome.evidence else None,
            "stop_reason": r.stop_reason,
            "failed": r.failed,
            "cancelled": r.stop_reason == "cancelled",
            "parent_dice": _num(outcome.parent_dice),
            "new_dice": _num(outcome.new_dice),
            "version": outcome.version.id if outcome.version else None,
            "version_path": str(outcome.version.path) if outcome.version else None,
            "train": len(outcome.plan.train),
            "val": len(outcome.plan.val),
            "note": outcome.plan.note,
            "shared": outcome.plan.train is outcome.plan.val,  # one image, training and validating
            "wall_s": r.wall_s,
            "epochs_run": len(r.history),
            "device": device_text,
            "missing": missing,
            "alpha": outcome.alpha,
            "drift": _num(outcome.drift) if outcome.drift is not None else None,
            "drift_source": outcome.drift_source,
            "drift_images": unreviewed or None,
        }
    )


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def exit_with_parent(poll_s: float = 0.5) -> None:
    """In a multiprocessing child: end this process as soon as the app that started it has gone (killed,
    crashed), so an orphaned run neither burns its whole budget nor adds a model version nobody asked for."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is None:
        return  # run in-process (tests), nothing to watch
    ppid = os.getppid()

    def watch() -> None:
        # The sentinel (a pipe) closes when the parent dies, whatever killed it; the ppid check covers
        # platforms where it is not available.
        while parent.is_alive() and os.getppid() == ppid:
            time.sleep(poll_s)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
