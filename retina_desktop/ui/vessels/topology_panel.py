"""Topology review: a list of likely breaks, isolated fragments and short spurs, with markers on the canvas; while
Proofread mode (P) is on, the list of its queue of proposed fixes instead (``follow``).

The findings come from the vessel tools' analysis (``vessel_analysis``: ``core.vessels.topology.review`` in a
worker, after each edit).
``N`` / ``Shift+N`` jump to the next / previous marker and zoom there; the panel's Fix button applies the
current marker's one-click fix (bridge along the ridge, or remove) as one undo step; Dismiss hides it for
this image until it is reopened (``Finding.key`` survives unrelated edits).

Proofreading, the list holds the queue's proposals, surest first, with the one on screen selected: a row goes to
that proposal (a skipped one too), N / Shift+N skip to the next / previous one, and the buttons read Accept
(Enter) and Reject (Backspace). The findings' markers are hidden meanwhile (each proposal is drawn dashed), and
come back with the findings when the mode is turned off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRectF, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsSceneMouseEvent,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.review.review_session import ReviewSession
from ..common.context import ActionRegistry
from ..common.settings import AppSettings
from ..common.words import count
from .vessel_analysis import VesselAnalysis
from .vessel_canvas import VesselCanvas

# The vessel engine is imported where it first runs (see vessel_analysis).
if TYPE_CHECKING:
    from ...core.vessels.proofread import Proposal
    from ...core.vessels.topology import Finding
    from ...core.vessels.tracing import TraceCost
    from .proofread_view import ProofreadView

KIND_COLOURS = {"break": QColor(255, 80, 60), "fragment": QColor(255, 210, 40), "spur": QColor(200, 110, 255)}
KINDS = ("break", "fragment", "spur")
KIND_LABELS = {"break": "Breaks", "fragment": "Fragments", "spur": "Spurs"}
MARKER_PX = 9  # screen pixels: a marker keeps its size at every zoom


def describe(f: Finding) -> str:
    x, y = f.position
    if f.kind == "break":
        return f"Break: gap {f.score:.0f} px at ({x:.0f}, {y:.0f})"
    if f.kind == "fragment":
        return f"Fragment: {f.score:.0f} px at ({x:.0f}, {y:.0f})"
    return f"Spur: {f.score:.0f} px long at ({x:.0f}, {y:.0f})"


def fix_text(f: Finding) -> str:
    return "Bridge" if f.fix == "bridge" else "Remove"


PROPOSAL_WORDS = {
    "break": "Bridge a break",
    "candidate": "Add a faint vessel",
    "low probability": "Remove a doubtful segment",
    "fragment": "Remove a fragment",
    "spur": "Remove a spur",
}
PROPOSAL_COLOURS = {"bridge": QColor(0, 120, 150), "add": QColor(20, 130, 40), "remove": QColor(180, 50, 40)}


def describe_proposal(p: Proposal) -> str:
    x, y = p.centroid
    what = PROPOSAL_WORDS.get(p.reason, f"{p.kind.capitalize()} ({p.reason})")
    return f"{what}: {p.pixels} px at ({x:.0f}, {y:.0f}) · {p.score:.2f}"


def queue_buttons(panel: TopologyPanel, rows: int) -> None:
    """The panel's buttons while it lists Proofread's queue of ``rows`` proposals."""
    for b, text, tip in (
        (panel.fix_button, "Accept", "Apply this proposal (Enter; one undo step)"),
        (panel.dismiss_button, "Reject", "Reject this proposal for this image (Backspace)"),
    ):
        b.setText(text)
        b.setToolTip(tip)
        b.setEnabled(rows > 0)
    for b in (panel.prev_button, panel.next_button):
        b.setEnabled(rows > 1)


def queue_summary(counter: str, any_left: bool) -> str:
    if not any_left:
        return f"Proofread: {counter}; no proposals left"
    return f"Proofread: {counter} · Enter accepts, Backspace rejects, N skips"


class MarkerItem(QGraphicsEllipseItem):
    """One finding's circle; with the Pan tool a click on it makes it the current marker."""

    def __init__(self, review: TopologyReview, index: int) -> None:
        super().__init__(QRectF(-MARKER_PX, -MARKER_PX, 2 * MARKER_PX, 2 * MARKER_PX))
        self._review, self.index = review, index
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if not self._review.pan_tool_in_use():
            event.ignore()  # the brush, trace, copy brush … work right up to a marker
            return
        event.accept()
        self._review.jump(self.index, zoom=False)


class TopologyPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("topology_panel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(4)
        self.summary_label = QLabel("No image open")
        self.summary_label.setWordWrap(True)
        # Which kinds are listed and marked: on a busy photo the short spurs alone can fill the list.
        kinds = QHBoxLayout()
        self.kind_boxes: dict[str, QCheckBox] = {}
        for kind in KINDS:
            box = QCheckBox(KIND_LABELS[kind])
            box.setObjectName(f"topology_show_{kind}")
            box.setChecked(True)
            box.setStyleSheet(f"QCheckBox {{ color: {KIND_COLOURS[kind].darker(130).name()}; }}")
            box.setToolTip(f"List and mark {KIND_LABELS[kind].lower()}")
            kinds.addWidget(box)
            self.kind_boxes[kind] = box
        kinds.addStretch(1)
        self.list = QListWidget(self)
        self.list.setObjectName("topology_list")
        self.list.setMinimumHeight(60)
        row = QHBoxLayout()
        self.prev_button = QPushButton("◀")
        self.prev_button.setToolTip("Previous marker (Shift+N)")
        self.next_button = QPushButton("▶")
        self.next_button.setToolTip("Next marker (N)")
        self.fix_button = QPushButton("Fix")
        self.fix_button.setObjectName("topology_fix_button")
        self.fix_button.setStyleSheet("QPushButton { font-weight: bold; }")
        self.dismiss_button = QPushButton("Dismiss")
        for b in (self.prev_button, self.next_button):
            b.setFixedWidth(32)
        for b in (self.prev_button, self.next_button, self.fix_button, self.dismiss_button):
            row.addWidget(b)
        lay.addWidget(self.summary_label)
        lay.addLayout(kinds)
        lay.addWidget(self.list, 1)
        lay.addLayout(row)


class TopologyReview(QObject):
    """The list, the markers, navigation and the fixes; ``findings`` are those not dismissed, in list order.

    ``trace_cost`` is the trace tool's cost map (a bridge follows its ridge; None: a straight bridge),
    ``may_edit`` asks before an approved image is changed (False: the fix is not made), ``pan_tool_in_use``
    says whether a click on a marker makes it current (otherwise the click goes to the tool in use)."""

    jumped = Signal(int)

    def __init__(
        self,
        review: ReviewSession,
        analysis: VesselAnalysis,
        canvas: VesselCanvas,
        settings: AppSettings,
        actions: ActionRegistry,
        show_status: Callable[[str, int], None],
        trace_cost: Callable[[], TraceCost | None],
        may_edit: Callable[[], bool],
        pan_tool_in_use: Callable[[], bool],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.review, self.analysis, self.canvas, self.settings = review, analysis, canvas, settings
        self.show_status, self.trace_cost, self.may_edit = show_status, trace_cost, may_edit
        self.pan_tool_in_use = pan_tool_in_use
        self.panel = panel = TopologyPanel()
        self.findings: list[Finding] = []  # those listed: not dismissed, of a kind shown
        self.kept: list[Finding] = []  # every kind, not dismissed (what the boxes count)
        self.current = -1
        # After a fix: the key of the marker N goes on to (the list may be redone meanwhile).
        self._resume: tuple[str, int, int] | None = None
        self.dismissed: dict[str, set[tuple[str, int, int]]] = {}  # image key -> Finding.key
        self.markers: list[MarkerItem] = []
        self.markers_visible = True
        # Proofreading: the queue's proposals this list shows instead of the findings (None: not proofreading).
        self.proofread: ProofreadView | None = None
        self.queue_rows: list[Proposal] | None = None
        self.queue_text = ""
        self.shown_kinds = {k for k in KINDS if getattr(settings, f"topology_show_{k}")}
        for kind, box in panel.kind_boxes.items():
            box.setChecked(kind in self.shown_kinds)
            box.toggled.connect(lambda on, k=kind: self.show_kind(k, on))
        analysis.analysis_ready.connect(self.refresh)
        analysis.analysis_started.connect(self._updating)
        review.image_closed.connect(self.clear)
        panel.list.currentRowChanged.connect(self._row_chosen)
        panel.next_button.clicked.connect(lambda: self.step(+1))
        panel.prev_button.clicked.connect(lambda: self.step(-1))
        panel.fix_button.clicked.connect(self.fix_current)
        panel.dismiss_button.clicked.connect(self.dismiss_current)
        self.next_marker_action = actions.add("Next topology marker", lambda: self.step(+1), "N")
        self.prev_marker_action = actions.add("Previous topology marker", lambda: self.step(-1), "Shift+N")
        self._update_buttons()

    # ------------------------------------------------------------------ content --
    def clear(self) -> None:
        self.findings, self.kept, self.current = [], [], -1
        for kind, box in self.panel.kind_boxes.items():
            box.setText(KIND_LABELS[kind])
        self._rebuild()
        self.panel.summary_label.setText("No image open")

    def _updating(self) -> None:
        if self.review.image is not None:
            self.panel.summary_label.setText(self._summary() + " · updating…")

    def refresh(self) -> None:
        s = self.review.image
        if s is None:
            return
        hidden = self.dismissed.get(s.key, set())
        self.kept = [f for f in self.analysis.findings if f.key not in hidden]
        self._filter()

    def _filter(self) -> None:
        """List and mark the kept findings of the kinds shown, keeping the current one where it stays."""
        old = self.findings[self.current].key if 0 <= self.current < len(self.findings) else None
        self.findings = [f for f in self.kept if f.kind in self.shown_kinds]
        keys = [f.key for f in self.findings]
        self.current = keys.index(old) if old in keys else -1
        self._rebuild()
        self._update_counts()

    def _update_counts(self) -> None:
        for kind, box in self.panel.kind_boxes.items():
            box.setText(f"{KIND_LABELS[kind]} ({sum(f.kind == kind for f in self.kept)})")
        if self.queue_rows is not None:
            self.panel.summary_label.setText(queue_summary(self.queue_text, bool(self.queue_rows)))
            return
        updating = self.review.image is not None and not self.analysis.fresh
        self.panel.summary_label.setText(self._summary() + (" · updating…" if updating else ""))

    def show_kind(self, kind: str, on: bool) -> None:
        """List and mark ``kind`` (break, fragment, spur) or not; remembered for the next session."""
        self.shown_kinds = (self.shown_kinds | {kind}) if on else (self.shown_kinds - {kind})
        setattr(self.settings, f"topology_show_{kind}", on)
        box = self.panel.kind_boxes[kind]
        with QSignalBlocker(box):
            box.setChecked(on)  # called from code: the box follows
        # From the findings at hand, not the analysis: while one runs, a finding just fixed must not come back.
        self._filter()

    def _summary(self) -> str:
        counts = {k: sum(f.kind == k for f in self.findings) for k in ("break", "fragment", "spur")}
        hidden = [KIND_LABELS[k].lower() for k in KINDS if k not in self.shown_kinds]
        note = f" ({', '.join(hidden)} not shown)" if hidden else ""
        if not self.findings:
            return ("No breaks, fragments or spurs found" if not hidden else "Nothing to review") + note
        return " · ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in counts.items() if n) + note

    def _rebuild(self) -> None:
        self._fill_list()
        for m in self.markers:
            self.canvas.view.removeItem(m)
        self.markers = []
        for i, f in enumerate(self.findings):
            m = MarkerItem(self, i)
            m.setToolTip(f"{describe(f)}: {fix_text(f)} or Dismiss in the Topology panel")
            m.setPos(*f.position)
            m.setZValue(12)
            m.setVisible(self.markers_visible and self.queue_rows is None)
            self.canvas.view.addItem(m)
            self.markers.append(m)
        self._style_markers()
        self._update_buttons()

    def _fill_list(self) -> None:
        """The list's rows: the queue's proposals while proofreading, otherwise the findings."""
        lst = self.panel.list
        lst.blockSignals(True)
        lst.clear()
        if self.queue_rows is not None:
            for p in self.queue_rows:
                item = QListWidgetItem(describe_proposal(p))
                item.setForeground(PROPOSAL_COLOURS[p.kind])
                lst.addItem(item)
            assert self.proofread is not None  # rows come only from the queue it follows
            queue = self.proofread.queue
            lst.setCurrentRow(queue.index() if queue is not None else -1)
        else:
            for f in self.findings:
                item = QListWidgetItem(describe(f))
                item.setForeground(KIND_COLOURS[f.kind].darker(130))
                lst.addItem(item)
            lst.setCurrentRow(self.current)
        lst.blockSignals(False)

    def set_markers_visible(self, on: bool) -> None:
        self.markers_visible = on
        for m in self.markers:
            m.setVisible(on and self.queue_rows is None)

    def _style_markers(self) -> None:
        for i, (m, f) in enumerate(zip(self.markers, self.findings, strict=False)):
            pen = QPen(QColor(255, 255, 255) if i == self.current else KIND_COLOURS[f.kind])
            pen.setWidthF(3.0 if i == self.current else 2.0)
            m.setPen(pen)

    def _update_buttons(self) -> None:
        f = self.current_finding
        p = self.panel
        if self.queue_rows is not None:
            queue_buttons(p, len(self.queue_rows))
            return
        p.dismiss_button.setText("Dismiss")
        p.dismiss_button.setToolTip("Hide this marker for this image")
        p.fix_button.setEnabled(f is not None)
        p.dismiss_button.setEnabled(f is not None)
        p.fix_button.setText(fix_text(f) if f is not None else "Fix")
        p.fix_button.setToolTip("Apply this marker's fix (one undo step)")
        for b in (p.prev_button, p.next_button):
            b.setEnabled(bool(self.findings))

    @property
    def current_finding(self) -> Finding | None:
        return self.findings[self.current] if 0 <= self.current < len(self.findings) else None

    # --------------------------------------------------------------- navigation --
    def step(self, step: int) -> None:
        """N / Shift+N: the next (previous) marker, zoomed to; proofreading, the next (previous) proposal."""
        if self.queue_rows is not None and self.proofread is not None:
            self.proofread.step(step)
            return
        if not self.findings:
            self.show_status("Topology review: no markers", 3000)
            return
        resume, self._resume = self._resume, None
        keys = [f.key for f in self.findings]
        if self.current < 0 and resume in keys:
            i = (keys.index(resume) if step > 0 else keys.index(resume) - 1) % len(self.findings)
        elif self.current < 0:
            i = 0 if step > 0 else len(self.findings) - 1
        else:
            i = (self.current + step) % len(self.findings)
        self.jump(i)

    def jump(self, i: int, zoom: bool = True) -> None:
        self.current = i
        f = self.findings[i]
        with_signals = self.panel.list.blockSignals(True)
        self.panel.list.setCurrentRow(i)
        self.panel.list.blockSignals(with_signals)
        self._style_markers()
        self._update_buttons()
        s = self.review.image
        if zoom and s is not None:
            h, w = s.document.shape
            side = max(48.0, min(h, w) / 8)
            x, y = f.position
            self.canvas.view.setRange(QRectF(x - side / 2, y - side / 2, side, side), padding=0)
        self.show_status(
            f"{i + 1} of {len(self.findings)}: {describe(f)} — {fix_text(f)} or Dismiss in the Topology panel", 8000
        )
        self.jumped.emit(i)

    def _row_chosen(self, row: int) -> None:
        if self.queue_rows is not None and self.proofread is not None:
            self.proofread.choose(row)
        elif 0 <= row < len(self.findings):
            self.jump(row)

    # --------------------------------------------------------------------- fixes --
    def fix_current(self) -> bool:
        if self.queue_rows is not None and self.proofread is not None:
            return self.proofread.accept()
        f, s = self.current_finding, self.review.image
        if f is None or s is None:
            return False
        if not self.may_edit():  # an approved image asks first, as with the brush
            return False
        from ...core.vessels.topology import apply_fix  # loaded with the vessel engine (see vessel_analysis)

        cost = self.trace_cost()
        edit = s.document.apply(f.label, lambda m: apply_fix(f, m, cost), tool="topology")
        following = self._drop_current(go=False)  # the view stays on the fix, for the grader to see it
        if edit is not None:
            nxt = f"; N goes on to {describe(following)}" if following is not None else "; no markers left"
            self.show_status(f"{f.label}: {count(edit.added, 'pixel')} added, {edit.removed:,} removed{nxt}", 8000)
        return edit is not None

    def dismiss_current(self) -> None:
        if self.queue_rows is not None and self.proofread is not None:
            self.proofread.reject()
            return
        f, s = self.current_finding, self.review.image
        if f is None or s is None:
            return
        self.dismissed.setdefault(s.key, set()).add(f.key)
        self._drop_current()

    def _drop_current(self, go: bool = True) -> Finding | None:
        """Take the current finding off the list at once (the analysis that follows an edit confirms it); with
        ``go``, go to the next one as N does, so the grader sees the marker the buttons now act on. Returns the
        finding that followed (None when none is left)."""
        i = self.current
        dropped = self.findings.pop(i)
        self.kept = [f for f in self.kept if f is not dropped]
        self.current = min(i, len(self.findings) - 1) if self.findings else -1
        self._rebuild()
        self._update_counts()
        if self.current >= 0 and go:
            self.jump(self.current)
        elif self.current >= 0:
            # No marker is current (the buttons wait for one), and N goes to the one that followed the fix.
            following = self.findings[self.current]
            self._resume, self.current = following.key, -1
            self._style_markers()
            self._update_buttons()
            return following
        return self.current_finding

    # ----------------------------------------------------------------- proofreading --
    def follow(self, proofread: ProofreadView) -> None:
        """Be the list of ``proofread``'s queue while the mode is on (the composition root connects the two)."""
        self.proofread = proofread
        proofread.listed.connect(self._show_queue)

    def _show_queue(self, listing: tuple[list[Proposal], int, str] | None) -> None:
        was = self.queue_rows
        if listing is None:
            if was is None:
                return
            self.queue_rows, self.queue_text = None, ""
        else:
            self.queue_rows, _index, self.queue_text = list(listing[0]), listing[1], listing[2]
        for box in self.panel.kind_boxes.values():
            box.setEnabled(self.queue_rows is None)  # they choose which findings are listed
        self._fill_list()
        self.set_markers_visible(self.markers_visible)
        self._update_counts()
        self._update_buttons()
