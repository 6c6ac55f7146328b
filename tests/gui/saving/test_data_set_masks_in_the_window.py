"""The first save over a data set's reference mask asks once where corrections go, and the originals stay."""

from __future__ import annotations


def test_the_first_save_over_a_data_sets_mask_asks_once_where_corrections_go(qtbot, make_window, tmp_path):
    from gui_helpers import RecordingPrompter, open_and_predict

    from model_core.imageio import mask_to_png, write_png_atomic
    from model_core.synthetic import make_fundus

    root = tmp_path / "set"
    for d in ("images", "mask"):
        (root / d).mkdir(parents=True)
    for i in range(2):
        f = make_fundus(160, 150, seed=40 + i)
        write_png_atomic(root / "images" / f"im{i}.png", f.image)
        write_png_atomic(root / "mask" / f"im{i}.png", mask_to_png(f.vessels))
    originals = {p.name: p.read_bytes() for p in (root / "mask").iterdir()}
    window = make_window()
    window.prompter = RecordingPrompter(dataset_masks="corrected")
    open_and_predict(qtbot, window, root)
    doc = window.review.image.document
    doc.begin_stroke()
    doc.stroke_to((20.0, 20.0), (60.0, 20.0), 3.0, True)
    doc.end_stroke()
    assert not window.saving.autosave_in_background()  # the timer never asks
    assert window.saving.save_current()
    assert [a for a in window.prompter.asked if a[0] == "dataset_masks"] == [("dataset_masks", "set")]
    assert {p.name: p.read_bytes() for p in (root / "mask").iterdir()} == originals
    assert (root / "corrected" / "mask" / "im0.png").is_file()
    assert "corrected/" in window.workspace_banner.text()
