"""`python -m model_core measure --disc ... --av ...`: the calibre columns, and one line per bad input."""

import csv
import math

import numpy as np
import pytest

from model_core.calibre import knudtson
from model_core.cli import main
from model_core.imageio import mask_to_png, write_png_atomic

from .test_calibre import ARTERIOLES, DISC, VENULES, draw_vessels

CALIBRE = ["crae", "crve", "avr", "n_arterioles", "n_venules", "calibre_method"]


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], {r[0].rsplit("/", 1)[-1]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}


@pytest.fixture
def folders(tmp_path):
    """masks/a.png and masks/b.png (b with five venules), av/ with their labels, disc.csv listing both."""
    for name, venules in (("a", VENULES), ("b", VENULES[:5])):
        mask, av = draw_vessels(venules=venules)
        write_png_atomic(tmp_path / "masks" / f"{name}.png", mask_to_png(mask))
        write_png_atomic(tmp_path / "av" / f"{name}.png", av)
    (tmp_path / "disc.csv").write_text(f"image,x,y,diameter\na,{DISC.x},{DISC.y},{DISC.diameter}\nb.png,200,200,60\n")
    return tmp_path


def _measure(folders, *extra):
    return main(["measure", str(folders / "masks"), "--csv", str(folders / "out.csv"), *extra])


def test_calibre_columns_from_a_disc_file_and_av_masks(folders, capsys):
    rc = _measure(folders, "--disc", str(folders / "disc.csv"), "--av", str(folders / "av"))
    assert rc == 0
    header, rows = _rows(folders / "out.csv")
    assert header[-6:] == CALIBRE and header[0] == "image" and "width_px" in header
    a = rows["a.png"]
    assert float(a["crae"]) == pytest.approx(knudtson(ARTERIOLES, 0.88), rel=0.005)
    assert float(a["crve"]) == pytest.approx(knudtson(VENULES, 0.95), rel=0.005)
    assert float(a["avr"]) == pytest.approx(float(a["crae"]) / float(a["crve"]))
    assert (a["n_arterioles"], a["n_venules"]) == ("7", "6")
    assert a["calibre_method"] == "knudtson-revised-2003/area-median;px"
    # Five venules: no CRVE and no AVR, one line naming the file and the problem.
    b = rows["b.png"]
    assert b["crve"] == "" and b["avr"] == "" and float(b["crae"]) > 0 and b["n_venules"] == "5"
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert err == [f"error: {folders / 'masks' / 'b.png'}: 5 venules in zone B, 6 needed; calibre left empty"]


def test_a_scale_gives_micrometres_and_names_it(folders):
    assert _measure(folders, "--disc", str(folders / "disc.csv"), "--av", str(folders / "av"), "--disc-um", "1800") == 0
    _, px_free = _rows(folders / "out.csv")
    assert _measure(folders, "--disc", str(folders / "disc.csv"), "--av", str(folders / "av"), "--um-per-px", "2") == 0
    _, um = _rows(folders / "out.csv")
    assert float(px_free["a.png"]["crae"]) == pytest.approx(float(um["a.png"]["crae"]) * 1800 / 60 / 2)
    assert um["a.png"]["calibre_method"].endswith(";um_per_px=2")
    assert px_free["a.png"]["calibre_method"].endswith(";disc_um=1800")


def test_without_disc_the_csv_keeps_its_columns(folders):
    assert _measure(folders) == 0
    header, _ = _rows(folders / "out.csv")
    assert not set(CALIBRE) & set(header)


def test_an_image_the_disc_file_does_not_list_gets_empty_values(folders, capsys):
    (folders / "disc.csv").write_text("image,x,y,diameter\na,200,200,60\n")
    assert _measure(folders, "--disc", str(folders / "disc.csv"), "--av", str(folders / "av")) == 0
    _, rows = _rows(folders / "out.csv")
    assert [rows["b.png"][c] for c in CALIBRE[:3]] == ["", "", ""] and rows["a.png"]["crae"] != ""
    assert f"{folders / 'masks' / 'b.png'}: is not listed in the --disc file" in capsys.readouterr().err


def test_an_av_mask_of_the_wrong_size_is_one_line_and_an_empty_row(folders, capsys):
    write_png_atomic(folders / "av" / "a.png", np.zeros((300, 400), np.uint8))
    assert _measure(folders, "--disc", str(folders / "disc.csv"), "--av", str(folders / "av")) == 0
    _, rows = _rows(folders / "out.csv")
    assert [rows["a.png"][c] for c in CALIBRE[:3]] == ["", "", ""]
    assert rows["a.png"]["width_px"] != ""  # the vessel measurements stay
    err = capsys.readouterr().err
    assert f"error: {folders / 'av' / 'a.png'}: A/V mask is 400x300, its vessel mask a.png 400x400" in err
    assert "Traceback" not in err


def test_an_av_mask_with_other_values_and_a_missing_one_are_refused_per_image(folders, capsys):
    write_png_atomic(folders / "av" / "a.png", mask_to_png(draw_vessels()[0]))  # 0/255: a vessel mask
    (folders / "av" / "b.png").unlink()
    assert _measure(folders, "--disc", str(folders / "disc.csv"), "--av", str(folders / "av")) == 0
    _, rows = _rows(folders / "out.csv")
    assert rows["a.png"]["crae"] == "" and rows["b.png"]["crae"] == ""
    err = capsys.readouterr().err
    assert "a.png: A/V mask must be 8-bit with values 0-3" in err
    assert f"{folders / 'masks' / 'b.png'}: has no A/V mask of the same name in --av" in err


def test_auto_disc_without_a_disc_found_is_one_line_and_an_empty_row(folders, capsys):
    for name in ("a", "b"):
        write_png_atomic(folders / "photos" / f"{name}.png", np.zeros((400, 400, 3), np.uint8))  # black: no FOV
    rc = _measure(folders, "--disc", "auto", "--images", str(folders / "photos"), "--av", str(folders / "av"))
    assert rc == 0
    _, rows = _rows(folders / "out.csv")
    assert rows["a.png"]["crae"] == "" and rows["a.png"]["n_arterioles"] == "0"
    assert f"error: {folders / 'photos' / 'a.png'}: no optic disc found; calibre left empty" in capsys.readouterr().err


def test_auto_disc_and_auto_av_give_numbers_or_empty_cells_never_nan(folders):
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        yy, xx = np.mgrid[:400, :400]
        glow = 120 * np.exp(-((xx - 200) ** 2 + (yy - 200) ** 2) / (2 * 20.0**2))
        photo = np.stack([100 + glow, 60 + glow / 2, 30 + glow / 4], -1) + rng.normal(0, 2, (400, 400, 3))
        photo[draw_vessels()[0]] *= 0.6
        write_png_atomic(folders / "photos" / f"{name}.png", np.clip(photo, 0, 255).astype(np.uint8))
    assert _measure(folders, "--disc", "auto", "--images", str(folders / "photos")) == 0
    _, rows = _rows(folders / "out.csv")
    for row in rows.values():
        for c in ("crae", "crve", "avr"):
            assert row[c] == "" or math.isfinite(float(row[c]))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--disc", "auto"], "--disc auto needs the photos: give --images DIR"),
        (["--av", "AV"], "--av, --av-model, --images, --um-per-px and --disc-um are for calibre: give --disc"),
        (["--disc", "DISC", "--av", "AV"], "line 2: x, y and diameter must be numbers"),
        (["--disc", "MISSING", "--av", "AV"], "cannot read the disc file"),
    ],
)
def test_bad_calibre_options_are_one_line_before_any_measuring(folders, capsys, args, message):
    (folders / "disc.csv").write_text("image,x,y,diameter\na,left,200,60\n")
    subst = {"AV": str(folders / "av"), "DISC": str(folders / "disc.csv"), "MISSING": str(folders / "none.csv")}
    assert _measure(folders, *[subst.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not (folders / "out.csv").exists()
