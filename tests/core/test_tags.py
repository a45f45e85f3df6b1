"""Tags and text search: the shipped WordNet vocabulary, query parsing, the scan storing each
photo's top classes, and search over them (issue 14).

The scan tests use a numpy embedder with a fake classifier head (the colour a photo is
dominated by decides its classes), so they run without torch; tests/embed checks the real
head against the model's own logits.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from helpers import (
    GOLDEN,
    STRAWBERRY,
    ColorGridEmbedder,
    ColourTagger,
    byte_copy,
    coloured_photo,
)

from photosim.config import Settings
from photosim.core.catalog import Catalog
from photosim.core.scan.pipeline import run_scan, scan
from photosim.core.search import find_similar
from photosim.core.tags import (
    SEARCH_FLOOR,
    STOP_WORDS,
    TAG_FLOOR,
    TAGS_PER_PHOTO,
    TagQueryError,
    TagSearchError,
    image_tags,
    search_tags,
    tokens,
    vocabulary,
)
from photosim.core.types import TaggingEmbedder


# ----------------------------------------------------------------------------- vocabulary
def test_the_shipped_classes_are_timms_imagenet_classes_in_order() -> None:
    """The data's class list is ImageNet-1k's, in class-index order (timm's list, read from
    its file: importing timm would import torch)."""
    spec = importlib.util.find_spec("timm")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"
    wnids = (folder / "imagenet_synsets.txt").read_text().split()
    vocab = vocabulary()
    assert vocab.classes == wnids
    assert len(set(vocab.classes)) == 1000
    assert vocab.provenance["wordnet"].startswith("Princeton WordNet 3.0")


def test_a_word_stands_for_the_classes_below_it() -> None:
    vocab = vocabulary()
    dog = vocab.concept("dog")
    assert dog is not None
    names = {vocab.name(label) for label in dog.labels}
    assert {"golden retriever", "Labrador retriever", "Pekinese", "Chihuahua"} <= names
    assert len(dog.labels) >= 110  # ImageNet's dog breeds
    assert "domesticated" in dog.gloss
    assert vocab.name(741) in {vocab.name(lb) for lb in vocab.concept("rug").labels}  # prayer rug
    fruit = {vocab.name(lb) for lb in vocab.concept("fruit").labels}
    assert {"strawberry", "lemon", "banana"} <= fruit
    assert "golden retriever" not in fruit
    # Synonyms in class names: "maillot" and "tank suit" name the same class.
    assert vocab.concept("tank suit").labels & vocab.concept("maillot").labels


def test_plurals_phrases_and_hyphens_fold() -> None:
    vocab = vocabulary()
    assert vocab.concept("dogs").labels == vocab.concept("dog").labels
    assert vocab.concept("strawberries").labels == {STRAWBERRY}
    assert vocab.concept("golden retrievers").labels == {GOLDEN}
    assert vocab.concept("Golden  Retriever").labels == {GOLDEN}
    assert vocab.concept("sea coast") is not None
    assert vocab.concept("sea coast").labels == vocab.concept("sea-coast").labels
    assert vocab.concept("bus") is not None  # a word that only looks plural stays as it is


def test_parse_reads_the_longest_names_and_leaves_out_common_words() -> None:
    query = vocabulary().parse("A photo of two golden retrievers and a strawberry on the beach")
    assert [c.lemma for c in query.concepts] == ["golden retriever", "strawberry"]
    assert query.unknown == ("two", "beach")
    assert {"a", "photo", "of", "and", "on", "the"} <= set(query.ignored)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no words"),
        ("   ", "no words"),
        ("🐶 🐱", "no words"),  # emoji are not words
        ("the photos of a", "only common words"),
        ("zzzqx", "no tag matches 'zzzqx'"),
        ("Hund Straße", "no tag matches 'hund', 'straße'"),
    ],
)
def test_queries_with_nothing_to_search_say_why(text: str, message: str) -> None:
    with pytest.raises(TagQueryError, match=message):
        vocabulary().parse(text)


def test_tokens_normalise_unicode() -> None:
    assert tokens("Ｄｏｇ’s  CAFÉ—sea-coast!") == ["dog's", "café", "sea-coast"]
    assert "a" in STOP_WORDS and "dog" not in STOP_WORDS


# ----------------------------------------------------------------------------- scan + search
@pytest.fixture
def tagged_library(tmp_path: Path) -> tuple[Catalog, dict[str, Path], ColourTagger]:
    photos = tmp_path / "photos"
    paths = {
        "red1": coloured_photo(photos / "red1.jpg", 0, 1),
        "red2": coloured_photo(photos / "red2.jpg", 0, 2),
        "green": coloured_photo(photos / "green.jpg", 1, 3),
        "blue": coloured_photo(photos / "blue.jpg", 2, 4),
    }
    (photos / "sub").mkdir()
    paths["red1_copy"] = byte_copy(paths["red1"], photos / "sub" / "red1_copy.jpg")
    catalog = Catalog(tmp_path / "c.db")
    tagger = ColourTagger()
    assert isinstance(tagger, TaggingEmbedder)
    run_scan(scan(catalog, [str(photos)], Settings(workers=1), tagger))
    return catalog, paths, tagger


def test_the_scan_stores_each_contents_top_classes_once(tagged_library) -> None:
    catalog, paths, tagger = tagged_library
    assert tagger.tagged == 4  # the byte copy shares its original's decode
    red = catalog.photo_by_path(str(paths["red1"]))
    stored = catalog.tags(red.content_hash, "test-head")
    assert len(stored) == TAGS_PER_PHOTO
    assert stored[0] == (GOLDEN, pytest.approx(0.8))
    assert catalog.tag_models() == [("test-head", 4)]
    tags = image_tags(catalog, str(paths["red1_copy"]))
    assert tags.in_catalog and tags.model == "test-head"
    assert [t.name for t in tags.tags] == ["golden retriever"]  # 0.1 < TAG_FLOOR
    assert TAG_FLOOR > 0.1


def test_search_finds_photos_through_the_hierarchy(tagged_library) -> None:
    catalog, paths, _ = tagged_library
    result = search_tags(catalog, "dogs")
    found = [h.photo.path for h in result.hits]
    assert sorted(found) == sorted(str(paths[n]) for n in ("red1", "red2", "red1_copy"))
    assert result.mode == "tags" and result.model == "test-head"
    # P(dog) is the sum over the breeds: 0.8 + 0.1.
    assert result.hits[0].score == pytest.approx(0.9, abs=1e-6)
    assert [t.name for t in result.hits[0].tags][:2] == ["golden retriever", "Labrador retriever"]
    assert [h.photo.path for h in search_tags(catalog, "fruit").hits] == [str(paths["green"])]
    assert [h.photo.path for h in search_tags(catalog, "lemons").hits] == [str(paths["green"])]
    assert [h.photo.path for h in search_tags(catalog, "building").hits] == [str(paths["blue"])]
    assert search_tags(catalog, "dog", k=1).hits[0].photo.path in found
    with pytest.raises(ValueError):
        search_tags(catalog, "dog", k=0)


def test_a_query_of_several_words_wants_them_all_else_says_so(tagged_library) -> None:
    catalog, paths, _ = tagged_library
    both = search_tags(catalog, "church and mosque")
    assert [h.photo.path for h in both.hits] == [str(paths["blue"])]
    assert both.hits[0].score == pytest.approx((0.5 + 0.4) / 2, abs=1e-6)
    either = search_tags(catalog, "strawberry church")
    assert {h.photo.path for h in either.hits} == {str(paths["green"]), str(paths["blue"])}
    assert any("no photo shows all of strawberry, church" in n for n in either.notes)
    unknown = search_tags(catalog, "dog on a beach")
    assert any("'beach'" in n for n in unknown.notes) and unknown.hits
    assert search_tags(catalog, "banana").hits == []  # a known word nothing shows


def test_the_floor_cuts_weak_matches(tagged_library) -> None:
    catalog, paths, _ = tagged_library
    # The fake head gives class 1 (goldfish) 0.03 to every photo: above the search floor.
    assert len(search_tags(catalog, "goldfish").hits) == 5
    assert SEARCH_FLOOR <= 0.03
    assert search_tags(catalog, "goldfish", floor=0.04).hits == []


def test_find_similar_shows_the_query_tags(tagged_library, tmp_path: Path) -> None:
    catalog, paths, tagger = tagged_library
    known = find_similar(catalog, paths["red2"], k=3, embedder=None)
    assert [t.name for t in known.query_tags] == ["golden retriever"]
    outside = coloured_photo(tmp_path / "elsewhere" / "blue.jpg", 2, 99)
    result = find_similar(catalog, outside, k=3, embedder=tagger)
    assert not result.in_catalog
    assert [t.name for t in result.query_tags] == ["church", "mosque"]
    assert image_tags(catalog, str(outside), tagger).tags[0].name == "church"
    untagged = image_tags(catalog, str(outside))
    assert untagged.tags == [] and "no backbone" in untagged.note


def test_tags_leave_with_their_photos_and_old_libraries_get_them(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    red = coloured_photo(photos / "red.jpg", 0, 1)
    coloured_photo(photos / "green.jpg", 1, 2)
    catalog = Catalog(tmp_path / "c.db")
    # A library scanned before tags existed: descriptors, no tags.
    run_scan(scan(catalog, [str(photos)], Settings(workers=1), ColorGridEmbedder()))
    with pytest.raises(TagSearchError, match="no tags yet"):
        search_tags(catalog, "dog")
    tagger = ColourTagger()
    tagger.model_id = ColorGridEmbedder.model_id  # the same descriptors
    summary = run_scan(scan(catalog, [str(photos)], Settings(workers=1), tagger))
    assert tagger.tagged == 2 and summary.unchanged == 2
    assert [h.photo.path for h in search_tags(catalog, "dog").hits] == [str(red)]
    again = ColourTagger()
    again.model_id = ColorGridEmbedder.model_id
    run_scan(scan(catalog, [str(photos)], Settings(workers=1), again))
    assert again.tagged == 0  # nothing missing any more
    red.unlink()
    run_scan(scan(catalog, [str(photos)], Settings(workers=1), again))
    assert catalog.tag_models() == [("test-head", 1)]
    assert search_tags(catalog, "dog").hits == []


def test_the_vocabulary_file_is_well_formed() -> None:
    path = Path(__file__).resolve().parents[2] / "photosim" / "core" / "data"
    data = json.loads((path / "imagenet_wordnet.json").read_text())
    assert data["schema"] == "photosim-imagenet-wordnet/v1"
    for wnid in data["classes"]:
        assert wnid in data["synsets"]
    for key, senses in data["senses"].items():
        assert key == key.lower() and senses
        assert all(s in data["synsets"] for s in senses)
    parents = {h for s in data["synsets"].values() for h in s["hypernyms"]}
    assert parents <= set(data["synsets"])


def test_the_floors_are_the_ones_the_benchmark_calibrated() -> None:
    """TAG_FLOOR and SEARCH_FLOOR are what ``python -m benchmarks.tags`` chose by its rules on
    the hand-labelled photos (benchmarks/tags.json): change one, rerun the other."""
    report = Path(__file__).resolve().parents[2] / "benchmarks" / "tags.json"
    data = json.loads(report.read_text())
    assert data["floor"]["chosen"] == TAG_FLOOR
    assert data["search"]["floor"] == SEARCH_FLOOR
