"""Shared fixtures: the evaluation data beside the checkout, generated photos, a numpy embedder.

The shared data lives in ``../shared/data`` next to the repository root (CI provides it);
tests that need it skip when it is absent. Nothing here imports torch or Qt.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import ColorGridEmbedder, CountingEmbedder, make_photo, write_photo_set

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEV_DIR = SHARED / "dev"
BADINPUT_DIR = SHARED / "badinput"


def _shared(folder: Path) -> Path:
    if not folder.is_dir():
        pytest.skip(f"../shared/data/{folder.name} not found beside the checkout (CI provides it)")
    return folder


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never download weights, never touch the user's catalog.

    ``PHOTOSIM_OFFLINE=1`` and an empty ``TORCH_HOME`` make a default model fail fast (before
    importing torch) with a "weights missing" reason; ``PHOTOSIM_CATALOG`` points commands run
    without ``--catalog`` at a temporary file. (tests/embed overrides this fixture.)
    """
    monkeypatch.setenv("PHOTOSIM_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("PHOTOSIM_CATALOG", str(tmp_path / "default-catalog.db"))


@pytest.fixture(scope="session")
def dev_dir() -> Path:
    """The DEV evaluation set (read-only: copy it before changing anything)."""
    return _shared(DEV_DIR)


@pytest.fixture(scope="session")
def badinput_dir() -> Path:
    """The bad-input corpus (read-only)."""
    return _shared(BADINPUT_DIR)


@pytest.fixture
def dev_copy(dev_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the DEV set, for tests that modify files."""
    dst = tmp_path / "dev"
    shutil.copytree(dev_dir, dst)
    return dst


@pytest.fixture
def embedder() -> ColorGridEmbedder:
    """The deterministic numpy test embedder (model id ``test-colorgrid``)."""
    return ColorGridEmbedder()


@pytest.fixture
def counting_embedder() -> CountingEmbedder:
    """The test embedder wrapped to count embedded images."""
    return CountingEmbedder(ColorGridEmbedder())


@pytest.fixture
def photo_factory(tmp_path: Path) -> Callable[..., Path]:
    """``make(name, seed, **kw)``: write a generated photo under ``tmp_path``."""

    def make(name: str, seed: int, **kw: object) -> Path:
        return make_photo(tmp_path / name, seed, **kw)  # type: ignore[arg-type]

    return make


@pytest.fixture
def photo_set(tmp_path: Path) -> dict[str, Path]:
    """An original, its resized/re-encoded/cropped/EXIF-rotated/exact copies and a different
    photo, in ``tmp_path/photos`` (see :func:`helpers.write_photo_set`)."""
    return write_photo_set(tmp_path / "photos")
