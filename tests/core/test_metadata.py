"""Metadata only copies carry is kept in the keeper's XMP sidecar when they move out
(photosim.core.metadata, photosim.core.cleanup): planned, shown, written, undone, and safe when
the sidecar cannot be written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import drain, file_sha256, make_photo

from photosim.config import Settings
from photosim.core.catalog import Catalog
from photosim.core.cleanup import (
    auto_mark,
    execute_cleanup,
    plan_cleanup,
    reconcile_journal,
    undo_session,
)
from photosim.core.dedup.grouping import find_duplicates
from photosim.core.metadata import (
    MetadataError,
    PhotoMetadata,
    missing,
    read_metadata,
    sidecar_of,
    write_sidecar,
)
from photosim.core.scan.pipeline import run_scan, scan

pyexiv2 = pytest.importorskip("pyexiv2", reason='needs pip install "photosim[metadata]"')

SETTINGS = Settings(workers=1)
GPS = {
    "Exif.GPSInfo.GPSLatitudeRef": "N", "Exif.GPSInfo.GPSLatitude": "52/1 22/1 1234/100",
    "Exif.GPSInfo.GPSLongitudeRef": "E", "Exif.GPSInfo.GPSLongitude": "4/1 53/1 3000/100",
}


def _tag(path: Path, exif: dict | None = None, iptc: dict | None = None,
         xmp: dict | None = None) -> Path:
    image = pyexiv2.Image(str(path))
    try:
        if exif:
            image.modify_exif(exif)
        if iptc:
            image.modify_iptc(iptc)
        if xmp:
            image.modify_xmp(xmp)
    finally:
        image.close()
    return path


def _sidecar_tags(path: str) -> dict:
    image = pyexiv2.Image(path)
    try:
        return image.read_xmp()
    finally:
        image.close()


# ----------------------------------------------------------------------------- reading
def test_reads_keywords_rating_caption_gps_and_date(tmp_path: Path) -> None:
    photo = _tag(
        make_photo(tmp_path / "a.jpg", seed=1),
        exif={"Exif.Photo.DateTimeOriginal": "2021:07:04 19:22:10", **GPS},
        iptc={"Iptc.Application2.Keywords": ["pier", "Beach"]},
        xmp={"Xmp.dc.subject": ["beach", "holiday"], "Xmp.xmp.Rating": "4",
             "Xmp.dc.description": {'lang="x-default"': "Sunset at the pier"}},
    )
    md = read_metadata(str(photo))
    assert md.keywords == ("beach", "holiday", "pier")  # IPTC "Beach" is the same keyword
    assert md.rating == 4 and md.caption == "Sunset at the pier"
    assert md.gps == ("52,22.205667N", "4,53.500000E")
    assert md.taken == "2021-07-04T19:22:10"
    assert "3 keywords (beach, holiday, pier)" in md.describe() and "GPS" in md.describe()
    # A sidecar's values come first, and its keywords join the image's.
    write_sidecar(str(photo) + ".xmp", PhotoMetadata(keywords=("pier 7",), rating=2))
    both = read_metadata(str(photo))
    assert both.rating == 2 and both.keywords[0] == "pier 7" and "holiday" in both.keywords


def test_an_unreadable_file_raises_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(MetadataError, match="broken.jpg"):
        read_metadata(str(broken))


def test_missing_keeps_the_keepers_values_and_unites_keywords() -> None:
    keeper = PhotoMetadata(keywords=("Beach",), rating=5)
    copies = [
        ("a.jpg", PhotoMetadata(keywords=("beach", "pier"), rating=3, caption="at the pier")),
        ("b.jpg", PhotoMetadata(keywords=("pier",), gps=("1,2N", "3,4E"))),
        ("c.jpg", PhotoMetadata(keywords=("BEACH",))),
    ]
    added, sources = missing(keeper, copies)
    assert added == PhotoMetadata(keywords=("pier",), caption="at the pier", gps=("1,2N", "3,4E"))
    assert sources == ["a.jpg", "b.jpg"]  # c.jpg carries nothing new
    assert missing(keeper, [("c.jpg", copies[2][1])]) == (PhotoMetadata(), [])


# ----------------------------------------------------------------------------- cleanup
@pytest.fixture
def tagged(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An untagged original and a smaller export of it that carries keywords, a rating and
    GPS; scanned and grouped."""
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    original = make_photo(folder / "original.jpg", seed=3, size=(800, 600))
    export = folder / "export.jpg"
    with Image.open(original) as im:
        im.resize((400, 300)).save(export, quality=85)
    _tag(export, exif=GPS, xmp={"Xmp.dc.subject": ["beach", "holiday"], "Xmp.xmp.Rating": "4"})
    catalog = Catalog(tmp_path / "c.db")
    run_scan(scan(catalog, [str(folder)], SETTINGS))
    groups = find_duplicates(catalog, "near").groups
    assert len(groups) == 1 and groups[0].keeper.path == str(original)
    yield folder, original, export, catalog, groups
    catalog.close()


def test_cleanup_keeps_the_copys_metadata_in_the_keepers_sidecar_and_undo_takes_it_back(
    tagged,  # type: ignore[no-untyped-def]
) -> None:
    folder, original, export, catalog, groups = tagged
    plan = plan_cleanup(catalog, groups, auto_mark(groups))
    (merge,) = plan.merges
    assert merge.keeper == str(original) and merge.sources == [str(export)] and not merge.error
    assert merge.sidecar == str(original) + ".xmp" and not os.path.exists(merge.sidecar)
    assert merge.added.keywords == ("beach", "holiday") and merge.added.rating == 4
    result = drain(execute_cleanup(catalog, plan))
    assert result.moved == [str(export)] and result.merged == [merge.sidecar]
    kept = read_metadata(str(original))
    assert kept.keywords == ("beach", "holiday") and kept.rating == 4
    assert kept.gps == ("52,22.205667N", "4,53.500000E")
    before = file_sha256(original)
    # Undo: the copy comes back and the sidecar the cleanup created goes.
    undone = undo_session(catalog, result.session)
    assert undone.restored == [str(export)] and not undone.problems
    assert not os.path.exists(merge.sidecar) and file_sha256(original) == before


def test_an_existing_sidecar_is_merged_into_and_restored_byte_for_byte(
    tagged,  # type: ignore[no-untyped-def]
) -> None:
    folder, original, export, catalog, groups = tagged
    sidecar = folder / "original.xmp"  # Lightroom's naming: used as it is
    write_sidecar(str(sidecar), PhotoMetadata(keywords=("family",), caption="Grandma's"))
    before = sidecar.read_bytes()
    assert sidecar_of(str(original)) == str(sidecar)
    plan = plan_cleanup(catalog, groups, auto_mark(groups))
    (merge,) = plan.merges
    assert merge.sidecar == str(sidecar) and merge.added.caption is None  # the keeper's wins
    result = drain(execute_cleanup(catalog, plan))
    tags = _sidecar_tags(str(sidecar))
    assert tags["Xmp.dc.subject"] == ["family", "beach", "holiday"]
    assert tags["Xmp.dc.description"] == {'lang="x-default"': "Grandma's"}
    assert not undo_session(catalog, result.session).problems
    assert sidecar.read_bytes() == before


def test_a_sidecar_edited_after_the_cleanup_is_left_alone_by_undo(
    tagged,  # type: ignore[no-untyped-def]
) -> None:
    folder, original, export, catalog, groups = tagged
    result = drain(execute_cleanup(catalog, plan_cleanup(catalog, groups, auto_mark(groups))))
    sidecar = str(original) + ".xmp"
    write_sidecar(sidecar, PhotoMetadata(keywords=("added later",)))
    edited = Path(sidecar).read_bytes()
    undone = undo_session(catalog, result.session)
    assert undone.restored == [str(export)]
    assert [(p, "edited since" in r) for p, r in undone.problems] == [(sidecar, True)]
    assert Path(sidecar).read_bytes() == edited


def test_a_broken_sidecar_is_never_overwritten_and_the_copy_stays(
    tagged,  # type: ignore[no-untyped-def]
) -> None:
    folder, original, export, catalog, groups = tagged
    sidecar = Path(str(original) + ".xmp")
    sidecar.write_text("<x:xmpmeta this is not XMP")
    plan = plan_cleanup(catalog, groups, auto_mark(groups))
    assert not plan.removals and plan.merges[0].error
    ((path, reason),) = plan.refused
    assert path == str(export) and "not a readable XMP sidecar" in reason
    result = drain(execute_cleanup(catalog, plan))
    assert not result.moved and export.exists()
    assert sidecar.read_text() == "<x:xmpmeta this is not XMP"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_a_read_only_folder_keeps_the_copy_that_carries_metadata(
    tagged,  # type: ignore[no-untyped-def]
) -> None:
    folder, original, export, catalog, groups = tagged
    folder.chmod(0o555)
    try:
        plan = plan_cleanup(catalog, groups, auto_mark(groups))
    finally:
        folder.chmod(0o755)
    assert not plan.removals and "read-only" in plan.refused[0][1]


def test_a_copy_without_metadata_of_its_own_plans_no_merge(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    original = _tag(make_photo(folder / "original.jpg", seed=4, size=(800, 600)),
                    xmp={"Xmp.dc.subject": ["beach"]})
    with Image.open(original) as im:
        im.resize((400, 300)).save(folder / "small.jpg", quality=85)
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS))
        groups = find_duplicates(catalog, "near").groups
        plan = plan_cleanup(catalog, groups, auto_mark(groups))
    assert len(plan.removals) == 1 and not plan.merges and not plan.notes


def test_an_interrupted_merge_is_rolled_back(tagged) -> None:  # type: ignore[no-untyped-def]
    """A process killed between journaling a merge and finishing it: the next cleanup,
    undo or history puts the sidecar back as it was."""
    folder, original, export, catalog, groups = tagged
    sidecar = Path(str(original) + ".xmp")
    write_sidecar(str(sidecar), PhotoMetadata(keywords=("family",)))
    before = sidecar.read_bytes()
    backup = folder / ".photosim-quarantine" / "s1" / sidecar.name
    backup.parent.mkdir(parents=True)
    backup.write_bytes(before)
    write_sidecar(str(sidecar), PhotoMetadata(keywords=("half-written",)))
    catalog.db.execute("INSERT INTO cleanup_sessions VALUES ('s1', 0, 'quarantine', 'running')")
    catalog.db.execute(
        "INSERT INTO journal(session, action, src, dst, size, mtime_ns, content_hash, keeper, "
        "photo_json, state, updated_at) VALUES ('s1', 'metadata', ?, ?, 0, 0, '', ?, ?, "
        "'pending', 0)", [str(sidecar), str(backup), str(original), json.dumps({})])
    notes = reconcile_journal(catalog)
    assert any("rolled back" in n for n in notes)
    assert sidecar.read_bytes() == before and not backup.exists()
    assert export.exists()


def test_a_merge_that_fails_while_moving_keeps_the_copy_in_place(
    tagged,  # type: ignore[no-untyped-def]
) -> None:
    """The sidecar became impossible to write after the plan was shown (here a folder took
    its name): the copy that carries the metadata is skipped, with the reason."""
    folder, original, export, catalog, groups = tagged
    plan = plan_cleanup(catalog, groups, auto_mark(groups))
    os.mkdir(plan.merges[0].sidecar)
    result = drain(execute_cleanup(catalog, plan))
    assert not result.moved and not result.merged and export.exists()
    ((path, reason),) = result.skipped
    assert path == str(export) and "could not be kept" in reason
    state = catalog.db.execute("SELECT state FROM journal WHERE action='metadata'").fetchone()
    assert state == ("failed",)


def test_the_copys_own_sidecar_is_merged_then_moves_with_it(
    tagged,  # type: ignore[no-untyped-def]
) -> None:
    """What only the copy's sidecar says reaches the keeper's sidecar; the copy's sidecar
    then moves with the copy (no orphan left beside the keeper), and undo puts both back."""
    folder, original, export, catalog, groups = tagged
    own = Path(str(export) + ".xmp")
    write_sidecar(str(own), PhotoMetadata(keywords=("from the sidecar",)))
    own_bytes = own.read_bytes()
    plan = plan_cleanup(catalog, groups, auto_mark(groups))
    (removal,) = plan.removals
    assert removal.companions == (str(own),)
    (merge,) = plan.merges
    assert "from the sidecar" in merge.added.keywords
    result = drain(execute_cleanup(catalog, plan))
    assert result.companions == [str(own)] and not own.exists()
    assert "from the sidecar" in read_metadata(str(original)).keywords
    undone = undo_session(catalog, result.session)
    assert undone.restored == [str(export)] and undone.companions == [str(own)]
    assert own.read_bytes() == own_bytes and not os.path.exists(merge.sidecar)
