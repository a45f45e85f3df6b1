"""Find similar: ranking by descriptors (test embedder) and by perceptual hashes."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    ColorGridEmbedder,
    byte_copy,
    embed_file,
    make_photo,
    resized_copy,
    write_photo_set,
)

from photosim.config import Settings
from photosim.core.catalog import Catalog
from photosim.core.scan.pipeline import run_scan, scan
from photosim.core.search import SearchError, find_similar
from photosim.core.types import Embedder

MODEL = "test-colorgrid"
SEEDS = {"sunset": 11, "forest": 23, "city": 37, "beach": 41, "snow": 53}


@dataclass
class Library:
    folder: Path
    outside: Path
    paths: dict[str, Path]
    catalog: Catalog


def _library(tmp: Path, embedder: ColorGridEmbedder | None) -> Library:
    folder = tmp / "photos"
    paths = {name: make_photo(folder / f"{name}.jpg", seed) for name, seed in SEEDS.items()}
    paths["sunset copy"] = byte_copy(paths["sunset"], folder / "sunset copy.jpg")
    catalog = Catalog(tmp / "c.db")
    assert run_scan(scan(catalog, [str(folder)], Settings(workers=1), embedder)).errors == 0
    outside = tmp / "outside"
    outside.mkdir()
    return Library(folder, outside, paths, catalog)


@pytest.fixture(scope="module")
def described(tmp_path_factory: pytest.TempPathFactory) -> Generator[Library, None, None]:
    lib = _library(tmp_path_factory.mktemp("search-desc"), ColorGridEmbedder())
    yield lib
    lib.catalog.close()


@pytest.fixture(scope="module")
def hashed(tmp_path_factory: pytest.TempPathFactory) -> Generator[Library, None, None]:
    lib = _library(tmp_path_factory.mktemp("search-hash"), None)
    yield lib
    lib.catalog.close()


def names(lib: Library, hits: list) -> list[str]:  # type: ignore[type-arg]
    by_path = {str(p): n for n, p in lib.paths.items()}
    return [by_path.get(h.photo.path, h.photo.path) for h in hits]


def test_the_test_embedder_keeps_its_contract(tmp_path: Path) -> None:
    """The numpy embedder the other tests rely on: an Embedder, deterministic, copies close."""
    embedder = ColorGridEmbedder()
    assert isinstance(embedder, Embedder)
    assert (embedder.model_id, embedder.dim, embedder.input_size) == (MODEL, 48, 32)
    paths = write_photo_set(tmp_path / "set")
    vectors = {name: embed_file(embedder, path) for name, path in paths.items()}
    for v in vectors.values():
        assert v.dtype == np.float32 and v.shape == (48,)
        assert float(np.linalg.norm(v)) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(vectors["original"], embed_file(embedder, paths["original"]))
    for name in ("resized", "reencoded", "rotated", "copy"):
        assert float(vectors[name] @ vectors["original"]) > 0.95, name
    assert float(vectors["different"] @ vectors["original"]) < 0.5
    flat = embedder.embed([np.full((32, 32, 3), 128, np.uint8)])
    assert np.isfinite(flat).all() and float(np.linalg.norm(flat)) == pytest.approx(1.0)


def test_known_query_ranks_its_exact_copy_first(described: Library) -> None:
    result = find_similar(described.catalog, described.paths["sunset"], k=10)
    assert result.mode == "descriptors" and result.model == MODEL and result.in_catalog
    assert result.query == str(described.paths["sunset"])
    ranked = names(described, result.hits)
    assert ranked[0] == "sunset copy"
    assert result.hits[0].similarity == pytest.approx(1.0, abs=1e-2)
    assert "sunset" not in ranked  # the query file itself is never a hit
    assert sorted(ranked) == sorted(n for n in described.paths if n != "sunset")
    sims = [h.similarity for h in result.hits]
    assert sims == sorted(sims, reverse=True)
    assert all(-1.01 <= s <= 1.01 for s in sims)


def test_k_and_min_similarity(described: Library) -> None:
    result = find_similar(described.catalog, described.paths["forest"], k=2)
    assert len(result.hits) == 2
    result = find_similar(described.catalog, described.paths["sunset"], k=10, min_similarity=0.99)
    assert names(described, result.hits) == ["sunset copy"]


def test_unseen_image_is_embedded_on_the_fly(described: Library) -> None:
    query = resized_copy(described.paths["forest"], described.outside / "forest small.jpg", 0.4)
    result = find_similar(described.catalog, query, k=3, embedder=ColorGridEmbedder())
    assert not result.in_catalog and result.mode == "descriptors"
    assert names(described, result.hits)[0] == "forest"
    assert result.hits[0].similarity > 0.95
    assert result.hits[1].similarity < result.hits[0].similarity


def test_unseen_image_without_embedder_falls_back_to_hashes(described: Library) -> None:
    query = resized_copy(described.paths["city"], described.outside / "city small.jpg", 0.5)
    result = find_similar(described.catalog, query, k=3)
    assert result.mode == "hashes" and result.model is None
    assert result.notes and "perceptual hashes" in result.notes[0]
    assert names(described, result.hits)[0] == "city"


def test_hash_mode_ranks_the_original_of_a_resized_copy_first(hashed: Library) -> None:
    query = resized_copy(hashed.paths["beach"], hashed.outside / "beach small.jpg", 0.5)
    result = find_similar(hashed.catalog, query, k=10)
    assert result.mode == "hashes" and result.model is None and not result.in_catalog
    assert result.notes == ["no CNN descriptors in this catalog: ranked by perceptual hashes"]
    ranked = names(hashed, result.hits)
    assert ranked[0] == "beach"
    # Hash similarity is 1 - hamming / 128, in [0, 1].
    assert all(0.0 <= h.similarity <= 1.0 for h in result.hits)
    assert result.hits[0].similarity > 0.9 > result.hits[-1].similarity


def test_hash_mode_known_query(hashed: Library) -> None:
    result = find_similar(hashed.catalog, hashed.paths["sunset copy"], k=3)
    assert result.in_catalog and result.mode == "hashes"
    assert names(hashed, result.hits)[0] == "sunset"
    # Identical hashes; hash vectors are stored as float16, hence not exactly 1.
    assert result.hits[0].similarity == pytest.approx(1.0, abs=1e-3)


def test_unreadable_query_raises(described: Library, tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo\n")
    with pytest.raises(SearchError, match="cannot read the query image"):
        find_similar(described.catalog, text, embedder=ColorGridEmbedder())
    with pytest.raises(SearchError, match="cannot read the query image"):
        find_similar(described.catalog, tmp_path / "missing.jpg")


def test_empty_catalog_raises(tmp_path: Path) -> None:
    query = make_photo(tmp_path / "q.jpg", 1, size=(160, 120))
    with Catalog(tmp_path / "c.db") as catalog:
        with pytest.raises(SearchError, match="holds no photos"):
            find_similar(catalog, query)
        with pytest.raises(SearchError, match="holds no photos"):
            find_similar(catalog, query, embedder=ColorGridEmbedder())


@pytest.mark.parametrize("how", ["qe", "diffusion"])
def test_reranked_search_keeps_copies_first_and_reports_cosines(
    described: Library, how: str
) -> None:
    plain = find_similar(described.catalog, described.paths["sunset"], k=10)
    result = find_similar(described.catalog, described.paths["sunset"], k=10, rerank=how)
    assert result.rerank == how and plain.rerank == "none"
    ranked = names(described, result.hits)
    assert ranked[0] == "sunset copy" and "sunset" not in ranked
    assert sorted(ranked) == sorted(names(described, plain.hits))
    # Whatever the order, each hit keeps its cosine similarity to the query.
    cosine = {h.photo.path: h.similarity for h in plain.hits}
    for hit in result.hits:
        assert hit.similarity == pytest.approx(cosine[hit.photo.path], abs=1e-4)
    # min_similarity filters by that cosine, not by the re-ranked place.
    strict = find_similar(described.catalog, described.paths["sunset"], k=10,
                          min_similarity=0.99, rerank=how)
    assert names(described, strict.hits) == ["sunset copy"]


def test_rerank_needs_descriptors_and_a_known_name(described: Library, hashed: Library) -> None:
    result = find_similar(hashed.catalog, hashed.paths["beach"], k=3, rerank="diffusion")
    assert result.mode == "hashes" and result.rerank == "none"
    assert any("re-ranking needs CNN descriptors" in n for n in result.notes)
    with pytest.raises(ValueError, match="unknown re-ranking 'dream'"):
        find_similar(described.catalog, described.paths["sunset"], rerank="dream")
