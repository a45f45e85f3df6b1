"""``photosim search``, ``photosim tags`` and ``photosim info IMAGE`` on a tagged library (the
numpy :class:`~helpers.ColourTagger` stands in for the backbone's classifier head)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import coloured_photo, tagged_library

from photosim.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from photosim.core.catalog import Catalog


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    return tagged_library(tmp_path_factory.mktemp("search"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_search_json(library, capsys: pytest.CaptureFixture[str]) -> None:
    catalog, paths = library
    rc, out, _ = run(capsys, "--catalog", str(catalog), "search", "dogs", "--json")
    assert rc == EXIT_OK
    data = json.loads(out)
    assert data["schema"] == "photosim-search/v1"
    assert data["query"] == "dogs" and data["mode"] == "tags"
    assert [r["rank"] for r in data["results"]] == [1, 2]
    assert {r["path"] for r in data["results"]} == {str(paths["red"]), str(paths["red copy"])}
    first = data["results"][0]
    assert first["score"] == pytest.approx(0.9, abs=1e-3)
    assert first["tags"][0] == {"label": 207, "name": "golden retriever",
                                "probability": pytest.approx(0.8, abs=1e-4)}
    assert data["concepts"][0]["lemma"] == "dog" and data["concepts"][0]["classes"] >= 110


def test_search_text_and_k(library, capsys: pytest.CaptureFixture[str]) -> None:
    catalog, paths = library
    rc, out, _ = run(capsys, "--catalog", str(catalog), "search", "a", "church", "-k", "1")
    assert rc == EXIT_OK
    assert "Photos showing church" in out
    lines = [line for line in out.splitlines() if line.strip().startswith("1.")]
    assert len(lines) == 1 and str(paths["blue"]) in lines[0] and "church 0.50" in lines[0]


@pytest.mark.parametrize(
    ("argv", "rc", "message"),
    [
        ((), EXIT_USAGE, "no words"),
        (("",), EXIT_USAGE, "no words"),
        (("the", "of"), EXIT_USAGE, "only common words"),
        (("qwxzv",), EXIT_USAGE, "no tag matches 'qwxzv'"),
        (("🐶",), EXIT_USAGE, "no words"),
        (("Straße",), EXIT_USAGE, "no tag matches 'straße'"),
        (("banana",), EXIT_ERROR, "no photo matches 'banana'"),
        (("dog", "-k", "0"), EXIT_USAGE, "-k must be at least 1"),
    ],
)
def test_search_bad_queries_say_why(
    library, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], rc: int, message: str
) -> None:
    catalog, _ = library
    got, out, err = run(capsys, "--catalog", str(catalog), "search", *argv)
    assert got == rc
    assert message in err
    assert "Traceback" not in err + out


def test_search_a_library_without_tags(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    coloured_photo(tmp_path / "p" / "a.jpg", 0, 1)
    assert main(["--catalog", str(tmp_path / "c.db"), "scan", "-q", "--model", "none",
                 str(tmp_path / "p")]) == EXIT_OK
    rc, _, err = run(capsys, "--catalog", str(tmp_path / "c.db"), "search", "dog")
    assert rc == EXIT_ERROR and "no tags yet" in err


def test_tags_and_info_of_a_photo(library, capsys: pytest.CaptureFixture[str]) -> None:
    catalog, paths = library
    rc, out, _ = run(capsys, "--catalog", str(catalog), "tags", str(paths["blue"]), "--json")
    assert rc == EXIT_OK
    data = json.loads(out)
    assert data["schema"] == "photosim-tags/v1" and data["in_catalog"]
    assert [t["name"] for t in data["tags"]] == ["church", "mosque"]
    rc, out, _ = run(capsys, "--catalog", str(catalog), "tags", str(paths["red"]),
                     str(paths["green"]))
    assert rc == EXIT_OK
    assert f"{paths['red']}: golden retriever 0.80" in out
    assert f"{paths['green']}: strawberry 0.60, lemon 0.30" in out
    rc, out, _ = run(capsys, "--catalog", str(catalog), "info", str(paths["red"]))
    assert rc == EXIT_OK
    assert "in the library, 1 other copies" in out and str(paths["red copy"]) in out
    assert "tags:        golden retriever 0.80" in out
    rc, out, _ = run(capsys, "--catalog", str(catalog), "info", str(paths["red"]), "--json")
    data = json.loads(out)
    assert data["copies"] == [str(paths["red copy"])] and data["tags"][0]["label"] == 207


def test_tags_of_an_unreadable_file(library, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    catalog, paths = library
    rc, out, err = run(capsys, "--catalog", str(catalog), "tags", str(paths["blue"]),
                       str(tmp_path / "missing.jpg"))
    assert rc == EXIT_ERROR
    assert "church" in out and "cannot read" in err and "Traceback" not in err


def test_clip_without_clip_says_why(library, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Offline and without cached CLIP weights: ``scan --clip`` scans, then says why there
    are no CLIP embeddings (exit 1); ``search --mode clip`` names what is missing."""
    catalog, paths = library
    rc, _, err = run(capsys, "--catalog", str(catalog), "search", "dog", "--mode", "clip")
    assert rc == EXIT_ERROR and "no CLIP embeddings" in err and "Traceback" not in err
    coloured_photo(tmp_path / "p" / "a.jpg", 0, 1)
    rc, out, err = run(capsys, "--catalog", str(tmp_path / "c.db"), "scan", "-q", "--model",
                       "none", "--clip", str(tmp_path / "p"))
    assert rc == EXIT_ERROR
    assert "no CLIP embeddings:" in err and "Traceback" not in err
    with Catalog(tmp_path / "c.db") as scanned:  # the scan itself stands
        assert [p.path for p in scanned.photos()] == [str(tmp_path / "p" / "a.jpg")]
