"""Duplicate groups in tiers, on generated photos and on crafted catalogs; the keeper rule."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import (
    BASE_MTIME_NS,
    CountingEmbedder,
    flip_bits,
    make_photo,
    make_photo_obj,
    photo_row,
    set_mtime,
    write_photo_set,
)
from test_verify import (
    COPIES,
    _caption_bar,
    _logo,
    _logo_rgba,
    _overlay,
    _padded,
    _perspective,
    scene,
)

from photosim.config import Settings, Thresholds
from photosim.core.catalog import Catalog
from photosim.core.cleanup import auto_mark
from photosim.core.dedup.grouping import (
    SKETCH_SUFFIX,
    DuplicatesError,
    GroupingResult,
    find_duplicates,
    group_pairs,
)
from photosim.core.dedup.keeper import keeper_reason, rank
from photosim.core.evaluate import KINDS, Score, evaluate, load_truth, relative_pairs, score
from photosim.core.scan.hashing import to_signed64
from photosim.core.scan.pipeline import _add_missing_hash_vectors, run_scan, scan

MODEL = "test-colorgrid"
SETTINGS = Settings(workers=1)


@dataclass
class Library:
    folder: Path
    paths: dict[str, Path]
    catalog: Catalog

    def name(self, path: str) -> str:
        return next(n for n, p in self.paths.items() if str(p) == path)

    def groups(self, result: GroupingResult) -> list[set[str]]:
        """Groups as sets of photo names."""
        return [{self.name(m.photo.path) for m in g.members} for g in result.groups]


def _library(tmp: Path, embedder: CountingEmbedder | None, shot: bool) -> Library:
    paths = write_photo_set(tmp / "photos")
    if shot:
        # Another shot of the same scene: same background, the objects moved.
        paths["shot"] = make_photo(tmp / "photos" / "shot.jpg", 11, shapes_seed=38)
        set_mtime(paths["shot"], BASE_MTIME_NS + 50 * 10**9)
    catalog = Catalog(tmp / "c.db")
    summary = run_scan(scan(catalog, [str(tmp / "photos")], SETTINGS, embedder))
    assert summary.errors == 0
    return Library(tmp / "photos", paths, catalog)


@pytest.fixture(scope="module")
def hashed(tmp_path_factory: pytest.TempPathFactory) -> Generator[Library, None, None]:
    """The photo set scanned without an embedder (hash evidence only)."""
    lib = _library(tmp_path_factory.mktemp("hashed"), None, shot=False)
    yield lib
    lib.catalog.close()


@pytest.fixture(scope="module")
def described(tmp_path_factory: pytest.TempPathFactory) -> Generator[Library, None, None]:
    """The photo set plus another shot of the scene, scanned with the test embedder."""
    lib = _library(tmp_path_factory.mktemp("described"), CountingEmbedder(), shot=True)
    yield lib
    lib.catalog.close()


def clone(catalog: Catalog, path: Path) -> Catalog:
    """A private copy of a catalog (SQLite backup), for tests that add verdicts."""
    dst = sqlite3.connect(path)
    catalog.db.conn.backup(dst)
    dst.close()
    return Catalog(path)


def assert_json_able(result: GroupingResult) -> None:
    for group in result.groups:
        for member in group.members:
            json.dumps(member.evidence, allow_nan=False)
            assert isinstance(member.why, str) and member.why


# ----------------------------------------------------------------------------- exact
def test_exact_tier_groups_byte_copies_only(hashed: Library) -> None:
    result = find_duplicates(hashed.catalog, "exact")
    assert result.evidence == "bytes" and result.tier == "exact"
    assert hashed.groups(result) == [{"original", "copy"}]
    (group,) = result.groups
    assert group.tier == "exact" and group.id == 1
    keeper, copy = group.members
    assert hashed.name(keeper.photo.path) == "original"  # same bytes: the older file is kept
    assert keeper.match == "keeper" and keeper.why == "kept: older file"
    assert copy.match == "exact" and "identical bytes" in copy.why
    assert group.reclaimable_bytes == hashed.paths["copy"].stat().st_size
    assert result.comparisons == 0 and result.contents == 6
    assert_json_able(result)


# ----------------------------------------------------------------------------- near, hashes
def test_near_tier_with_hashes_only(hashed: Library) -> None:
    result = find_duplicates(hashed.catalog, "near")
    assert result.evidence == "hashes+keypoints" and result.model is None
    assert result.notes and "perceptual hashes" in result.notes[0]
    groups = hashed.groups(result)
    assert len(groups) == 1, groups
    (names,) = groups
    assert {"original", "copy", "resized", "reencoded", "rotated"} <= names
    assert "different" not in names
    group = result.groups[0]
    assert group.tier == "near"
    keeper = group.members[0]
    assert hashed.name(keeper.photo.path) == "original"
    assert keeper.why.startswith("kept: ")
    for member in group.members[1:]:
        assert member.why
        if member.match == "exact":
            assert hashed.name(member.photo.path) == "copy"
        else:
            assert member.match == "near" and "pHash" in member.why and "dHash" in member.why
            assert member.evidence["phash_distance"] <= Thresholds().near_phash
    by_name = {hashed.name(m.photo.path): m for m in group.members}
    assert "50 % scale" in by_name["resized"].why
    assert by_name["resized"].evidence["scale"] == 0.5
    assert group.reclaimable_bytes == sum(m.photo.size for m in group.members[1:])
    assert_json_able(result)


def test_similar_tier_needs_descriptors(hashed: Library) -> None:
    with pytest.raises(DuplicatesError, match="needs CNN descriptors"):
        find_duplicates(hashed.catalog, "similar")
    with pytest.raises(DuplicatesError, match="unknown tier"):
        find_duplicates(hashed.catalog, "identical")


def test_not_duplicate_verdict_splits_a_group(hashed: Library, tmp_path: Path) -> None:
    with clone(hashed.catalog, tmp_path / "c.db") as catalog:
        by_name = {n: catalog.photo_by_path(str(p)) for n, p in hashed.paths.items()}
        before = hashed.groups(find_duplicates(catalog, "near"))[0]
        assert "resized" in before
        catalog.add_verdict(by_name["resized"].content_hash, by_name["original"].content_hash)  # type: ignore[union-attr, arg-type]
        groups = hashed.groups(find_duplicates(catalog, "near"))
        assert groups == [before - {"resized"}]
        # Exact copies are not affected by a verdict on other content.
        assert hashed.groups(find_duplicates(catalog, "exact")) == [{"original", "copy"}]


def test_group_pairs(hashed: Library) -> None:
    result = find_duplicates(hashed.catalog, "exact")
    assert group_pairs(result.groups) == {
        frozenset((str(hashed.paths["original"]), str(hashed.paths["copy"])))
    }


# ----------------------------------------------------------------------------- descriptors
def test_near_tier_with_descriptors(described: Library) -> None:
    result = find_duplicates(described.catalog, "near")
    assert result.evidence == "descriptors+hashes+keypoints" and result.model == MODEL
    assert result.notes == []
    groups = described.groups(result)
    assert groups == [{"original", "copy", "resized", "reencoded", "rotated", "cropped"}]
    members = {described.name(m.photo.path): m for m in result.groups[0].members}
    assert described.name(result.groups[0].keeper.path) == "original"
    for name in ("resized", "reencoded", "rotated", "cropped"):
        assert members[name].evidence["cosine"] > 0.95
        assert "cosine" in members[name].why and "pHash" in members[name].why
    assert_json_able(result)


def test_similar_tier_with_descriptors(described: Library) -> None:
    result = find_duplicates(described.catalog, "similar")
    assert result.evidence == "descriptors+hashes+keypoints"
    groups = described.groups(result)
    assert groups == [{"original", "copy", "resized", "reencoded", "rotated", "cropped", "shot"}]
    group = result.groups[0]
    assert group.tier == "similar"
    shot = next(m for m in group.members if described.name(m.photo.path) == "shot")
    assert shot.match == "similar"
    assert Thresholds().similar_cosine <= shot.evidence["cosine"] < Thresholds().near_cosine
    assert shot.why.startswith(
        f"same scene, another shot: cosine {shot.evidence['cosine']:.3f} (similar from "
        f"{Thresholds().similar_cosine:.2f}); pHash "
    )
    assert_json_able(result)


def test_explicit_model_without_descriptors_falls_back_to_hashes(described: Library) -> None:
    result = find_duplicates(described.catalog, "near", model="no-such-model")
    assert result.evidence == "hashes+keypoints" and result.model is None


# ----------------------------------------------------------------------------- local features
#: Copies in the generated library (see test_verify.COPIES), and the other photos in it.
LOCAL_COPIES = ("crop 20 %", "straighten 6°", "rotate 20° black corners", "flip",
                "flip and crop 15 %", "rotate 90°", "grey", "brightness", "text overlay",
                "logo pasted", "downscaled 30 %", "squashed to square")
SHOTS = {"shot: an object moved a little": {11: (0.015, 0.0)},
         "shot: two objects moved": {10: (0.05, 0.02), 11: (-0.04, 0.03)}}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Generator[Library, None, None]:
    """A scene, its copies of every kind, two other shots of it and two different photos,
    scanned hash-only."""
    tmp = tmp_path_factory.mktemp("local")
    folder = tmp / "photos"
    folder.mkdir()
    original = scene(5)
    paths = {"original": folder / "original.jpg"}
    original.save(paths["original"], "JPEG", quality=92)
    for i, kind in enumerate(LOCAL_COPIES):
        paths[kind] = folder / f"copy{i}.jpg"
        COPIES[kind][0](original).save(paths[kind], "JPEG", quality=88)
    for i, (kind, moved) in enumerate(SHOTS.items()):
        paths[kind] = folder / f"shot{i}.jpg"
        scene(5, moved=moved).save(paths[kind], "JPEG", quality=88)
    for seed in (6, 7):
        paths[f"different {seed}"] = folder / f"different{seed}.jpg"
        scene(seed).save(paths[f"different {seed}"], "JPEG", quality=88)
    for i, path in enumerate(paths.values()):
        set_mtime(path, BASE_MTIME_NS + i * 10**9)  # the original is the oldest
    catalog = Catalog(tmp / "c.db")
    summary = run_scan(scan(catalog, [str(folder)], SETTINGS, None))
    assert summary.errors == 0
    yield Library(folder, paths, catalog)
    catalog.close()


def test_every_copy_and_no_other_shot_is_a_near_duplicate(local: Library) -> None:
    result = find_duplicates(local.catalog, "near")
    assert result.local_features and result.evidence == "hashes+keypoints"
    assert local.groups(result) == [{"original", *LOCAL_COPIES}]
    members = {local.name(m.photo.path): m for m in result.groups[0].members}
    assert members["original"].match == "keeper"
    for kind in LOCAL_COPIES:
        member = members[kind]
        assert member.match == "near" and member.evidence["verification"] == "copy", kind
        assert "keypoints agree" in member.why, member.why
    assert "rotated 20°" in members["rotate 20° black corners"].why
    assert "mirrored" in members["flip"].why
    assert "crop keeps 6" in members["crop 20 %"].why  # 64 % of the original
    assert "% edited" in members["logo pasted"].why
    assert members["rotate 20° black corners"].evidence["band"] == "loose"
    assert "hashes differ" in members["rotate 20° black corners"].why
    # The shot with one object moved a little is within the hash limits: verification
    # rebuts it. Copies whose hashes differ were confirmed.
    assert result.rebutted >= 1 and result.confirmed >= 2
    assert result.candidates["keypoints"] >= 1 and result.verified >= len(LOCAL_COPIES)
    assert set(result.seconds) >= {"candidates", "sketch", "decode", "keypoints", "verify",
                                   "total"}
    sketches = local.catalog.path.parent / f"{local.catalog.path.stem}{SKETCH_SUFFIX}"
    assert sketches.is_file()
    assert_json_able(result)


def test_a_third_of_a_photo_and_a_photo_pasted_into_a_poster_are_found(tmp_path: Path) -> None:
    """A crop keeping 30 % of the area and the photo pasted at 45 % of the width into a
    poster: the scan's detail sketches propose them, verification confirms them. Without
    detail sketches (a catalog scanned by an older photosim) the thumbnail sketches alone
    miss the poster."""
    from photosim.core.dedup.grouping import forget_verdicts
    from photosim.core.dedup.verify import DETAIL_FEATURES

    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in (3, 8):
        original = scene(seed)
        original.save(folder / f"o{seed}.jpg", quality=92)
        COPIES["crop to 30 % of the area"][0](original).save(folder / f"o{seed}-crop.jpg",
                                                              quality=88)
        COPIES["pasted into a poster"][0](original).save(folder / f"o{seed}-poster.jpg",
                                                          quality=88)
    for seed in (20, 21, 22, 23):
        scene(seed).save(folder / f"d{seed}.jpg", quality=88)
    expected = [{"o3.jpg", "o3-crop.jpg", "o3-poster.jpg"}, {"o8.jpg", "o8-crop.jpg",
                                                            "o8-poster.jpg"}]

    def groups(result: Any) -> list[set[str]]:
        return sorted(({Path(m.photo.path).name for m in g.members} for g in result.groups),
                      key=sorted)

    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS, None))
        stored = catalog.sketches(p.content_hash for p in catalog.photos())
        assert len(stored) == 10
        assert all(0 < len(codes) <= DETAIL_FEATURES for codes in stored.values())
        result = find_duplicates(catalog, "near")
        assert groups(result) == expected
        poster = next(m for g in result.groups for m in g.members
                      if m.photo.path.endswith("o3-poster.jpg"))
        assert poster.evidence["verification"] == "copy" and poster.evidence["pasted"] >= 0.5
        catalog.db.execute("DELETE FROM sketches")
        forget_verdicts()
        older = find_duplicates(catalog, "near")
        assert not any("o3-poster.jpg" in g for g in groups(older))


def test_without_verification_hashes_decide_as_before(local: Library) -> None:
    result = find_duplicates(local.catalog, "near", Thresholds(verify=False))
    assert not result.local_features and result.verified == 0
    names = next(g for g in local.groups(result) if "original" in g)
    # Hashes alone: the copies whose hashes changed are missed, the shot is a "duplicate".
    assert "rotate 20° black corners" not in names and "crop 20 %" not in names
    assert "shot: an object moved a little" in names
    assert all("keypoints" not in m.why for g in result.groups for m in g.members)


def test_verdicts_are_remembered_between_groupings(local: Library) -> None:
    first = find_duplicates(local.catalog, "near")
    again = find_duplicates(local.catalog, "near")
    assert local.groups(again) == local.groups(first)
    assert again.remembered == first.verified + first.remembered
    assert again.verified == 0 and again.decoded == 0
    assert again.seconds["verify"] == 0.0


def test_verdicts_are_stored_in_the_catalog_for_later_sessions(local: Library) -> None:
    # A new app session (a new process: empty memo) must not decode judged pairs again.
    from photosim.core.dedup.grouping import VERIFY_VERSION, forget_verdicts

    forget_verdicts()  # the module's library was grouped before: start unjudged
    local.catalog.db.execute("DELETE FROM verifications")
    first = find_duplicates(local.catalog, "near")
    forget_verdicts()
    stored = local.catalog.verifications()
    assert len(stored) >= first.verified > 0
    later = find_duplicates(local.catalog, "near")
    assert local.groups(later) == local.groups(first)
    assert later.verified == 0 and later.decoded == 0 and later.remembered > 0
    # Another algorithm version's verdicts are ignored, not trusted.
    forget_verdicts()
    version = VERIFY_VERSION
    local.catalog.db.execute(
        f"UPDATE verifications SET key = replace(key, '[{version},', '[{version - 1},')")
    fresh = find_duplicates(local.catalog, "near")
    assert fresh.verified > 0 and local.groups(fresh) == local.groups(first)


def test_logos_on_transparency_match_by_silhouette(tmp_path: Path) -> None:
    folder = tmp_path / "logos"
    folder.mkdir()
    _logo_rgba(folder / "black.png", 0, "wings")
    _logo_rgba(folder / "white.png", 255, "wings")
    _logo_rgba(folder / "other_white.png", 255, "chevrons")
    _logo_rgba(folder / "other_black.png", 0, "chevrons")
    with Catalog(tmp_path / "c.db") as catalog:
        assert run_scan(scan(catalog, [str(folder)], SETTINGS, None)).errors == 0
        result = find_duplicates(catalog, "near")
        assert sorted(names_of(result), key=sorted) == [
            {"black", "white"}, {"other_black", "other_white"}
        ]
        for group in result.groups:
            (member,) = (m for m in group.members if m.match == "near")
            assert member.evidence["source"] == "silhouette"
            assert "alpha silhouette" in member.why


def _edited_library(folder: Path, edits: dict[str, Callable[..., Any]]) -> None:
    """An original (q88), a half-size copy, a q75 re-encode, and edited copies saved at q97
    (same pixels, larger files: the keeper rule alone would keep an edited one)."""
    from PIL import Image

    folder.mkdir()
    original = scene(5)
    original.save(folder / "IMG_0001.jpg", quality=88)
    original.resize((320, 240), Image.Resampling.LANCZOS).save(folder / "small.jpg", quality=90)
    original.save(folder / "export.jpg", quality=75)
    for name, edit in edits.items():
        edit(original).save(folder / f"{name}.jpg", quality=97)


def test_the_keeper_is_the_copy_the_others_match_without_an_edit(tmp_path: Path) -> None:
    """A captioned copy saved as a larger file is not kept: the other copies differ from it
    by an edited region and match the original without one."""
    _edited_library(tmp_path / "lib", {"captioned": _overlay})
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(tmp_path / "lib")], SETTINGS, None))
        (group,) = find_duplicates(catalog, "near").groups
    names = [Path(m.photo.path).stem for m in group.members]
    assert names[0] == "IMG_0001", [m.why for m in group.members]
    assert sorted(names) == ["IMG_0001", "captioned", "export", "small"]
    assert "without an edit" in group.members[0].why and "captioned.jpg" in group.members[0].why
    captioned = group.members[names.index("captioned")]
    assert captioned.match == "near" and "% edited" in captioned.why
    # Cleanup's keeper rule keeps the group's keeper, not the largest file.
    assert {Path(p).stem for p in auto_mark([group], "keeper")} == {"captioned", "export", "small"}


def test_a_brightened_copy_is_not_kept_over_the_original(tmp_path: Path) -> None:
    """A copy with its brightness and contrast raised, saved as a larger file at the same
    pixels: the other copies match the original with its tones and differ from the
    brightened one by a tone change, so the original keeps the group."""
    from PIL import Image

    def brighter(img: Image.Image) -> Image.Image:
        arr = np.asarray(img, np.float32) * 1.2 + 10
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")

    _edited_library(tmp_path / "lib", {"brighter": brighter})
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(tmp_path / "lib")], SETTINGS, None))
        photos = {Path(p.path).stem: p for p in catalog.photos()}
        assert photos["brighter"].size > photos["IMG_0001"].size
        (group,) = find_duplicates(catalog, "near").groups
    names = [Path(m.photo.path).stem for m in group.members]
    assert sorted(names) == ["IMG_0001", "brighter", "export", "small"]
    assert names[0] == "IMG_0001", [m.why for m in group.members]
    assert "without an edit" in group.members[0].why and "brighter.jpg" in group.members[0].why
    assert "brightness or contrast changed" in group.members[names.index("brighter")].why
    assert "brightness or contrast changed" not in group.members[names.index("export")].why
    assert {Path(p).stem for p in auto_mark([group], "keeper")} == {"brighter", "export", "small"}


@pytest.mark.parametrize("framed", ["padded", "meme"])
def test_the_keeper_is_the_photo_not_a_copy_with_a_frame_around_it(
    tmp_path: Path, framed: str
) -> None:
    """Bars or a caption bar around the photo make a copy with more pixels (and a
    larger file); the photo itself is kept, and the others still match it directly."""
    edit = {"padded": _padded, "meme": _caption_bar}[framed]
    _edited_library(tmp_path / "lib", {framed: edit})
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(tmp_path / "lib")], SETTINGS, None))
        photos = {Path(p.path).stem: p for p in catalog.photos()}
        assert photos[framed].pixels > photos["IMG_0001"].pixels
        (group,) = find_duplicates(catalog, "near").groups
    names = [Path(m.photo.path).stem for m in group.members]
    assert sorted(names) == sorted(["IMG_0001", framed, "export", "small"])
    assert names[0] == "IMG_0001", [m.why for m in group.members]
    assert "the photo itself" in group.members[0].why and f"{framed}.jpg" in group.members[0].why
    assert {Path(p).stem for p in auto_mark([group], "keeper")} == {framed, "export", "small"}


def test_a_framed_copy_framed_again_still_keeps_the_photo(tmp_path: Path) -> None:
    """A meme (caption bar above the photo) shown at full size on a poster: the poster has
    the most pixels and frames the meme, which frames the photo; the photo is kept."""
    from PIL import Image, ImageDraw

    def poster(img: Image.Image) -> Image.Image:
        meme = _caption_bar(img)
        w, h = meme.size
        out = Image.new("RGB", (w + 240, h + 200), (30, 110, 60))
        draw = ImageDraw.Draw(out)
        for i in range(8):  # shapes of the poster's own, around the meme
            x, y = (i * 97) % (w + 240), (i * 53) % 90
            draw.ellipse((x, y, x + 70, y + 70), fill=(200, 60 + 20 * i, 40))
        out.paste(meme, (120, 100))
        return out

    _edited_library(tmp_path / "lib", {"meme": _caption_bar, "poster": poster})
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(tmp_path / "lib")], SETTINGS, None))
        (group,) = find_duplicates(catalog, "near").groups
    names = [Path(m.photo.path).stem for m in group.members]
    assert sorted(names) == ["IMG_0001", "export", "meme", "poster", "small"]
    assert names[0] == "IMG_0001", [m.why for m in group.members]
    assert "the photo itself" in group.members[0].why


def test_a_perspective_edit_joins_its_original_which_is_kept(tmp_path: Path) -> None:
    """A skew on the photo's own canvas, saved as a larger file at the same pixels, is a
    copy (a homography, nothing moved) and an edited one: the original keeps the group."""
    def skew(img: Any) -> Any:
        return _perspective(img, [(0.05, 0.04), (-0.02, -0.03), (0.03, -0.04), (-0.04, 0.02)],
                            crop_out=False)

    _edited_library(tmp_path / "lib", {"skewed": skew})
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(tmp_path / "lib")], SETTINGS, None))
        (group,) = find_duplicates(catalog, "near").groups
    names = [Path(m.photo.path).stem for m in group.members]
    assert sorted(names) == ["IMG_0001", "export", "skewed", "small"]
    assert names[0] == "IMG_0001", [m.why for m in group.members]
    assert "perspective changed" in group.members[names.index("skewed")].why


def test_a_colour_photo_is_kept_over_its_greyscale_copy(tmp_path: Path) -> None:
    """The greyscale copy is the larger file at the same pixels; the colour photo is kept."""
    folder = tmp_path / "lib"
    folder.mkdir()
    original = scene(9)
    original.save(folder / "colour.jpg", quality=80)
    original.convert("L").convert("RGB").save(folder / "grey.jpg", quality=98)
    assert (folder / "grey.jpg").stat().st_size > (folder / "colour.jpg").stat().st_size
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS, None))
        (group,) = find_duplicates(catalog, "near").groups
    assert [Path(m.photo.path).stem for m in group.members] == ["colour", "grey"]
    assert group.members[0].why == "kept: colour, not greyscale"


def test_the_camera_original_is_kept_over_a_larger_stripped_export(tmp_path: Path) -> None:
    """At the same pixels, the copy with the camera's EXIF is kept over an export without
    it saved as a larger file."""
    from PIL import Image

    folder = tmp_path / "lib"
    folder.mkdir()
    original = scene(11)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 80D"
    original.save(folder / "IMG_4711.jpg", quality=82, exif=exif.tobytes())
    original.save(folder / "export.jpg", quality=98)
    assert (folder / "export.jpg").stat().st_size > (folder / "IMG_4711.jpg").stat().st_size
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS, None))
        (group,) = find_duplicates(catalog, "near").groups
    assert [Path(m.photo.path).stem for m in group.members] == ["IMG_4711", "export"]
    assert group.members[0].photo.camera == "Canon EOS 80D"
    assert group.members[0].why == "kept: camera metadata kept"


def test_capture_difference_reads_the_camera_record() -> None:
    from photosim.core.dedup.grouping import capture_difference

    shot = "2024-05-01T10:00:00.37|t=0.004|f=2.8|iso=200|ev=0"
    assert capture_difference(shot, shot) is None
    assert capture_difference(shot, None) is None and capture_difference(None, None) is None
    assert capture_difference(shot, shot.replace("t=0.004", "t=0.008")) == (
        "different captures: exposure 0.004 s vs 0.008 s")
    assert capture_difference(shot, shot.replace("ev=0", "ev=-1")) == (
        "different captures: exposure bias 0 EV vs -1 EV")
    assert capture_difference(shot, shot.replace("|iso=200", "|iso=")) is None  # not recorded
    burst = shot.replace("10:00:00.37", "10:00:00.62")
    assert capture_difference(shot, burst) == "different captures: taken 0.25 s apart"
    moved_clock = shot.replace("T10:", "T12:")  # a time-zone fix of the same record
    assert capture_difference(shot, moved_clock) is None
    assert capture_difference(shot, shot.replace("T10:00:00.37", "T10:00:07.37")) == (
        "different captures: taken 7.00 s apart")


def test_exposure_brackets_are_not_near_duplicates(tmp_path: Path) -> None:
    """Three bracketed exposures of one tripod scene (same framing, nothing moved) are three
    photos, not copies; a re-encode that kept the middle one's EXIF is its copy."""
    import numpy as np
    from PIL import Image, TiffImagePlugin

    folder = tmp_path / "brackets"
    folder.mkdir()
    base = np.asarray(scene(13), np.float32)

    def exif(exposure: int) -> bytes:
        record = Image.Exif()
        record[0x010F], record[0x0110] = "Canon", "Canon EOS 80D"
        ifd = record.get_ifd(0x8769)
        ifd[0x9003] = "2024:05:01 10:00:00"
        ifd[0x829A] = TiffImagePlugin.IFDRational(1, exposure)
        return record.tobytes()

    for name, gain, exposure in (("dark", 0.8, 500), ("mid", 1.0, 250), ("bright", 1.2, 125)):
        img = Image.fromarray(np.clip(base * gain, 0, 255).astype(np.uint8), "RGB")
        img.save(folder / f"{name}.jpg", quality=90, exif=exif(exposure))
    Image.open(folder / "mid.jpg").save(folder / "mid_copy.jpg", quality=70, exif=exif(250))
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS, None))
        groups = find_duplicates(catalog, "near").groups
        no_exif = find_duplicates(catalog, "near", Thresholds(verify=False)).groups
    assert names_of_groups(groups) == [{"mid", "mid_copy"}]
    assert names_of_groups(no_exif) == [{"mid", "mid_copy"}]


def names_of_groups(groups: list) -> list[set[str]]:
    return [{Path(m.photo.path).stem for m in g.members} for g in groups]


def test_two_differently_edited_copies_keep_their_group(tmp_path: Path) -> None:
    """With two edits (a caption, a logo) no copy is matched by all the others without an
    edit: the group stays whole, around the copy the keeper rule picks."""
    _edited_library(tmp_path / "lib", {"captioned": _overlay, "logo": _logo})
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(tmp_path / "lib")], SETTINGS, None))
        groups = find_duplicates(catalog, "near").groups
    assert [sorted(Path(m.photo.path).stem for m in g.members) for g in groups] == [
        ["IMG_0001", "captioned", "export", "logo", "small"]]


# ----------------------------------------------------------------------------- crafted catalogs
A_PHASH = to_signed64(0x3C5A_96E1_0F7B_24D8)  # hashes as stored: signed int64
A_DHASH = to_signed64(0xD493_E16C_2B58_F0A7)


def crafted(tmp_path: Path, rows: Iterable[dict]) -> Catalog:
    """A catalog holding exactly these photo rows, with their hash vectors (as a scan leaves)."""
    catalog = Catalog(tmp_path / "crafted.db")
    with catalog.transaction():
        catalog.upsert_photos(rows)
        _add_missing_hash_vectors(catalog)
    return catalog


def names_of(result: GroupingResult) -> list[set[str]]:
    return [{Path(m.photo.path).stem for m in g.members} for g in result.groups]


def test_grouping_does_not_chain(tmp_path: Path) -> None:
    # A ~ B and B ~ C, but A !~ C: pHash+dHash distances 12, 12 and 24 (limit 22).
    b_phash, b_dhash = flip_bits(A_PHASH, range(0, 7)), flip_bits(A_DHASH, range(0, 5))
    c_phash, c_dhash = flip_bits(b_phash, range(7, 14)), flip_bits(b_dhash, range(5, 10))
    rows = [
        photo_row("/s/A.jpg", "a" * 32, A_PHASH, A_DHASH, 800, 600),  # most pixels: keeper
        photo_row("/s/B.jpg", "b" * 32, b_phash, b_dhash, 640, 480),
        photo_row("/s/C.jpg", "c" * 32, c_phash, c_dhash, 640, 480),
    ]
    with crafted(tmp_path, rows) as catalog:
        assert names_of(find_duplicates(catalog, "near")) == [{"A", "B"}]
    # With B the best copy, both match it directly: one group around B.
    rows[1] = photo_row("/s/B.jpg", "b" * 32, b_phash, b_dhash, 1024, 768)
    (tmp_path / "crafted.db").unlink()
    for extra in tmp_path.glob("crafted.*"):
        extra.unlink()
    with crafted(tmp_path, rows) as catalog:
        result = find_duplicates(catalog, "near")
        assert names_of(result) == [{"A", "B", "C"}]
        assert Path(result.groups[0].keeper.path).stem == "B"


def test_verdict_on_crafted_group(tmp_path: Path) -> None:
    rows = [
        photo_row("/s/A.jpg", "a" * 32, A_PHASH, A_DHASH, 800, 600),
        photo_row("/s/B.jpg", "b" * 32, flip_bits(A_PHASH, [1, 2]), A_DHASH, 640, 480),
        photo_row("/s/D.jpg", "d" * 32, A_PHASH, flip_bits(A_DHASH, [3]), 400, 300),
    ]
    with crafted(tmp_path, rows) as catalog:
        assert names_of(find_duplicates(catalog, "near")) == [{"A", "B", "D"}]
        catalog.add_verdict("b" * 32, "a" * 32)
        assert names_of(find_duplicates(catalog, "near")) == [{"A", "D"}]


def test_flat_images_only_match_as_exact_copies(tmp_path: Path) -> None:
    rows = [
        photo_row("/s/white.png", "1" * 32, 0, 0, fmt="PNG"),
        photo_row("/s/white2.png", "1" * 32, 0, 0, fmt="PNG"),
        photo_row("/s/grey.png", "2" * 32, 0, 0, fmt="PNG"),
    ]
    with crafted(tmp_path, rows) as catalog:
        assert names_of(find_duplicates(catalog, "near")) == [{"white", "white2"}]


def test_aspect_ratio_must_agree(tmp_path: Path) -> None:
    rows = [
        photo_row("/s/A.jpg", "a" * 32, A_PHASH, A_DHASH, 800, 600),
        photo_row("/s/wide.jpg", "b" * 32, A_PHASH, A_DHASH, 800, 400),  # same hashes, 2:1
    ]
    with crafted(tmp_path, rows) as catalog:
        assert names_of(find_duplicates(catalog, "near")) == []


# ----------------------------------------------------------------------------- keeper
def test_keeper_rule_order() -> None:
    big_png = make_photo_obj(path="/p/big.png", width=200, height=200, format="PNG", size=10)
    jpeg = make_photo_obj(path="/p/a.jpg", width=100, height=100, format="JPEG", size=500)
    png = make_photo_obj(path="/p/a.png", width=100, height=100, format="PNG", size=900)
    small_file = make_photo_obj(path="/p/b.jpg", width=100, height=100, size=400)
    newer = make_photo_obj(
        path="/p/c.jpg", width=100, height=100, size=500, mtime_ns=BASE_MTIME_NS + 1
    )
    longer_path = make_photo_obj(path="/p/long/a.jpg", width=100, height=100, size=500)
    webp = make_photo_obj(path="/p/a.webp", width=100, height=100, format="WEBP", size=9000)
    unknown = make_photo_obj(path="/p/a.xyz", width=100, height=100, format=None, size=9999)
    photos = [unknown, webp, longer_path, newer, small_file, png, jpeg, big_png]
    assert rank(photos) == [big_png, jpeg, longer_path, newer, small_file, png, webp, unknown]
    assert keeper_reason(big_png, jpeg) == "more pixels"
    assert keeper_reason(jpeg, png) == "preferred format (JPEG over PNG)"
    assert keeper_reason(jpeg, small_file) == "larger file"
    assert keeper_reason(jpeg, newer) == "older file"
    assert keeper_reason(jpeg, longer_path) == "shorter path"


# ----------------------------------------------------------------------------- DEV set
@pytest.fixture(scope="module")
def dev_hashed(
    dev_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Generator[Catalog, None, None]:
    """The DEV set scanned hash-only (no embedder) into a private catalog."""
    catalog = Catalog(tmp_path_factory.mktemp("dev") / "c.db")
    summary = run_scan(scan(catalog, [str(dev_dir)], Settings(workers=2), None))
    assert not summary.cancelled and summary.seen == 165
    yield catalog
    catalog.close()


def test_dev_unreadable_files_are_recorded(dev_dir: Path, dev_hashed: Catalog) -> None:
    truth = load_truth(dev_dir / "groundtruth.json")
    errors = {os.path.relpath(p, dev_dir) for p, _ in dev_hashed.errors()}
    assert errors == truth.unreadable and len(errors) == 2
    assert all(reason for _, reason in dev_hashed.errors())


@dataclass
class DevScores:
    exact: Score
    near: Score
    report: dict


@pytest.fixture(scope="module")
def dev_scores(dev_dir: Path, dev_hashed: Catalog) -> DevScores:
    """Pair scores of the exact and near tiers (no learned weights) against the DEV truth."""
    truth = load_truth(dev_dir / "groundtruth.json")
    readable = {os.path.relpath(p.path, dev_dir) for p in dev_hashed.photos()}
    universe = readable - truth.unreadable
    exact = find_duplicates(dev_hashed, "exact")
    near = find_duplicates(dev_hashed, "near")
    assert near.evidence == "hashes+keypoints" and near.local_features
    s_exact = score(relative_pairs(group_pairs(exact.groups), dev_dir), truth.exact, universe)
    s_near = score(relative_pairs(group_pairs(near.groups), dev_dir), truth.duplicate, universe)
    report = evaluate(dev_hashed, dev_dir, truth, tiers=("near",))
    r = report["tiers"]["near"]
    print(
        f"\nDEV, no learned weights: exact precision {s_exact.precision:.4f} recall "
        f"{s_exact.recall:.4f} ({s_exact.true_positives} pairs); near precision "
        f"{s_near.precision:.4f} recall {s_near.recall:.4f} F1 {s_near.f1:.4f} "
        f"({s_near.true_positives} TP, {len(s_near.false_positives)} FP, "
        f"{len(s_near.false_negatives)} FN); comparisons/content {r['comparisons_per_photo']}, "
        f"verified/content {r['verified_per_photo']}; candidates {r['candidates']}; "
        f"{r['confirmed']} confirmed, {r['rebutted']} rebutted; ms/photo {r['ms_per_photo']}"
    )
    for kind, v in report["near_recall_by_kind"].items():
        print(f"  {kind:12} {v['found']:3}/{v['total']:<3} {v['recall']:.3f}")
    for a, b in s_near.false_positives:
        print(f"  false positive: {a} ~ {b}")
    for a, b in s_near.false_negatives:
        print(f"  missed: {a} ~ {b}")
    return DevScores(s_exact, s_near, report)


def test_dev_exact_tier_is_perfect(dev_scores: DevScores) -> None:
    assert dev_scores.exact.precision == 1.0 and dev_scores.exact.recall == 1.0
    assert dev_scores.exact.true_positives > 0


def test_dev_near_tier_precision(dev_scores: DevScores) -> None:
    assert dev_scores.near.precision >= 0.995


def test_dev_near_tier_recall(dev_scores: DevScores) -> None:
    assert dev_scores.near.recall >= 0.95


def test_dev_no_hard_negative_or_similar_shot_is_a_duplicate(dev_scores: DevScores) -> None:
    near = dev_scores.report["tiers"]["near"]
    assert near["hard_negative_hits"] == [] and near["similar_hits"] == []
    assert near["rebutted"] >= 2  # the consecutive video frames that hashes alone group


def test_dev_recall_per_transform_kind(dev_scores: DevScores) -> None:
    kinds = dev_scores.report["near_recall_by_kind"]
    assert set(kinds) <= set(KINDS) and {"crop", "rotate", "flip", "edit"} <= set(kinds)
    assert all(v["recall"] >= 0.9 for v in kinds.values()), kinds


def test_dev_grouping_stays_sub_linear(dev_scores: DevScores) -> None:
    near = dev_scores.report["tiers"]["near"]
    # Each content is compared with a handful of candidates, never with all 145 others.
    assert near["comparisons_per_photo"] <= 4 and near["verified_per_photo"] <= 4


def test_pair_at_the_hash_sum_threshold_is_grouped(tmp_path: Path) -> None:
    th = Thresholds()
    p_bits, d_bits = 12, th.near_hash_sum - 12  # within near_phash and near_dhash, sum == limit
    assert p_bits <= th.near_phash and d_bits <= th.near_dhash
    rows = [
        photo_row("/s/A.jpg", "a" * 32, A_PHASH, A_DHASH, 800, 600),
        photo_row(
            "/s/B.jpg",
            "b" * 32,
            flip_bits(A_PHASH, range(p_bits)),
            flip_bits(A_DHASH, range(d_bits)),
            640,
            480,
        ),
    ]
    with crafted(tmp_path, rows) as catalog:
        assert names_of(find_duplicates(catalog, "near")) == [{"A", "B"}]


def test_pair_just_inside_the_hash_sum_threshold_is_grouped(tmp_path: Path) -> None:
    rows = [
        photo_row("/s/A.jpg", "a" * 32, A_PHASH, A_DHASH, 800, 600),
        photo_row(
            "/s/B.jpg",
            "b" * 32,
            flip_bits(A_PHASH, range(12)),
            flip_bits(A_DHASH, range(9)),
            640,
            480,
        ),
    ]
    with crafted(tmp_path, rows) as catalog:
        assert names_of(find_duplicates(catalog, "near")) == [{"A", "B"}]


def _shape(result: GroupingResult) -> list[list[tuple[str, str, str]]]:
    return [[(m.photo.path, m.match, m.why) for m in g.members] for g in result.groups]


@pytest.mark.parametrize("fixture", ["local", "described"])
def test_a_session_regroups_like_a_fresh_grouping(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    """Every threshold, tighter or looser than the first, gives what a fresh grouping gives:
    same groups, same members in the same order, same evidence; the candidates are read once
    while the thresholds only tighten."""
    from photosim.core.dedup.grouping import GroupingSession

    lib: Library = request.getfixturevalue(fixture)
    base = Thresholds()
    tier = "similar" if fixture == "described" else "near"
    session = GroupingSession(lib.catalog, tier)
    steps = [
        base,
        dataclasses.replace(base, near_hash_sum=8, near_phash=6),
        dataclasses.replace(base, loose_hash_sum=20, keypoint_candidates=False),
        dataclasses.replace(base, verify=False),
        dataclasses.replace(base, similar_cosine=0.95, near_cosine=0.99),
        dataclasses.replace(base, loose_hash_sum=40),  # looser: collected again
        base,
    ]
    for th in steps:
        again = session.group(th)
        fresh = find_duplicates(lib.catalog, tier, th)
        assert _shape(again) == _shape(fresh), th
        assert again.candidates == fresh.candidates and again.comparisons == fresh.comparisons
    assert any(len(g.members) > 1 for g in session.group(base).groups)


def _library_rows(n: int, seed: int = 3) -> list[dict]:
    """``n`` crafted photos: distinct pictures, near-copies 0 to 16 hash bits away (some
    resized, some with another aspect), exact copies (shared bytes) and flat images."""
    import random

    rng = random.Random(seed)
    rows: list[dict] = []
    for i in range(n):
        path, content = f"/lib/s{i // 50:03d}/IMG_{i:05d}.jpg", f"{i:032x}"
        roll = rng.random()
        if rows and roll < 0.15:  # an exact copy: same bytes elsewhere
            src = rng.choice(rows)
            rows.append({**src, "path": path.replace("IMG", "COPY"), "mtime_ns": src["mtime_ns"] + i})
            continue
        if rows and roll < 0.55:  # a near-copy of an earlier photo
            src = rng.choice(rows)
            phash = flip_bits(src["phash"], rng.sample(range(64), rng.randint(0, 9)))
            dhash = flip_bits(src["dhash"], rng.sample(range(64), rng.randint(0, 9)))
            width, height = rng.choice([(src["width"], src["height"]), (640, 480), (480, 640)])
        else:
            phash, dhash = flip_bits(0, rng.sample(range(64), 32)), flip_bits(0, rng.sample(range(64), 32))
            width, height = 800, 600
            if roll > 0.98:
                dhash = 0  # flat: only ever an exact copy
        rows.append(photo_row(path, content, phash, dhash, width, height,
                              size=rng.randint(50_000, 900_000), mtime_ns=1_600_000_000 * 10**9 + i))
    return rows


def test_the_fast_regroup_gives_the_reference_grouping(tmp_path: Path) -> None:
    """Without verification a session decides pairs on cached numbers and builds members
    lazily; every threshold gives exactly what the reference (every member built at once,
    the path verification takes) gives: groups, order, members, evidence, why lines, counts."""
    from photosim.core.dedup.grouping import GroupingSession

    rows = _library_rows(1500)
    base = Thresholds(verify=False)
    steps = [
        base,
        dataclasses.replace(base, near_hash_sum=8),
        dataclasses.replace(base, near_hash_sum=16, near_phash=12),
        dataclasses.replace(base, near_aspect=0.5),
        dataclasses.replace(base, near_hash_sum=4, near_dhash=3),
        dataclasses.replace(base, near_hash_sum=30, near_phash=20, near_dhash=20),  # looser
        base,
    ]
    with crafted(tmp_path, rows) as catalog:
        contents = {r["content_hash"] for r in rows}
        a, b = sorted(contents)[:2]
        catalog.add_verdict(a, b)
        for tier in ("exact", "near"):
            fast = GroupingSession(catalog, tier)
            reference = GroupingSession(catalog, tier, lazy=False)
            for th in steps:
                got, want = fast.group(th), reference.group(th)
                assert [(g.id, g.tier, g.photo_count, g.reclaimable_bytes, g.keeper.path)
                        for g in got.groups] == [
                    (g.id, g.tier, len(g.members), g.reclaimable_bytes, g.keeper.path)
                    for g in want.groups]
                assert _shape(got) == _shape(want), (tier, th)
                assert [[m.evidence for m in g.members] for g in got.groups] == [
                    [m.evidence for m in g.members] for g in want.groups]
                assert got.candidates == want.candidates
                assert got.comparisons == want.comparisons
            if tier == "near":
                sizes = {len(fast.group(th).groups) for th in steps}
                assert len(sizes) > 2, "the thresholds must change the grouping"
