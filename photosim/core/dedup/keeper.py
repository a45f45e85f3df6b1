"""Choosing the copy to keep in a duplicate group.

The rule is deterministic and explainable (shown to the user as the keeper's reason):

1. colour over greyscale (a greyscale copy of a colour photo has lost information; unknown,
   for photos scanned before photosim recorded it, counts as colour);
2. most pixels (a downscaled copy never wins over the original);
3. the camera's make and model kept (EXIF) over stripped: at the same pixels, a copy
   without them is an export or an edit, however large its file (the date taken is no
   evidence: editors write a date of their own);
4. format priority (:data:`FORMAT_PRIORITY`): camera-original formats first (HEIF, JPEG, then
   lossless TIFF/PNG, then WebP/AVIF, then GIF/BMP/netpbm): a PNG made from a JPEG has no more
   information than the JPEG but is often the later export;
5. largest file (at equal pixels and format, the higher-quality encode);
6. oldest modification time (the original usually predates its copies);
7. shortest path, then path (a stable tie-break).
"""

from __future__ import annotations

from collections.abc import Iterable

from photosim.core.catalog import Photo

FORMAT_PRIORITY: dict[str, int] = {
    "HEIF": 0,
    "JPEG": 0,
    "MPO": 0,
    "TIFF": 1,
    "PNG": 1,
    "WEBP": 2,
    "AVIF": 2,
    "GIF": 3,
    "BMP": 3,
    "PPM": 3,
}
_UNKNOWN_FORMAT = 4


def keeper_key(photo: Photo) -> tuple[int, int, int, int, int, int, int, str]:
    """Sort key: the smallest key is the best copy to keep (see the module docstring)."""
    return (
        1 if photo.grey else 0,
        -photo.pixels,
        0 if photo.camera else 1,
        FORMAT_PRIORITY.get(photo.format or "", _UNKNOWN_FORMAT),
        -photo.size,
        photo.mtime_ns,
        len(photo.path),
        photo.path,
    )


def rank(photos: Iterable[Photo]) -> list[Photo]:
    """Photos sorted best copy first by :func:`keeper_key`."""
    return sorted(photos, key=keeper_key)


def keeper_reason(keeper: Photo, other: Photo) -> str:
    """Why ``keeper`` was kept rather than ``other``, in a few words."""
    if bool(keeper.grey) != bool(other.grey):
        return "colour, not greyscale"
    if keeper.pixels != other.pixels:
        return "more pixels"
    if bool(keeper.camera) != bool(other.camera):
        return "camera metadata kept"
    kf = FORMAT_PRIORITY.get(keeper.format or "", _UNKNOWN_FORMAT)
    of = FORMAT_PRIORITY.get(other.format or "", _UNKNOWN_FORMAT)
    if kf != of:
        return f"preferred format ({keeper.format} over {other.format})"
    if keeper.size != other.size:
        return "larger file"
    if keeper.mtime_ns != other.mtime_ns:
        return "older file"
    return "shorter path"


# ---------------------------------------------------------------------------- auto-mark rules
RULES: dict[str, str] = {
    "keeper": "keep the copy chosen by the keeper rule (unedited, colour, most pixels, camera "
              "metadata, format, size, age)",
    "most_pixels": "keep the copy with the most pixels",
    "largest_file": "keep the largest file",
    "oldest": "keep the oldest file (modification time)",
    "newest": "keep the newest file (modification time)",
    "shortest_path": "keep the copy with the shortest path",
    "in_folder": "keep the copy inside a chosen folder (else the keeper rule)",
}
_RULE_KEYS = {
    "most_pixels": lambda p: (-p.pixels,),
    "largest_file": lambda p: (-p.size,),
    "oldest": lambda p: (p.mtime_ns,),
    "newest": lambda p: (-p.mtime_ns,),
    "shortest_path": lambda p: (len(p.path),),
}


def choose_keep(photos: list[Photo], rule: str = "keeper", folder: str | None = None) -> Photo:
    """The photo a rule keeps; ties fall back to :func:`keeper_key` (deterministic).

    Args:
        photos: The group's photos (at least one).
        rule: A key of :data:`RULES`.
        folder: For ``"in_folder"``: the folder whose copy is kept.

    Raises:
        ValueError: Unknown rule, or ``in_folder`` without a folder.
    """
    if rule == "keeper":
        return min(photos, key=keeper_key)
    if rule == "in_folder":
        if not folder:
            raise ValueError("the in_folder rule needs a folder")
        prefix = folder.rstrip("/\\") + ("/" if "/" in folder else "\\")
        inside = [p for p in photos if p.path.startswith(prefix)]
        return min(inside or photos, key=keeper_key)
    if rule not in _RULE_KEYS:
        raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    key = _RULE_KEYS[rule]
    return min(photos, key=lambda p: (*key(p), *keeper_key(p)))
