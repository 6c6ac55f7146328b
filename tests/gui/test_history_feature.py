"""The History built alone, from the parts MainWindow would hand it (no window): a review session on a small
workspace with saved versions, a canvas, the settings, a prompter and message sinks."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import SafetyPrompter, make_workspace
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QWidget

from model_core.imageio import read_mask
from retina_desktop.core.model.tasks import load_image
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace
from retina_desktop.ui.common.settings import AppSettings
from retina_desktop.ui.review.canvas import ImageCanvas
from retina_desktop.ui.review.history_panel import HistoryController


class History:
    """A HistoryController and everything it was handed, with what it said and did."""

    def __init__(self, qtbot, tmp_path):
        self.review = ReviewSession()
        self.review.set_workspace(Workspace(make_workspace(tmp_path / "photos", 2)))
        self.owner = QWidget()
        qtbot.addWidget(self.owner)
        self.canvas = ImageCanvas(self.owner)
        self.settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
        self.settings.reviewer = "ann"
        self.prompter = SafetyPrompter()
        self.messages: list[tuple[str, str]] = []
        self.statuses: list[str] = []
        self.hand_saves: list[int] = []
        self.conflicts: list[object] = []
        self.restored: list[str] = []
        self.controller = HistoryController(
            self.review,
            self.canvas,
            self.settings,
            self.prompter,
            lambda text, level: self.messages.append((text, level)),
            lambda text, ms: self.statuses.append(text),
            self.save_by_hand,
            self.conflicts.append,
            self.owner,
        )
        self.controller.restored.connect(self.restored.append)
        self.panel = self.controller.panel

    def save_by_hand(self) -> bool:
        self.hand_saves.append(1)
        return self.review.save(auto=False, model=None, reviewer=self.settings.reviewer) is not None

    def open(self, key: str):
        request, entry = self.review.begin_load(key)
        return self.review.finish_load(request, load_image(None, self.review.workspace, entry, "m"))

    def paint_and_save(self, rows: slice) -> np.ndarray:
        doc = self.review.image.document
        doc.apply("paint", lambda m: _paint_rows(m, rows), tool="brush")
        assert self.review.save(auto=False, model=None, reviewer="ann") is not None
        return doc.mask.copy()

    def rows(self) -> list[str]:
        tree = self.panel.tree
        return [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]


def _paint_rows(mask: np.ndarray, rows: slice):
    mask[rows, 10:60] = True
    return (rows.start, rows.stop, 10, 60)


@pytest.fixture
def history(qtbot, tmp_path) -> History:
    h = History(qtbot, tmp_path)
    assert h.panel.tree.topLevelItemCount() == 0
    assert h.panel.note.text() == "Open an image to see its saved versions."
    assert not h.controller.revert_action.isEnabled()
    h.open("img_00")  # the History follows the session: its rows come with the opened image
    h.review.image.document.replace("blank", np.zeros(h.review.image.document.shape, bool))
    return h


def test_restoring_a_version_puts_its_pixels_back_and_marks_one_row(history):
    h = history
    first = h.paint_and_save(slice(10, 14))
    second = h.paint_and_save(slice(40, 44))
    assert not np.array_equal(first, second)
    assert len(h.rows()) == 2 and [r.startswith("● ") for r in h.rows()] == [True, False]  # saves refresh it

    h.panel.tree.setCurrentItem(h.panel.tree.topLevelItem(1))  # the first save
    h.panel.preview_button.setChecked(True)
    assert h.controller.preview.active
    assert np.array_equal(h.controller.preview.item._buffer != 0, first)
    assert np.array_equal(h.review.image.document.mask, second)  # a preview changes nothing
    assert h.statuses and "in magenta" in h.statuses[-1]

    h.panel.restore_button.click()
    entry = h.review.image.entry
    assert np.array_equal(h.review.image.document.mask, first)
    assert np.array_equal(read_mask(entry.gt_path), first)
    assert h.restored == [entry.key] and not h.controller.preview.active
    assert h.messages[-1][1] == "info" and "is now the newest version" in h.messages[-1][0]
    # The restore is a version of its own; the first save has the same pixels, yet only the newest row is marked.
    assert len(h.rows()) == 3 and h.panel.tree.topLevelItem(0).text(2) == "restore"
    assert [r.startswith("● ") for r in h.rows()] == [True, False, False]
    assert h.review.image.document.can_undo  # one undo step takes the restore back
    assert h.hand_saves == [] and h.conflicts == []


def test_unsaved_edits_are_saved_before_revert_restores_the_chosen_version(history):
    h = history
    first = h.paint_and_save(slice(10, 14))
    h.paint_and_save(slice(40, 44))
    doc = h.review.image.document
    doc.apply("paint", lambda m: _paint_rows(m, slice(70, 74)), tool="brush")
    assert doc.unsaved
    h.prompter.item = 1  # newest first: the second save, the first save
    assert h.controller.revert_dialog()
    items = h.prompter.asked[-1][1]
    assert len(items) == 2 and items[0].endswith("on disk now") and "on disk now" not in items[1]
    assert h.hand_saves == [1]  # the unsaved edits became a version of their own before the restore
    versions = h.review.workspace.versions(h.review.image.entry)
    assert [v.source for v in versions] == ["brush", "brush", "brush", "restore"]
    assert versions[-1].sha256 == versions[0].sha256
    assert np.array_equal(doc.mask, first) and np.array_equal(read_mask(h.review.image.entry.gt_path), first)


def test_closing_the_image_clears_the_preview_and_the_list(history):
    h = history
    h.paint_and_save(slice(10, 14))
    h.panel.tree.setCurrentItem(h.panel.tree.topLevelItem(0))
    h.panel.preview_button.setChecked(True)
    assert h.controller.preview.active
    h.review.close_image()
    assert not h.controller.preview.active and not h.panel.preview_button.isChecked()
    assert h.rows() == [] and not h.controller.revert_action.isEnabled()


def test_the_disc_and_labels_versions_are_listed_and_an_older_one_restores_as_a_new_version(history):
    from model_core.calibre import Disc

    ws = history.review.workspace
    history.open("img_00")
    ws.calibre.save_disc("img_00", Disc(50.0, 60.0, 30.0), reviewer="ann")
    ws.calibre.save_disc("img_00", Disc(70.0, 60.0, 30.0), reviewer="bob")
    ws.calibre.save_labels("img_00", np.ones((160, 150), np.uint8), reviewer="bob")
    history.controller.refresh()
    tree = history.panel.calibre_tree
    cells = [[tree.topLevelItem(i).text(c) for c in range(1, 4)] for i in range(tree.topLevelItemCount())]
    assert cells == [
        ["bob", "artery/vein labels", "grader"],
        ["bob", "optic disc", "grader"],
        ["ann", "optic disc", "grader"],
    ]
    assert tree.topLevelItem(0).text(0).startswith("● ") and tree.topLevelItem(1).text(0).startswith("● ")
    assert not tree.topLevelItem(2).text(0).startswith("● ")
    restored: list[str] = []
    history.controller.calibre_restored.connect(restored.append)
    tree.setCurrentItem(tree.topLevelItem(2))
    history.panel.calibre_restore_button.click()
    assert restored == ["img_00"] and ws.calibre.read_disc("img_00") == Disc(50.0, 60.0, 30.0)
    assert [v.note for v in ws.calibre.versions("img_00", "disc")] == ["grader", "grader", "restore"]
    assert tree.topLevelItemCount() == 4 and tree.topLevelItem(0).text(3) == "restore"
    assert tree.topLevelItem(0).text(1) == "ann"  # the grader of these settings restored it


def test_a_damaged_disc_history_copy_is_refused_in_one_line(history):
    from model_core.calibre import Disc

    ws = history.review.workspace
    history.open("img_00")
    ws.calibre.save_disc("img_00", Disc(50.0, 60.0, 30.0))
    ws.calibre.save_disc("img_00", Disc(70.0, 60.0, 30.0))
    old = ws.calibre.versions("img_00", "disc")[0]
    old.path.write_bytes(b"garbage")
    history.controller.refresh()
    tree = history.panel.calibre_tree
    tree.setCurrentItem(tree.topLevelItem(1))
    assert not history.controller.restore_calibre_selected()
    text, level = history.messages[-1]
    assert level == "error" and text.startswith("Not restored:") and "\n" not in text
    assert ws.calibre.read_disc("img_00") == Disc(70.0, 60.0, 30.0) and len(ws.calibre.versions("img_00")) == 2
