"""Opening a workspace: at launch (a folder, the last one, or the demo), from the menu, from the recent list.

Leaving one remembers its open image, so reopening it goes back there (``AppSettings.last_image_key``), and
closes it (``Workspace.close``: this window's "already open" record goes). The banner above the image says
what opening found: damaged records set aside, another window or grader with the workspace open (the window
still works), a model that fell back to the bundled one. A window also learns, within 20 s, when someone opens
its workspace after it.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QTimer

from ...core.demo import ensure_demo_workspace
from ...core.workspace import Workspace, WorkspaceError, readable_time
from ..common.workers import Worker

SESSION_CHECK_MS = 20_000  # how soon a window learns that someone else opened its workspace


def look_around(ws: Workspace) -> tuple[list, list[str]]:
    """(who else has ``ws`` open, the images whose status changed since it was last read); runs on a worker."""
    others = ws.other_windows()
    before = {e.key: ws.status(e.key) for e in ws.entries}
    ws.refresh()
    return others, [k for k, status in before.items() if ws.status(k) != status]


class WorkspaceFlow:
    def __init__(self, window):
        self.w = window
        window.prediction.model_loaded.connect(lambda *_: self.refresh_banner())
        # Opening a workspace tells the newcomer who else has it open; this tells those already there.
        self._others: set[tuple] = set()
        self.session_timer = QTimer(window)
        self.session_timer.setInterval(SESSION_CHECK_MS)
        self.session_timer.timeout.connect(self.check_others)

    def check_others(self) -> Worker | None:
        """Look (off the UI thread: the records may be busy) for windows that opened this workspace since, and
        re-read the statuses they may have changed: a second window's list kept saying "predicted" for an image
        edited in the first (issue 27)."""
        w = self.w
        ws = w.review.workspace
        if ws is None or w.tasks.closed:
            return None
        worker = Worker(lambda ctx: look_around(ws), name="who else has the workspace open")
        worker.returned.connect(w.tasks.guard(lambda seen, ws=ws: self._others_seen(ws, *seen)))
        w.tasks.start(worker)
        return worker

    def _others_seen(self, ws: Workspace, others: list, changed_keys: list[str] | None = None) -> None:
        if ws is not self.w.review.workspace:
            return
        self._statuses_changed(changed_keys or [])
        keys = {_key(o) for o in others}
        new = [o for o in others if _key(o) not in self._others]
        changed, self._others = keys != self._others, keys
        if changed:  # someone came or left: the banner's "Already open" line follows
            self.refresh_banner(others)
        if not new:
            return
        who = "; ".join(f"{o.user} on {o.machine}" for o in new[:3]) + (" …" if len(new) > 3 else "")
        self.w.show_message(
            f"{who} has just opened this workspace too. You can both work on it: a save never "
            "overwrites the other's without asking.",
            "info",
        )

    def _statuses_changed(self, keys: list[str]) -> None:
        """Rows whose status another window changed are drawn again (the order waits for "Sort again")."""
        w = self.w
        for key in keys:
            w.image_list.model.refresh(key)
        if w.review.image is not None and w.review.image.key in keys:
            w.states.update()  # the Review panel's status line

    def refresh_banner(self, others: list | None = None) -> None:
        """``others``: who else has the workspace open, when the caller has just asked (off the UI thread)."""
        w = self.w
        if w.review.workspace is None:
            return
        w.workspace_banner.setText(workspace_notes(w.review.workspace, getattr(w.model, "notice", None), others))
        w.workspace_banner.show()

    def start(self, folder: str | None = None) -> None:
        """What launching does: the given folder, else the last workspace, else the demo workspace."""
        w = self.w
        if folder:
            self.open_workspace(folder)
            return
        last = w.settings.last_workspace
        if last and Path(last).is_dir():
            try:
                self.set_workspace(Workspace(last))
                return
            except WorkspaceError as exc:
                w.show_message(f"Could not reopen the last workspace: {exc}", "warning")
        self.open_demo_workspace()

    def open_demo_workspace(self) -> None:
        w, g = self.w, self.w.tasks.guard
        w.statusBar().showMessage("Preparing the demo workspace…")
        worker = Worker(
            lambda ctx: ensure_demo_workspace(progress=ctx.progress, separate_process=True), name="demo workspace"
        )
        worker.progress.connect(g(lambda d, t, s: w.status_panel.show_progress("Creating demo images", d, t)))
        worker.returned.connect(g(lambda folder: (w.status_panel.hide_progress(), self.open_workspace(str(folder)))))
        worker.errored.connect(
            g(lambda msg: (w.status_panel.hide_progress(), w.show_message(f"Demo workspace: {msg}")))
        )
        w.tasks.start(worker)

    def choose_workspace(self) -> None:
        w = self.w
        start = str(w.review.workspace.root) if w.review.workspace else ""
        folder = w.prompter.choose_folder("Open a folder of fundus photos", start)
        if folder:
            self.open_workspace(folder)

    def fill_recent_menu(self) -> None:
        menu = self.w.action_table.recent_menu
        menu.clear()
        # Entries of the menu, made again each time it opens: not the window's actions (ActionRegistry), which
        # would pile up on the window.
        for p in self.w.settings.recent_workspaces:
            menu.addAction(p, lambda p=p: self.open_workspace(p))

    def open_workspace(self, folder: str | Path) -> bool:
        if not self.w.saving.leave_current_image():
            return False
        try:
            ws = Workspace(folder)
        except WorkspaceError as exc:
            self.w.show_message(str(exc))
            return False
        self.set_workspace(ws)
        return True

    def set_workspace(self, ws: Workspace) -> None:
        w = self.w
        w.prediction.cancel()
        self.remember_open_image()
        w.images.detach_image()
        w.review.set_workspace(ws)
        w.settings.last_workspace = str(ws.root)
        w.image_list.set_workspace(ws)
        others = ws.other_windows()
        self._others = {_key(o) for o in others}  # the banner names these; the timer tells of newcomers
        self.session_timer.start()
        self.refresh_banner(others)
        w.clear_message()
        w.workspace_opened.emit(str(ws.root))
        last = w.settings.last_image_key(str(ws.root))  # reopening goes back to the image open at quit
        first = last if last and w.review.has_key(last) else w.image_list.neighbour(None, +1)
        if first:
            w.images.open_image(first)
        w.states.update()

    def remember_open_image(self) -> None:
        ws, key = self.w.review.workspace, self.w.review.current_key
        if ws is not None and key:
            self.w.settings.set_last_image_key(str(ws.root), key)


def _key(o) -> tuple:
    return o.user, o.machine, o.pid, o.since  # two windows of one process share a pid, not a start time


def workspace_notes(ws: Workspace, model_notice: str | None = None, others: list | None = None) -> str:
    notes = []
    if ws.synthetic:
        notes.append("<b>Synthetic images</b> made by the built-in generator (demo workspace), not real patients.")
    notes.append(
        f"{len(ws)} image{'' if len(ws) == 1 else 's'} · {ws.layout} layout · ground truth in "
        f"{', '.join(sorted({str(e.gt_dir.relative_to(ws.root)) for e in ws.entries}))}/"
    )
    if ws.dataset_masks == "corrected":
        notes.append("<b>Your corrections</b> go to corrected/; the data set's own masks stay as they are.")
    elif ws.dataset_masks == "overwrite":
        notes.append("<b>Your corrections</b> are saved over the data set's masks (the originals stay in History).")
    if ws.duplicates:
        notes.append(
            f"<b>Not listed</b>, because ground truth is paired by file name: {', '.join(ws.duplicates[:5])}"
            f"{' …' if len(ws.duplicates) > 5 else ''}. Rename them to review them."
        )
    if not ws.gt_writable:
        notes.append(
            "<b>Read-only workspace:</b> ground truth cannot be saved here; export the masks to another folder instead."
        )
    others = ws.other_windows() if others is None else others
    if others:
        who = "; ".join(f"{o.user} on {o.machine} since {readable_time(o.since)[:16]}" for o in others[:3])
        notes.append(
            f"<b>Already open</b> by {html.escape(who)}{' …' if len(others) > 3 else ''}. You can work "
            "here too: a save never overwrites theirs without asking."
        )
    for notice in ws.notices:
        notes.append(f"<b>Note:</b> {html.escape(notice)}")
    if model_notice:
        notes.append(f"<b>Model:</b> {html.escape(model_notice)}")
    return "  ".join(notes)
