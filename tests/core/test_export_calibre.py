"""An export carries each image's calibre records in the command line's formats: ``av/<stem>.png`` (8-bit, 0-3) and
``disc.csv`` (``image,x,y,diameter``), read back by ``model_core.calibre_inputs`` and by ``python -m model_core
measure --av --disc`` to the same CRAE, CRVE and AVR as the app; ``calibre.csv`` records the scale used."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from model_core import cli
from model_core.calibre import ARTERY, VEIN, Disc
from model_core.calibre_inputs import read_av_mask, read_disc_csv
from model_core.imageio import write_png_atomic
from retina_desktop.core.review.export import ExportOptions, export_masks
from retina_desktop.core.vessels.calibre_review import compute, scale_of
from retina_desktop.core.workspace import Workspace

H = W = 400
DISC = Disc(200.0, 200.0, 60.0)  # zone B: radii 60 to 90 px
ROWS = (-50, -30, -10, 10, 30, 50)


def _vessels() -> tuple[np.ndarray, np.ndarray]:
    """Six arterioles right of the disc and six venules left of it, of known widths."""
    mask = np.zeros((H, W), bool)
    av = np.zeros((H, W), np.uint8)
    for dy, wa, wv in zip(ROWS, (15, 13, 11, 9, 7, 5), (17, 15, 13, 11, 9, 7), strict=True):
        y = 200 + dy
        mask[y - wa // 2 : y + wa // 2 + 1, 220:385] = True
        av[y - wa // 2 : y + wa // 2 + 1, 220:385] = ARTERY
        mask[y - wv // 2 : y + wv // 2 + 1, 0:181] = True
        av[y - wv // 2 : y + wv // 2 + 1, 0:181] = VEIN
    return mask, av


@pytest.fixture
def workspace(tmp_path):
    for name in ("a", "b"):
        write_png_atomic(tmp_path / "w" / f"{name}.png", np.full((H, W, 3), 120, np.uint8))
    ws = Workspace(tmp_path / "w")
    mask, av = _vessels()
    ws.save_ground_truth(ws.entry("a"), mask)
    ws.save_ground_truth(ws.entry("b"), mask)  # b has a mask but no calibre records
    ws.calibre.save_disc("a", DISC)
    ws.calibre.save_labels("a", av)
    return ws, mask, av


def test_export_writes_the_av_mask_and_disc_csv_that_the_command_line_reads_back(workspace, tmp_path):
    ws, mask, av = workspace
    dest = tmp_path / "export"
    summary = export_masks(ws, ExportOptions(dest))
    assert sorted(summary.written) == ["a", "b"] and summary.failed == []
    assert sorted(p.name for p in (dest / "av").iterdir()) == ["a.png"]  # only the image that has labels
    back = read_av_mask(dest / "av" / "a.png")
    assert back.dtype == np.uint8 and np.array_equal(back, av)
    assert read_disc_csv(dest / "disc.csv") == {"a": DISC}
    with open(dest / "disc.csv", newline="") as fh:
        assert next(csv.reader(fh)) == ["image", "x", "y", "diameter"]
    app = compute(mask, av, DISC)
    assert app.crae is not None and app.crve is not None and app.avr is not None
    out = tmp_path / "cli.csv"
    code = cli.main(
        [
            "measure",
            str(dest / "mask" / "a.png"),
            "--csv",
            str(out),
            "--av",
            str(dest / "av"),
            "--disc",
            str(dest / "disc.csv"),
        ]
    )
    assert code == 0
    with open(out, newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert float(row["crae"]) == pytest.approx(app.crae, rel=1e-9)
    assert float(row["crve"]) == pytest.approx(app.crve, rel=1e-9)
    assert float(row["avr"]) == pytest.approx(app.avr, rel=1e-9)
    with open(dest / "calibre.csv", newline="") as fh:
        (exported,) = list(csv.DictReader(fh))
    assert exported["image"] == "a" and exported["calibre_method"] == row["calibre_method"] == app.calibre_method
    assert exported["calibre_method"].endswith(";px") and float(exported["crae"]) == pytest.approx(app.crae)


def test_the_export_records_the_workspace_scale_and_keeps_earlier_rows(workspace, tmp_path):
    ws, mask, av = workspace
    dest = tmp_path / "export"
    ws.set_setting("calibre_um_per_px", 6.5)
    export_masks(ws, ExportOptions(dest))
    ws.calibre.save_disc("b", Disc(190.0, 200.0, 60.0))
    export_masks(ws, ExportOptions(dest), entries=[ws.entry("b")])  # one image: the other's row stays
    assert read_disc_csv(dest / "disc.csv") == {"a": DISC, "b": Disc(190.0, 200.0, 60.0)}
    with open(dest / "calibre.csv", newline="") as fh:
        (exported,) = list(csv.DictReader(fh))  # b has no labels: no calibre row
    app = compute(mask, av, DISC, *scale_of(ws.setting))
    assert exported["calibre_method"].endswith(";um_per_px=6.5") and app.unit == "um"
    assert float(exported["crae"]) == pytest.approx(app.crae)
