"""Threshold calibration on held-out training photos, scored as the test splits are."""

import numpy as np
import pytest

from model_core.calibrate import THRESHOLDS, calibrate
from model_core.checkpoint import load_checkpoint
from model_core.cli import main
from model_core.data import discover, render_resized
from model_core.imageio import write_png_atomic

from .conftest import write_synthetic_dataset
from .test_cli import TINY_TRAIN


class RedChannelPredictor:
    """Stands in for a network: the probability is the red channel, where the test wrote it."""

    def predict(self, rgb):
        return rgb[:, :, 0].astype(np.float32) / 255.0


def _photo_set(root, with_fov: bool):
    vessels = np.zeros((40, 60), bool)
    vessels[10:13, 5:55] = True  # 150 vessel pixels
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[vessels, 0] = 200  # p = 0.784
    rgb[30:35, 50:60, 0] = 100  # 50 distractors, p = 0.392, outside the FOV below
    fov = np.zeros((40, 60), np.uint8)
    fov[:, :50] = 255
    write_png_atomic(root / "images" / "a.png", rgb)
    write_png_atomic(root / "masks" / "a.png", vessels.astype(np.uint8) * 255)
    if with_fov:
        write_png_atomic(root / "fov" / "a.png", fov)
    return discover(root)


def test_native_curve_matches_hand_computed_dice(tmp_path):
    result = calibrate(RedChannelPredictor(), _photo_set(tmp_path / "d", with_fov=False), [])
    curve = dict(zip(THRESHOLDS.tolist(), result.curves["native"], strict=False))
    assert curve[0.35] == pytest.approx(2 * 150 / (2 * 150 + 50))  # distractors count as false positives
    assert curve[0.40] == curve[0.75] == 1.0
    assert curve[0.80] == 0.0
    assert result.threshold == 0.40 and result.images == ["a"]


def test_fov_masks_are_used_when_the_data_set_has_them(tmp_path):
    result = calibrate(RedChannelPredictor(), _photo_set(tmp_path / "d", with_fov=True), [])
    # The distractors lie outside the FOV: every threshold up to the vessels' probability is perfect.
    assert result.curves["native"][0] == 1.0 and result.threshold == THRESHOLDS[0]


def test_renderings_are_scored_against_linearly_resized_masks(tmp_path):
    samples = _photo_set(tmp_path / "d", with_fov=False)
    result = calibrate(RedChannelPredictor(), samples, [(30, 20)])
    assert result.renderings == ["native", "30x20"]
    small, mask = render_resized(
        np.zeros((40, 60, 3), np.uint8), np.pad(np.ones((2, 60), bool), ((10, 28), (0, 0))), (30, 20)
    )
    assert small.shape == (20, 30, 3) and mask.sum() == 30  # a 2-px line halves to one full row
    mean = np.mean([result.curves["native"], result.curves["30x20"]], axis=0)
    assert result.threshold == THRESHOLDS[int(np.argmax(mean))] and result.mean_curve == pytest.approx(mean)


def test_calibrate_command_rewrites_only_the_threshold(tmp_path, capsys):
    data = write_synthetic_dataset(tmp_path / "d", n=3)
    assert main(["train", str(data), "--out", str(tmp_path / "a.pt"), *TINY_TRAIN]) == 0
    assert (
        main(
            [
                "calibrate",
                str(data),
                "--weights",
                str(tmp_path / "a.pt"),
                "--out",
                str(tmp_path / "b.pt"),
                "--resize",
                "52x48",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    a, b = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt")
    cal = b.metadata["threshold_calibration"]
    assert b.sha256 == a.sha256 and b.threshold == cal["threshold"]
    assert cal["images"] == a.metadata["val_images"] and cal["renderings"] == ["native", "52x48"]
    assert a.metadata["command"].startswith("python -m model_core train ")
    assert (
        cal["command"].startswith("python -m model_core calibrate ")
        and f"threshold {b.threshold:.2f}" in capsys.readouterr().out
    )
    # A data set without the checkpoint's held-out photos is refused in one line.
    other = write_synthetic_dataset(tmp_path / "other", n=2, seed=50)
    for p in (other / "images").iterdir():
        p.rename(p.with_name("x" + p.name))
    for p in (other / "masks").iterdir():
        p.rename(p.with_name("x" + p.name))
    assert main(["calibrate", str(other), "--weights", str(tmp_path / "a.pt"), "--out", str(tmp_path / "c.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "held-out validation images" in err and not (tmp_path / "c.pt").exists()
