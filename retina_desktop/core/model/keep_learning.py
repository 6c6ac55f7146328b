"""Keep learning: when an automatic fine-tune starts, decided from the workspace's review log. Qt-free.

Opt-in and off by default. While it is on, every ``every`` approvals (distinct images, still approved) logged since
the last automatic run started (or since it was switched on) start one background fine-tune of the active model, the
same job as the Fine-tune… dialog's but with one thread at low priority (``finetune_job.BACKGROUND_*``). It never
starts while another fine-tune runs, while the Fine-tune dialog is open, or while the grader has not yet answered the
gate's "ask" about an earlier run's model.

Counting reads the review log rather than keeping a counter: the log already has every approval with its time, so the
count survives a restart, and approvals made in another window of the same workspace count too. The moment counting
starts from (``since``) is kept per user and workspace (the UI's settings), and every automatic run's start is logged
too (action ``RUN_STARTED``): counting starts from the later of the two, so a second window on the same workspace,
whose settings were read before the first window's run started, does not start a second run on the same approvals.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..workspace import parse_time

if TYPE_CHECKING:
    from ..workspace import Workspace

# The k: 5 corrected photos and 10 CPU-minutes raised a new camera's Dice from 0.722 to 0.786 (issue 29).
DEFAULT_EVERY = 5
RUN_STARTED = "keep learning run"  # the review log's action for an automatic run's start (its image: the last approval)


def now_stamp() -> str:
    """The moment counting restarts, in the review log's own format (local time with its offset)."""
    return _dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


def log_run_started(workspace: Workspace, approvals: tuple[str, ...]) -> None:
    """Record an automatic run's start in the review log, for every window of the workspace to count from."""
    workspace.log_review(approvals[-1] if approvals else "", RUN_STARTED, images=list(approvals))


def approvals_since(workspace: Workspace, since: str | None) -> list[str]:
    """Images approved after ``since`` (an ISO time; None: ever) and after the last logged automatic run's start,
    and still approved now, each once, oldest first."""
    rows = workspace.review_log()
    start = parse_time(since) if since else None
    for row in reversed(rows):
        if row.get("action") == RUN_STARTED:
            logged = parse_time(row.get("time"))
            if logged is not None and (start is None or logged > start):
                start = logged
            break
    listed = {e.key for e in workspace.entries}
    seen: dict[str, None] = {}
    for row in rows:
        if row.get("action") != "approve":
            continue
        when = parse_time(row.get("time"))
        if start is not None and (when is None or when <= start):
            continue  # the approval that started the last run is not counted again
        key = str(row.get("image", ""))
        if key in seen or key not in listed or workspace.status(key) != "approved":
            continue
        seen[key] = None
    return list(seen)


@dataclass(frozen=True)
class Decision:
    start: bool
    new: tuple[str, ...]  # the images approved since counting started
    why: str  # in words, for the status bar and the log: why a run starts or not


def decide(
    workspace: Workspace | None,
    *,
    on: bool,
    every: int,
    since: str | None,
    busy: bool = False,
    ask_pending: bool = False,
) -> Decision:
    """Whether an automatic fine-tune starts now. ``busy``: a fine-tune runs or its dialog is open; ``ask_pending``:
    the gate asked the grader about an earlier run's model and has no answer yet."""
    if not on or workspace is None:
        return Decision(False, (), "keep learning is off")
    new = tuple(approvals_since(workspace, since))
    every = max(1, int(every))
    if len(new) < every:
        return Decision(False, new, f"{len(new)} of {every} approvals for the next run")
    if busy:
        return Decision(False, new, "a fine-tune is already running")
    if ask_pending:
        return Decision(False, new, "the previous run's model waits for your choice")
    return Decision(True, new, f"{len(new)} approvals since the last run")
