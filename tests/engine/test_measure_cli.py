"""`python -m model_core measure`: CSV of vessel measurements per mask."""

import csv
import math
import subprocess
import sys

import numpy as np
import pytest

from model_core.cli import main
from model_core.imageio import mask_to_png, write_png_atomic
from model_core.morphometry import MEASUREMENT_COLUMNS

COLUMNS = [
    "image",
    "vessel_density",
    "fractal_dimension",
    "tortuosity",
    "width_px",
    "segments",
    "branch_points",
    "end_points",
]


def _plus(size=101):
    img = np.zeros((size, size), bool)
    img[size // 2, 10 : size - 10] = True
    img[10 : size - 10, size // 2] = True
    return img


def _line(size=64):
    img = np.zeros((size, size), bool)
    img[20, :] = True
    return img


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_measure_writes_one_row_per_mask_with_the_issue_columns(tmp_path, capsys):
    write_png_atomic(tmp_path / "masks" / "plus.png", mask_to_png(_plus()))
    write_png_atomic(tmp_path / "masks" / "line.png", mask_to_png(_line()))
    write_png_atomic(tmp_path / "extra.png", mask_to_png(_line(32)))
    rc = main(["measure", str(tmp_path / "masks"), str(tmp_path / "extra.png"), "--csv", str(tmp_path / "out.csv")])
    assert rc == 0
    rows = _rows(tmp_path / "out.csv")
    assert rows[0] == COLUMNS == ["image", *MEASUREMENT_COLUMNS]
    by_name = {r[0].rsplit("/", 1)[-1]: dict(zip(COLUMNS, r, strict=False)) for r in rows[1:]}
    assert set(by_name) == {"line.png", "plus.png", "extra.png"}
    plus = by_name["plus.png"]
    assert (plus["segments"], plus["branch_points"], plus["end_points"]) == ("4", "1", "4")
    assert float(plus["vessel_density"]) == pytest.approx(161 / 101**2)  # 81 + 81 - 1 pixels
    line = by_name["line.png"]
    assert float(line["fractal_dimension"]) == pytest.approx(1.0, abs=0.05)
    assert float(line["tortuosity"]) == pytest.approx(1.0) and float(line["width_px"]) == pytest.approx(1.0)
    assert "measured 3 of 3 masks" in capsys.readouterr().out


def test_fov_masks_are_paired_by_stem(tmp_path):
    mask = np.zeros((40, 40), bool)
    mask[5, 0:40] = True  # 40 vessel pixels, 20 of them inside the FOV
    fov = np.zeros((40, 40), bool)
    fov[0:20, 0:20] = True  # 400 FOV pixels
    write_png_atomic(tmp_path / "masks" / "01_test.png", mask_to_png(mask))
    write_png_atomic(tmp_path / "fov" / "01_test_mask.png", mask_to_png(fov))  # DRIVE's naming
    write_png_atomic(tmp_path / "masks" / "02.png", mask_to_png(mask))
    write_png_atomic(tmp_path / "fov" / "02.png", mask_to_png(np.ones((40, 40), bool)))
    rc = main(["measure", str(tmp_path / "masks"), "--fov", str(tmp_path / "fov"), "--csv", str(tmp_path / "m.csv")])
    assert rc == 0
    rows = {r[0].rsplit("/", 1)[-1]: dict(zip(COLUMNS, r, strict=False)) for r in _rows(tmp_path / "m.csv")[1:]}
    assert float(rows["01_test.png"]["vessel_density"]) == pytest.approx(20 / 400)
    assert float(rows["02.png"]["vessel_density"]) == pytest.approx(40 / 1600)


def test_unreadable_or_unpaired_inputs_are_named_skipped_and_exit_non_zero(tmp_path, capsys):
    write_png_atomic(tmp_path / "good.png", mask_to_png(_line()))
    write_png_atomic(tmp_path / "nofov.png", mask_to_png(_line()))
    write_png_atomic(tmp_path / "small.png", mask_to_png(_line()))
    (tmp_path / "bad.png").write_bytes(b"junk")
    write_png_atomic(tmp_path / "fov" / "good.png", mask_to_png(np.ones((64, 64), bool)))
    write_png_atomic(tmp_path / "fov" / "small.png", mask_to_png(np.ones((32, 32), bool)))
    inputs = [str(tmp_path / n) for n in ("bad.png", "good.png", "missing.png", "nofov.png", "small.png")]
    rc = main(["measure", *inputs, "--fov", str(tmp_path / "fov"), "--csv", str(tmp_path / "out.csv")])
    assert rc == 1
    text = capsys.readouterr().err
    err = [line for line in text.splitlines() if line.startswith("error: ")]  # the rest is the progress bar
    assert len(err) == 4
    for name in ("bad.png", "missing.png", "nofov.png", "small.png"):
        assert name in text
    assert "Traceback" not in text
    rows = _rows(tmp_path / "out.csv")
    assert len(rows) == 2 and rows[1][0].endswith("good.png")


def test_refuses_to_overwrite_an_input_mask(tmp_path, capsys):
    write_png_atomic(tmp_path / "a.png", mask_to_png(_line()))
    before = (tmp_path / "a.png").read_bytes()
    rc = main(["measure", str(tmp_path / "a.png"), "--csv", str(tmp_path / "a.png")])
    assert rc == 2
    assert (tmp_path / "a.png").read_bytes() == before
    assert "is one of the input masks" in capsys.readouterr().err


def test_missing_fov_folder_is_one_line(tmp_path, capsys):
    write_png_atomic(tmp_path / "a.png", mask_to_png(_line()))
    rc = main(["measure", str(tmp_path / "a.png"), "--fov", str(tmp_path / "nope"), "--csv", str(tmp_path / "o.csv")])
    assert rc == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope'}: FOV folder not found"
    assert not (tmp_path / "o.csv").exists()


def test_empty_mask_writes_nan_not_a_crash(tmp_path):
    write_png_atomic(tmp_path / "empty.png", mask_to_png(np.zeros((64, 64), bool)))
    assert main(["measure", str(tmp_path / "empty.png"), "--csv", str(tmp_path / "o.csv")]) == 0
    row = dict(zip(COLUMNS, _rows(tmp_path / "o.csv")[1], strict=False))
    assert math.isnan(float(row["fractal_dimension"])) and row["segments"] == "0"


def test_module_entry_point(tmp_path):
    write_png_atomic(tmp_path / "a.png", mask_to_png(_plus()))
    out = subprocess.run(
        [sys.executable, "-m", "model_core", "measure", str(tmp_path / "a.png"), "--csv", str(tmp_path / "o.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert _rows(tmp_path / "o.csv")[1][5:] == ["4", "1", "4"]


def test_measure_refuses_a_colour_photo_given_as_a_mask(tmp_path, capsys):
    from model_core.cli import main
    from model_core.imageio import write_png_atomic
    from model_core.synthetic import make_fundus

    f = make_fundus(96, 104, seed=1)
    write_png_atomic(tmp_path / "photo.png", f.image)
    assert main(["measure", str(tmp_path / "photo.png"), "--csv", str(tmp_path / "m.csv")]) == 1
    assert f"{tmp_path / 'photo.png'}: is a colour picture, not a mask" in capsys.readouterr().err
