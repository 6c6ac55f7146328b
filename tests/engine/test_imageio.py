import cv2
import numpy as np
import pytest
from PIL import Image

from model_core.errors import ImageReadError
from model_core.imageio import read_image, read_mask, write_png_atomic


@pytest.fixture
def rgb(rng):
    return rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp", ".ppm"])
def test_lossless_formats_round_trip_in_rgb_order(tmp_path, rgb, suffix):
    path = tmp_path / f"img{suffix}"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_image(path), rgb)


def test_jpeg_reads_close_to_original(tmp_path):
    smooth = np.zeros((64, 64, 3), np.uint8)
    smooth[..., 0] = 200
    smooth[..., 1] = np.linspace(0, 255, 64, dtype=np.uint8)[None, :]
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(smooth, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    img = read_image(path)
    assert img.shape == smooth.shape and np.abs(img.astype(int) - smooth).mean() < 3


def test_gif_is_read_through_pillow(tmp_path):
    mask = np.zeros((30, 20), np.uint8)
    mask[5:10, 3:15] = 255
    path = tmp_path / "mask.gif"
    Image.fromarray(mask).save(path)
    assert np.array_equal(read_mask(path), mask > 0)
    assert read_image(path).shape == (30, 20, 3)


def test_grey_rgba_and_16_bit_become_8_bit_rgb(tmp_path, rgb):
    grey = rgb[..., 0]
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    g = read_image(tmp_path / "g.png")
    assert g.shape == (40, 50, 3) and np.array_equal(g[..., 1], grey)

    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)

    deep = rgb.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "d.tif"), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_image(tmp_path / "d.tif"), rgb)


def test_non_ascii_path(tmp_path, rgb):
    folder = tmp_path / "Fundus Ärztin 眼底"
    write_png_atomic(folder / "bild_ö.png", rgb)
    assert np.array_equal(read_image(folder / "bild_ö.png"), rgb)


def test_masks_threshold_at_half_and_accept_0_1(tmp_path):
    m = np.array([[0, 127, 128, 255]] * 8, np.uint8).repeat(2, axis=1)
    cv2.imwrite(str(tmp_path / "m.png"), m)
    assert read_mask(tmp_path / "m.png")[0].tolist() == [False] * 4 + [True] * 4
    cv2.imwrite(str(tmp_path / "b.png"), (m > 127).astype(np.uint8))
    assert read_mask(tmp_path / "b.png")[0].tolist() == [False] * 4 + [True] * 4


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"", "empty"),
        (b"not an image at all", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a readable image"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path, content, problem):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert str(path) in str(err.value) and problem in str(err.value) and "\n" not in str(err.value)


def test_missing_and_tiny_images_are_rejected_clearly(tmp_path):
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "nope.png")
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((1, 3, 3), np.uint8))
    with pytest.raises(ImageReadError, match="3x1 pixels"):
        read_image(tmp_path / "tiny.png")


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    a, b = np.zeros((10, 10), np.uint8), np.full((10, 10), 255, np.uint8)
    write_png_atomic(tmp_path / "m.png", a)
    write_png_atomic(tmp_path / "m.png", b)
    assert read_mask(tmp_path / "m.png").all()
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]


def test_atomic_write_gives_normal_permissions_and_keeps_existing_ones(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        write_png_atomic(tmp_path / "new.png", np.zeros((8, 8), np.uint8))
        assert stat.S_IMODE((tmp_path / "new.png").stat().st_mode) == 0o644
        os.chmod(tmp_path / "new.png", 0o664)
        write_png_atomic(tmp_path / "new.png", np.ones((8, 8), np.uint8))
        assert stat.S_IMODE((tmp_path / "new.png").stat().st_mode) == 0o664
    finally:
        os.umask(umask)


@pytest.mark.parametrize("fail_at", ["mkstemp", "replace"])
def test_a_failed_atomic_write_names_the_file_asked_for_not_its_temporary(tmp_path, monkeypatch, fail_at):
    import errno
    import os
    import tempfile

    # Running as root ignores read-only permissions, so the failures a read-only or full disk gives are made here.
    if fail_at == "mkstemp":

        def fail(*a, **k):
            raise OSError(errno.EROFS, "Read-only file system", os.path.join(k["dir"], ".m.png.x1y2.tmp"))

        monkeypatch.setattr(tempfile, "mkstemp", fail)
    else:

        def fail(src, dst):
            raise OSError(errno.ENOSPC, "No space left on device", src, None, dst)

        monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError) as exc:
        write_png_atomic(tmp_path / "m.png", np.zeros((8, 8), np.uint8))
    assert exc.value.filename == str(tmp_path / "m.png") and exc.value.errno in (errno.EROFS, errno.ENOSPC)
    assert list(tmp_path.iterdir()) == []  # no stray temporary either


def test_atomic_copy_never_leaves_half_a_file(tmp_path, monkeypatch):
    import errno
    import os

    from model_core.atomic import copy_file_atomic

    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 5000)
    out = tmp_path / "out" / "copy.bin"
    assert copy_file_atomic(src, out) == out and out.read_bytes() == src.read_bytes()
    out.write_bytes(b"the previous export")

    def fail(a, b):
        raise OSError(errno.ENOSPC, "No space left on device", a, None, b)

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError) as exc:
        copy_file_atomic(src, out)
    assert exc.value.filename == str(out)
    assert out.read_bytes() == b"the previous export" and [p.name for p in out.parent.iterdir()] == ["copy.bin"]
    with pytest.raises(FileNotFoundError) as exc:
        copy_file_atomic(tmp_path / "missing.bin", out)
    assert exc.value.filename == str(tmp_path / "missing.bin")


def test_masks_are_written_without_png_row_filters_and_read_back_exactly(rng, tmp_path):
    """Unfiltered rows: a 3504x2336 mask encoded 20 % faster and smaller; every row's filter byte is 0 (None)."""
    import struct
    import zlib

    from model_core.imageio import encode_png, mask_to_png, read_mask

    mask = rng.random((64, 80)) > 0.7
    data = encode_png("m.png", mask_to_png(mask))
    pos, idat = 8, b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 80 + 1  # 8-bit grey: one filter byte, then one byte per pixel
    assert len(raw) == 64 * stride and all(raw[r * stride] == 0 for r in range(64))
    path = tmp_path / "m.png"
    path.write_bytes(data)
    assert np.array_equal(read_mask(path), mask)


def test_image_size_from_the_header_matches_the_decoded_image(tmp_path):
    import cv2
    import numpy as np

    from model_core.imageio import image_size, read_image, write_png_atomic

    rng = np.random.default_rng(0)
    write_png_atomic(tmp_path / "a.png", rng.integers(0, 255, (37, 53, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "b.tif"), rng.integers(0, 65535, (21, 18), dtype=np.uint16))
    cv2.imwrite(str(tmp_path / "c.jpg"), rng.integers(0, 255, (40, 30, 3), dtype=np.uint8))
    for name in ("a.png", "b.tif", "c.jpg"):
        assert image_size(tmp_path / name) == read_image(tmp_path / name).shape[:2]


def test_a_fundus_photo_is_told_from_masks_in_colour(tmp_path):
    import cv2
    import numpy as np

    from model_core.imageio import looks_like_a_photo, read_raw, write_png_atomic
    from model_core.synthetic import make_fundus

    f = make_fundus(200, 220, seed=4)
    assert looks_like_a_photo(f.image)
    green = np.zeros((200, 220, 3), np.uint8)
    green[..., 1] = cv2.GaussianBlur(f.vessels.astype(np.uint8) * 255, (5, 5), 1.5)  # anti-aliased edges
    av = np.zeros((200, 220, 3), np.uint8)
    av[f.vessels & (np.arange(220) < 110)] = (230, 20, 20)  # arteries red, veins blue
    av[f.vessels & (np.arange(220) >= 110)] = (20, 20, 230)
    grey = np.repeat((f.vessels.astype(np.uint8) * 255)[..., None], 3, axis=2)
    for name, img in (("green.png", green), ("av.png", av), ("grey.png", grey)):
        write_png_atomic(tmp_path / name, img)
        assert not looks_like_a_photo(read_raw(tmp_path / name)), name
    for name, img in (("green.jpg", green), ("av.jpg", av)):  # JPEG blurs the colours into hundreds
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert not looks_like_a_photo(read_raw(tmp_path / name)), name
