"""Tests of photosim.core.scan.imageio: sniffing, reading, one-pass decoding, hostile inputs.

Images are generated with Pillow in ``tmp_path``; the shared corpora (bad inputs, DEV photos)
are used when ``<repo>/../shared/data`` exists and skipped with a reason otherwise.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import stat
import struct
import threading
import unicodedata
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFile, ImageFilter, JpegImagePlugin

from photosim.core.scan import imageio
from photosim.core.scan.hashing import content_hash, hamming
from photosim.core.scan.imageio import (
    IMAGE_EXTENSIONS,
    IMAGE_FORMATS,
    MAX_FILE_BYTES,
    SNIFF_BYTES,
    DecodeError,
    decode_bytes,
    decode_file,
    open_upright,
    read_file,
    sniff,
)
from photosim.core.types import DecodedImage, DecodeRequest, Error

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BADINPUT = SHARED_DATA / "badinput"
DEV = SHARED_DATA / "dev"
REQ = {"model_size": 224, "thumb_size": 256}

# Pixels stored so that applying EXIF orientation N (as ImageOps.exif_transpose does) gives
# back the upright image: the inverse of each orientation's transform.
STORE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


# --------------------------------------------------------------------------- helpers


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A photo-like RGB test image: smooth colour field plus random discs."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8))
    img = img.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(12):
        x, y, r = (
            int(rng.integers(0, w)),
            int(rng.integers(0, h)),
            int(rng.integers(w // 50 + 1, w // 5 + 2)),
        )
        draw.ellipse(
            (x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3))
        )
    return img


def encode(img: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def exif_bytes(**tags: object) -> bytes:
    """EXIF block; keys like ``t274`` (IFD0) or ``x36867`` (Exif IFD)."""
    exif = Image.Exif()
    for key, value in tags.items():
        if key[0] == "x":
            exif.get_ifd(0x8769)[int(key[1:])] = value
        else:
            exif[int(key[1:])] = value
    return exif.tobytes()


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def dec(data: bytes, **kw: int) -> DecodedImage:
    return decode_bytes(data, DecodeRequest("<test>", **{**REQ, **kw}))


def thumb_image(d: DecodedImage) -> Image.Image:
    img = Image.open(io.BytesIO(d.thumbnail))
    img.load()
    return img


def assert_decodes_or_decode_error(path: str) -> DecodedImage | DecodeError:
    try:
        d = decode_file(DecodeRequest(path, **REQ))
    except DecodeError as exc:
        assert isinstance(exc.reason, str) and exc.reason.strip(), "empty reason"
        assert str(exc) == exc.reason
        return exc
    assert isinstance(d, DecodedImage)
    assert d.width > 0 and d.height > 0 and d.format in IMAGE_FORMATS
    assert len(d.content_hash) == 32
    assert d.thumbnail[:3] == b"\xff\xd8\xff"
    assert d.model_input is not None and d.model_input.shape == (224, 224, 3)
    return d


def png_header_only(width: int, height: int, bit_depth: int = 8, colour: int = 6) -> bytes:
    """A PNG declaring a size in its IHDR chunk, with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- constants


def test_public_constants() -> None:
    assert SNIFF_BYTES == 32
    assert MAX_FILE_BYTES == 1 << 30
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)
    for (
        ext
    ) in ".jpg .jpeg .jpe .png .webp .tif .tiff .bmp .gif .heic .heif .avif .pgm .ppm .pbm".split():
        assert ext in IMAGE_EXTENSIONS
    assert {"JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "HEIF", "AVIF", "PPM"} <= IMAGE_FORMATS
    assert issubclass(DecodeError, Error)


def test_policies_left_as_pillow_ships_them() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # truncated files are errors
    assert Image.MAX_IMAGE_PIXELS is not None  # the bomb check is never disabled


def test_decode_error_pickles_with_reason() -> None:
    """Decoding runs in worker processes: the error must cross a process boundary intact."""
    err = pickle.loads(pickle.dumps(DecodeError("truncated image data")))
    assert isinstance(err, DecodeError) and err.reason == "truncated image data"


# --------------------------------------------------------------------------- sniff


@pytest.mark.parametrize(
    ("fmt", "mode", "expected"),
    [
        ("JPEG", "RGB", "JPEG"),
        ("PNG", "RGBA", "PNG"),
        ("GIF", "P", "GIF"),
        ("BMP", "RGB", "BMP"),
        ("TIFF", "RGB", "TIFF"),
        ("WEBP", "RGB", "WEBP"),
        ("PPM", "RGB", "PPM"),  # P6
        ("PPM", "L", "PPM"),  # P5 (PGM)
        ("PPM", "1", "PPM"),  # P4 (PBM)
    ],
)
def test_sniff_files_written_by_pillow(fmt: str, mode: str, expected: str) -> None:
    data = encode(Image.new(mode, (8, 8)), fmt)
    assert sniff(data[:SNIFF_BYTES]) == expected
    assert sniff(data) == expected  # extra bytes are ignored


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"MM\x00*\x00\x00\x00\x08", "TIFF"),  # big-endian TIFF
        (b"II*\x00\x08\x00\x00\x00", "TIFF"),
        (b"II+\x00\x08\x00\x00\x00", "TIFF"),  # BigTIFF
        (b"P1\n# plain pbm\n2 2\n0 1 1 0\n", "PPM"),
        (b"P3 2 2 255 ", "PPM"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIF"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "HEIF"),
        (b"\x00\x00\x00\x18ftypheix\x00\x00\x00\x00mif1heix", "HEIF"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "AVIF"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", "AVIF"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", None),  # MP4 video
        (b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom", None),  # Canon CR3 raw
        (b"BMW is a car maker, not a bitmap header", None),
        (b"P7\nWIDTH 2\n", None),  # PAM: not read
        (b"PK\x03\x04", None),
        (b"<!DOCTYPE html>", None),
        (b"GIF90a", None),
        (b"\xff\xd8", None),  # too short to be sure
        (b"", None),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
    ],
)
def test_sniff_magic_numbers(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


@given(st.binary(max_size=64))
def test_sniff_never_raises(head: bytes) -> None:
    assert sniff(head) in IMAGE_FORMATS | {None}


# --------------------------------------------------------------------------- read_file


def test_read_file_refuses_non_regular_files(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match=r"^not a regular file \(a folder\)$"):
        read_file(tmp_path)
    with pytest.raises(DecodeError, match="file not found"):
        read_file(tmp_path / "missing.jpg")
    with pytest.raises(DecodeError, match=r"^empty file \(0 bytes\)$"):
        read_file(write(tmp_path / "empty.jpg", b""))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "named_pipe.jpg"
    os.mkfifo(fifo)
    outcome: list[BaseException | object] = []

    def target() -> None:
        try:
            outcome.append(decode_file(DecodeRequest(str(fifo), **REQ)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # blocked in open(): unblock it by opening the write end, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
        pytest.fail("decode_file blocked on a FIFO")
    assert isinstance(outcome[0], DecodeError)
    assert outcome[0].reason == "not a regular file (a named pipe)"


def test_huge_sparse_file_is_refused_from_stat(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "sparse_4GiB.jpg"
    with open(path, "wb") as f:
        f.truncate(4 << 30)  # sparse: no disk used
    opened: list[object] = []
    monkeypatch.setattr(imageio.os, "open", lambda *a, **k: opened.append(a) or 1 / 0)
    with pytest.raises(DecodeError, match=r"^file too large: 4\.0 GiB exceeds the 1 GiB limit$"):
        decode_file(DecodeRequest(str(path), **REQ))
    assert not opened  # refused before opening, so nothing was read


def test_links(tmp_path: Path) -> None:
    ok = write(tmp_path / "ok.jpg", encode(photo(1, (64, 48))))
    os.symlink("missing.jpg", tmp_path / "dangling.jpg")
    os.symlink("loop_b.jpg", tmp_path / "loop_a.jpg")
    os.symlink("loop_a.jpg", tmp_path / "loop_b.jpg")
    os.symlink("ok.jpg", tmp_path / "link.jpg")
    with pytest.raises(DecodeError, match="file not found"):
        decode_file(DecodeRequest(str(tmp_path / "dangling.jpg"), **REQ))
    with pytest.raises(DecodeError, match="^cannot read file: "):
        decode_file(DecodeRequest(str(tmp_path / "loop_a.jpg"), **REQ))
    # The walker decides whether to hand links over; given one, it reads the target.
    linked = decode_file(DecodeRequest(str(tmp_path / "link.jpg"), **REQ))
    assert linked.content_hash == decode_file(DecodeRequest(ok, **REQ)).content_hash


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads mode-000 files")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "mode000.jpg"
    path.write_bytes(encode(photo(1, (64, 48))))
    path.chmod(0)
    try:
        with pytest.raises(DecodeError, match="^cannot read file: permission denied"):
            decode_file(DecodeRequest(str(path), **REQ))
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def _odd_names() -> list[object]:
    return [
        pytest.param(os.fsdecode(b"latin1_\xe9t\xe9_\xff.jpg"), id="not-utf8"),
        pytest.param(unicodedata.normalize("NFD", "café_nfd.jpg"), id="nfd"),
        pytest.param("long_" + "x" * 241 + ".jpg", id="250-bytes"),
        pytest.param("with space and ümlaut é.jpg", id="spaces"),
        pytest.param("emoji_📷.jpg", id="emoji"),
        pytest.param("-leading-dash.jpg", id="dash"),
        pytest.param(".hidden.jpg", id="hidden"),
    ]


@pytest.mark.parametrize("name", _odd_names())
def test_odd_file_names_decode(tmp_path: Path, name: str) -> None:
    data = encode(Image.new("RGB", (64, 48), "red"))
    try:
        (tmp_path / name).write_bytes(data)
    except (OSError, UnicodeEncodeError) as exc:
        pytest.skip(f"file system refuses this name: {exc}")
    d = decode_file(DecodeRequest(str(tmp_path / name), **REQ))
    assert (d.width, d.height, d.format) == (64, 48, "JPEG")
    assert d.content_hash == content_hash(data) and d.size == len(data)


# --------------------------------------------------------------------------- decode basics


def test_decode_file_everything_from_one_read(tmp_path: Path) -> None:
    img = photo(2, (800, 600))
    data = encode(img, quality=90)
    d = decode_file(DecodeRequest(write(tmp_path / "p.jpg", data), model_size=224, thumb_size=256))
    assert d.content_hash == content_hash(data) and d.size == len(data)
    assert (d.width, d.height, d.format) == (800, 600, "JPEG")
    assert d.taken_at is None and d.camera is None
    thumb = thumb_image(d)
    assert thumb.format == "JPEG" and thumb.mode == "RGB" and thumb.size == (256, 192)
    assert d.model_input is not None
    assert d.model_input.shape == (224, 224, 3) and d.model_input.dtype == np.uint8
    assert d.model_input.flags.writeable and d.model_input.flags.c_contiguous
    assert isinstance(d.phash, int) and -(1 << 63) <= d.phash < (1 << 63)
    assert isinstance(d.dhash, int) and -(1 << 63) <= d.dhash < (1 << 63)


def test_no_model_input_when_not_asked() -> None:
    d = dec(encode(photo(2)), model_size=0)
    assert d.model_input is None


def test_model_input_is_squashed_not_cropped() -> None:
    img = Image.new("RGB", (800, 100), (255, 0, 0))
    img.paste((0, 0, 255), (400, 0, 800, 100))
    d = dec(encode(img, "PNG"), model_size=64)
    assert d.model_input is not None and d.model_input.shape == (64, 64, 3)
    left, right = d.model_input[:, :30].mean(axis=(0, 1)), d.model_input[:, 34:].mean(axis=(0, 1))
    assert left[0] > 250 and left[2] < 5 and right[2] > 250 and right[0] < 5


@pytest.mark.parametrize(
    ("size", "thumb_size", "expected"),
    [((100, 50), 256, (100, 50)), ((2000, 1000), 1024, (1024, 512)), ((300, 900), 128, (43, 128))],
)
def test_thumbnail_fits_and_never_upscales(size, thumb_size, expected) -> None:
    d = dec(encode(photo(3, size), "PNG"), thumb_size=thumb_size)
    assert thumb_image(d).size == expected


def test_same_hashes_whatever_the_requested_sizes() -> None:
    """Hashes come from the same reduced copy, so sizes asked for barely move them."""
    data = encode(photo(4, (1600, 1200)), quality=92)
    a = dec(data, model_size=0, thumb_size=128)
    b = dec(data, model_size=384, thumb_size=512)
    assert hamming(a.phash, b.phash) <= 2


def test_open_upright(tmp_path: Path) -> None:
    stored = photo(5, (600, 400)).transpose(Image.Transpose.ROTATE_90)
    data = encode(stored, quality=92, exif=exif_bytes(t274=6))
    path = write(tmp_path / "r.jpg", data)
    full = open_upright(path)
    assert full.mode == "RGB" and full.size == (600, 400)
    small = open_upright(data, max_side=150)
    assert small.mode == "RGB" and small.size == (150, 100)
    assert open_upright(Path(path), max_side=1000).size == (600, 400)  # never upscaled
    with pytest.raises(DecodeError, match="not an image"):
        open_upright(b"hello world, not an image")
    with pytest.raises(DecodeError, match="empty file"):
        open_upright(b"")
    with pytest.raises(DecodeError, match="not a regular file"):
        open_upright(tmp_path)


# --------------------------------------------------------------------------- EXIF orientation


@pytest.fixture(scope="module")
def upright_jpeg() -> tuple[Image.Image, DecodedImage]:
    img = photo(6, (480, 320))
    return img, dec(encode(img, quality=95))


@pytest.mark.parametrize("orientation", [3, 6, 8, 2, 4, 5, 7])
def test_exif_rotated_copy_matches_upright(upright_jpeg, orientation: int) -> None:
    img, ref = upright_jpeg
    stored = img.transpose(STORE_FOR_ORIENTATION[orientation])
    d = dec(encode(stored, quality=95, exif=exif_bytes(t274=orientation)))
    assert (d.width, d.height) == (480, 320)
    assert hamming(d.phash, ref.phash) <= 2
    assert hamming(d.dhash, ref.dhash) <= 4
    assert thumb_image(d).size == thumb_image(ref).size == (256, 171)
    mean_err = np.abs(
        np.asarray(thumb_image(d), dtype=np.int16) - np.asarray(thumb_image(ref), dtype=np.int16)
    ).mean()
    assert mean_err < 6  # the pixels really are upright, not just the size


def test_exif_orientation_in_png_is_applied() -> None:
    img = photo(7, (300, 200))
    stored = img.transpose(STORE_FOR_ORIENTATION[6])
    d = dec(encode(stored, "PNG", exif=exif_bytes(t274=6)))
    assert (d.width, d.height) == (300, 200)
    assert hamming(d.phash, dec(encode(img, "PNG")).phash) <= 1


def raw_exif_entry(tag: int, typ: int, count: int, value: bytes) -> bytes:
    """An EXIF block with one IFD0 entry, written by hand (Pillow refuses odd types)."""
    entry = struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00")[:4]
    return b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 1) + entry + b"\x00\x00\x00\x00"


@pytest.mark.parametrize(
    "exif",
    [
        pytest.param(exif_bytes(t274=0), id="0"),
        pytest.param(exif_bytes(t274=9), id="9"),
        pytest.param(exif_bytes(t274=65535), id="65535"),
        pytest.param(raw_exif_entry(274, 2, 2, b"6\x00"), id="ascii"),
        pytest.param(raw_exif_entry(274, 1, 1, b"\x06"), id="byte"),
        pytest.param(raw_exif_entry(274, 3, 2, b"\x06\x00\x06\x00"), id="two-shorts"),
        pytest.param(raw_exif_entry(274, 3, 1000, b"\xff\xff\xff\x7f"), id="offset-past-end"),
        pytest.param(raw_exif_entry(274, 99, 1, b"\x06"), id="unknown-type"),
    ],
)
def test_invalid_orientation_is_ignored(exif: bytes) -> None:
    d = dec(encode(photo(8, (120, 80)), exif=exif))
    assert (d.width, d.height) in ((120, 80), (80, 120))  # odd encodings may still read as 6
    assert d.thumbnail


# --------------------------------------------------------------------------- near copies


def test_resized_and_reencoded_copies_hash_close_different_far() -> None:
    img = photo(9, (1024, 768))
    ref = dec(encode(img, quality=95))
    half = dec(encode(img.resize((512, 384), Image.Resampling.LANCZOS), quality=95))
    q40 = dec(encode(img, quality=40))
    as_png = dec(encode(img, "PNG"))
    other = dec(encode(photo(10, (1024, 768)), quality=95))
    for copy in (half, q40, as_png):
        assert hamming(ref.phash, copy.phash) <= 4
        assert hamming(ref.dhash, copy.dhash) <= 6
    assert (half.width, half.height) == (512, 384)
    assert hamming(ref.phash, other.phash) > 20


def _logo(transparent_rgb: tuple[int, int, int]) -> Image.Image:
    """A red disc with soft (partially transparent) edges; hidden pixels have the given colour."""
    alpha = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(alpha).ellipse((40, 40, 160, 160), fill=255)
    alpha = alpha.filter(ImageFilter.GaussianBlur(3))
    a = np.asarray(alpha)
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., 0] = 220
    rgba[..., 1] = 30
    rgba[a == 0, :3] = transparent_rgb
    rgba[..., 3] = a
    return Image.fromarray(rgba, "RGBA")


def test_transparent_pixels_flatten_onto_white() -> None:
    on_black = dec(encode(_logo((0, 0, 0)), "PNG"))
    on_white = dec(encode(_logo((255, 255, 255)), "PNG"))
    assert (on_black.phash, on_black.dhash) == (on_white.phash, on_white.dhash)
    assert on_black.thumbnail == on_white.thumbnail
    np.testing.assert_array_equal(on_black.model_input, on_white.model_input)
    flat = open_upright(encode(_logo((0, 0, 0)), "WEBP", lossless=True))
    assert flat.getpixel((0, 0)) == (255, 255, 255) and flat.getpixel((100, 100))[:2] == (220, 30)


# --------------------------------------------------------------------------- modes, frames


def _mode_cases() -> list[object]:
    grey16 = Image.fromarray(np.full((40, 60), 32768, np.uint16))
    grey32 = Image.fromarray(np.full((40, 60), 40000, np.int32))
    floats = Image.fromarray(np.full((40, 60), 0.5, np.float32))
    pal = Image.new("RGB", (60, 40), (128, 128, 128)).convert("P", palette=Image.Palette.ADAPTIVE)
    pal_trns = Image.new("P", (60, 40), 0)
    pal_trns.putpalette([0, 0, 0] + [128, 128, 128] * 255)
    pal_trns.info["transparency"] = 0
    cmyk = Image.new("CMYK", (60, 40), (0, 0, 0, 127))
    return [
        pytest.param(encode(Image.new("1", (60, 40), 1), "PNG"), 255, id="1"),
        pytest.param(encode(Image.new("L", (60, 40), 128), "PNG"), 128, id="L"),
        pytest.param(encode(Image.new("LA", (60, 40), (0, 0)), "PNG"), 255, id="LA-transparent"),
        pytest.param(encode(pal, "PNG"), 128, id="P"),
        pytest.param(encode(pal_trns, "PNG", transparency=0), 255, id="P-tRNS"),
        pytest.param(
            encode(Image.new("RGB", (60, 40), (0, 0, 0)), "PNG", transparency=(0, 0, 0)),
            255,
            id="RGB-tRNS",
        ),
        pytest.param(encode(grey16, "PNG"), 128, id="I;16-png"),
        pytest.param(encode(grey16, "TIFF"), 128, id="I;16-tiff"),
        pytest.param(encode(grey32, "TIFF"), 156, id="I-32bit"),
        pytest.param(encode(floats, "TIFF"), 128, id="F"),
        pytest.param(encode(cmyk, "JPEG"), 128, id="CMYK-jpeg"),
        pytest.param(encode(cmyk, "TIFF"), 128, id="CMYK-tiff"),
        pytest.param(encode(Image.new("RGB", (60, 40), (128, 128, 128)), "BMP"), 128, id="BMP"),
        pytest.param(encode(Image.new("L", (60, 40), 128), "PPM"), 128, id="PGM"),
    ]


@pytest.mark.parametrize(("data", "grey"), _mode_cases())
def test_modes_convert_to_correct_rgb(data: bytes, grey: int) -> None:
    d = dec(data)
    assert (d.width, d.height) == (60, 40)
    assert d.model_input is not None
    assert np.abs(d.model_input.astype(int) - grey).max() <= 2, d.model_input.mean(axis=(0, 1))


def test_animated_gif_and_multipage_tiff_use_the_first_frame() -> None:
    frames = [Image.new("RGB", (64, 48), c) for c in ("red", "blue", "green")]
    for data in (
        encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
        encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
        encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True),
    ):
        d = dec(data)
        r, g, b = d.model_input.reshape(-1, 3).mean(axis=0)  # type: ignore[union-attr]
        assert r > 240 and g < 15 and b < 15


@pytest.mark.parametrize("size", [(1, 1), (10000, 1), (1, 3000), (3, 2)])
def test_degenerate_sizes(size: tuple[int, int]) -> None:
    d = dec(encode(Image.new("RGB", size, (10, 200, 30)), "PNG"))
    assert (d.width, d.height) == size
    assert d.model_input is not None and d.model_input.shape == (224, 224, 3)
    assert max(thumb_image(d).size) <= 256


def test_heif_and_avif_when_supported() -> None:
    img = photo(11, (400, 300))
    ref = dec(encode(img, "PNG"))
    checked = 0
    for fmt in ("HEIF", "AVIF"):
        stored = img.transpose(STORE_FOR_ORIENTATION[6])
        try:
            data = encode(stored, fmt, quality=90, exif=exif_bytes(t274=6))
        except (KeyError, OSError, ValueError):
            continue  # no encoder in this build: decoding is what matters
        assert sniff(data) == fmt
        d = dec(data)
        assert d.format == fmt and (d.width, d.height) == (400, 300)
        assert hamming(d.phash, ref.phash) <= 4
        checked += 1
    if not checked:
        pytest.skip("this Pillow/pillow-heif build cannot write HEIF or AVIF")


# --------------------------------------------------------------------------- JPEG draft


@pytest.fixture(scope="module")
def camera_jpeg() -> bytes:
    return encode(photo(12, (4000, 3000)), quality=90)


def test_jpeg_draft_scales_camera_photos(camera_jpeg: bytes, monkeypatch) -> None:
    drafted: list[tuple[int, int]] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):  # type: ignore[no-untyped-def]
        result = original(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    d = dec(camera_jpeg, model_size=224, thumb_size=256)
    assert (d.width, d.height) == (4000, 3000)  # full size, taken before the draft
    assert drafted == [(500, 375)]  # libjpeg decoded at 1/8 scale
    assert d.model_input is not None and d.model_input.shape == (224, 224, 3)
    assert thumb_image(d).size == (256, 192)
    # A plain full decode hashes the same photo alike.
    full = photo(12, (4000, 3000)).resize((512, 384), Image.Resampling.LANCZOS)
    assert hamming(d.phash, dec(encode(full, "PNG")).phash) <= 4


def test_jpeg_draft_sizes_respect_orientation(camera_jpeg: bytes) -> None:
    # Stored landscape, displayed portrait (a camera held upright).
    stored = Image.open(io.BytesIO(camera_jpeg))
    d = dec(encode(stored, quality=90, exif=exif_bytes(t274=6)), model_size=224, thumb_size=256)
    assert (d.width, d.height) == (3000, 4000)
    assert thumb_image(d).size == (192, 256)


def test_multi_picture_jpeg_is_a_jpeg_decoded_with_draft(monkeypatch) -> None:
    """Phone/camera JPEGs with an embedded preview open as Pillow's "MPO"."""
    first, preview = photo(18, (2000, 1500)), Image.new("RGB", (2000, 1500), "blue")
    data = encode(first, "MPO", save_all=True, append_images=[preview])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    drafted: list[tuple[int, int]] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):  # type: ignore[no-untyped-def]
        result = original(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    d = dec(data)
    assert (d.format, d.width, d.height) == ("JPEG", 2000, 1500)
    assert drafted == [(500, 375)]
    assert (
        hamming(d.phash, dec(encode(first, quality=90)).phash) <= 2
    )  # first picture, not the preview


def test_open_upright_uses_the_draft(camera_jpeg: bytes) -> None:
    img = open_upright(camera_jpeg, max_side=800)
    assert img.size == (800, 600)


# --------------------------------------------------------------------------- EXIF metadata


@pytest.mark.parametrize(
    ("tags", "taken_at", "camera"),
    [
        (
            {"x36867": "2021:03:04 05:06:07", "t271": "Canon", "t272": "Canon EOS 5D"},
            "2021-03-04T05:06:07",
            "Canon EOS 5D",
        ),
        (
            {"t306": "2019:12:31 23:59:59", "t271": "NIKON CORPORATION", "t272": "NIKON D750"},
            "2019-12-31T23:59:59",
            "NIKON D750",
        ),
        (
            {
                "x36867": "0000:00:00 00:00:00",
                "t306": "2018:01:02 03:04:05",
                "t271": "Apple",
                "t272": "iPhone 12",
            },
            "2018-01-02T03:04:05",
            "Apple iPhone 12",
        ),
        ({"x36867": "2021:13:45 99:00:00"}, None, None),
        ({"x36867": "yesterday", "t271": "  Canon\x00\x00 ", "t272": ""}, None, "Canon"),
        ({"t272": "  PowerShot   S80 "}, None, "PowerShot S80"),
        ({"x36867": "2020-05-06 07:08:09\x00"}, "2020-05-06T07:08:09", None),
        ({"t271": "\x00\x00\x00"}, None, None),
    ],
)
def test_exif_taken_at_and_camera(tags: dict[str, object], taken_at, camera) -> None:
    d = dec(encode(photo(13, (64, 48)), exif=exif_bytes(**tags)))
    assert (d.taken_at, d.camera) == (taken_at, camera)


@pytest.mark.parametrize("seed", range(8))
def test_garbage_exif_never_fails_the_decode(seed: int) -> None:
    rng = np.random.default_rng(seed)
    junk = rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
    # A TIFF header pointing at random IFD entries, or plain noise.
    payload = (b"II*\x00\x08\x00\x00\x00" + junk) if seed % 2 else junk
    d = dec(encode(photo(14, (64, 48)), exif=b"Exif\x00\x00" + payload))
    assert (d.width, d.height) == (64, 48)


# --------------------------------------------------------------------------- bombs


def test_decompression_bomb_is_refused_with_a_reason() -> None:
    with pytest.raises(
        DecodeError, match=r"^decompression bomb: 400 Mpx exceeds the limit of 179 Mpx$"
    ):
        dec(png_header_only(20000, 20000))


def test_bomb_policy_warning_range_decodes_error_range_refused(monkeypatch, caplog) -> None:
    """Scaled down: with a limit of 1000 px, 1200 px is in the warning range, 2500 px a bomb."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    before = list(warnings.filters)
    with caplog.at_level(logging.DEBUG, logger=imageio.__name__):
        d = dec(encode(photo(15, (40, 30)), "PNG"))  # warnings are errors in this suite
    assert (d.width, d.height) == (40, 30)
    assert "DecompressionBombWarning" in caplog.text  # logged, not raised
    assert warnings.filters == before  # the local silencing did not leak
    with pytest.raises(DecodeError, match=r"^decompression bomb: "):
        dec(encode(photo(15, (50, 50)), "PNG"))
    with pytest.raises(DecodeError, match=r"^decompression bomb: "):
        open_upright(encode(photo(15, (50, 50)), "JPEG"), max_side=10)


def test_permission_denied_reason(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path / "p.jpg", encode(photo(1, (64, 48))))

    def denied(*_args: object, **_kw: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(imageio.os, "open", denied)
    with pytest.raises(DecodeError, match=r"^cannot read file: permission denied$"):
        decode_file(DecodeRequest(path, **REQ))


# --------------------------------------------------------------------------- fuzzing

VALID_SAMPLES = [
    encode(photo(16, (48, 32)), "JPEG", quality=80),
    encode(photo(16, (48, 32)), "JPEG", quality=80, progressive=True),
    encode(photo(16, (48, 32)).convert("RGBA"), "PNG"),
    encode(photo(16, (48, 32)), "GIF"),
    encode(photo(16, (48, 32)), "BMP"),
    encode(photo(16, (48, 32)), "TIFF"),
    encode(photo(16, (48, 32)), "WEBP", quality=80),
    encode(photo(16, (48, 32)), "PPM"),
]


def _decodes_or_decode_error(data: bytes) -> None:
    try:
        d = dec(data)
    except DecodeError as exc:
        assert exc.reason.strip()
        return
    assert d.width > 0 and d.height > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=4096),
        st.builds(
            lambda prefix, tail: prefix + tail,
            st.sampled_from([s[:SNIFF_BYTES] for s in VALID_SAMPLES]),
            st.binary(max_size=2048),
        ),
    )
)
def test_random_bytes_only_ever_raise_decode_error(data: bytes) -> None:
    _decodes_or_decode_error(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(VALID_SAMPLES),
    st.floats(0.0, 1.0),
    st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), max_size=8),
)
def test_mutated_valid_files_only_ever_raise_decode_error(
    sample: bytes, keep: float, flips: list[tuple[float, int]]
) -> None:
    data = bytearray(sample[: max(1, int(len(sample) * keep))])
    for where, value in flips:
        data[int(where * len(data))] = value
    _decodes_or_decode_error(bytes(data))


def test_truncated_files_are_errors_not_grey_photos() -> None:
    data = encode(photo(17, (640, 480)), quality=90)
    for fmt_data in (data, encode(photo(17, (640, 480)), "PNG")):
        with pytest.raises(DecodeError, match=r"^truncated image data$"):
            dec(fmt_data[: len(fmt_data) // 2])


# --------------------------------------------------------------------------- shared corpora


def _manifest_entries() -> list[object]:
    manifest = BADINPUT / "manifest.json"
    if not manifest.is_file():
        return [
            pytest.param(None, marks=pytest.mark.skip(reason=f"no bad-input corpus at {BADINPUT}"))
        ]
    files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    return [pytest.param(entry, id=entry["path"]) for entry in files]


@pytest.mark.parametrize("entry", _manifest_entries())
def test_bad_inputs_match_the_manifest(entry: dict[str, object]) -> None:
    path = BADINPUT / str(entry["path"])
    outcome = assert_decodes_or_decode_error(str(path))
    expected = entry["expected"]
    if expected in ("decodes", "bomb_warning"):
        assert isinstance(outcome, DecodedImage), f"{path}: {outcome}"
        probe = entry.get("probe") or {}
        if isinstance(probe, dict) and probe.get("size"):
            assert sorted((outcome.width, outcome.height)) == sorted(probe["size"])
    elif expected == "bomb_error":
        assert isinstance(outcome, DecodeError) and outcome.reason.startswith(
            "decompression bomb: "
        )
    elif expected == "error":
        assert isinstance(outcome, DecodeError)
        assert not outcome.reason.startswith("decompression bomb")
    else:
        pytest.fail(f"unknown expectation {expected!r} in the manifest")


@pytest.mark.skipif(not BADINPUT.is_dir(), reason=f"no bad-input corpus at {BADINPUT}")
def test_every_bad_input_file_is_handled() -> None:
    """Walk the corpus itself (not only the manifest), folder named folder.jpg included."""
    seen = 0
    reasons = {}
    for dirpath, _dirs, names in os.walk(BADINPUT / "generated"):
        for name in names:
            outcome = assert_decodes_or_decode_error(os.path.join(dirpath, name))
            seen += 1
            if isinstance(outcome, DecodeError):
                reasons[name] = outcome.reason
    assert seen >= 39
    assert reasons["zero_bytes.jpg"] == "empty file (0 bytes)"
    assert reasons["truncated_50pct.jpg"] == "truncated image data"
    assert reasons["random_bytes.jpg"] == "not an image: unrecognised content"
    assert (BADINPUT / "generated/names/folder.jpg").is_dir()
    with pytest.raises(DecodeError, match=r"^not a regular file \(a folder\)$"):
        decode_file(DecodeRequest(str(BADINPUT / "generated/names/folder.jpg"), **REQ))


def _dev_groundtruth() -> dict[str, object] | None:
    path = DEV / "groundtruth.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@pytest.mark.skipif(_dev_groundtruth() is None, reason=f"no DEV set at {DEV}")
def test_dev_set_decodes_except_the_unreadable() -> None:
    gt = _dev_groundtruth()
    assert gt is not None
    images: dict[str, dict[str, object]] = gt["images"]  # type: ignore[assignment]
    unreadable = set(gt["unreadable"])  # type: ignore[arg-type]
    decoded: dict[str, DecodedImage] = {}
    for rel, meta in images.items():
        path = str(DEV / rel)
        if rel in unreadable:
            with pytest.raises(DecodeError):
                decode_file(DecodeRequest(path, **REQ))
            continue
        d = decode_file(DecodeRequest(path, **REQ))
        decoded[rel] = d
        with open(path, "rb") as f:
            assert sniff(f.read(SNIFF_BYTES)) == d.format, rel  # content, not name, decides
        if "width" in meta:
            assert (d.width, d.height) == (meta["width"], meta["height"]), rel
    assert len(decoded) == len(images) - len(unreadable) > 100
    # EXIF-rotated synthetic copies hash like their upright source.
    for rel, meta in images.items():
        if meta.get("transform") == "exif_orientation" and meta.get("derived_from") in decoded:
            source = decoded[str(meta["derived_from"])]
            assert hamming(decoded[rel].phash, source.phash) <= 4, rel


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_greyscale_copies_are_told_from_colour_photos() -> None:
    """A greyscale file, or a greyscale picture saved as RGB, is grey; a colour photo is
    not, even with its colour faded to a sixth (a foggy or snowy scene)."""
    from helpers import photo_array

    colour = Image.fromarray(photo_array(3, (800, 600)), "RGB")
    grey = colour.convert("L")
    arr = np.asarray(colour, np.float32)
    mean = arr.mean(axis=2, keepdims=True)
    faded = Image.fromarray(np.clip(mean + (arr - mean) / 6, 0, 255).astype(np.uint8), "RGB")
    assert dec(_jpeg(grey)).grey
    assert dec(_jpeg(grey.convert("RGB"), quality=75)).grey
    png = io.BytesIO()
    grey.convert("RGB").save(png, "PNG")
    assert dec(png.getvalue()).grey
    assert not dec(_jpeg(colour)).grey
    assert not dec(_jpeg(faded)).grey


def _camera_exif(when: str, subsec: str | None = None, exposure: tuple[int, int] | None = (1, 250),
                 iso: int | None = 200) -> bytes:
    from PIL import TiffImagePlugin

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 80D"
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = when
    if subsec is not None:
        ifd[0x9291] = subsec
    if exposure is not None:
        ifd[0x829A] = TiffImagePlugin.IFDRational(*exposure)
    if iso is not None:
        ifd[0x8827] = iso
    return exif.tobytes()


def test_capture_record_from_camera_exif() -> None:
    """Date taken to the sub-second and the exposure settings; no record without
    DateTimeOriginal, or with a date alone (editors write dates of their own)."""
    img = Image.fromarray(np.full((48, 64, 3), 90, np.uint8), "RGB")

    def capture(exif: bytes) -> str | None:
        buf = io.BytesIO()
        img.save(buf, "JPEG", exif=exif)
        return dec(buf.getvalue()).capture

    assert capture(_camera_exif("2024:05:01 10:00:00", "37")) == (
        "2024-05-01T10:00:00.37|t=0.004|f=|iso=200|ev=")
    assert capture(_camera_exif("2024:05:01 10:00:00", exposure=None, iso=None)) is None
    assert capture(_camera_exif("0000:00:00 00:00:00")) is None
    assert capture(b"") is None
