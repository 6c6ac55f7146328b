"""A header claiming an absurd size, and file names too long for the file system, are one line
about that file each; the other inputs are still processed."""

from __future__ import annotations

import errno
import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from model_core import imageio
from model_core.cli import main
from model_core.data import discover, find_mask, image_folders
from model_core.errors import ImageReadError
from model_core.imageio import (
    MAX_IMAGE_SIDE,
    encode_png,
    image_size,
    mask_to_png,
    read_image,
    read_mask,
    read_raw,
    read_vessel_mask,
    write_png_atomic,
)

NAME_MAX = 255  # Linux file systems (ext4, tmpfs, xfs): the longest file name, in bytes
# Windows counts names in UTF-16 units and says "too long" in other ways; these tests are about POSIX's limit.
posix_names = pytest.mark.skipif(os.name == "nt", reason="POSIX file-name limits")
LONG_STEM = "a" * 250  # "<stem>.png" fits in 255 bytes; "<stem>_prob.png" and "<stem>_manual1.png" do not


def write_png(path: Path, arr: np.ndarray) -> None:
    """Not atomically: the atomic write's temporary name (the name plus 14 characters) would not fit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(path, arr))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG (valid CRCs) whose IHDR claims ``width`` x ``height`` 8-bit RGB pixels, with one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 16)) + _chunk(b"IEND", b"")
    )


def gif_claiming(width: int, height: int) -> bytes:
    """A real 16x16 GIF whose logical screen is patched to ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.new("L", (16, 16)).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def test_the_hand_built_png_header_claims_what_it_says():
    with Image.open(io.BytesIO(png_claiming(123, 45))) as im:  # Pillow checks the IHDR's CRC
        assert im.size == (123, 45) and im.format == "PNG"


READERS = [read_raw, read_image, read_mask, read_vessel_mask, image_size]


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.__name__)
@pytest.mark.parametrize(
    "name, data, claim",
    [
        ("huge.png", png_claiming(100_000, 100_000), "100000x100000"),
        ("huge.gif", gif_claiming(60_000, 60_000), "60000x60000"),
        ("wide.png", png_claiming(MAX_IMAGE_SIDE + 1, 8), f"{MAX_IMAGE_SIDE + 1}x8"),
        ("many.png", png_claiming(20_001, 20_000), "20001x20000"),  # each side allowed, the pixel count not
    ],
    ids=["100000x100000-png", "60000x60000-gif", "too-wide-png", "too-many-pixels-png"],
)
def test_a_header_claiming_more_pixels_than_any_camera_is_one_line_naming_file_and_size(
    tmp_path, reader, name, data, claim
):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageReadError) as err:
        reader(path)
    message = str(err.value)
    assert message.startswith(f"{path}: header claims {claim} pixels, more than ")
    assert "this app reads" in message and "\n" not in message


def test_an_image_at_the_side_bound_still_reads(tmp_path):
    _, buf = cv2.imencode(".png", np.full((8, MAX_IMAGE_SIDE), 200, np.uint8))
    (tmp_path / "strip.png").write_bytes(buf.tobytes())
    assert read_image(tmp_path / "strip.png").shape == (8, MAX_IMAGE_SIDE, 3)
    assert image_size(tmp_path / "strip.png") == (8, MAX_IMAGE_SIDE)


def test_a_plausible_header_with_missing_pixels_is_not_a_readable_image(tmp_path):
    path = tmp_path / "cut.png"
    path.write_bytes(png_claiming(300, 200))
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert str(err.value).startswith(f"{path}: not a readable image") and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "failure, problem",
    [
        (cv2.error("OpenCV(5.1.0) loadsave.cpp:80: error: (-215:Assertion failed)\n"), "not a readable image"),
        (MemoryError(), "not enough memory to decode it"),
    ],
    ids=["opencv-error", "out-of-memory"],
)
def test_a_decoder_failure_becomes_one_line_naming_the_file(tmp_path, monkeypatch, failure, problem):
    path = tmp_path / "photo.png"
    write_png_atomic(path, np.zeros((16, 16, 3), np.uint8))

    def failing_decoder(*args, **kwargs):
        raise failure

    monkeypatch.setattr(imageio.cv2, "imdecode", failing_decoder)
    monkeypatch.setattr(imageio.Image.Image, "load", failing_decoder)  # Pillow, the fallback, fails alike
    for reader in (read_raw, read_image, read_mask):
        with pytest.raises(ImageReadError) as err:
            reader(path)
        assert str(err.value).startswith(f"{path}: {problem}") and "\n" not in str(err.value)


def test_pillow_decoding_a_file_opencv_refused_is_the_fallback(tmp_path, monkeypatch):
    path = tmp_path / "photo.png"
    rgb = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    write_png_atomic(path, rgb)

    def refusing_decoder(*args, **kwargs):
        raise cv2.error("refused")

    monkeypatch.setattr(imageio.cv2, "imdecode", refusing_decoder)
    assert np.array_equal(read_image(path), rgb)


def test_predict_reports_the_huge_header_in_one_line_and_goes_on(tmp_path, micro_checkpoint_path, fundus, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a_huge.png").write_bytes(png_claiming(100_000, 100_000))
    write_png_atomic(tmp_path / "in" / "b_good.png", fundus.image)  # after the huge one: it must still be done
    rc = main(
        ["predict", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--weights", str(micro_checkpoint_path)]
    )
    captured = capsys.readouterr()
    assert rc == 1
    assert read_raw(tmp_path / "out" / "b_good.png").shape == fundus.image.shape[:2]
    assert read_raw(tmp_path / "out" / "b_good_prob.png").dtype == np.uint16
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b_good.png", "b_good_prob.png"]
    (error,) = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert error.startswith(f"error: {tmp_path / 'in' / 'a_huge.png'}: header claims 100000x100000 pixels, more than ")
    assert "this app reads" in error and "Traceback" not in captured.err and "cv2.error" not in captured.err
    assert "wrote 1 of 2 images" in captured.out


@posix_names
def test_find_mask_of_a_stem_too_long_for_its_mask_names_finds_nothing(tmp_path):
    (tmp_path / "m").mkdir()
    assert find_mask(tmp_path / "m", LONG_STEM) is None
    assert find_mask(tmp_path / "m", "b" * 300) is None  # not even "<stem>.png" fits
    write_png(tmp_path / "m" / f"{LONG_STEM}.png", np.zeros((8, 8), np.uint8))
    assert find_mask(tmp_path / "m", LONG_STEM) == tmp_path / "m" / f"{LONG_STEM}.png"


@posix_names
def test_a_folder_with_a_long_stem_pairs_its_photos_and_masks(tmp_path, fundus):
    write_png(tmp_path / "w" / f"{LONG_STEM}.png", fundus.image)
    write_png_atomic(tmp_path / "w" / "short.png", fundus.image)
    write_png(tmp_path / "w" / "ground_truth" / f"{LONG_STEM}.png", mask_to_png(fundus.vessels))
    (folder,) = image_folders(tmp_path / "w")
    assert folder.layout == "flat" and folder.masks == tmp_path / "w" / "ground_truth"
    (sample,) = discover(tmp_path / "w")
    assert sample.image.stem == LONG_STEM and sample.mask == tmp_path / "w" / "ground_truth" / f"{LONG_STEM}.png"


@posix_names
def test_predict_reports_an_output_name_too_long_in_one_line_and_goes_on(
    tmp_path, micro_checkpoint_path, fundus, capsys
):
    long_photo = tmp_path / "in" / f"{LONG_STEM}.png"
    write_png(long_photo, fundus.image)
    write_png_atomic(tmp_path / "in" / "good.png", fundus.image)
    rc = main(
        ["predict", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--weights", str(micro_checkpoint_path)]
    )
    captured = capsys.readouterr()
    assert rc == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png", "good_prob.png"]
    (error,) = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert error.startswith(f"error: {long_photo}: file name too long for its output ")
    assert f"{LONG_STEM}_prob.png" in error and error.endswith("skipped")
    assert "Traceback" not in captured.err and "wrote 1 of 2 images" in captured.out


@pytest.mark.parametrize("stem_length", [NAME_MAX - len("_prob.png") - 1, NAME_MAX - len("_prob.png")])
@posix_names
def test_predict_writes_both_outputs_of_a_long_stem_or_neither(
    tmp_path, micro_checkpoint_path, fundus, capsys, stem_length
):
    """Names that fit but are near the limit (the atomic write's temporary name is longer still)."""
    stem = "c" * stem_length
    write_png_atomic(tmp_path / "in" / "good.png", fundus.image)
    photo = tmp_path / "in" / f"{stem}.jpg"
    _, buf = cv2.imencode(".jpg", fundus.image)
    photo.write_bytes(buf.tobytes())
    rc = main(
        ["predict", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--weights", str(micro_checkpoint_path)]
    )
    captured = capsys.readouterr()
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "Traceback" not in captured.err and "good.png" in written
    if rc == 0:
        assert written == sorted(["good.png", "good_prob.png", f"{stem}.png", f"{stem}_prob.png"])
    else:
        assert rc == 1 and written == ["good.png", "good_prob.png"]
        (error,) = [line for line in captured.err.splitlines() if line.startswith("error: ")]
        assert error.startswith(f"error: {photo}: file name too long") and error.endswith("skipped")


@posix_names
def test_predict_reports_a_named_input_too_long_for_the_file_system_in_one_line(
    tmp_path, micro_checkpoint_path, fundus, capsys
):
    write_png_atomic(tmp_path / "good.png", fundus.image)
    too_long = tmp_path / ("d" * 300 + ".png")
    rc = main(
        [
            "predict",
            str(too_long),
            str(tmp_path / "good.png"),
            "--out",
            str(tmp_path / "out"),
            "--weights",
            str(micro_checkpoint_path),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 1 and (tmp_path / "out" / "good.png").is_file()
    (error,) = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert error.startswith(f"error: {too_long}: file name too long") and "Traceback" not in captured.err


@posix_names
def test_a_too_long_name_is_told_by_the_file_systems_own_limit(tmp_path):
    with pytest.raises(OSError) as err:
        (tmp_path / ("e" * (NAME_MAX + 1))).write_bytes(b"")
    assert err.value.errno == errno.ENAMETOOLONG  # the limit the tests above assume
    (tmp_path / ("e" * NAME_MAX)).write_bytes(b"")
    assert Path(tmp_path / ("e" * NAME_MAX)).is_file()


@posix_names
def test_a_name_is_measured_as_the_file_system_counts_it(tmp_path):
    from model_core.data import name_length, name_max

    assert name_max(tmp_path / "not" / "made" / "yet") == name_max(tmp_path) == NAME_MAX
    assert name_length("abc.png") == 7
    assert name_length("é.png") == 6  # two bytes in UTF-8, the encoding of Linux file names
    (tmp_path / ("é" * (NAME_MAX // 2) + "x")).write_bytes(b"")  # 255 bytes: fits
    with pytest.raises(OSError):
        (tmp_path / ("é" * (NAME_MAX // 2 + 1))).write_bytes(b"")  # 256 bytes, though only 128 characters
