"""What a copy carries besides its pixels, and keeping it when the copy moves out.

A user's copies are not always the same file under another name: the copy sent from the phone
kept its GPS position, the export has the keywords typed in Lightroom, the one in "Best of"
has a 5-star rating and a caption. When cleanup moves such a copy out, what only it carried
would go with it. This module reads that metadata and merges it into the keeper's **XMP
sidecar**, so nothing but the bytes is lost:

- read: keywords (XMP ``dc:subject``, IPTC Keywords), rating (XMP ``xmp:Rating``, EXIF
  Rating), caption (XMP ``dc:description``, IPTC Caption), GPS position (EXIF GPS, XMP
  ``exif:GPSLatitude``/``GPSLongitude``) and the date taken (EXIF DateTimeOriginal, XMP
  ``exif:DateTimeOriginal``/``photoshop:DateCreated``), from the image and from its sidecar;
- merge: keywords are united, the other fields are only filled where the keeper has none
  (the keeper's own values always win);
- write: the keeper's sidecar, ``<photo>.xmp`` or ``<photo>.<ext>.xmp`` if one exists, else a
  new ``<photo>.<ext>.xmp`` (darktable's and digiKam's naming), holding the keeper's values and
  the merged ones. The photo file itself is never rewritten.

All reading and writing goes through exiv2 (the ``pyexiv2`` binding, installed with
``pip install "photosim[metadata]"``), a maintained implementation of EXIF, IPTC and XMP, never
a parser of our own. Without it, :func:`available` is False and cleanup says that metadata is
not compared.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from photosim.core.types import Error

logger = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".xmp"
# An empty XMP packet: exiv2 opens a sidecar file only when it already holds one.
EMPTY_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>\n'
    "</x:xmpmeta>\n"
    '<?xpacket end="w"?>\n'
)
_LOCK = threading.Lock()  # exiv2's XMP parser is not thread-safe


class MetadataError(Error):
    """Metadata cannot be read or written (message names the file and the reason)."""


def available() -> bool:
    """True when the exiv2 binding (``pyexiv2``) can be imported."""
    try:
        import pyexiv2  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class PhotoMetadata:
    """The metadata of one photo that a cleanup must not lose.

    Attributes:
        keywords: Keywords / tags, in the order found, without duplicates (case-insensitive).
        rating: Star rating 1-5, or None (0 and -1, "rejected", count as none).
        caption: Caption / description text, or None.
        gps: ``(latitude, longitude)`` in the XMP form ``"DDD,MM.mmmmmmN"``, or None.
        taken: Date taken, ISO 8601 ``YYYY-MM-DDTHH:MM:SS[.fff]``, or None.
    """

    keywords: tuple[str, ...] = ()
    rating: int | None = None
    caption: str | None = None
    gps: tuple[str, str] | None = None
    taken: str | None = None

    def __bool__(self) -> bool:
        return bool(self.keywords or self.rating or self.caption or self.gps or self.taken)

    def describe(self) -> str:
        """A short list for the user, e.g. ``"3 keywords (beach, pier, ...), rating 4, GPS"``."""
        parts: list[str] = []
        if self.keywords:
            shown = ", ".join(self.keywords[:3]) + (", ..." if len(self.keywords) > 3 else "")
            n = len(self.keywords)
            parts.append(f"{n} keyword{'s' if n != 1 else ''} ({shown})")
        if self.rating:
            parts.append(f"rating {self.rating}")
        if self.caption:
            text = self.caption if len(self.caption) <= 30 else self.caption[:29] + "…"
            parts.append(f'caption "{text}"')
        if self.gps:
            parts.append("GPS position")
        if self.taken:
            parts.append(f"date taken {self.taken}")
        return ", ".join(parts)


@dataclass
class MetadataMerge:
    """Metadata that copies about to move out carry and their keeper lacks.

    Attributes:
        keeper: Path of the photo that stays.
        sidecar: The keeper's sidecar file the merge writes (may not exist yet).
        added: What the merge adds.
        sources: Paths of the copies each added value came from.
        error: Why the merge cannot be written (then the copies in ``sources`` stay), or None.
    """

    keeper: str
    sidecar: str
    added: PhotoMetadata
    sources: list[str] = field(default_factory=list)
    error: str | None = None


def sidecar_of(path: str) -> str:
    """The photo's existing XMP sidecar (``photo.jpg.xmp``, then ``photo.xmp``), else the
    name a new one gets (``photo.jpg.xmp``)."""
    for candidate in (path + SIDECAR_SUFFIX, os.path.splitext(path)[0] + SIDECAR_SUFFIX):
        if os.path.isfile(candidate):
            return candidate
    return path + SIDECAR_SUFFIX


@contextmanager
def _opened(path: str) -> Iterator[Any]:
    import pyexiv2

    with _LOCK:
        # exiv2 prints its warnings (a photo's damaged XMP packet) to stdout, in the middle of
        # the command line's output; a file it cannot read still raises.
        pyexiv2.set_log_level(3)
        try:
            image = pyexiv2.Image(path)
        except (RuntimeError, OSError, ValueError) as exc:
            raise MetadataError(f"{path}: cannot read its metadata ({exc})") from exc
        try:
            yield image
        finally:
            image.close()


def _tags(path: str, with_exif: bool = True) -> dict[str, Any]:
    """Every EXIF, IPTC and XMP tag of one file, by exiv2 key."""
    with _opened(path) as image:
        tags: dict[str, Any] = {}
        readers = (image.read_exif, image.read_iptc, image.read_xmp) if with_exif else (
            image.read_xmp,)
        for read in readers:
            try:
                tags.update(read())
            except (RuntimeError, UnicodeDecodeError, ValueError) as exc:
                logger.info("%s: part of its metadata is unreadable: %s", path, exc)
        return tags


def read_metadata(path: str, sidecar: bool = True) -> PhotoMetadata:
    """The metadata of a photo (and of its sidecar, whose values come first).

    Args:
        path: Image file.
        sidecar: Also read the photo's XMP sidecar when it has one.

    Returns:
        What was found (empty fields when nothing).

    Raises:
        MetadataError: exiv2 cannot open the file or its sidecar (missing, not an image
            format exiv2 knows, a broken XMP packet).
    """
    found = _parse(_tags(path))
    side = sidecar_of(path)
    if sidecar and os.path.isfile(side):
        found = merged(_parse(_tags(side, with_exif=False)), found)
    return found


def merged(first: PhotoMetadata, second: PhotoMetadata) -> PhotoMetadata:
    """``first`` with what only ``second`` has: keywords united, other fields filled."""
    return PhotoMetadata(
        keywords=_unique([*first.keywords, *second.keywords]),
        rating=first.rating or second.rating,
        caption=first.caption or second.caption,
        gps=first.gps or second.gps,
        taken=first.taken or second.taken,
    )


def missing(keeper: PhotoMetadata, copies: Iterable[tuple[str, PhotoMetadata]]) -> tuple[
    PhotoMetadata, list[str]
]:
    """What the copies carry that the keeper lacks.

    Args:
        keeper: The keeper's metadata.
        copies: ``(path, metadata)`` of the copies about to move out, in order.

    Returns:
        ``(added, sources)``: the additions (keywords not already the keeper's, compared
        case-insensitively; rating, caption, GPS and date only where the keeper has none, the
        first copy's value) and the paths of the copies they came from.
    """
    have = {k.casefold() for k in keeper.keywords}
    added = PhotoMetadata()
    sources: list[str] = []
    for path, md in copies:
        new_keywords = [k for k in md.keywords if k.casefold() not in have]
        have.update(k.casefold() for k in new_keywords)
        update: dict[str, Any] = {}
        if new_keywords:
            update["keywords"] = (*added.keywords, *new_keywords)
        for name in ("rating", "caption", "gps", "taken"):
            if getattr(md, name) and not getattr(keeper, name) and not getattr(added, name):
                update[name] = getattr(md, name)
        if update:
            added = replace(added, **update)
            sources.append(path)
    return added, sources


def write_sidecar(sidecar: str, values: PhotoMetadata) -> None:
    """Write ``values`` into an XMP sidecar (created when missing; other tags kept).

    Args:
        sidecar: The sidecar file.
        values: What it must hold: its keywords are united with those already there; rating,
            caption, GPS and date taken are set when given.

    Raises:
        MetadataError: The file cannot be created or written (read-only folder, full disk), or
            the existing file is not a readable XMP packet (then it is left as it was).
    """
    created = not os.path.exists(sidecar)
    if created:
        try:
            with open(sidecar, "x", encoding="utf-8") as f:
                f.write(EMPTY_PACKET)
        except OSError as exc:
            raise MetadataError(f"{sidecar}: cannot create ({exc.strerror or exc})") from exc
    try:
        with _opened(sidecar) as xmp:
            current = _parse(xmp.read_xmp())
            want = merged(current, values)
            tags: dict[str, Any] = {}
            if want.keywords != current.keywords:
                tags["Xmp.dc.subject"] = list(want.keywords)
            if want.rating and want.rating != current.rating:
                tags["Xmp.xmp.Rating"] = str(want.rating)
            if want.caption and want.caption != current.caption:
                tags["Xmp.dc.description"] = {'lang="x-default"': want.caption}
            if want.gps and want.gps != current.gps:
                tags["Xmp.exif.GPSLatitude"], tags["Xmp.exif.GPSLongitude"] = want.gps
            if want.taken and want.taken != current.taken:
                tags["Xmp.exif.DateTimeOriginal"] = want.taken
            if tags:
                try:
                    xmp.modify_xmp(tags)
                except (RuntimeError, OSError, ValueError) as exc:
                    raise MetadataError(f"{sidecar}: cannot write ({exc})") from exc
    except MetadataError:
        if created:
            os.remove(sidecar)
        raise


# ---------------------------------------------------------------------------- parsing
def _unique(words: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for word in words:
        word = word.strip()
        if word and word.casefold() not in seen:
            seen.add(word.casefold())
            out.append(word)
    return tuple(out)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _text(value: Any) -> str | None:
    if isinstance(value, dict):  # a language alternative: x-default first
        value = value.get('lang="x-default"') or next(iter(value.values()), None)
    if isinstance(value, list):
        value = value[0] if value else None
    text = str(value).strip() if value is not None else ""
    return text or None


def _rating(tags: dict[str, Any]) -> int | None:
    for key in ("Xmp.xmp.Rating", "Exif.Image.Rating"):
        try:
            value = int(float(str(tags[key]).strip()))
        except (KeyError, ValueError):
            continue
        if 1 <= value <= 5:
            return value
    return None


def _exif_degrees(value: str, ref: str | None) -> str | None:
    """EXIF ``"52/1 22/1 1234/100"`` + ``"N"`` -> XMP ``"52,22.205667N"``."""
    try:
        d, m, s = (Fraction(part) for part in value.split())
    except (ValueError, ZeroDivisionError):
        return None
    if not ref:
        return None
    minutes = float(m + s / 60)
    return f"{int(d)},{minutes:.6f}{ref.strip()[:1].upper()}"


def _gps(tags: dict[str, Any]) -> tuple[str, str] | None:
    lat, lon = tags.get("Xmp.exif.GPSLatitude"), tags.get("Xmp.exif.GPSLongitude")
    if lat and lon:
        return str(lat), str(lon)
    lat = tags.get("Exif.GPSInfo.GPSLatitude")
    lon = tags.get("Exif.GPSInfo.GPSLongitude")
    if lat and lon:
        a = _exif_degrees(str(lat), tags.get("Exif.GPSInfo.GPSLatitudeRef"))
        b = _exif_degrees(str(lon), tags.get("Exif.GPSInfo.GPSLongitudeRef"))
        if a and b:
            return a, b
    return None


def _taken(tags: dict[str, Any]) -> str | None:
    for key in ("Xmp.exif.DateTimeOriginal", "Xmp.photoshop.DateCreated"):
        if tags.get(key):
            return str(tags[key]).strip()
    exif = str(tags.get("Exif.Photo.DateTimeOriginal", "")).strip()
    if len(exif) >= 19 and exif[4] == ":" and exif[7] == ":":
        iso = f"{exif[:4]}-{exif[5:7]}-{exif[8:10]}T{exif[11:19]}"
        sub = str(tags.get("Exif.Photo.SubSecTimeOriginal", "")).strip()
        return f"{iso}.{sub}" if sub.isdigit() else iso
    return None


def _parse(tags: dict[str, Any]) -> PhotoMetadata:
    keywords = _unique(
        [*_as_list(tags.get("Xmp.dc.subject")), *_as_list(tags.get("Iptc.Application2.Keywords"))]
    )
    caption = _text(tags.get("Xmp.dc.description")) or _text(
        tags.get("Iptc.Application2.Caption"))
    return PhotoMetadata(keywords, _rating(tags), caption, _gps(tags), _taken(tags))
