"""Issue 26: a header claiming an absurd size is one line about that file; the other inputs are still processed."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from model_core import imageio
from model_core.cli import main
from model_core.errors import ImageReadError
from model_core.imageio import (
    MAX_IMAGE_SIDE,
    image_size,
    read_image,
    read_mask,
    read_raw,
    read_vessel_mask,
    write_png_atomic,
)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG (valid CRCs) whose IHDR claims ``width`` x ``height`` 8-bit RGB pixels, with one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + _chunk(b"IEND", b""))


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
@pytest.mark.parametrize("name, data, claim", [
    ("huge.png", png_claiming(100_000, 100_000), "100000x100000"),
    ("huge.gif", gif_claiming(60_000, 60_000), "60000x60000"),
    ("wide.png", png_claiming(MAX_IMAGE_SIDE + 1, 8), f"{MAX_IMAGE_SIDE + 1}x8"),
    ("many.png", png_claiming(20_001, 20_000), "20001x20000"),  # each side allowed, the pixel count not
], ids=["100000x100000-png", "60000x60000-gif", "too-wide-png", "too-many-pixels-png"])
def test_a_header_claiming_more_pixels_than_any_camera_is_one_line_naming_file_and_size(tmp_path, reader, name,
                                                                                         data, claim):
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


@pytest.mark.parametrize("failure, problem", [
    (cv2.error("OpenCV(5.1.0) loadsave.cpp:80: error: (-215:Assertion failed)\n"), "not a readable image"),
    (MemoryError(), "not enough memory to decode it"),
], ids=["opencv-error", "out-of-memory"])
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
    rc = main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--weights", str(micro_checkpoint_path)])
    captured = capsys.readouterr()
    assert rc == 1
    assert read_raw(tmp_path / "out" / "b_good.png").shape == fundus.image.shape[:2]
    assert read_raw(tmp_path / "out" / "b_good_prob.png").dtype == np.uint16
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b_good.png", "b_good_prob.png"]
    (error,) = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert error.startswith(f"error: {tmp_path / 'in' / 'a_huge.png'}: header claims 100000x100000 pixels, more than ")
    assert "this app reads" in error and "Traceback" not in captured.err and "cv2.error" not in captured.err
    assert "wrote 1 of 2 images" in captured.out
