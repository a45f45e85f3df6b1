"""Reading and decoding image files: one decode per file produces everything a scan needs.

:func:`decode_file` is the hot path of every scan and runs in worker processes. For one file it
reads the bytes once, hashes them, decodes once (JPEG DCT-scaled draft, HEIF embedded
thumbnail), applies the EXIF orientation, and derives the perceptual hashes, the stored
thumbnail and the model input from that one upright image. Any failure becomes a
:class:`DecodeError` with a short reason a user can read; no other exception escapes.

Policies:
    * Content decides the format, never the name (:func:`sniff`, and Pillow only tries the
      plugins in :data:`IMAGE_FORMATS`: no EPS/Ghostscript or other exotic parsers).
    * Non-regular files (FIFOs, devices, sockets, folders) are refused before any ``open()``;
      files over :data:`MAX_FILE_BYTES` are refused from ``stat`` alone.
    * Truncated files are errors (Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` stays False):
      indexing a half-grey photo would make a bogus "unique" entry.
    * Decompression bombs: Pillow's ``DecompressionBombError`` (over 2 x ``MAX_IMAGE_PIXELS``,
      about 179 Mpx) is never disabled and becomes "decompression bomb: ...". Images in the
      warning range (89 to 179 Mpx) are decoded, because real panoramas live there: the
      warning is silenced locally, JPEGs are DCT-scaled on decode (a few MB), and other
      formats are box-reduced right after decoding, before transposing or flattening. Peak
      memory is the decoded image (1 to 4 bytes per pixel) plus, for palette, 1-bit, 16-bit
      and CMYK modes, one 8-bit conversion of it: about 200 MB for a 100 Mpx 1-bit PNG, at
      most about 900 MB for a 179 Mpx palette image with transparency.
    * Warnings Pillow raises while decoding hostile files (corrupt EXIF, odd palettes...) are
      logged at DEBUG, never turned into errors. ``warnings.catch_warnings`` is process-global
      state: decoding concurrently on several *threads* may lose warnings, nothing worse.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import stat
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from photosim.core.scan.hashing import content_hash, orientation_hashes
from photosim.core.types import DecodedImage, DecodeRequest, Error

logger = logging.getLogger(__name__)

SNIFF_BYTES = 32  # bytes of a file's head that sniff() needs
MAX_FILE_BYTES = 1 << 30  # 1 GiB: no photo is larger; refusing early avoids reading a 4 GiB blob
WORK_MAX_SIDE = 512  # longest side of the copy the perceptual hashes are computed from
HASH_MIN_SIDE = 64  # never draft below this: hashes need some detail above their 32x32 grid
GREY_PROBE_SIDE = 128  # pixels: is_grey looks at a copy this small
GREY_MEAN_SPREAD = 1.5  # levels: mean channel spread of a greyscale picture, at most
GREY_MAX_SPREAD = 6  # levels: its 99th percentile, at most
REDUCING_GAP = 2.0  # box-reduce only down to 2x the target, then resample (Pillow's thumbnail rule)
THUMB_QUALITY = 85
MAX_REASON_CHARS = 160
EXIF_IFD = 0x8769
TAG_ORIENTATION = 0x0112
TAG_DATETIME = 306
TAG_DATETIME_ORIGINAL = 36867
TAG_MAKE = 271
TAG_MODEL = 272
MAX_CAMERA_CHARS = 80
# Capture settings in the EXIF IFD (CIPA DC-008): what tells two shots of one scene apart.
TAG_EXPOSURE_TIME = 0x829A
TAG_FNUMBER = 0x829D
TAG_ISO = 0x8827
TAG_EXPOSURE_BIAS = 0x9204
TAG_SUBSEC_ORIGINAL = 0x9291

#: Pillow format names photosim decodes. "MPO" is what Pillow calls a multi-picture JPEG
#: (most camera and phone JPEGs with an embedded preview); "PPM" covers PBM/PGM/PPM.
IMAGE_FORMATS = frozenset(
    {"JPEG", "MPO", "PNG", "GIF", "BMP", "TIFF", "WEBP", "HEIF", "AVIF", "PPM"}
)
#: File name extensions treated as images without sniffing (lowercase, with the dot).
IMAGE_EXTENSIONS = frozenset(
    """
    .jpg .jpeg .jpe .jfif .png .webp .tif .tiff .bmp .gif .heic .heif .hif .avif
    .pgm .ppm .pbm .pnm
    """.split()
)

# Plugin order for Image.open: most likely first (Pillow tries each plugin's accept()).
_OPEN_ORDER = ("JPEG", "PNG", "HEIF", "AVIF", "WEBP", "TIFF", "GIF", "BMP", "PPM", "MPO")
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_DATE = re.compile(r"\s*(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_BOMB_NUMBERS = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+)")
# O_NONBLOCK: a FIFO swapped in after our stat() must not block the worker in open().
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_WHITE = (255, 255, 255)
_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)
_T = TypeVar("_T")

try:  # HEIC/HEIF through libheif; photosim still runs (without HEIF) if it is missing.
    import pillow_heif

    pillow_heif.register_heif_opener()
    # pillow-heif < 1.0 also decodes AVIF; Pillow >= 11.2 has its own AVIF plugin, preferred.
    _register_avif = getattr(pillow_heif, "register_avif_opener", None)
    Image.init()
    if _register_avif is not None and "AVIF" not in Image.OPEN:
        _register_avif()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - depends on the installation
    HEIF_SUPPORTED = False
Image.init()
_OPEN_FORMATS = tuple(f for f in _OPEN_ORDER if f in Image.OPEN)


class DecodeError(Error):
    """A file could not be decoded; ``reason`` says why in a few words.

    Attributes:
        reason: Short, specific, user-readable reason, e.g. ``"truncated image data"``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)  # args == (reason,): survives pickling across processes
        self.reason = reason


def sniff(head: bytes) -> str | None:
    """Tell the image format from a file's first bytes (magic numbers).

    Args:
        head: The first :data:`SNIFF_BYTES` bytes of a file (more are ignored, fewer are fine).

    Returns:
        A Pillow format name from :data:`IMAGE_FORMATS` (``"JPEG"``, ``"PNG"``, ``"GIF"``,
        ``"BMP"``, ``"TIFF"``, ``"WEBP"``, ``"HEIF"``, ``"AVIF"``, ``"PPM"`` for any netpbm
        P1-P6), or None if the content is not an image format photosim reads.
    """
    h = bytes(head[:SNIFF_BYTES])
    if h.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if h[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "TIFF"
    if h[:4] == b"RIFF" and h[8:12] == b"WEBP":
        return "WEBP"
    if h[4:8] == b"ftyp":
        return _sniff_bmff(h)
    # "BM" alone matches text; the DIB header size behind it is one of a few known values.
    if h[:2] == b"BM" and int.from_bytes(h[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP"
    if len(h) >= 3 and h[0] == 0x50 and 0x31 <= h[1] <= 0x36 and h[2] in b" \t\r\n":
        return "PPM"
    return None


def _sniff_bmff(h: bytes) -> str | None:
    """HEIF/AVIF from an ISO-BMFF 'ftyp' box: major brand, then the compatible brands."""
    major = h[8:12]
    end = min(int.from_bytes(h[:4], "big"), len(h))
    compatible = {h[i : i + 4] for i in range(16, end - 3, 4)}
    if major in _AVIF_BRANDS or (major in _GENERIC_BRANDS and compatible & _AVIF_BRANDS):
        return "AVIF"
    if major in _HEIF_BRANDS or major in _GENERIC_BRANDS or compatible & _HEIF_BRANDS:
        return "HEIF"
    return None


def read_file(path: str | os.PathLike[str]) -> bytes:
    """Read a whole regular file, refusing anything that could block or exhaust memory.

    Args:
        path: File path (str may hold surrogate escapes for non-UTF-8 names). Symbolic links
            are followed; the walker decides whether to hand them over at all.

    Returns:
        The file content (at least 1 byte, at most :data:`MAX_FILE_BYTES`).

    Raises:
        DecodeError: Missing file or dangling link, permission denied, not a regular file,
            empty, too large, or a read error.
    """
    try:
        st = os.stat(path)  # stat first: open() on a FIFO would block
    except FileNotFoundError:
        raise DecodeError("file not found (or a dangling link)") from None
    except OSError as exc:
        raise DecodeError(f"cannot read file: {_os_reason(exc)}") from None
    _check_stat(st)
    try:
        fd = os.open(path, _OPEN_FLAGS)
        with open(fd, "rb", buffering=0) as f:
            _check_stat(os.fstat(fd))  # the path may have been swapped since stat()
            data = f.read()  # readall: sized from fstat, no MAX_FILE_BYTES buffer up front
    except OSError as exc:
        raise DecodeError(f"cannot read file: {_os_reason(exc)}") from None
    if not data:
        raise DecodeError("empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:  # grew after stat
        raise DecodeError(f"file too large: over the {MAX_FILE_BYTES >> 30} GiB limit")
    return data


def _check_stat(st: os.stat_result) -> None:
    mode = st.st_mode
    if not stat.S_ISREG(mode):
        kind = next((k for test, k in _FILE_KINDS if test(mode)), "a special file")
        raise DecodeError(f"not a regular file ({kind})")
    if st.st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    if st.st_size > MAX_FILE_BYTES:
        raise DecodeError(
            f"file too large: {st.st_size / 2**30:.1f} GiB exceeds the "
            f"{MAX_FILE_BYTES >> 30} GiB limit"
        )


def _os_reason(exc: OSError) -> str:
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def decode_file(req: DecodeRequest) -> DecodedImage:
    """Read, hash and decode one file, deriving everything photosim stores about it.

    Args:
        req: Path and the sizes to produce.

    Returns:
        The decoded image's hashes, metadata, thumbnail and (if ``req.model_size``) model input.

    Raises:
        DecodeError: For any failure, with a short reason. Nothing else is raised.
    """
    return decode_bytes(read_file(req.path), req)


def decode_bytes(data: bytes, req: DecodeRequest) -> DecodedImage:
    """Like :func:`decode_file` for content already read (``req.path`` is only for logs).

    Lets the scan pipeline hash the bytes first and skip decoding content it already knows.

    Args:
        data: Whole file content.
        req: Sizes to produce.

    Returns:
        See :func:`decode_file`.

    Raises:
        DecodeError: For any failure, with a short reason. Nothing else is raised.
    """
    return _guarded(_decode, data, req.path, req)


def open_upright(
    source: str | os.PathLike[str] | bytes, max_side: int | None = None
) -> Image.Image:
    """Decode an image for display or a similarity query: RGB, EXIF orientation applied.

    Shares :func:`decode_file`'s code path (format whitelist, bomb and truncation policy,
    transparency flattened onto white).

    Args:
        source: A path, or the file content as bytes.
        max_side: If given, the longest side of the result is at most this many pixels
            (downscaled, never upscaled; JPEGs are DCT-scaled while decoding). None: full size.

    Returns:
        A loaded RGB image.

    Raises:
        DecodeError: For any failure, with a short reason. Nothing else is raised.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "<bytes>"
    else:
        data, name = read_file(source), os.fspath(source)
    return _guarded(_open_fitted, data, name, max_side or 0)


def _decode(data: bytes, req: DecodeRequest) -> DecodedImage:
    # Keep just enough pixels that no later resize upsamples: the model input squashes both
    # sides to model_size, the thumbnail needs thumb_size on the long side only.
    short = max(req.model_size, HASH_MIN_SIDE)
    img, width, height, fmt, exif = _load_upright(
        data, min_short=short, min_long=max(short, req.thumb_size)
    )
    # Box-reduce by an integer factor (cheap) to <= WORK_MAX_SIDE; from here the hashes shrink
    # to 32x32 / 9x8 themselves, so copies of any size end up on the same small grid.
    longest = max(img.size)
    work = img.reduce(math.ceil(longest / WORK_MAX_SIDE)) if longest > WORK_MAX_SIDE else img
    hashes = orientation_hashes(work)
    phash, dhash = hashes[0]
    thumbnail = b""
    if req.thumb_size > 0:
        buf = io.BytesIO()
        src = work if max(work.size) >= min(req.thumb_size, longest) else img
        _fit(src, req.thumb_size, Image.Resampling.BICUBIC).save(buf, "JPEG", quality=THUMB_QUALITY)
        thumbnail = buf.getvalue()
    sketch = b""
    if req.sketch:
        sketch = _detail_sketch(work)
    model_input = None
    if req.model_size > 0:
        s = req.model_size
        # Squashed, not cropped: the whole photo is the descriptor's evidence.
        squashed = img.resize((s, s), Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP)
        model_input = np.array(squashed, dtype=np.uint8)  # writable (S, S, 3) copy
    return DecodedImage(
        content_hash=content_hash(data),
        size=len(data),
        width=width,
        height=height,
        format=fmt,
        taken_at=_taken_at(exif),
        camera=_camera(exif),
        phash=phash,
        dhash=dhash,
        variants=tuple(hashes[1:]),
        thumbnail=thumbnail,
        model_input=model_input,
        grey=is_grey(work),
        capture=_capture(exif),
        sketch=sketch,
    )


def _detail_sketch(work: Image.Image) -> bytes:
    """The detail sketch of the working copy as bytes (see :class:`DecodedImage`); empty when
    OpenCV cannot describe the pixels (a hostile file never fails the scan for it)."""
    import cv2  # lazy: a hash-only decode of one file needs no OpenCV

    from photosim.core.dedup.verify import detail_sketch

    try:
        codes = detail_sketch(np.asarray(work.convert("L")))
    except cv2.error as exc:
        logger.info("no detail sketch: %s", exc)
        return b""
    return codes.astype("<u8").tobytes()


def is_grey(img: Image.Image) -> bool:
    """True when an RGB picture carries no colour: a greyscale copy of a photo.

    Measured on a box-reduced copy of at most :data:`GREY_PROBE_SIDE` pixels a side: the
    spread of the three channels (max - min, 0..255) must stay within compression noise on
    average (:data:`GREY_MEAN_SPREAD`) and almost everywhere (its 99th percentile at most
    :data:`GREY_MAX_SPREAD`). A colour photo of a grey scene (fog, snow, concrete) still has
    a few levels of spread everywhere and a few strongly coloured pixels.

    Args:
        img: An RGB (or greyscale) image.

    Returns:
        Whether the picture is greyscale.
    """
    if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return True
    longest = max(img.size)
    probe = img.reduce(math.ceil(longest / GREY_PROBE_SIDE)) if longest > GREY_PROBE_SIDE else img
    arr = np.asarray(probe.convert("RGB"), dtype=np.int16)
    spread = arr.max(axis=2) - arr.min(axis=2)
    return bool(spread.mean() <= GREY_MEAN_SPREAD
                and np.percentile(spread, 99) <= GREY_MAX_SPREAD)


def _open_fitted(data: bytes, max_side: int) -> Image.Image:
    img = _load_upright(data, min_long=max_side)[0]
    return _fit(img, max_side, Image.Resampling.LANCZOS) if max_side else img


def _guarded(func: Callable[..., _T], data: bytes, name: str, *args: Any) -> _T:
    """Run ``func(data, *args)`` with warnings logged, and every failure a DecodeError."""
    if not data:
        raise DecodeError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = func(data, *args)
    except DecodeError:
        raise
    except Exception as exc:  # hostile files reach odd corners of every decoder
        reason = _reason(exc, data)
        logger.debug("cannot decode %s: %s", name, reason, exc_info=True)
        raise DecodeError(reason) from exc
    for w in caught:
        logger.debug("%s: %s: %s", name, w.category.__name__, w.message)
    return result


def _reason(exc: BaseException, data: bytes) -> str:
    """Map a decoder exception to a short user-readable reason."""
    if isinstance(exc, Image.DecompressionBombError):
        m = _BOMB_NUMBERS.search(str(exc))
        if m:
            pixels, limit = (int(g) / 1e6 for g in m.groups())
            return f"decompression bomb: {pixels:,.0f} Mpx exceeds the limit of {limit:,.0f} Mpx"
        return "decompression bomb: image too large"
    if isinstance(exc, UnidentifiedImageError):
        fmt = sniff(data[:SNIFF_BYTES])
        if fmt is None:
            return "not an image: unrecognised content"
        if fmt in ("HEIF", "AVIF") and fmt not in _OPEN_FORMATS:
            return f"unsupported image: {fmt} support is not installed"
        return f"unsupported or corrupt image: cannot read this {fmt} file"
    if isinstance(exc, MemoryError):
        return "out of memory while decoding"
    arg = exc.args[0] if len(exc.args) == 1 else None
    # Some plugins raise with bytes (PPM: b"Token too long..."): show text, not a b'' repr.
    msg = (
        _exif_text(arg.decode("ascii", "ignore"))
        if isinstance(arg, bytes)
        else " ".join(str(exc).split())
    )
    if isinstance(exc, EOFError) or "truncated" in msg.lower():
        return "truncated image data"
    detail = msg or type(exc).__name__
    return f"unsupported or corrupt image: {detail}"[:MAX_REASON_CHARS]


def _load_upright(
    data: bytes, *, min_short: int = 0, min_long: int = 0
) -> tuple[Image.Image, int, int, str, Image.Exif | None]:
    """Decode to an upright RGB image, no larger than the caller needs.

    Args:
        data: Whole file content.
        min_short: The result's short side is kept >= this many pixels (or full size).
        min_long: The result's long side is kept >= this many pixels (or full size).
            Both 0: full resolution. Orientation does not matter: a transpose keeps which
            side is the long one.

    Returns:
        ``(image, width, height, format, exif)``: RGB image (possibly reduced, at most
        ~2x the need), the full-size width and height after EXIF orientation, the Pillow format
        name ("MPO" reported as "JPEG"), and the EXIF block (None if unreadable).
    """
    img = Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    fmt = "JPEG" if img.format == "MPO" else str(img.format)
    width, height = img.size  # full size: draft() below may shrink img.size
    need = None  # (width, height) in stored orientation that the decode must keep
    if min_short > 0 or min_long > 0:
        short, long = max(min_short, 1), max(min_long, min_short, 1)
        need = (long, short) if width >= height else (short, long)
        # JPEG: libjpeg IDCT scaling by 1/2..1/8 with each side still >= need (the big win on
        # camera photos); HEIF: an embedded thumbnail at least that big; others: no-op.
        img.draft("RGB", need)
    img.load()
    exif = _read_exif(img)  # after load(): PNG may keep its eXIf chunk after the pixel data
    orientation = _orientation(exif)
    if orientation >= 5:  # 5..8 swap the axes
        width, height = height, width
    img = _to_8bit(img)
    if need is not None:
        factor = min(
            int(img.width / (need[0] * REDUCING_GAP)), int(img.height / (need[1] * REDUCING_GAP))
        )
        if factor >= 2:  # box reduce before transposing/flattening: those then touch fewer pixels
            img = img.reduce(factor)
    if orientation in _ORIENTATION_TRANSPOSE:
        img = img.transpose(_ORIENTATION_TRANSPOSE[orientation])
    return _flatten_rgb(img), width, height, fmt, exif


def _to_8bit(img: Image.Image) -> Image.Image:
    """Convert any decoded mode to L, LA, RGB or RGBA (8 bits per channel)."""
    mode = img.mode
    if mode in ("RGB", "L"):
        # A tRNS colour key (PNG) becomes real alpha, so it gets flattened onto white.
        return img.convert("RGBA") if "transparency" in img.info else img
    if mode in ("RGBA", "LA"):
        return img
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        return img.convert("RGBA" if has_alpha else "RGB")
    if mode == "1":
        return img.convert("L")
    if mode in ("La", "RGBa"):  # premultiplied
        return img.convert(mode[:-1] + "A")
    if mode.startswith("I") or mode == "F":
        # Pillow's own I;16/I/F -> L conversion clips at 255 (a 16-bit photo turns white):
        # scale instead.
        a = np.asarray(img)
        if a.dtype.kind == "u" and a.dtype.itemsize == 2:  # I;16 family: keep the high byte
            return Image.fromarray((a >> 8).astype(np.uint8), "L")
        if a.dtype.kind == "f":
            a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)
            a = a * 255.0 if a.max(initial=0.0) <= 1.0 else a  # 0..1 floats are common
        elif a.max(initial=0) > 255:
            a = a // 257  # 32-bit "I" holding 16-bit data (Pillow < 10 read 16-bit PNGs so)
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def _flatten_rgb(img: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white.

    White, not black: the same logo saved with black or with white fully-transparent pixels
    must give the same image (Pillow's reduce/resize are alpha-premultiplied, so the hidden
    colours never leak in either).
    """
    if img.mode in ("RGBA", "LA"):
        flat = Image.new("RGB", img.size, _WHITE)
        flat.paste(img, None, img)  # the image's own alpha is the mask
        return flat
    return img if img.mode == "RGB" else img.convert("RGB")


def _fit(img: Image.Image, max_side: int, resample: Image.Resampling) -> Image.Image:
    """Downscale so the longest side is <= max_side (aspect kept); never upscale."""
    w, h = img.size
    if max(w, h) <= max_side:
        return img
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, resample, reducing_gap=REDUCING_GAP)


# ----------------------------------------------------------------------------- EXIF
# Garbage EXIF is common (broken editors, hostile files): every reader below returns a
# neutral value instead of raising.


def _read_exif(img: Image.Image) -> Image.Exif | None:
    try:
        return img.getexif()
    except Exception:
        logger.debug("unreadable EXIF", exc_info=True)
        return None


def _exif_get(exif: Image.Exif | None, tag: int, ifd: int | None = None) -> Any:
    if exif is None:
        return None
    try:
        return (exif.get_ifd(ifd) if ifd is not None else exif).get(tag)
    except Exception:
        return None


def _orientation(exif: Image.Exif | None) -> int:
    """EXIF Orientation 1..8; 1 for missing or invalid values (e.g. 9 or a string)."""
    try:
        value = int(_exif_get(exif, TAG_ORIENTATION) or 1)
    except (TypeError, ValueError, OverflowError):
        return 1
    return value if 1 <= value <= 8 else 1


def _exif_text(value: Any) -> str:
    """An EXIF ASCII value as clean single-spaced text ('' for anything else)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return ""
    return " ".join("".join(c for c in value if c.isprintable()).split())


def _taken_at(exif: Image.Exif | None) -> str | None:
    """DateTimeOriginal (else DateTime) as ``YYYY-MM-DDTHH:MM:SS``; None if absent or invalid."""
    for tag, ifd in (
        (TAG_DATETIME_ORIGINAL, EXIF_IFD),
        (TAG_DATETIME_ORIGINAL, None),
        (TAG_DATETIME, None),
    ):
        m = _EXIF_DATE.match(_exif_text(_exif_get(exif, tag, ifd)))
        if m:
            try:  # rejects the common "0000:00:00 00:00:00" placeholder and 2023:13:45
                return datetime(*(int(g) for g in m.groups())).isoformat()
            except ValueError:
                continue
    return None


def _capture(exif: Image.Exif | None) -> str | None:
    """The camera's record of the exposure: ``"<DateTimeOriginal>[.subsec]|t=|f=|iso=|ev="``.

    Exposure time (seconds), f-number, ISO and exposure bias, each empty when absent; None
    without a DateTimeOriginal in the EXIF IFD or without any exposure value (a date alone
    is often an editor's). Copies keep it (re-encodes, resizes and edits copy the EXIF);
    another shot has its own (see :func:`photosim.core.dedup.grouping.capture_difference`).
    """
    m = _EXIF_DATE.match(_exif_text(_exif_get(exif, TAG_DATETIME_ORIGINAL, EXIF_IFD)))
    if not m:
        return None
    try:
        when = datetime(*(int(g) for g in m.groups())).isoformat()
    except ValueError:
        return None
    subsec = "".join(c for c in _exif_text(_exif_get(exif, TAG_SUBSEC_ORIGINAL, EXIF_IFD))
                     if c.isdigit())[:6]
    values = []
    for tag in (TAG_EXPOSURE_TIME, TAG_FNUMBER, TAG_ISO, TAG_EXPOSURE_BIAS):
        value = _exif_get(exif, tag, EXIF_IFD)
        if isinstance(value, tuple):
            value = value[0] if value else None
        try:
            number = float(value) if value is not None else None
        except (TypeError, ValueError, ZeroDivisionError):
            number = None
        values.append("" if number is None or number != number else f"{number:.6g}")
    if not any(values):
        return None
    t, f, iso, ev = values
    return f"{when}{'.' + subsec if subsec else ''}|t={t}|f={f}|iso={iso}|ev={ev}"


def _camera(exif: Image.Exif | None) -> str | None:
    """``"Make Model"``, without repeating the make ("Canon Canon EOS 5D" -> "Canon EOS 5D")."""
    make = _exif_text(_exif_get(exif, TAG_MAKE))
    model = _exif_text(_exif_get(exif, TAG_MODEL))
    if make and model.lower().startswith(make.split()[0].lower()):
        camera = model  # "NIKON CORPORATION" + "NIKON D750" -> "NIKON D750"
    else:
        camera = f"{make} {model}".strip()
    return camera[:MAX_CAMERA_CHARS] or None
