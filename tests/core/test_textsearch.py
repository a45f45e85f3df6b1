"""Text search with CLIP (optional): embeddings from the stored thumbnails, ranking by the
text's embedding, and the fallback to tags (a numpy stand-in for CLIP; tests/embed/test_clip.py
runs the real model with random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ColourClip, ColourTagger, coloured_photo, tagged_library

from photosim.config import Settings
from photosim.core.cancel import CancelToken
from photosim.core.catalog import Catalog
from photosim.core.scan.pipeline import run_scan, scan
from photosim.core.tags import TagQueryError, TagSearchError
from photosim.core.textsearch import (
    CLIP_META,
    clip_index,
    clip_model,
    missing_clip,
    search_clip,
    search_text,
)
from photosim.library import Library


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path, dict[str, Path]]:
    db, paths = tagged_library(tmp_path)
    return db, tmp_path / "photos", paths


def _drain(gen):
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def test_clip_embeddings_come_from_the_thumbnails_once(library) -> None:
    db, _, _ = library
    clip = ColourClip()
    with Catalog(db) as catalog:
        assert clip_model(catalog) is None
        assert _drain(clip_index(catalog, clip)) == 3  # contents, not files
        assert clip.images == 3 and clip_model(catalog) == clip.model_id
        assert catalog.get_meta(CLIP_META) == "clip:fake/colour"
        assert missing_clip(catalog, clip.model_id) == 0
        assert _drain(clip_index(catalog, clip)) == 0  # nothing left to do
        cancelled = CancelToken()
        cancelled.cancel()
        catalog.db.execute("DELETE FROM embeddings WHERE model=?", [clip.model_id])
        assert _drain(clip_index(catalog, clip, cancelled)) == 0


def test_search_ranks_by_the_texts_embedding(library) -> None:
    db, photos, paths = library
    clip = ColourClip()
    with Catalog(db) as catalog:
        _drain(clip_index(catalog, clip))
        result = search_clip(catalog, "something red", clip, k=3)
        assert result.mode == "clip" and result.model == clip.model_id
        assert {h.photo.path for h in result.hits[:2]} == {str(paths["red"]),
                                                           str(paths["red copy"])}
        assert result.hits[0].score > result.hits[2].score
        assert result.hits[0].tags[0].name == "golden retriever"  # stored tags come along
        assert [h.photo.path for h in search_clip(catalog, "blue", clip, k=1).hits] == [
            str(paths["blue"])]
        # A photo scanned after the CLIP pass is named in a note until it has an embedding.
        coloured_photo(photos / "late.jpg", 1, 9)
        run_scan(scan(catalog, [str(photos)], Settings(workers=1), ColourTagger()))
        assert any("1 photos have no CLIP embedding" in n
                   for n in search_clip(catalog, "green", clip).notes)
        with pytest.raises(TagQueryError, match="only common words"):
            search_clip(catalog, "the of a", clip)
        with pytest.raises(ValueError):
            search_clip(catalog, "red", clip, k=0)


def test_search_text_falls_back_to_the_tags(library) -> None:
    db, _, paths = library
    clip = ColourClip()
    with Catalog(db) as catalog:
        tags = search_text(catalog, "dog")  # no CLIP in this library
        assert tags.mode == "tags"
        with pytest.raises(TagSearchError, match="no CLIP embeddings"):
            search_text(catalog, "red", mode="clip", clip=clip)
        _drain(clip_index(catalog, clip))
        assert search_text(catalog, "red", clip=clip).mode == "clip"
        assert search_text(catalog, "dog", mode="tags", clip=clip).mode == "tags"
        fallback = search_text(catalog, "dog", clip=None, clip_note="open_clip is missing")
        assert fallback.mode == "tags" and fallback.notes[0] == (
            "searched the tags: open_clip is missing")
        with pytest.raises(TagSearchError, match="cannot search with CLIP"):
            search_text(catalog, "dog", mode="clip", clip=None)
        with pytest.raises(TagQueryError):
            search_text(catalog, "", clip=clip)
        with pytest.raises(ValueError):
            search_text(catalog, "dog", mode="fast")


def test_a_library_whose_clip_cannot_load_searches_its_tags(library) -> None:
    """The catalog names a CLIP model this machine cannot load: the search says so and uses
    the tags instead; asking for CLIP explicitly is an error with the reason."""
    db, _, paths = library
    with Catalog(db) as catalog:
        catalog.set_meta(CLIP_META, "clip:NoSuchArch/none")
    with Library(db) as lib:
        result = lib.search("dogs")
        assert result.mode == "tags" and result.hits
        assert result.notes[0].startswith("searched the tags:")
        with pytest.raises(TagSearchError, match="cannot search with CLIP"):
            lib.search("dogs", mode="clip")
        with pytest.raises(TagQueryError):  # a bad query fails before any model loads
            lib.search("  ")
