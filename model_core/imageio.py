"""Reading and writing images: any common format, 8/16-bit, grey/RGB/RGBA, non-ASCII paths.

OpenCV's ``imread`` cannot open non-ASCII paths on Windows and cannot decode GIF, so bytes are read
by Python and decoded with ``cv2.imdecode``; Pillow is the fallback (DRIVE's masks are GIF).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .atomic import write_bytes_atomic
from .errors import ImageReadError

# A truncated PNG makes OpenCV print "[ WARN:0@0.8] global grfmt_png.cpp ... incomplete" on stderr beside the
# one-line error this module raises for the same file; its own warnings add nothing a user can act on.
try:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
except AttributeError:  # a build without the logging module
    pass

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".bmp")
MIN_IMAGE_SIDE = 8
# The largest fundus cameras give about 6000x4000 pixels (24 MP), stitched wide-field montages a few times that.
# 30000 px a side and 400 MP (1.2 GB as 8-bit RGB) leave room for any of them, yet a corrupt or crafted header
# claiming more is refused before the decoder asks for tens of gigabytes (OpenCV's own limit is 1 gigapixel,
# and it fails with a multi-line assertion).
MAX_IMAGE_SIDE = 30_000
MAX_IMAGE_PIXELS = 400_000_000
# Pillow's decompression-bomb check raises without saying the size (and warns from 89 MP); every read here
# checks the header against the bounds above before any pixel is decoded, and names the size.
Image.MAX_IMAGE_PIXELS = None


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _header_size(source: Path | bytes) -> tuple[int, int] | None:
    """(width, height) as the file's header claims it, no pixel decoded; None where Pillow cannot parse it."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            width, height = im.size
            return int(width), int(height)
    except Exception:  # noqa: BLE001 - a header Pillow cannot parse is left to the decoders, which say what is wrong
        return None


def _refuse_oversized(path: Path, width: int, height: int, what: str) -> None:
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise ImageReadError(
            path,
            f"{what} {width}x{height} pixels, more than this app reads (at most "
            f"{MAX_IMAGE_SIDE} px a side and {MAX_IMAGE_PIXELS // 1_000_000} megapixels)",
        )


@contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Decoder and conversion failures as one line naming the file (an OpenCV error is several lines)."""
    try:
        yield
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode it") from None
    except cv2.error:
        raise ImageReadError(path, "not a readable image (the decoder failed)") from None


def _decode(path: Path, data: bytes) -> np.ndarray:
    claimed = _header_size(data)
    if claimed is not None:
        _refuse_oversized(path, *claimed, "header claims")
    with _decoding(path):
        arr = _decode_pixels(path, data)
    _refuse_oversized(path, arr.shape[1], arr.shape[0], "image is")  # a format only OpenCV knows the size of
    return arr


def _decode_pixels(path: Path, data: bytes) -> np.ndarray:
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    except cv2.error:  # e.g. a part of the file OpenCV's decoder asserts on: Pillow may still read it
        arr = None
    if arr is not None:
        if arr.ndim == 3 and arr.shape[2] == 3:
            return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
        if arr.ndim == 3 and arr.shape[2] == 4:
            return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
        return arr
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode in ("P", "PA", "LA", "CMYK", "YCbCr", "1"):
                im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
            pixels: np.ndarray = np.asarray(im).copy()
            return pixels
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - Pillow's plugins raise OSError, ValueError, SyntaxError, struct.error, ...
        raise ImageReadError(path, "not a readable image (corrupt or unsupported format)") from None


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(height, width) as ``read_image`` would give it, from the file's header where Pillow can read one
    (no pixels decoded: checking a thousand 3504x2336 photos takes a second), else by decoding it."""
    path = Path(path)
    claimed = _header_size(path)
    if claimed is None:
        return read_raw(path).shape[:2]
    _refuse_oversized(path, *claimed, "header claims")
    return claimed[1], claimed[0]


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return (arr.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    a = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)  # a NaN pixel reads as black
    hi = float(a.max()) if a.size else 0.0
    if hi <= 1.0:
        a = a * 255.0
    elif hi > 255.0:
        a = a * (255.0 / hi)
    rounded: np.ndarray = np.clip(a + 0.5, 0, 255).astype(np.uint8)
    return rounded


def read_raw(path: str | os.PathLike[str], data: bytes | None = None) -> np.ndarray:
    """Decode a file as stored (channels in RGB(A) order, original bit depth); ``data``: its bytes, already read."""
    path = Path(path)
    try:
        data = path.read_bytes() if data is None else data
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a folder, not an image") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot be read ({exc.strerror or exc})") from None
    except MemoryError:
        raise ImageReadError(path, "not enough memory to read it") from None
    if not data:
        raise ImageReadError(path, "file is empty")
    return _decode(path, data)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read any supported image as 8-bit RGB ``(H, W, 3)``; alpha is dropped, grey is replicated."""
    path = Path(path)
    raw = read_raw(path)
    with _decoding(path):
        arr = _to_uint8(raw)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[:, :, :3]
        elif arr.ndim == 3 and arr.shape[2] == 2:  # grey + alpha
            arr = np.repeat(arr[:, :, :1], 3, axis=2)
        elif not (arr.ndim == 3 and arr.shape[2] == 3):
            raise ImageReadError(path, f"unsupported image layout {arr.shape}")
        check_image_size(arr, path)
        return np.ascontiguousarray(arr)


def check_image_size(arr: np.ndarray, path: str | os.PathLike[str] | None = None) -> None:
    h, w = arr.shape[:2]
    if h < MIN_IMAGE_SIDE or w < MIN_IMAGE_SIDE:
        raise ImageReadError(path, f"image is {w}x{h} pixels; at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} is needed")


def looks_like_a_photo(raw: np.ndarray, mask: np.ndarray | None = None) -> bool:
    """A colour photo (``read_raw``'s array) given where a mask belongs: colour, hundreds of colours, and more
    than 30 % of it would read as vessel (a fundus photo reads as about 60 %, vessel masks as 5-20 %). Grey
    masks, 0/1 and 0/255 masks, one colour on black, anti-aliased or JPEG-saved colour masks and artery/vein
    maps all pass. ``mask``: ``raw`` read as a mask, when the caller has it."""
    if raw.ndim != 3 or raw.shape[2] < 3:
        return False
    rgb = raw[:, :, :3]
    if (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all():
        return False
    step = max(1, rgb.shape[0] * rgb.shape[1] // 200_000)  # a sample is enough to tell a photo
    if len(np.unique(rgb.reshape(-1, 3)[::step], axis=0)) <= 256:
        return False
    return float((_mask_of(raw) if mask is None else mask).mean()) > 0.3


def read_vessel_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """``read_mask`` for a file that must be a mask: a colour photo given by mistake is refused (thresholded,
    it would read as a mask of mostly vessel)."""
    raw = read_raw(path)
    with _decoding(Path(path)):
        mask = _mask_of(raw)
    if looks_like_a_photo(raw, mask):
        raise ImageReadError(Path(path), "is a colour picture, not a mask (a mask has vessels in one colour on black)")
    return mask


def read_mask(path: str | os.PathLike[str], data: bytes | None = None) -> np.ndarray:
    """Read a binary mask (vessel where the value is at least half the range) as ``bool (H, W)``.

    ``data``: the file's bytes when the caller has them already (e.g. to hash them), so it is read once."""
    raw = read_raw(Path(path), data)
    with _decoding(Path(path)):
        return _mask_of(raw)


def _mask_of(raw: np.ndarray) -> np.ndarray:
    if raw.ndim == 3:
        raw = raw[:, :, :3].max(axis=2) if raw.shape[2] >= 3 else raw[:, :, 0]
    if raw.dtype == np.bool_:
        return raw
    if raw.dtype == np.uint8:
        hi = int(raw.max()) if raw.size else 0
        # 0/1 masks are common in exports; everything else is 0/255 (or grey edges from resizing).
        return raw >= (1 if hi == 1 else 128)
    if raw.dtype == np.uint16:
        hi = int(raw.max()) if raw.size else 0
        return raw >= (1 if hi == 1 else 32768)
    return raw.astype(np.float32) >= 0.5


def _encode_png(path: Path, arr: np.ndarray) -> bytes:
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    params = []
    if arr.ndim == 2 and arr.dtype == np.uint8 and hasattr(cv2, "IMWRITE_PNG_FILTER"):
        # Masks (the only single-channel 8-bit images written here): without row filters a 3504x2336 mask
        # encodes in 24 ms instead of 30 and is a fifth smaller, which keeps a save within a frame or three.
        params = [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    ok, buf = cv2.imencode(".png", arr, params)
    if not ok:  # pragma: no cover - only for dtypes PNG cannot hold
        raise ImageReadError(path, "could not be encoded as PNG")
    return buf.tobytes()


def encode_png(path: str | os.PathLike[str], arr: np.ndarray) -> bytes:
    """PNG bytes of ``arr`` (``path`` only names the file in errors)."""
    return _encode_png(Path(path), np.ascontiguousarray(arr))


def write_png_atomic(path: str | os.PathLike[str], arr: np.ndarray) -> Path:
    """Write a PNG atomically (see model_core.atomic): never a half-written mask on disk."""
    path = Path(path)
    return write_bytes_atomic(path, encode_png(path, arr))


def mask_to_png(mask: np.ndarray, one_value: int = 255) -> np.ndarray:
    # Arithmetic on the bool bytes: 10x faster than np.where on a 3504x2336 mask. The minimum cleans
    # bool arrays viewed from other bytes (e.g. 0/255), whose "True" is not 1.
    u8 = np.asarray(mask, dtype=bool).view(np.uint8)
    png: np.ndarray = np.minimum(u8, 1) * np.uint8(one_value)
    return png


def prob_to_png16(prob: np.ndarray) -> np.ndarray:
    return np.clip(prob * 65535.0 + 0.5, 0, 65535).astype(np.uint16)


def png16_to_prob(arr: np.ndarray) -> np.ndarray:
    return arr.astype(np.float32) / 65535.0
