"""Walking folders for candidate image files.

Content decides what is an image, not the name: files with an image extension are candidates
(the decoder sniffs their real format), files with no or an unknown extension are sniffed by
their first bytes, and only well-known non-image extensions (video, audio, documents,
archives, sidecars) are skipped unread. Hidden folders, photosim's own folders and the user's
exclude patterns are skipped. Symbolic links are never followed (no loops, and cleanup must
act on real files only); FIFOs, sockets and devices are never opened.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
from collections.abc import Iterator, Sequence

from photosim.core.scan.imageio import IMAGE_EXTENSIONS, SNIFF_BYTES, sniff

logger = logging.getLogger(__name__)

# Folders photosim itself creates inside libraries (cleanup quarantine).
OWN_FOLDER_NAMES = frozenset({".photosim-quarantine", "photosim-quarantine"})

# Extensions that are never images; skipping them unread keeps rescans stat-only.
NON_IMAGE_EXTENSIONS = frozenset(
    """
    .mp4 .mov .m4v .avi .mkv .webm .mts .m2ts .3gp .wmv .mpg .mpeg .mp3 .m4a .aac .wav .flac
    .ogg .opus .txt .md .pdf .doc .docx .xls .xlsx .ppt .pptx .odt .ods .rtf .csv .json .xml
    .html .htm .xmp .aae .thm .zip .7z .rar .tar .gz .bz2 .xz .zst .iso .dmg .exe .dll .so .py
    .js .db .sqlite .ini .log .lnk .url .ds_store .pth .pt .bin .dat .tmp .part .crdownload
    """.split()
)


def _excluded(name: str, path: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns)


def _sniffs_as_image(path: str) -> bool:
    try:
        # O_NONBLOCK: a FIFO that slipped past the type check must not block the walk.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        return sniff(os.read(fd, SNIFF_BYTES)) is not None
    except OSError:
        return False
    finally:
        os.close(fd)


def walk_folders(
    root: str,
    exclude: Sequence[str] = (),
    known: frozenset[str] | set[str] | dict[str, object] | None = None,
    errors: list[tuple[str, str]] | None = None,
    sort: bool = False,
) -> Iterator[list[tuple[str, int, int]]]:
    """Yield the candidate image files below ``root``, one folder at a time.

    Entries are plain ``(path, size bytes, mtime_ns)`` tuples, so a scan can diff a whole
    tree against the catalog with set operations. Folders are visited depth first; within a folder, entries come in directory
    order unless ``sort`` is set.

    Args:
        root: Folder to walk (made absolute).
        exclude: Glob patterns matched against each file or folder name and full path.
        known: Paths already in the catalog: they are yielded without sniffing, so rescans stay
            stat-only.
        errors: If given, ``(path, reason)`` is appended for folders that cannot be listed.
        sort: Sort each folder's files and subfolders by name.

    Yields:
        One list per listed folder (possibly empty) of its candidate files.
    """
    known = known if known is not None else ()
    image_ext, non_image_ext = IMAGE_EXTENSIONS, NON_IMAGE_EXTENSIONS
    splitext, is_reg = os.path.splitext, stat.S_ISREG
    stack = [os.path.abspath(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name) if sort else list(it)
        except OSError as exc:
            logger.warning("cannot list %s: %s", folder, exc)
            if errors is not None:
                errors.append((folder, f"cannot list folder: {exc.strerror or exc}"))
            continue
        found: list[tuple[str, int, int]] = []
        subfolders = []
        for entry in entries:
            if exclude and _excluded(entry.name, entry.path, exclude):
                continue
            try:
                # The entry type comes from readdir (no syscall): folders and links are
                # sorted out before the one stat() a file needs.
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    name = entry.name
                    if not name.startswith(".") and name not in OWN_FOLDER_NAMES:
                        subfolders.append(entry.path)
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not is_reg(st.st_mode):
                continue
            path = entry.path
            if path in known:
                found.append((path, st.st_size, st.st_mtime_ns))
                continue
            ext = splitext(entry.name)[1].lower()
            if ext in image_ext or (
                ext not in non_image_ext and st.st_size > 0 and _sniffs_as_image(path)
            ):
                found.append((path, st.st_size, st.st_mtime_ns))
        yield found
        stack.extend(reversed(subfolders))

