"""Choosing the copy to keep in a duplicate group.

The rule is deterministic and explainable (shown to the user as the keeper's reason):

1. most pixels (a downscaled copy never wins over the original);
2. format priority (:data:`FORMAT_PRIORITY`): camera-original formats first (HEIF, JPEG, then
   lossless TIFF/PNG, then WebP/AVIF, then GIF/BMP/netpbm): a PNG made from a JPEG has no more
   information than the JPEG but is often the later export;
3. largest file (at equal pixels and format, the higher-quality encode);
4. oldest modification time (the original usually predates its copies);
5. shortest path, then path (a stable tie-break).
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


def keeper_key(photo: Photo) -> tuple[int, int, int, int, int, str]:
    """Sort key: the smallest key is the best copy to keep (see the module docstring)."""
    return (
        -photo.pixels,
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
    if keeper.pixels != other.pixels:
        return "more pixels"
    kf = FORMAT_PRIORITY.get(keeper.format or "", _UNKNOWN_FORMAT)
    of = FORMAT_PRIORITY.get(other.format or "", _UNKNOWN_FORMAT)
    if kf != of:
        return f"preferred format ({keeper.format} over {other.format})"
    if keeper.size != other.size:
        return "larger file"
    if keeper.mtime_ns != other.mtime_ns:
        return "older file"
    return "shorter path"
