"""What the end of a fine-tune run says to the grader: the gate's verdict on a finished run (the new version is
activated only when it passed), a failure, a cancel. Plain words; the controller shows them."""

from __future__ import annotations

from ...core.model.finetune_job import DoneOutcome, kept_model_words
from .finetune_dialog import fmt_duration

# How a background run's (Keep learning's) messages begin.
KEEP_LEARNING_PREFIX = "Keep learning: "
# How the banner's messages of a run's outcome begin: a new run supersedes them.
OUTCOME_PREFIXES = ("New model", "The fine-tuned model", "Fine-tune", KEEP_LEARNING_PREFIX)
REPREDICT_HINT = " Images not yet reviewed can be re-predicted with it (button in the Fine-tuning panel)."


def passed_gate(out: DoneOutcome) -> bool:
    """The run stored a version and the gate accepted it: the app makes it the active model."""
    return bool(out.get("accepted") and out.get("version"))


def asks_the_grader(out: DoneOutcome) -> bool:
    """The gate's verdict is "ask": the version is used only if the grader says so."""
    return out.get("verdict") == "ask" and bool(out.get("version"))


def ask_text(out: DoneOutcome) -> str:
    """The question: what the gate doubts and its evidence, in the gate's one sentence."""
    return (
        f"The fine-tuned model {out['version']} looks better, but the gate leaves the choice to you: "
        f"{out['reason']}.\n\nUse it now? It stays in Models… either way."
    )


def split_words(out: DoneOutcome) -> str:
    """What the run trained and validated on, and what the kept model is."""
    split = f"{out['train']} training / {out['val']} validation image{'s' if out['val'] != 1 else ''}"
    if out.get("shared"):  # one approved image: the same one trains and validates
        split = "1 image, used for training and validation since there are too few to hold one out"
    return split + "".join("; " + w for w in kept_model_words(out))


def activated_text(out: DoneOutcome) -> str:
    why = f"your choice (the gate asked: {out['reason']})" if out.get("verdict") == "ask" else out["reason"]
    return (
        f"New model {out['version']} is active: {why} ({split_words(out)}; "
        f"{fmt_duration(out['wall_s'])}, {out['stop_reason']})."
    )


def kept_text(out: DoneOutcome) -> str:
    where = f" It is kept as {out['version']} in Models…, not active." if out.get("version") else ""
    return (
        f"The fine-tuned model was not activated: {out['reason']} ({split_words(out)}).{where} "
        "The current model stays active."
    )


def failed_text(message: str) -> str:
    return f"Fine-tune failed: {message}. The active model and all masks are unchanged."


def cancelled_text(latency: float) -> str:
    return f"Fine-tune cancelled (stopped in {latency:.1f} s). The active model is unchanged and no masks were touched."
