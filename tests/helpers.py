"""Test helpers shared by the core and cli tests: generated photos, a numpy embedder, a
synthetic catalog.

Nothing here imports torch or Qt. Photos are generated from a seed (smooth colour gradients,
a few shapes, mild noise), never flat: flat images are deliberately excluded from hash matching.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from photosim.core.catalog import Catalog, Photo

TAG_ORIENTATION = 0x0112
#: Modification time (ns) given to generated originals, so copies are always newer.
BASE_MTIME_NS = 1_600_000_000 * 10**9


# ----------------------------------------------------------------------------- photos
def photo_array(
    seed: int, size: tuple[int, int] = (640, 480), shapes_seed: int | None = None
) -> np.ndarray:
    """A photo-like RGB image: smooth gradients + a few shapes + mild noise.

    Args:
        seed: Seeds the background (gradients, waves) and, unless ``shapes_seed`` is given,
            the shapes and the noise.
        size: ``(width, height)`` in pixels.
        shapes_seed: Seeds the shapes and the noise separately (another "shot" of the same
            scene keeps the background and moves the objects).

    Returns:
        ``(height, width, 3)`` uint8 array.
    """
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x /= width
    y /= height
    channels = []
    for _ in range(3):
        a, b = rng.uniform(-120, 120, size=2)
        fx, fy = rng.uniform(0.3, 1.5, size=2)
        amp, phase = rng.uniform(25, 60), rng.uniform(0, 2 * np.pi)
        wave = amp * np.sin(2 * np.pi * (fx * x + fy * y) + phase)
        channels.append(128 + a * (x - 0.5) + b * (y - 0.5) + wave)
    base = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    img = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(img)
    srng = rng if shapes_seed is None else np.random.default_rng(shapes_seed)
    for _ in range(7):
        cx, cy = srng.uniform(0, width), srng.uniform(0, height)
        rx, ry = srng.uniform(0.04, 0.16) * width, srng.uniform(0.04, 0.16) * height
        colour = tuple(int(c) for c in srng.integers(0, 256, size=3))
        box = (cx - rx, cy - ry, cx + rx, cy + ry)
        if srng.uniform() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    arr = np.asarray(img, dtype=np.float32)
    arr += srng.normal(0.0, 3.0, size=arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_photo(
    path: str | os.PathLike[str],
    seed: int,
    size: tuple[int, int] = (640, 480),
    fmt: str = "JPEG",
    quality: int = 90,
    shapes_seed: int | None = None,
) -> Path:
    """Write a generated photo (see :func:`photo_array`) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(photo_array(seed, size, shapes_seed), "RGB")
    save_image(img, path, fmt, quality)
    return path


def save_image(
    img: Image.Image, path: Path, fmt: str = "JPEG", quality: int = 90, **kw: Any
) -> None:
    """Save with format-appropriate options."""
    if fmt == "JPEG":
        img.save(path, fmt, quality=quality, **kw)
    else:
        img.save(path, fmt, **kw)


def resized_copy(src: Path, dst: Path, scale: float = 0.5, quality: int = 90) -> Path:
    """A downscaled copy (Lanczos), JPEG."""
    with Image.open(src) as img:
        w, h = img.size
        img.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS).save(
            dst, "JPEG", quality=quality
        )
    return dst


def reencoded_copy(src: Path, dst: Path, quality: int = 40) -> Path:
    """Same pixels, another JPEG quality."""
    with Image.open(src) as img:
        img.convert("RGB").save(dst, "JPEG", quality=quality)
    return dst


def cropped_copy(src: Path, dst: Path, fraction: float = 0.05, quality: int = 90) -> Path:
    """``fraction`` of each side cut off."""
    with Image.open(src) as img:
        w, h = img.size
        dx, dy = round(w * fraction), round(h * fraction)
        img.crop((dx, dy, w - dx, h - dy)).save(dst, "JPEG", quality=quality)
    return dst


def exif_rotated_copy(src: Path, dst: Path, quality: int = 85) -> Path:
    """Pixels stored rotated 90 degrees counter-clockwise with EXIF Orientation 6.

    A reader that applies EXIF (rotate 90 degrees clockwise) shows the original upright.
    """
    with Image.open(src) as img:
        stored = img.convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[TAG_ORIENTATION] = 6
    stored.save(dst, "JPEG", quality=quality, exif=exif)
    return dst


def byte_copy(src: Path, dst: Path) -> Path:
    """An exact byte copy (newer mtime than the original)."""
    shutil.copyfile(src, dst)
    return dst


def file_sha256(path: Path | str) -> str:
    """SHA-256 hex digest of a file's bytes (to check that a file came back unchanged)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def drain(gen: Any) -> Any:
    """Run a generator (a cleanup, an undo, a scan) to its end; return its return value."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def set_mtime(path: Path, mtime_ns: int) -> None:
    """Set atime and mtime, nanoseconds."""
    os.utime(path, ns=(mtime_ns, mtime_ns))


def write_photo_set(folder: Path, seed: int = 11, other_seed: int = 23) -> dict[str, Path]:
    """An original photo, its copies and a different photo in ``folder``.

    Returns:
        ``name -> path`` for ``original`` (640x480, JPEG q90), ``resized`` (50 %),
        ``reencoded`` (q40), ``cropped`` (5 % per side), ``rotated`` (EXIF Orientation 6,
        q85), ``copy`` (exact bytes) and ``different`` (another seed). The original has the
        oldest mtime; every copy is newer.
    """
    folder.mkdir(parents=True, exist_ok=True)
    original = make_photo(folder / "original.jpg", seed)
    paths = {
        "original": original,
        "resized": resized_copy(original, folder / "resized.jpg"),
        "reencoded": reencoded_copy(original, folder / "reencoded.jpg"),
        "cropped": cropped_copy(original, folder / "cropped.jpg"),
        "rotated": exif_rotated_copy(original, folder / "rotated.jpg"),
        "copy": byte_copy(original, folder / "copy.jpg"),
        "different": make_photo(folder / "different.jpg", other_seed),
    }
    for i, path in enumerate(paths.values()):
        set_mtime(path, BASE_MTIME_NS + i * 10**9)
    return paths


# ----------------------------------------------------------------------------- embedder
class ColorGridEmbedder:
    """A small deterministic embedder (numpy only) implementing the Embedder protocol.

    Per image: the mean RGB of each cell of a 4x4 grid, minus the image's global mean RGB,
    L2-normalised: 48 float32 values. Resized or re-encoded copies land very close (cosine
    > 0.95), different photos far apart.
    """

    model_id = "test-colorgrid"
    dim = 48
    input_size = 32
    device = "cpu"
    GRID = 4

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), np.float32)
        for i, image in enumerate(images):
            a = np.asarray(image, dtype=np.float32)
            assert a.shape == (self.input_size, self.input_size, 3), a.shape
            cell = self.input_size // self.GRID
            grid = a.reshape(self.GRID, cell, self.GRID, cell, 3).mean(axis=(1, 3))
            v = (grid - a.reshape(-1, 3).mean(axis=0)).reshape(-1)
            norm = float(np.linalg.norm(v))
            if norm < 1e-6:  # a flat image: any fixed unit vector
                v = np.zeros(self.dim, np.float32)
                v[0], norm = 1.0, 1.0
            out[i] = v / norm
        return out


# ImageNet-1k classes the fake head of ColourTagger gives.
GOLDEN, LABRADOR, STRAWBERRY, LEMON, CHURCH, MOSQUE = 207, 208, 949, 951, 497, 668


class ColourTagger(ColorGridEmbedder):
    """:class:`ColorGridEmbedder` with a fake ImageNet head: a red photo is a golden
    retriever (0.8) or a Labrador (0.1), a green one a strawberry (0.6) or a lemon (0.3), a
    blue one a church (0.5) or a mosque (0.4); the rest of the mass on classes 0..2."""

    model_id = "test-colourtagger"
    tag_model = "test-head"

    def __init__(self) -> None:
        self.tagged = 0

    def embed_and_tag(
        self, images: Sequence[np.ndarray], k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.tagged += len(images)
        table = {0: ((GOLDEN, 0.8), (LABRADOR, 0.1)), 1: ((STRAWBERRY, 0.6), (LEMON, 0.3)),
                 2: ((CHURCH, 0.5), (MOSQUE, 0.4))}
        labels = np.zeros((len(images), k), np.int64)
        probs = np.zeros((len(images), k), np.float32)
        for i, image in enumerate(images):
            top = table[int(np.asarray(image, np.float32).reshape(-1, 3).mean(0).argmax())]
            pairs = [*top, (0, 0.05), (1, 0.03), (2, 0.02)][:k]
            labels[i] = [label for label, _ in pairs]
            probs[i] = [p for _, p in pairs]
        return self.embed(images), labels, probs


def coloured_photo(path: Path, colour: int, seed: int) -> Path:
    """A photo dominated by one colour channel (0 red, 1 green, 2 blue), with shapes."""
    rng = np.random.default_rng(seed)
    base = np.full((240, 320, 3), 40, np.float32)
    base[..., colour] = 200
    base += rng.normal(0, 8, base.shape)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x, y = rng.integers(0, 280), rng.integers(0, 200)
        shade = tuple(int(v) for v in rng.integers(0, 120, 3))
        draw.rectangle((x, y, x + 40, y + 30), fill=shade)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=92)
    return path


def tagged_library(folder: Path, extra_red: bool = False) -> tuple[Path, dict[str, Path]]:
    """A library scanned with :class:`ColourTagger` in ``folder``: ``red``, ``green`` and
    ``blue`` photos (``red2`` too with ``extra_red``) and ``red copy``, a byte copy of ``red``.

    Returns:
        ``(catalog file, name -> path)``; the photos are in ``folder / "photos"``.
    """
    from photosim.config import Settings
    from photosim.core.scan.pipeline import run_scan, scan

    photos = folder / "photos"
    paths = {"red": coloured_photo(photos / "red.jpg", 0, 1)}
    if extra_red:
        paths["red2"] = coloured_photo(photos / "red2.jpg", 0, 4)
    paths["green"] = coloured_photo(photos / "green.jpg", 1, 2)
    paths["blue"] = coloured_photo(photos / "blue.jpg", 2, 3)
    paths["red copy"] = byte_copy(paths["red"], photos / "red copy.jpg")
    with Catalog(folder / "c.db") as catalog:
        run_scan(scan(catalog, [str(photos)], Settings(workers=1), ColourTagger()))
    return folder / "c.db", paths


class ColourClip:
    """A numpy stand-in for CLIP (:class:`~photosim.core.types.TextImageEmbedder`): an image
    embeds as its mean colour, a text as the colour words it names ("red", "green", "blue")."""

    model_id = "clip:fake/colour"
    dim = 3
    WORDS = {"red": 0, "green": 1, "blue": 2}

    def __init__(self) -> None:
        self.images = 0

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        self.images += len(images)
        out = np.array([np.asarray(im, np.float32).reshape(-1, 3).mean(0) for im in images],
                       np.float32).reshape(len(images), 3)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        out = np.full((len(texts), 3), 0.05, np.float32)
        for i, text in enumerate(texts):
            for word, channel in self.WORDS.items():
                if word in text.lower():
                    out[i, channel] = 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class CountingEmbedder:
    """Wraps an embedder and counts the images it embedded and the calls made."""

    def __init__(self, inner: Any | None = None) -> None:
        self.inner = inner if inner is not None else ColorGridEmbedder()
        self.model_id = self.inner.model_id
        self.dim = self.inner.dim
        self.input_size = self.inner.input_size
        self.device = self.inner.device
        self.images = 0
        self.calls = 0

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        self.calls += 1
        self.images += len(images)
        return self.inner.embed(images)


def embed_file(embedder: Any, path: Path) -> np.ndarray:
    """Embed one file the way the pipeline does (decode_file's model input)."""
    from photosim.core.scan.imageio import decode_file
    from photosim.core.types import DecodeRequest

    image = decode_file(DecodeRequest(str(path), model_size=embedder.input_size, thumb_size=0))
    return embedder.embed([image.model_input])[0]


# ----------------------------------------------------------------------------- catalog
def photo_row(
    path: str,
    content_hash: str,
    phash: int,
    dhash: int,
    width: int = 640,
    height: int = 480,
    size: int = 100_000,
    fmt: str = "JPEG",
    mtime_ns: int = BASE_MTIME_NS,
    folder: str = "/synthetic",
) -> dict[str, Any]:
    """A ``photos`` row for :meth:`Catalog.upsert_photos` (status ok)."""
    return {
        "path": path,
        "folder": folder,
        "size": size,
        "mtime_ns": mtime_ns,
        "content_hash": content_hash,
        "width": width,
        "height": height,
        "format": fmt,
        "taken_at": None,
        "camera": None,
        "phash": phash,
        "dhash": dhash,
        "status": "ok",
        "error": None,
    }


def flip_bits(value: int, bits: Iterable[int]) -> int:
    """``value`` (signed int64) with the given bit positions (0..63) flipped, signed."""
    from photosim.core.scan.hashing import to_signed64, to_unsigned64

    v = to_unsigned64(value)
    for b in bits:
        v ^= 1 << b
    return to_signed64(v)


def make_photo_obj(**kw: Any) -> Photo:
    """A :class:`Photo` with defaults for every field not given."""
    values: dict[str, Any] = {
        "id": 1,
        "path": "/p/a.jpg",
        "folder": "/p",
        "size": 1000,
        "mtime_ns": BASE_MTIME_NS,
        "content_hash": "0" * 32,
        "width": 100,
        "height": 100,
        "format": "JPEG",
        "taken_at": None,
        "camera": None,
        "phash": 0,
        "dhash": 0,
        "status": "ok",
        "error": None,
    }
    values.update(kw)
    return Photo(**values)


def count_files(root: Path, skip_suffixes: Iterable[str] = ()) -> int:
    """Regular files below ``root`` (no symlinks), except those with the given suffixes."""
    skip = {s.lower() for s in skip_suffixes}
    n = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(folder, name)
            if (
                os.path.isfile(p)
                and not os.path.islink(p)
                and Path(name).suffix.lower() not in skip
            ):
                n += 1
    return n


def catalog_rows(catalog: Catalog) -> dict[str, Photo]:
    """Every photo row (any status) by path."""
    return {p.path: p for p in catalog.photos(status=None)}


# ----------------------------------------------------------------------------- GUI windows
@contextlib.contextmanager
def main_windows(qtbot: Any, default_catalog: Path, settings: Any) -> Iterator[Callable[..., Any]]:
    """Yield ``make(catalog=None, rescan_on_start=False)``: a shown, hash-only main window.

    Every window made is closed and its workers joined on exit. Qt is imported only here, so
    the core tests that use this module never load it.
    """
    from photosim.gui.windows.main_window import MainWindow

    windows: list[Any] = []

    def make(catalog: Path | None = None, rescan_on_start: bool = False) -> Any:
        window = MainWindow(catalog or default_catalog, settings, rescan_on_start)
        window.quiet_errors = True
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    try:
        yield make
    finally:
        for window in windows:
            window.close()
            window.shutdown()

