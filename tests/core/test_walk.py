"""Walking folders: what is a candidate, what is skipped, and what is never opened."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from helpers import make_photo

from photosim.core.scan.walk import NON_IMAGE_EXTENSIONS, walk_folders


def walk(root: str, **kw: object) -> list[tuple[str, int, int]]:
    """Every ``(path, size, mtime_ns)`` of walk_folders(sort=True), in yield order."""
    return [e for folder in walk_folders(root, sort=True, **kw) for e in folder]  # type: ignore[arg-type]


def names(root: Path, **kw: object) -> list[str]:
    """Relative paths of :func:`walk`, in yield order."""
    return [os.path.relpath(path, root) for path, _, _ in walk(str(root), **kw)]


def jpeg_bytes(tmp_path: Path) -> bytes:
    return make_photo(tmp_path / "_src" / "src.jpg", 1, size=(64, 48)).read_bytes()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    data = jpeg_bytes(tmp_path)
    for rel in (
        "a.jpg",
        "b.png",
        ".hidden.jpg",
        "sub/c.jpg",
        "sub/deeper/d.jpg",
        ".hiddendir/e.jpg",
        ".photosim-quarantine/f.jpg",
        "photosim-quarantine/g.jpg",
        "raw/h.jpg",
        "notes.txt",
        "clip.mp4",
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_entries_carry_stat(tree: Path) -> None:
    entries = {os.path.relpath(e[0], tree): e for e in walk(str(tree))}
    st = os.stat(tree / "a.jpg")
    assert entries["a.jpg"] == (str(tree / "a.jpg"), st.st_size, st.st_mtime_ns)
    assert all(os.path.isabs(e[0]) for e in entries.values())


def test_skips_hidden_and_own_folders_keeps_hidden_files(tree: Path) -> None:
    # Files of a folder first (sorted), then its subfolders depth first (sorted).
    assert names(tree) == [
        ".hidden.jpg",
        "a.jpg",
        "b.png",
        "raw/h.jpg",
        "sub/c.jpg",
        "sub/deeper/d.jpg",
    ]


def test_relative_root_is_made_absolute(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    paths = [e[0] for e in walk("sub")]
    assert paths == [str(tree / "sub" / "c.jpg"), str(tree / "sub" / "deeper" / "d.jpg")]


def test_exclude_by_name_glob(tree: Path) -> None:
    assert names(tree, exclude=["*.png", "raw"]) == [
        ".hidden.jpg",
        "a.jpg",
        "sub/c.jpg",
        "sub/deeper/d.jpg",
    ]


def test_exclude_by_path_glob(tree: Path) -> None:
    assert names(tree, exclude=[str(tree / "sub" / "*")]) == [
        ".hidden.jpg",
        "a.jpg",
        "b.png",
        "raw/h.jpg",
    ]
    assert names(tree, exclude=["*/deeper"]) == [
        ".hidden.jpg",
        "a.jpg",
        "b.png",
        "raw/h.jpg",
        "sub/c.jpg",
    ]


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "x.jpg").write_bytes(jpeg_bytes(tmp_path))
    os.symlink("..", root / "dir" / "up")  # directory loop
    os.symlink("x.jpg", root / "dir" / "link.jpg")  # link to a real image
    os.symlink("missing.jpg", root / "dangling.jpg")
    os.symlink("loop_b.jpg", root / "loop_a.jpg")
    os.symlink("loop_a.jpg", root / "loop_b.jpg")
    os.symlink(str(tmp_path / "_src"), root / "outside")  # link to a folder with an image
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.extend(names(root)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "walk() did not terminate on a symlink loop"
    assert result == ["dir/x.jpg"]


def test_fifo_is_neither_opened_nor_yielded(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    os.mkfifo(root / "pipe.jpg")
    os.mkfifo(root / "pipe")  # no extension: would be sniffed if it were a regular file
    (root / "ok.jpg").write_bytes(jpeg_bytes(tmp_path))
    result: list[str] = []
    # Opening a FIFO for reading blocks until a writer appears: run the walk in a thread.
    worker = threading.Thread(target=lambda: result.extend(names(root)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # unblock the thread before failing
        for name in ("pipe.jpg", "pipe"):
            fd = os.open(root / name, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        pytest.fail("walk() blocked opening a FIFO")
    assert result == ["ok.jpg"]


def test_content_sniffing(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    data = jpeg_bytes(tmp_path)
    (root / "no_extension").write_bytes(data)
    (root / "disk.img").write_bytes(data)  # unknown extension: sniffed
    (root / "blob.dat").write_bytes(data)  # .dat is a known non-image extension: skipped unread
    (root / "README").write_bytes(b"just some text, no image at all\n" * 4)
    (root / "empty").write_bytes(b"")
    (root / "empty.jpg").write_bytes(
        b""
    )  # image extension: a candidate (the scan records the error)
    (root / "bytes.unknown").write_bytes(bytes(range(1, 65)))  # no known magic number
    png = root / "png_in_disguise.xyz"
    make_photo(png, 2, size=(32, 32), fmt="PNG")
    assert ".dat" in NON_IMAGE_EXTENSIONS
    assert names(root) == ["disk.img", "empty.jpg", "no_extension", "png_in_disguise.xyz"]


def test_known_paths_are_not_sniffed(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    text = root / "README"
    text.write_text("not an image\n")
    assert names(root) == []
    # A path the catalog already holds is yielded on stat alone (rescans stay stat-only).
    assert names(root, known={str(text)}) == ["README"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can list any folder")
def test_unlistable_folder_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    (root / "locked").mkdir(parents=True)
    (root / "a.jpg").write_bytes(jpeg_bytes(tmp_path))
    (root / "locked" / "b.jpg").write_bytes(jpeg_bytes(tmp_path))
    os.chmod(root / "locked", 0)
    try:
        errors: list[tuple[str, str]] = []
        assert names(root, errors=errors) == ["a.jpg"]
        assert [e[0] for e in errors] == [str(root / "locked")]
        assert errors[0][1].startswith("cannot list folder")
    finally:
        os.chmod(root / "locked", 0o755)


def test_missing_root_is_reported(tmp_path: Path) -> None:
    errors: list[tuple[str, str]] = []
    assert walk(str(tmp_path / "nope"), errors=errors) == []
    assert len(errors) == 1 and errors[0][0] == str(tmp_path / "nope")


def test_badinput_candidates(badinput_dir: Path) -> None:
    found = names(badinput_dir)
    # Every file but the README and the manifest: misnamed, extension-less, hidden and files
    # inside a folder named like an image are all candidates.
    assert len(found) == 39
    assert "generated/misnamed/no_extension" in found
    assert "generated/names/.hidden.jpg" in found
    assert "generated/names/folder.jpg/inside.jpg" in found
    assert "generated/names/folder.jpg" not in found
    assert "README.md" not in found and "manifest.json" not in found
