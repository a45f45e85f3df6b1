"""Local-feature evidence for near-duplicates: keypoint sketches and spatial verification.

Perceptual hashes summarise a whole photo in 64 bits: they miss copies whose framing changed
(crops, rotations with black corners, straightened horizons, pasted logos), and they cannot
tell a copy from the next frame of a video. This module adds the evidence that decides those
cases, with no learned weights (OpenCV's ORB keypoints, Rublee et al., ICCV 2011; DIS optical
flow, Kroeger et al., ECCV 2016):

1. **Keypoint sketch** (:func:`sketch_codes`, :func:`sketch_candidates`): candidates for
   recall. ORB keypoints of the stored 256-pixel thumbnail; the first 64 bits of each binary
   descriptor (ORB orders its tests by decreasing variance and decorrelation, so these are its
   most informative bits) are split into tables of :data:`SKETCH_KEY_BITS`-bit keys (wider as
   the library grows). Two copies share many keys: a keypoint survives re-encoding, resizing,
   rotation and cropping, and its leading bits mostly survive too. Two different photos share
   few, at a rate the key frequencies predict. An inverted file (one sort, no N x N
   comparison) counts the keys each pair shares and keeps a pair when the count is far above
   chance (a Poisson z-score, :data:`SKETCH_MIN_Z`), at most ``k`` per photo. This is the
   visual-word retrieval of Sivic & Zisserman (ICCV 2003) and Philbin et al. (CVPR 2007) with
   a data-independent quantiser (bit sampling, as in locality-sensitive hashing) instead of a
   learned vocabulary. Sketches are cached beside the catalog (:class:`SketchCache`).
2. **Spatial verification** (:class:`Verifier`, after Philbin et al. 2007): both photos
   decoded once per grouping run, greyscale, :data:`VERIFY_SIDE` pixels on the long side;
   1000 ORB keypoints, brute-force Hamming matching with Lowe's ratio test, a RANSAC affine
   transform. A copy is related to its original by one *plausible* transform: any rotation
   (turned pixels, straightened horizons, rotations with black corners), a mirror (tried when
   the hashes point to one), any uniform scale, and a non-uniform resize along the axes of
   either photo; never a shear (:func:`_implausible`): a sheared fit is a camera that moved.
   The shared region, border fill excluded (:func:`fill_mask`), must cover most of one photo
   (:data:`MIN_CONTAINED`: the crop) and a good part of the other (:data:`MIN_SHARED`). When
   no affine transform explains a pair, a homography is tried (:func:`_match_perspective`):
   an editor's perspective tool (a keystone corrected, a skew) is a copy when the copy's
   picture lies inside the original's frame (:func:`_perspective_problem`); two shots from
   a turned camera each show what the other does not.
3. **Photometric check** (:func:`_photometry`): the one thing geometry cannot see is *time*.
   Two frames of a video, a burst, two shots from a tripod align almost as well as a copy.
   One photo is warped onto the other, at the resolution both really have, brightness matched
   (a monotone tone curve, then a smooth brightness surface), and cut into cells of
   :data:`CELL_PX` pixels. Dense optical flow between the two says where each cell's content
   went. In a copy nothing moved: every cell is found where the global transform puts it; a
   cell may hold other content (a text overlay, a pasted logo) up to
   :data:`MAX_CHANGED_FRACTION` of the region. In another moment of the scene something
   moved: a cluster of at least :data:`MIN_MOVED_CELLS` neighbouring cells whose content is
   found, clearly, displaced (by the flow, or for larger motions by searching the cells that
   changed, which must then agree on one displacement). Normalised cross-correlation makes
   all of this blind to brightness, contrast, colour and greyscale edits.

Transparent images whose colours vanish on white (a white logo on transparency) are compared
by their alpha silhouette instead (:func:`load_view`), so the same logo in white and in black
is one logo, while two different logos stay different.

The thresholds were chosen from distributions, never single files: the generated copies and
shots of ``tests/core/test_verify.py`` (copies show no moved cluster at all; other shots move
whole objects) and the DEV set as a whole (README, "Near-duplicate accuracy").
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

from photosim.core.scan.imageio import DecodeError, open_upright, read_file

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- sketch
SKETCH_SIDE = 256  # long side of the image sketches are computed from (the thumbnail size)
SKETCH_FEATURES = 200  # ORB keypoints per sketch
SKETCH_BITS = 64  # leading descriptor bits kept per keypoint (one uint64)
SKETCH_KEY_BITS = 16  # bits per key; SKETCH_BITS // SKETCH_KEY_BITS tables
SKETCH_MIN_SHARED = 8  # never a candidate on fewer shared keys than this
SKETCH_MIN_Z = 6.0  # shared keys must exceed chance by this many standard deviations
SKETCH_STRONG = 0.05  # ... or be this fraction of the smaller sketch's keys (unrelated: ~0.5 %)
SKETCH_MAX_POSTING = 64  # keys held by more photos than this carry no identity (stop words)
SKETCH_VERSION = 1  # of the sketch cache file: bump when the sketch parameters change
DETAIL_SIDE = 512  # long side of the image a detail sketch is computed from (at scan time)
DETAIL_FEATURES = 1000  # ORB keypoints per detail sketch, strongest first
DETAIL_BUDGET = 10_000_000  # detail codes per grouping in all (then fewer per photo; ~1.2 GB)
DETAIL_MAX_POSTING = 16  # detail keys held by more photos than this are stop words
# ----------------------------------------------------------------------------- verification
VERIFY_SIDE = 512  # long side of the greyscale working image (small photos are upscaled)
VERIFY_FEATURES = 1000  # ORB keypoints per working image
RATIO = 0.8  # Lowe's ratio test
RANSAC_SEED = 20070617  # any fixed seed
RANSAC_PX = 4.0  # reprojection threshold, working pixels (ORB's coarse octaves are ~4 px)
MIN_INLIERS = 15  # fewer consistent matches than this proves nothing
MIN_INLIER_RATIO = 0.25  # of the ratio-test matches
MAX_SHEAR = 0.05  # |shear| of the affine transform (copies are never sheared)
MAX_ANISOTROPY = 2.5  # max ratio of the x and y scale of a non-uniform resize
RESTRETCH_FROM = 1.2  # aspect ratios this far apart: also match b resized to a's aspect
SCALE_RANGE = (0.25, 4.0)  # relative scale of the two working images
MIN_CONTAINED = 0.80  # the shared region covers at least this much of one photo (the crop)
MIN_SHARED = 0.25  # ... and at least this much of the other (a crop keeps 30 % of a photo)
MIN_PASTED = 0.04  # ... or this much, when the inner photo's frame is a pasted edge in the other
PASTED_SIDES = 0.5  # fraction of the frame (inside the other photo) that must be such an edge
PASTED_STEP = 2.0  # a pasted edge's grey-level step over that of the lines just inside it
MIN_REPLACED_CELLS = 12  # a replaced picture (see _replaced_picture) spans this many cells
MIN_SPREAD = 0.05  # convex hull of the inliers / shared region (not degenerate)
# Perspective edits (a homography, see _perspective_problem): tried when no affine transform
# explains a pair.
PERSPECTIVE_RETRY = ("sheared", "parts of the picture moved", "inconsistent matches")
MAX_PERSPECTIVE = 0.5  # the scale changes across the frame by at most this fraction
PERSPECTIVE_MARGIN = 0.01  # of the long side: the copy's picture may leave the original's
PERSPECTIVE_OUTSIDE = 0.005  # frame by this much, with at most this fraction of the picture
PERSPECTIVE_MIN_SHARED = 0.80  # the inner photo shows this much of the outer one's picture
# ----------------------------------------------------------------------------- photometric
CELL_PX = 16  # cell side at comparison resolution
MIN_TEXTURE = 6.0  # grey-level standard deviation of a cell that shows structure
MIN_FOUND_NCC = 0.90  # a cell's content is found in the other photo
MIN_SAME_NCC = 0.50  # below this, the cell holds different content
MOVED_PX = 1.0  # a found cell displaced by more than this (after the global fit) moved
MOVED_GAIN = 0.02  # ... and compensating the displacement must improve its correlation
MIN_MOVED_CELLS = 3  # an object that moved spans at least this many neighbouring cells
MAX_MOVED = 0.0  # fraction of textured cells in such clusters a copy may have
FAR_SEARCH = 0.10  # changed cells are searched this far (fraction of the long side)
FAR_FOUND_NCC = 0.90  # ... and found elsewhere at this correlation
FAR_UNIQUE = 0.05  # ... by this margin over any other place
FAR_AGREE_PX = 2.0  # cells of one moving object share a displacement up to this
MIN_CORNER = 50.0  # smaller structure-tensor eigenvalue of a cell that can be located
MAX_CHANGED_FRACTION = 0.25  # fraction of the shared region allowed to differ (overlays)
FLAT_DIFFERENCE = 24.0  # grey levels: two flat cells this far apart in mean differ
MIN_COMPARE_SIDE = 48  # below this many pixels across, photometry says nothing
FILL_DARK = 8  # grey levels from black (or white) that count as border fill
MIN_FILL = 0.02  # fill smaller than this fraction of an image is ignored
# ----------------------------------------------------------------------------- views
ALPHA_FORMATS = frozenset({"PNG", "WEBP", "GIF", "TIFF"})
LOW_CONTRAST = 3.0  # grey std of a flattened image that shows (almost) nothing
MIN_TRANSPARENT = 0.05  # fraction of (partly) transparent pixels that makes a silhouette

THREADS = min(8, os.cpu_count() or 1)  # see parallel()
# Orientations (hashing.ORIENTATIONS indices) that mirror the image.
MIRRORING = frozenset({1, 2, 6, 7})


# ============================================================================= views
@dataclass
class View:
    """One content prepared for verification.

    Attributes:
        grey: ``(H, W)`` uint8 working image, long side :data:`VERIFY_SIDE`.
        detail: Real pixels per working pixel, at most 1 (below 1 when a small photo was
            upscaled to the working size): photometry never compares finer than this.
        silhouette: True when ``grey`` is the alpha silhouette (ink = opacity).
        features: Cache: mirrored flag -> ``(points (N, 2) float32, descriptors (N, 32) uint8)``.
    """

    grey: np.ndarray
    detail: float
    silhouette: bool = False
    features: dict[bool, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _content: np.ndarray | None = None

    def keypoints(self, mirrored: bool) -> tuple[np.ndarray, np.ndarray]:
        """ORB keypoints of the working image (mirrored left-right if asked), cached."""
        if mirrored not in self.features:
            grey = self.mirrored_grey() if mirrored else self.grey
            self.features[mirrored] = orb_features(grey, VERIFY_FEATURES)
        return self.features[mirrored]

    def mirrored_grey(self) -> np.ndarray:
        """The working image mirrored left-right."""
        return np.ascontiguousarray(self.grey[:, ::-1])

    def content(self) -> np.ndarray:
        """``(H, W)`` bool: the picture without border fill (see :func:`fill_mask`), cached."""
        if self._content is None:
            self._content = ~fill_mask(self.grey)
        return self._content


def orb_features(
    grey: np.ndarray, n: int, strongest_first: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """ORB keypoints and descriptors.

    Args:
        grey: ``(H, W)`` uint8 image.
        n: Maximum number of keypoints.
        strongest_first: Order them by Harris response, strongest first (else OpenCV's
            order, by pyramid level).

    Returns:
        ``(points (N, 2) float32 x/y, descriptors (N, 32) uint8)``, N may be 0.
    """
    orb = cv2.ORB_create(nfeatures=n)
    keypoints, descriptors = orb.detectAndCompute(grey, None)
    if descriptors is None or not keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    points = np.array([k.pt for k in keypoints], dtype=np.float32)
    if strongest_first:
        order = np.argsort([-k.response for k in keypoints], kind="stable")
        return points[order], descriptors[order]
    return points, descriptors


def _leading_codes(descriptors: np.ndarray) -> np.ndarray:
    """The first :data:`SKETCH_BITS` bits of each ``(N, 32)`` uint8 ORB descriptor, ``(N,)``
    uint64, most significant bit first."""
    return np.ascontiguousarray(descriptors[:, :8]).view(">u8").ravel().astype(np.uint64)


def fill_mask(grey: np.ndarray) -> np.ndarray:
    """Border fill of an image: black or white areas that touch its border.

    Rotating a photo "with black corners", padding it to a square or letterboxing it adds
    such areas; they are not part of the picture, so they neither count when deciding whether
    one photo lies inside another nor take part in the photometric comparison. Areas smaller
    than :data:`MIN_FILL` of the image are ignored.

    Args:
        grey: ``(H, W)`` uint8.

    Returns:
        ``(H, W)`` bool, True on fill.
    """
    extreme = ((grey <= FILL_DARK) | (grey >= 255 - FILL_DARK)).astype(np.uint8)
    if extreme.mean() < MIN_FILL:
        return np.zeros(grey.shape, bool)
    _, labels = cv2.connectedComponents(extreme, connectivity=4)
    border = np.unique(
        np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    )
    border = border[border > 0]
    if not len(border):
        return np.zeros(grey.shape, bool)
    mask = np.isin(labels, border)
    return mask if mask.mean() >= MIN_FILL else np.zeros(grey.shape, bool)


def _fit_long_side(grey: np.ndarray, side: int) -> np.ndarray:
    """Resize so the long side is ``side`` pixels (area-averaged down, bicubic up)."""
    h, w = grey.shape
    scale = side / max(h, w)
    if abs(scale - 1.0) < 1e-6:
        return grey
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(grey, size, interpolation=interpolation)


def _silhouette(path: str | os.PathLike[str]) -> np.ndarray | None:
    """The alpha channel as ink on white, ``(H, W)`` uint8, or None without transparency."""
    data = read_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data), formats=sorted(ALPHA_FORMATS))
            img = ImageOps.exif_transpose(img)
            if "A" not in img.getbands() and "transparency" not in img.info:
                return None
            alpha = np.asarray(img.convert("RGBA").getchannel("A"))
    except Exception:  # hostile files: the flattened view stays the evidence
        logger.debug("no alpha silhouette for %s", path, exc_info=True)
        return None
    if float(np.mean(alpha < 250)) < MIN_TRANSPARENT:
        return None
    return (255 - alpha).astype(np.uint8)


def load_view(path: str | os.PathLike[str], fmt: str | None = None) -> View:
    """Decode one photo for verification.

    The flattened upright image (transparency on white, as everywhere in photosim) in
    greyscale, at :data:`VERIFY_SIDE` pixels on the long side. When that image shows almost
    nothing (grey standard deviation below :data:`LOW_CONTRAST`) and the format can carry
    transparency, the alpha silhouette is used instead: a white logo on transparency is then
    the same picture as the same logo in black.

    Args:
        path: Image file.
        fmt: Its format (Pillow name), if known; silhouettes are only tried for
            :data:`ALPHA_FORMATS`.

    Returns:
        The view.

    Raises:
        DecodeError: The file cannot be decoded.
    """
    img = open_upright(path, max_side=VERIFY_SIDE)
    grey = np.asarray(img.convert("L"))
    silhouette = False
    if float(grey.std()) < LOW_CONTRAST and (fmt is None or fmt in ALPHA_FORMATS):
        try:
            ink = _silhouette(path)
        except DecodeError:
            ink = None
        if ink is not None:
            grey, silhouette = ink, True
            if max(ink.shape) > VERIFY_SIDE:
                grey = _fit_long_side(ink, VERIFY_SIDE)
    # Small photos are upscaled so ORB finds keypoints at the usual scales; ``detail``
    # remembers how much real resolution they have.
    detail = min(1.0, max(grey.shape) / VERIFY_SIDE)
    working = _fit_long_side(grey, VERIFY_SIDE)
    return View(np.ascontiguousarray(working), detail, silhouette)


# ============================================================================= sketch
def sketch_codes(grey: np.ndarray) -> np.ndarray:
    """The keypoint sketch of one image: leading ORB descriptor bits per keypoint.

    Args:
        grey: ``(H, W)`` uint8 greyscale image of any size (resized to :data:`SKETCH_SIDE`).

    Returns:
        ``(N,)`` uint64, N <= :data:`SKETCH_FEATURES`: the first 64 bits of each keypoint's
        descriptor, most significant bit first.
    """
    if min(grey.shape) < 8:
        return np.zeros(0, np.uint64)
    _, descriptors = orb_features(_fit_long_side(grey, SKETCH_SIDE), SKETCH_FEATURES)
    return _leading_codes(descriptors)


def detail_sketch(grey: np.ndarray) -> np.ndarray:
    """The detail sketch of one picture, computed by the scan from its decoded pixels.

    The thumbnail sketch (:func:`sketch_codes`, 200 keypoints at 256 px) holds too few
    keypoints of a small part of a photo: a crop keeping 30 % of the area, a photo pasted at
    half its width into a poster. This one holds the leading bits of the :data:`DETAIL_FEATURES`
    ORB keypoints that verification itself uses (:data:`VERIFY_SIDE` px), strongest (Harris
    response) first, so that a grouping short of memory can keep a prefix.

    Args:
        grey: ``(H, W)`` uint8 greyscale picture of any size (resized to :data:`DETAIL_SIDE`
            on its long side).

    Returns:
        ``(N,)`` uint64, N <= :data:`DETAIL_FEATURES`, like :func:`sketch_codes`; empty for a
        picture under 8 px or without keypoints.
    """
    if min(grey.shape) < 8:
        return np.zeros(0, np.uint64)
    _, descriptors = orb_features(_fit_long_side(grey, DETAIL_SIDE), DETAIL_FEATURES,
                                  strongest_first=True)
    return _leading_codes(descriptors)


def sketch_thumbnail(jpeg: bytes | None) -> tuple[np.ndarray, bool]:
    """:func:`sketch_codes` of a stored JPEG thumbnail, and whether it is (almost) blank.

    Returns:
        ``(codes, blank)``: empty codes when the thumbnail is missing or does not decode;
        ``blank`` when its grey standard deviation is below :data:`LOW_CONTRAST`.
    """
    if not jpeg:
        return np.zeros(0, np.uint64), False
    try:
        grey = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        if grey is None:
            return np.zeros(0, np.uint64), False
        return sketch_codes(grey), float(grey.std()) < LOW_CONTRAST
    except cv2.error as exc:  # a damaged thumbnail: no sketch, no candidates from it
        logger.info("no sketch from a stored thumbnail: %s", exc)
        return np.zeros(0, np.uint64), False


def parallel(func: Any, items: Sequence[Any]) -> list[Any]:
    """``[func(item) for item in items]`` on :data:`THREADS` threads, in order.

    OpenCV and Pillow release the GIL while they decode and describe images, so sketches and
    candidate decoding use every core. The pool lives for one call (named
    ``photosim-keypoints``); functions given here touch no shared state.
    """
    if len(items) < 2 or THREADS < 2:
        return [func(item) for item in items]
    with ThreadPoolExecutor(THREADS, thread_name_prefix="photosim-keypoints") as pool:
        return list(pool.map(func, items))


def shared_keys(a: np.ndarray, b: np.ndarray) -> int:
    """Keys two sketches share, over :data:`SKETCH_BITS` // :data:`SKETCH_KEY_BITS` tables.

    The pairwise form of :func:`sketch_candidates`' count, for candidates found otherwise
    (hashes, descriptors): a loose candidate whose sketches share fewer than
    :data:`SKETCH_MIN_SHARED` keys is not worth decoding.
    """
    mask = np.uint64((1 << SKETCH_KEY_BITS) - 1)
    total = 0
    for table in range(SKETCH_BITS // SKETCH_KEY_BITS):
        shift = np.uint64(SKETCH_BITS - SKETCH_KEY_BITS * (table + 1))
        total += len(np.intersect1d((a >> shift) & mask, (b >> shift) & mask))
    return total


class SketchCache:
    """Keypoint sketches by content hash, kept in a file beside the catalog.

    A rebuildable cache like the vector index files: computing a sketch costs about a
    millisecond and a half per photo, so a regrouping only sketches new contents. The file
    holds the sketches of the contents of the last grouping (others are dropped on save) and
    a format version; a file that does not load is ignored and rewritten.

    Args:
        path: The ``.npz`` file, or None for a cache that lives in memory only.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = None if path is None else os.fspath(path)
        self._codes: dict[str, np.ndarray] = {}
        self._dirty = False
        if self.path and os.path.exists(self.path):
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    if int(data["version"][0]) == SKETCH_VERSION:
                        hashes = [h.decode("ascii") for h in data["hashes"].tolist()]
                        parts = np.split(data["codes"], np.cumsum(data["counts"])[:-1])
                        self._codes = dict(zip(hashes, parts))
            except (OSError, ValueError, KeyError, IndexError) as exc:
                logger.info("sketch cache %s not loaded (%s); rebuilding", self.path, exc)
                self._codes = {}

    def get(self, content_hash: str) -> np.ndarray | None:
        """The cached sketch, or None."""
        return self._codes.get(content_hash)

    def put(self, content_hash: str, codes: np.ndarray) -> None:
        """Remember a sketch."""
        self._codes[content_hash] = np.asarray(codes, np.uint64)
        self._dirty = True

    def save(self, keep: Iterable[str]) -> None:
        """Write the sketches of ``keep`` (atomically); no-op without a path or changes."""
        keep = set(keep)
        if set(self._codes) - keep:
            self._codes = {h: c for h, c in self._codes.items() if h in keep}
            self._dirty = True
        if not self.path or not self._dirty:
            return
        hashes = sorted(self._codes)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    version=np.array([SKETCH_VERSION], np.int64),
                    hashes=np.array([h.encode("ascii") for h in hashes], dtype="S64"),
                    counts=np.array([len(self._codes[h]) for h in hashes], np.int64),
                    codes=(
                        np.concatenate([self._codes[h] for h in hashes])
                        if hashes
                        else np.zeros(0, np.uint64)
                    ),
                )
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError as exc:  # a read-only folder: the cache is an optimisation only
            logger.info("sketch cache %s not saved: %s", self.path, exc)
            with contextlib.suppress(OSError):
                os.unlink(tmp)


@dataclass(frozen=True)
class SketchPair:
    """A candidate pair from the sketch index: ``shared`` keys, ``z`` above chance."""

    a: int
    b: int
    shared: int
    z: float


def sketch_candidates(
    sketches: Sequence[np.ndarray],
    k: int,
    min_z: float = SKETCH_MIN_Z,
    max_posting: int = SKETCH_MAX_POSTING,
) -> list[SketchPair]:
    """Pairs of sketches that share far more keys than chance, at most ``k`` per item.

    An inverted file without a Python loop over pairs: every ``(table, key)`` of every
    sketch is sorted once; each key held by 2 to :data:`SKETCH_MAX_POSTING` sketches adds one
    to the count of each pair of its holders (more common keys are stop words). The expected
    count of a pair under chance is estimated from the key frequencies (each key of ``a`` is
    held by a random other sketch with probability ``(df - 1) / (N - 1)``), and a pair is kept
    when ``z = (shared - expected) / sqrt(expected)`` is at least ``min_z`` (or the pair
    shares :data:`SKETCH_STRONG` of its keys: in a small folder of variants of one photo the
    frequencies cannot tell chance) and at least :data:`SKETCH_MIN_SHARED` keys are shared.

    The key width grows with the collection (``log2`` of the number of keypoints, at least
    :data:`SKETCH_KEY_BITS`), so posting lists stay short as a library grows: comparisons stay
    proportional to the number of photos, not its square.

    Pairs are counted one table at a time and merged (peak memory: the pairs of one table,
    not of all).

    Args:
        sketches: One :func:`sketch_codes` array per item (empty arrays allowed).
        k: Candidates kept per item (the best z first).
        min_z: Minimum z-score.
        max_posting: Keys held by more sketches than this are stop words.

    Returns:
        Pairs ``a < b`` (indices into ``sketches``).
    """
    n = len(sketches)
    if n < 2:
        return []
    total = sum(len(s) for s in sketches)
    key_bits = max(SKETCH_KEY_BITS, min(32, math.ceil(math.log2(max(2, total)))))
    tables = SKETCH_BITS // key_bits
    owner = np.repeat(np.arange(n, dtype=np.int64), [len(s) for s in sketches])
    codes = np.concatenate([np.asarray(s, np.uint64) for s in sketches]) if total else None
    if codes is None:
        return []
    mask = np.uint64((1 << key_bits) - 1)
    # Pair keys a * n + b (a < b < n) with their count in the low 12 bits, one sorted array
    # per table; summed over tables at the end. Arrays are sorted in place: a grouping of 10k
    # photos handles about 10M codes.
    counted: list[np.ndarray] = []
    expected = np.zeros(n, np.float64)
    for table in range(tables):
        shift = np.uint64(SKETCH_BITS - key_bits * (table + 1))
        # One entry per (key, owner): repeated keys of one sketch count once.
        entries = ((codes >> shift) & mask).view(np.int64)
        entries *= n
        entries += owner
        entries.sort()
        entries = entries[np.r_[True, entries[1:] != entries[:-1]]]
        who = entries % n
        entries //= n  # the keys
        starts = np.flatnonzero(np.r_[True, entries[1:] != entries[:-1]])
        del entries
        counts = np.diff(np.r_[starts, len(who)])
        useful_keys = counts <= max_posting  # stop words count neither way
        np.add.at(expected, who[np.repeat(useful_keys, counts)],
                  np.repeat((counts[useful_keys] - 1) / max(1, n - 1), counts[useful_keys]))
        table_keys: list[np.ndarray] = []
        for size in np.unique(counts):
            if size < 2 or size > max_posting:
                continue
            firsts = starts[counts == size]
            members = who[firsts[:, None] + np.arange(size)]  # (buckets, size), sorted owners
            i, j = np.triu_indices(int(size), 1)
            table_keys.append((members[:, i] * n + members[:, j]).ravel())
        del who, starts, counts
        if table_keys:
            counted.append(_count_sorted(np.concatenate(table_keys)))
        del table_keys
    if not counted:
        return []
    merged = np.concatenate(counted)
    del counted
    merged.sort()
    pairs, shared = _sum_counts(merged)
    del merged
    enough = shared >= SKETCH_MIN_SHARED  # most pairs share a key or two: drop them first
    pairs, shared = pairs[enough], shared[enough]
    if not len(pairs):
        return []
    a, b = pairs // n, pairs % n
    chance = np.maximum((expected[a] + expected[b]) / 2.0, 1e-3)
    z = (shared - chance) / np.sqrt(chance)
    # In a small collection made mostly of copies of one photo, the key frequencies say
    # nothing about chance; a pair sharing a large fraction of its keys is a candidate anyway.
    sizes = np.array([len(x) for x in sketches], np.float64)
    slots = np.maximum(tables * np.minimum(sizes[a], sizes[b]), 1.0)
    keep = (z >= min_z) | (shared >= SKETCH_STRONG * slots)
    a, b, shared, z = a[keep], b[keep], shared[keep], z[keep]
    # At most k per item, best z first; a pair stays if either end keeps it.
    order = np.argsort(-z, kind="stable")
    taken = np.zeros(n, np.int64)
    out: list[SketchPair] = []
    for idx in order.tolist():
        ia, ib = int(a[idx]), int(b[idx])
        if taken[ia] >= k and taken[ib] >= k:
            continue
        taken[ia] += 1
        taken[ib] += 1
        out.append(SketchPair(ia, ib, int(shared[idx]), round(float(z[idx]), 2)))
    return out


_COUNT_BITS = 12  # low bits of a counted pair key that hold its count


def _count_sorted(keys: np.ndarray) -> np.ndarray:
    """``(M,)`` int64 pair keys (sorted here, in place) -> one entry per distinct key, the key
    shifted left by :data:`_COUNT_BITS` and its count in the low bits (capped)."""
    keys.sort()
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    times = np.minimum(np.diff(np.r_[starts, len(keys)]), (1 << _COUNT_BITS) - 1)
    return (keys[starts] << _COUNT_BITS) | times


def _sum_counts(counted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted counted keys (see :func:`_count_sorted`, several tables concatenated) ->
    ``(distinct pair keys, summed counts)``, both ``(P,)`` int64."""
    keys = counted >> _COUNT_BITS
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    times = np.add.reduceat(counted & ((1 << _COUNT_BITS) - 1), starts) if len(starts) else (
        np.zeros(0, np.int64))
    return keys[starts], times


# ============================================================================= verification
@dataclass
class Verdict:
    """The outcome of verifying one pair.

    Attributes:
        status: ``"copy"`` (one plausible transform, nothing moved), ``"different"`` (the
            evidence contradicts a copy) or ``"unknown"`` (too little evidence either way:
            too few keypoints, or images too small or too flat to compare).
        reason: Short explanation (why different or unknown).
        evidence: Measurements: ``inliers``, ``matches``, ``rotation`` (degrees),
            ``anisotropy``, ``mirrored``, ``shared_a``/``shared_b`` (fraction of each photo in
            the shared region), ``crop`` (fraction of the larger photo kept), ``moved`` and
            ``changed`` (fractions of cells), ``cells``, ``tone`` (grey levels the tone curve
            moved a pixel by on average: a brightness or contrast edit).
        seconds: Time spent on this pair (decoding excluded).
    """

    status: str
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _Geometry:
    # (2, 3) affine or (3, 3) homography (see _match_perspective), float64, b working coords
    # -> a working coords
    matrix: np.ndarray
    inliers: int
    matches: int
    points_a: np.ndarray
    points_b: np.ndarray
    scale: float
    rotation: float
    anisotropy: float
    shear: float
    perspective: float = 0.0  # how much the scale changes across b's frame (homography only)
    # All ratio-test matches (b's points in b's working pixels, a's points), for a second fit
    matched: tuple[np.ndarray, np.ndarray] | None = None


def _ratio_matches(
    fa: tuple[np.ndarray, np.ndarray], fb: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio-test matches from b's descriptors to a's: ``(points of b, points of a)``,
    each ``(M, 2)`` float32, M may be 0."""
    pa, da = fa
    pb, db = fb
    if len(da) < 2 or len(db) < 2:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    knn = matcher.knnMatch(db, da, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    return (pb[[m.queryIdx for m in good]].reshape(-1, 2),
            pa[[m.trainIdx for m in good]].reshape(-1, 2))


def _match(
    fa: tuple[np.ndarray, np.ndarray],
    fb: tuple[np.ndarray, np.ndarray],
    min_inliers: int = MIN_INLIERS,
    b_stretch: tuple[float, float] = (1.0, 1.0),
) -> _Geometry | None:
    """Ratio-test matches and a RANSAC affine transform from b to a (None: none found).

    ``b_stretch`` ``(sx, sy)``: ``fb`` was computed on b resized by these factors along x and
    y (see :func:`_stretched_keypoints`); its points are mapped back to b's working pixels,
    so the transform is always from b's working image."""
    src, dst = _ratio_matches(fa, fb)
    if len(src) < min_inliers:
        return None
    src = src / np.array(b_stretch, np.float32)
    cv2.setRNGSeed(RANSAC_SEED)  # RANSAC's samples: the same verdict on every run
    matrix, mask = cv2.estimateAffine2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX, maxIters=2000,
        confidence=0.995, refineIters=10,
    )
    if matrix is None or mask is None:
        return None
    inl = mask.ravel().astype(bool)
    linear = matrix[:, :2].astype(np.float64)
    # A copy may be resized non-uniformly along its own axes before or after a rotation:
    # A = R @ U or A = U @ R with U = [[sx, k], [0, sy]] and no shear (k = 0). Decompose A
    # and its inverse (QR) and keep the reading with less shear.
    forward = _decompose(linear)
    try:
        backward = _decompose(np.linalg.inv(linear))
    except np.linalg.LinAlgError:
        return None
    if forward is None or backward is None:
        return None  # a reflection: mirrored relative to a, not a copy at this parity
    if abs(backward[3]) < abs(forward[3]):
        theta, sx, sy, shear = -backward[0], 1.0 / backward[1], 1.0 / backward[2], backward[3]
    else:
        theta, sx, sy, shear = forward
    return _Geometry(
        matrix.astype(np.float64),
        int(inl.sum()),
        len(src),
        dst[inl],
        src[inl],
        math.sqrt(sx * sy),
        math.degrees(theta),
        sx / sy,
        shear,
        matched=(src, dst),
    )


def _stretched_keypoints(
    a: np.ndarray, b: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[float, float]] | None:
    """ORB keypoints of ``b`` resized to the aspect ratio of ``a``, and the factors used.

    A copy resized to another aspect ratio (a photo stretched to 16:9, squashed to a square)
    changes the shape of every keypoint's neighbourhood: ORB descriptors, which are invariant
    to rotation and scale but not to a non-uniform resize, stop matching beyond about 1.3x.
    Undoing the stretch first lets them match again; the axis that is enlarged is the one
    that makes the aspect ratios equal (no detail is thrown away).

    Args:
        a: ``(H, W)`` uint8 working image whose aspect ratio is the target.
        b: ``(H, W)`` uint8 working image to resize.

    Returns:
        ``(features, (sx, sy))``, or None when the aspect ratios differ by less than
        :data:`RESTRETCH_FROM` (or by more than :data:`MAX_ANISOTROPY`).
    """
    ratio = (a.shape[1] / a.shape[0]) / (b.shape[1] / b.shape[0])
    if not RESTRETCH_FROM <= max(ratio, 1 / ratio) <= MAX_ANISOTROPY:
        return None
    sx, sy = (ratio, 1.0) if ratio > 1 else (1.0, 1 / ratio)
    size = (max(1, round(b.shape[1] * sx)), max(1, round(b.shape[0] * sy)))
    stretched = cv2.resize(b, size, interpolation=cv2.INTER_LINEAR)
    return orb_features(stretched, VERIFY_FEATURES), (size[0] / b.shape[1], size[1] / b.shape[0])


def _decompose(linear: np.ndarray) -> tuple[float, float, float, float] | None:
    """``A = R(theta) @ [[sx, k], [0, sy]]`` (QR): ``(theta, sx, sy, k / sy)``; None if mirrored."""
    sx = float(np.hypot(linear[0, 0], linear[1, 0]))
    if sx < 1e-9:
        return None
    theta = math.atan2(linear[1, 0], linear[0, 0])
    c, s = math.cos(theta), math.sin(theta)
    upper = np.array([[c, s], [-s, c]]) @ linear
    sy = float(upper[1, 1])
    if sy <= 1e-9:
        return None
    return theta, sx, sy, float(upper[0, 1] / sy)


def _match_perspective(
    matched: tuple[np.ndarray, np.ndarray],
    b_shape: tuple[int, ...],
    min_inliers: int = MIN_INLIERS,
) -> _Geometry | None:
    """A RANSAC homography from b to a, fitted to ratio-test matches (None: none found).

    Only for the perspective route of :meth:`Verifier._verify`: a copy whose keystone was
    corrected, or that was skewed in an editor, is related to its original by a homography
    (Hartley & Zisserman, *Multiple View Geometry*, 2nd ed., ch. 4) that no affine transform
    fits across the whole frame. Its rotation, scale and anisotropy are those of the local
    linear map at the centre of b's frame; ``perspective`` is how much the scale changes
    across b's frame (``max w / min w - 1`` over its corners, ``w`` the homogeneous
    denominator; 0 for an affine transform).

    Args:
        matched: ``(points of b, points of a)``, each ``(M, 2)`` float32, b's in b's working
            pixels (see :func:`_ratio_matches`; the affine fit's, :attr:`_Geometry.matched`).
        b_shape: ``(h, w)`` of b's working image.
        min_inliers: Fewer matches than this: None.

    Returns:
        A geometry with a ``(3, 3)`` float64 matrix normalised to ``H[2, 2] = 1``, or None
        (too few matches, no homography, a frame that crosses the horizon line, or a mirror).
    """
    src, dst = matched
    if len(src) < max(min_inliers, 4):
        return None
    cv2.setRNGSeed(RANSAC_SEED)
    # A copy's matches are mostly inliers (over 70 %): 500 samples of four find them.
    matrix, mask = cv2.findHomography(src, dst, cv2.RANSAC, RANSAC_PX, maxIters=500,
                                      confidence=0.995)
    if matrix is None or mask is None or abs(matrix[2, 2]) < 1e-12:
        return None
    matrix = matrix.astype(np.float64) / matrix[2, 2]
    if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix)) < 1e-9:
        return None  # degenerate: all matches on a line, or a point
    h, w = b_shape[:2]
    corners = np.c_[_quad(w, h), np.ones(4)].astype(np.float64)
    denominators = corners @ matrix[2]
    if denominators.min() <= 1e-6:
        return None  # part of b's frame maps beyond the horizon line: not a view of a photo
    decomposed = _decompose(_jacobian(matrix, w / 2, h / 2))
    if decomposed is None:
        return None
    theta, sx, sy, shear = decomposed
    inl = mask.ravel().astype(bool)
    return _Geometry(
        matrix, int(inl.sum()), len(src), dst[inl], src[inl], math.sqrt(sx * sy),
        math.degrees(theta), sx / sy, shear,
        perspective=float(denominators.max() / denominators.min() - 1.0), matched=matched,
    )


def _jacobian(matrix: np.ndarray, x: float, y: float) -> np.ndarray:
    """``(2, 2)`` linear part of a ``(3, 3)`` projective transform at the point ``(x, y)``."""
    d = x * matrix[2, 0] + y * matrix[2, 1] + matrix[2, 2]
    u = (matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]) / d
    v = (matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]) / d
    return (matrix[:2, :2] - np.outer([u, v], matrix[2, :2])) / d


def _affine(matrix: np.ndarray) -> bool:
    return matrix.shape == (2, 3)


def _homogeneous(matrix: np.ndarray) -> np.ndarray:
    """A ``(2, 3)`` affine or ``(3, 3)`` projective transform as ``(3, 3)``."""
    return np.vstack([matrix, [0.0, 0.0, 1.0]]) if _affine(matrix) else matrix


def _invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse transform, of the same kind (``(2, 3)`` or ``(3, 3)``)."""
    if _affine(matrix):
        return cv2.invertAffineTransform(matrix)
    inverse = np.linalg.inv(matrix)
    return inverse / inverse[2, 2]


def _warp(img: np.ndarray, matrix: np.ndarray, size: tuple[int, int], flags: int) -> np.ndarray:
    """``cv2.warpAffine`` or ``cv2.warpPerspective`` by the transform's kind."""
    if _affine(matrix):
        return cv2.warpAffine(img, matrix, size, flags=flags)
    return cv2.warpPerspective(img, matrix, size, flags=flags)


def _map_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points mapped by a ``(2, 3)`` or ``(3, 3)`` transform, ``(N, 2)`` float64."""
    points = np.asarray(points, np.float64).reshape(1, -1, 2)
    if _affine(matrix):
        return cv2.transform(points, matrix)[0]
    return cv2.perspectiveTransform(points, matrix)[0]


def _implausible(g: _Geometry) -> str | None:
    """Why a transform is not one a copy can have, or None."""
    if not SCALE_RANGE[0] <= g.scale <= SCALE_RANGE[1]:
        return f"scale {g.scale:.2f} out of range"
    if _affine(g.matrix) and abs(g.shear) > MAX_SHEAR:
        return f"sheared ({g.shear:.2f})"
    if g.perspective > MAX_PERSPECTIVE:
        return f"perspective {g.perspective:.2f} out of range"
    aniso = max(g.anisotropy, 1.0 / g.anisotropy)
    if aniso > MAX_ANISOTROPY:
        return f"stretched {aniso:.2f}x"
    return None


def _perspective_problem(
    a: View, b_content: np.ndarray, g: _Geometry, cover: dict[str, float]
) -> str | None:
    """Why a homography between two photos is not a perspective edit of one of them, or None.

    A camera that moved or turned also relates two shots by a homography (of the whole frame
    for a turn on a tripod, of one plane for a move), so the projective route accepts only
    what an editor makes: the copy's picture, border fill excluded, lies inside the frame of
    the original (a keystone corrected and cropped to a rectangle lies inside its original; a
    skew on the original's canvas holds part of the original and fill around it), up to
    :data:`PERSPECTIVE_OUTSIDE` of it within :data:`PERSPECTIVE_MARGIN` of that frame. Two
    shots from a turned camera each show scene beyond the other's frame. The copy also shows
    most of the original's picture (:data:`PERSPECTIVE_MIN_SHARED`). The photometric check
    then confirms that nothing moved, with a homography as the correction all cells share:
    the parallax between two viewpoints moves the cells off the plane the homography fits.
    (The spread of the matches does not tell the two apart: a keystone-corrected copy of a
    photo with sky or a plain wall has matches over a third of it, like one facade of a
    scene seen from two places.)

    Args:
        a: The first view.
        b_content: ``(H, W)`` bool picture mask of the second (as matched).
        g: The ``(3, 3)`` transform from b to a.
        cover: :func:`_coverage` of the pair.

    Returns:
        The reason, or None when the pair passes these checks.
    """
    a_content = a.content()
    if cover["shared_b"] >= cover["shared_a"]:  # b is the copy: b's picture in a's frame
        inner, outer_shape, to_inner = b_content, a_content.shape, _invert(g.matrix)
    else:
        inner, outer_shape, to_inner = a_content, b_content.shape, g.matrix
    h, w = inner.shape
    frame = _warp(np.ones(outer_shape, np.uint8), to_inner, (w, h), cv2.INTER_NEAREST)
    margin = max(1, round(PERSPECTIVE_MARGIN * max(h, w)))
    frame = cv2.dilate(frame, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    outside = np.count_nonzero(inner & (frame == 0)) / max(1, np.count_nonzero(inner))
    if outside > PERSPECTIVE_OUTSIDE:
        return "a view from elsewhere (each shows more than the other)"
    if min(cover["shared_a"], cover["shared_b"]) < PERSPECTIVE_MIN_SHARED:
        return "too small a part of one photo"
    return None


def _quad(w: int, h: int) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)


def _area(points: np.ndarray) -> float:
    if len(points) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(points.astype(np.float32))))


def _coverage(a: View, b_content: np.ndarray, g: _Geometry) -> dict[str, float]:
    """Shared fractions of both pictures (border fill excluded) and the inlier spread.

    Args:
        a: The first view.
        b_content: ``(H, W)`` bool picture mask of the second (as matched, mirrored or not).
        g: Transform from b to a (affine or projective).

    Returns:
        ``shared_a`` (fraction of a's picture that b's picture also shows), ``shared_b``
        (the same for b) and ``spread`` (convex hull of the inliers / shared area).
    """
    content_a = a.content()
    ha, wa = content_a.shape
    warped = _warp(b_content.astype(np.uint8), g.matrix, (wa, ha), cv2.INTER_NEAREST)
    overlap = float(np.count_nonzero(content_a & (warped > 0)))
    area_a = float(np.count_nonzero(content_a))
    if _affine(g.matrix):
        area_b = float(np.count_nonzero(b_content)) * abs(float(np.linalg.det(g.matrix[:, :2])))
    else:  # the scale varies across the frame: measure b's share in b's own pixels
        hb, wb = b_content.shape
        back = _warp(content_a.astype(np.uint8), _invert(g.matrix), (wb, hb), cv2.INTER_NEAREST)
        shared_b = np.count_nonzero(b_content & (back > 0)) / max(1, np.count_nonzero(b_content))
        area_b = overlap / shared_b if shared_b > 0 else 0.0
    if overlap <= 0 or area_a <= 0 or area_b <= 0:
        return {"shared_a": 0.0, "shared_b": 0.0, "spread": 0.0}
    return {
        "shared_a": min(1.0, overlap / area_a),
        "shared_b": min(1.0, overlap / area_b),
        "spread": min(1.0, _area(g.points_a) / overlap),
    }


def _pasted(outer: np.ndarray, to_outer: np.ndarray, inner_shape: tuple[int, ...]) -> float:
    """How much of the inner photo's frame is a pasted edge in the outer photo.

    A photo shown inside a screenshot, a collage or a poster, or under a caption bar, ends at
    a step edge: outside its frame the other photo shows something else. A crop's frame is
    an arbitrary line through the scene: across it the grey levels change no more than
    across the lines just inside it. The inner frame is mapped into the outer photo; along
    each side that lies inside the outer photo, points are sampled every few pixels, and a
    point is on a pasted edge when the step across the frame (2-3 px on either side) is at
    least 8 grey levels and :data:`PASTED_STEP` times the larger step between parallel
    lines 2-3, 6-7 and 10-11 px inside.

    Args:
        outer: ``(H, W)`` uint8 working image of the outer photo.
        to_outer: ``(2, 3)`` affine or ``(3, 3)`` projective transform, inner working pixels
            -> outer working pixels.
        inner_shape: ``(h, w)`` of the inner working image.

    Returns:
        The fraction of the sampled frame points on a pasted edge; 0.0 when fewer than 16
        points of the frame lie inside the outer photo.
    """
    h, w = inner_shape[:2]
    corners = _map_points(_quad(w, h), to_outer)
    centre = corners.mean(axis=0)
    img = _gauss(outer.astype(np.float32), 1.0)
    height, width = img.shape
    hits = total = 0
    for i in range(4):
        p, q = corners[i], corners[(i + 1) % 4]
        length = float(np.hypot(*(q - p)))
        if length < 16:
            continue
        d = (q - p) / length
        n = np.array([-d[1], d[0]])
        if np.dot(centre - (p + q) / 2, n) < 0:
            n = -n  # n points into the inner photo
        t = np.linspace(0.05, 0.95, max(8, int(length / 4)))
        line = p[None] + t[:, None] * (q - p)[None]

        def band(near: float, far: float, line: np.ndarray = line, n: np.ndarray = n) -> Any:
            xy = np.concatenate([line + near * n, line + far * n]).astype(np.float32)
            values = cv2.remap(img, xy[None, :, 0], xy[None, :, 1], cv2.INTER_LINEAR)[0]
            return (values[: len(line)] + values[len(line):]) / 2, xy

        outside, xy = band(-2.5, -3.5)
        inside, _ = band(2.0, 3.0)
        ok = ((xy[:, 0] >= 1) & (xy[:, 0] <= width - 2) & (xy[:, 1] >= 1)
              & (xy[:, 1] <= height - 2)).reshape(2, -1).all(axis=0)
        if not ok.any():
            continue
        inner1, _ = band(6.0, 7.0)
        inner2, _ = band(10.0, 11.0)
        step = np.abs(outside - inside)
        texture = np.maximum(np.abs(inside - inner1), np.abs(inner1 - inner2))
        edge = (step >= 8.0) & (step >= PASTED_STEP * texture)
        hits += int(edge[ok].sum())
        total += int(ok.sum())
    return hits / total if total >= 16 else 0.0


def _frames(
    a: np.ndarray, a_content: np.ndarray, b: np.ndarray, b_content: np.ndarray,
    matrix: np.ndarray,
) -> dict[str, float]:
    """What each photo shows around the picture the two share.

    Args:
        a: ``(Ha, Wa)`` uint8 working image of the first photo; ``a_content`` its picture
            mask (:func:`fill_mask` excluded).
        b: The same for the second photo (as matched: mirrored or not).
        matrix: ``(2, 3)`` affine or ``(3, 3)`` projective transform, b working pixels -> a
            working pixels.

    Returns:
        ``inside_a`` (fraction of a's whole frame, fill included, that is the shared
        picture), ``scene_a`` (fraction of a's frame outside it that shows structure: more of
        the scene, or other content), and the same for b. ``1 - inside - scene`` is a frame
        around the picture: border fill, flat bars.
    """
    out: dict[str, float] = {}
    inverse = _invert(matrix)
    for name, grey, content, other_content, warp in (
        ("a", a, a_content, b_content, matrix), ("b", b, b_content, a_content, inverse),
    ):
        h, w = grey.shape
        other = _warp(other_content.astype(np.uint8), warp, (w, h), cv2.INTER_NEAREST) > 0
        shared = content & other
        g = grey.astype(np.float32)
        mean = cv2.blur(g, (9, 9))
        std = np.sqrt(np.maximum(cv2.blur(g * g, (9, 9)) - mean * mean, 0.0))
        structure = content & ~shared & (std >= MIN_TEXTURE)
        out[f"inside_{name}"] = float(shared.mean())
        out[f"scene_{name}"] = float(structure.mean())
    return out


def _gauss(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma)


def _match_histogram(source: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Map ``source`` grey levels so their distribution in ``mask`` matches ``reference``'s.

    A monotone mapping (256-bin cumulative histograms): brightness, contrast, gamma and most
    tone curves are undone.

    Args:
        source: ``(H, W)`` uint8.
        reference: ``(H, W)`` uint8.
        mask: ``(H, W)`` bool, the pixels that count.

    Returns:
        ``(H, W)`` uint8.
    """
    src_hist = np.bincount(source[mask], minlength=256).astype(np.float64)
    ref_hist = np.bincount(reference[mask], minlength=256).astype(np.float64)
    if src_hist.sum() < 16 or ref_hist.sum() < 16:
        return source
    src_hist /= src_hist.sum()
    ref_hist /= ref_hist.sum()
    # Each source level goes to the reference level at the middle of its quantile range.
    lut = np.interp(
        np.cumsum(src_hist) - src_hist / 2, np.cumsum(ref_hist) - ref_hist / 2, np.arange(256.0)
    )
    return cv2.LUT(source, np.clip(lut + 0.5, 0, 255).astype(np.uint8))


def _cell_means(img: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Means over the ``rows x cols`` grid of :data:`CELL_PX` cells, ``(rows, cols)`` float32."""
    c = CELL_PX
    block = np.ascontiguousarray(img[: rows * c, : cols * c], dtype=np.float32)
    return cv2.resize(block, (cols, rows), interpolation=cv2.INTER_AREA)  # exact box means


def _cell_ncc(x: np.ndarray, y: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, ...]:
    """Per-cell normalised cross-correlation of two images, their deviations and means."""
    mx, my = _cell_means(x, rows, cols), _cell_means(y, rows, cols)
    vx = np.maximum(_cell_means(x * x, rows, cols) - mx * mx, 0.0)
    vy = np.maximum(_cell_means(y * y, rows, cols) - my * my, 0.0)
    cov = _cell_means(x * y, rows, cols) - mx * my
    ncc = cov / np.sqrt(np.maximum(vx * vy, 1e-6))
    return ncc, np.sqrt(vx), np.sqrt(vy), mx, my


def _smooth_difference(difference: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The smooth part of a per-cell brightness difference (a robust quadratic surface).

    A brightness change that varies smoothly across the picture (vignetting, a graduated
    filter, uneven exposure) is a tone edit, not other content; a pasted patch is abrupt and
    stays in the residual. Fitted twice, the second time without the cells the first fit
    explains worst (outliers: the patches themselves).

    Args:
        difference: ``(rows, cols)`` mean grey level of the other photo minus the reference.
        inside: ``(rows, cols)`` bool, the cells compared.

    Returns:
        ``(rows, cols)`` float, the fitted surface (0 where it cannot be fitted).
    """
    ys, xs = np.nonzero(inside)
    rows, cols = difference.shape
    if len(ys) < 12:
        return np.zeros_like(difference)
    def basis(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        u, v = x / max(1, cols - 1) - 0.5, y / max(1, rows - 1) - 0.5
        return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)
    design, target = basis(ys.astype(float), xs.astype(float)), difference[ys, xs].astype(float)
    keep = np.ones(len(ys), bool)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
        residual = np.abs(target - design @ coef)
        keep = residual <= max(4.0, 3.0 * float(np.median(residual)))
    gy, gx = np.mgrid[0:rows, 0:cols]
    return (basis(gy.ravel().astype(float), gx.ravel().astype(float)) @ coef).reshape(rows, cols)


def _structure_tensor(img: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, ...]:
    """Per-cell means of the gradient products ``(gx*gx, gy*gy, gx*gy)``."""
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    return (
        _cell_means(gx * gx, rows, cols),
        _cell_means(gy * gy, rows, cols),
        _cell_means(gx * gy, rows, cols),
    )


def _far_moves(ref: np.ndarray, other: np.ndarray, cells: np.ndarray) -> int:
    """Count cells of ``ref`` whose content moved together somewhere else in ``other``.

    Each cell is searched (normalised cross-correlation) within :data:`FAR_SEARCH` of the
    comparison image's long side. It is found elsewhere when the best match is strong
    (>= :data:`FAR_FOUND_NCC`), more than half a cell away, and unique (the best match
    elsewhere is at least :data:`FAR_UNIQUE` weaker: periodic textures match everywhere).
    An object moves rigidly, so only cells that agree on one displacement (within
    :data:`FAR_AGREE_PX`) with at least :data:`MIN_MOVED_CELLS` - 1 others count; a smooth
    patch that happens to resemble another place does not agree with anything.

    Searching only ``ref``'s changed cells tells a move from a paste: under a pasted logo or
    text, the covered content is gone from ``other``; an object that moved is still there.

    Args:
        ref: ``(H, W)`` float32.
        other: ``(H, W)`` float32, aligned with ``ref``.
        cells: ``(rows, cols)`` bool, the cells to search.

    Returns:
        The number of cells that moved together.
    """
    h, w = ref.shape
    c = CELL_PX
    radius = max(c, round(FAR_SEARCH * max(h, w)))
    shifts: list[tuple[int, int]] = []
    for row, col in zip(*np.nonzero(cells)):
        y0, x0 = int(row) * c, int(col) * c
        wy0, wx0 = max(0, y0 - radius), max(0, x0 - radius)
        window = other[wy0 : min(h, y0 + c + radius), wx0 : min(w, x0 + c + radius)]
        if window.shape[0] < c + 2 or window.shape[1] < c + 2:
            continue
        scores = cv2.matchTemplate(window, ref[y0 : y0 + c, x0 : x0 + c], cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        dx, dy = wx0 + bx - x0, wy0 + by - y0
        if best < FAR_FOUND_NCC or math.hypot(dx, dy) <= c / 2:
            continue
        scores[max(0, by - c // 2) : by + c // 2 + 1, max(0, bx - c // 2) : bx + c // 2 + 1] = -1
        if best - float(scores.max()) >= FAR_UNIQUE:
            shifts.append((dx, dy))
    if len(shifts) < MIN_MOVED_CELLS:
        return 0
    vectors = np.array(shifts, np.float64)
    near = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1) <= FAR_AGREE_PX
    agreeing = near.sum(axis=1) >= MIN_MOVED_CELLS
    return int(agreeing.sum())


def _photometry(
    ref: np.ndarray, other: np.ndarray, valid: np.ndarray, projective: bool = False
) -> dict[str, float] | None:
    """Compare ``other`` (already warped onto ``ref`` by the global transform) cell by cell.

    ``other`` is first brightness-matched to ``ref`` (a monotone tone curve over the compared
    region). Dense optical flow (DIS, Kroeger et al., ECCV 2016) then says where the content
    of each cell of :data:`CELL_PX` pixels went. Per cell:

    * displacement: its mean flow, minus the small affine correction all cells agree on (the
      global transform is only as exact as its keypoints), counted only across the cell's
      structure (the aperture problem: sliding along an edge is not observable);
    * ``moved``: displaced by more than :data:`MOVED_PX` *and* found there (correlation after
      shifting the cell >= :data:`MIN_FOUND_NCC`, better than in place), in a cluster of at
      least :data:`MIN_MOVED_CELLS` neighbouring cells; plus the changed cells found further
      away, moving together (:func:`_far_moves`): something in the scene moved, or the
      viewpoint changed;
    * ``changed``: structured, but not found even after shifting (correlation below
      :data:`MIN_SAME_NCC`), or structure on one side only, or flat on both sides with a
      brightness step that a smooth tone surface does not explain
      (:func:`_smooth_difference`): an overlay, an edit, an occlusion.

    Args:
        ref: ``(H, W)`` float32 reference image (blurred).
        other: ``(H, W)`` float32 other image warped onto ``ref`` (blurred).
        valid: ``(H, W)`` bool, where the two are compared.
        projective: The global transform was a homography: the correction all cells agree
            on is one too (else affine).

    Returns:
        ``moved`` (moved cells / textured cells), ``moved_cells`` (by the flow),
        ``moved_together`` (found further away), ``changed`` (changed / compared cells),
        ``cells`` (compared), ``textured``, ``tone`` (mean change of a grey level by the
        tone curve, 0-255 levels); None when no cell can be compared.
    """
    h, w = ref.shape
    rows, cols = h // CELL_PX, w // CELL_PX
    if rows == 0 or cols == 0:
        return None
    inside = _cell_means(valid.astype(np.float32), rows, cols) >= 1.0 - 1e-3
    if not inside.any():
        return None
    ref8 = np.clip(ref + 0.5, 0, 255).astype(np.uint8)
    before = np.clip(other + 0.5, 0, 255).astype(np.uint8)
    other8 = _match_histogram(before, ref8, valid)
    # How far the tone curve moved the other photo's grey levels: a brightness, contrast or
    # curves edit of the whole picture (a re-encode or a resize moves them by about 1).
    tone_shift = float(np.abs(other8.astype(np.int16) - before.astype(np.int16))[valid].mean())
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    flow = dis.calc(ref8, other8, None)  # ref(p) ~ other(p + flow(p))
    c = CELL_PX
    cell_flow = np.stack([_cell_means(flow[..., i], rows, cols) for i in (0, 1)], axis=-1)
    # Each cell shifted rigidly by its mean flow (dense flow would fit noise, too).
    shift = np.repeat(np.repeat(cell_flow, c, axis=0), c, axis=1)
    shift = np.pad(shift, ((0, h - rows * c), (0, w - cols * c), (0, 0)))
    grid_x = np.arange(w, dtype=np.float32)[None, :]
    grid_y = np.arange(h, dtype=np.float32)[:, None]
    compensated = cv2.remap(
        other8, grid_x + shift[..., 0], grid_y + shift[..., 1], cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).astype(np.float32)
    ref = ref8.astype(np.float32)
    other = other8.astype(np.float32)
    ncc0, std_ref, std_other, mean_ref, mean_other = _cell_ncc(ref, other, rows, cols)
    ncc1 = _cell_ncc(ref, compensated, rows, cols)[0]
    textured = inside & ((std_ref >= MIN_TEXTURE) | (std_other >= MIN_TEXTURE))
    flat = inside & ~textured
    one_sided = textured & ((std_ref < MIN_TEXTURE / 2) | (std_other < MIN_TEXTURE / 2))
    tone = _smooth_difference(mean_other - mean_ref, inside)
    changed = (
        (flat & (np.abs(mean_other - mean_ref - tone) > FLAT_DIFFERENCE))
        | one_sided
        | (textured & ~one_sided & (np.maximum(ncc0, ncc1) < MIN_SAME_NCC))
    )
    # Content that left its place (moved further than the flow follows, or an object with
    # little texture inside): found again, once and clearly, somewhere else nearby.
    txx, tyy, txy = _structure_tensor(ref, rows, cols)
    half_trace, spread = (txx + tyy) / 2, np.sqrt(((txx - tyy) / 2) ** 2 + txy**2)
    cornered = half_trace - spread >= MIN_CORNER  # structure in two directions
    far = _far_moves(ref, other, changed & cornered)
    moved = _moved_cells(
        textured & ~changed, cell_flow, (txx, tyy, txy), (half_trace, spread), (ncc0, ncc1),
        np.minimum(std_ref, std_other), projective,
    )
    n_textured = int(textured.sum())
    return {
        "replaced": _replaced_picture(ref, other, changed, inside),
        "moved": (int(moved.sum()) + far) / max(1, n_textured),
        "moved_cells": int(moved.sum()),
        "moved_together": far,
        "changed": int(changed.sum()) / int(inside.sum()),
        "cells": int(inside.sum()),
        "textured": n_textured,
        "tone": tone_shift,
    }


def _edge_line(a: np.ndarray, b: np.ndarray, at: int, span: tuple[int, int], inward: int) -> tuple[
    float, float
]:
    """How much of one side of a region is a step edge in each photo.

    The side is the horizontal line near row ``at`` over columns ``span`` (transpose the
    images for a vertical side); its exact row is the one, within two cells (the changed
    cells may stop short of a picture's frame where both pictures are flat), where the two
    photos together change most from 2 px above to 2 px below. Along it, every 4 px, a point
    is on an edge when the step across the line (2-3 px on either side) is at least 8 grey
    levels and :data:`PASTED_STEP` times the step between the lines 2-3 and 6-7 px further
    on either side.

    Args:
        a: ``(H, W)`` float32 first photo.
        b: ``(H, W)`` float32 second photo, aligned with ``a``.
        at: Approximate row of the side.
        span: ``(first, last)`` column.
        inward: +1 when the region lies below the side, -1 above.

    Returns:
        The fractions of the side's points on an edge, in ``a`` and in ``b``.
    """
    h = a.shape[0]
    lo, hi = max(8, at - 2 * CELL_PX), min(h - 9, at + 2 * CELL_PX)
    if hi < lo or span[1] - span[0] < 16:
        return 0.0, 0.0
    cols = slice(span[0], span[1])
    rows = np.arange(lo, hi + 1)
    score = (np.abs(a[rows - 2, cols] - a[rows + 2, cols]).mean(axis=1)
             + np.abs(b[rows - 2, cols] - b[rows + 2, cols]).mean(axis=1))
    line = int(rows[int(np.argmax(score))])
    out: list[float] = []
    for img in (a, b):
        strip = img[:, cols][:, ::4]

        def band(offset: int, strip: np.ndarray = strip) -> np.ndarray:
            r = line + inward * offset
            return (strip[r] + strip[r + inward]) / 2

        inner, outer = band(2), band(-3)
        step = np.abs(inner - outer)
        texture = np.maximum(np.abs(inner - band(6)), np.abs(outer - band(-7)))
        out.append(float(np.mean((step >= 8.0) & (step >= PASTED_STEP * texture))))
    return out[0], out[1]


def _replaced_picture(
    ref: np.ndarray, other: np.ndarray, changed: np.ndarray, inside: np.ndarray
) -> bool:
    """Is the changed part another picture in the same frame?

    Two screenshots of one app or web page showing two different photos, two posters of one
    template: everything matches but a rectangle, and that rectangle is framed by a step edge
    in *both* images, because in both it holds a picture of its own. An overlay added to a
    copy (a logo, a sticker, a caption box) is framed by an edge in the edited copy only: in
    the original the same outline runs through the scene.

    Args:
        ref: ``(H, W)`` float32 reference image.
        other: ``(H, W)`` float32 other image, aligned with ``ref``.
        changed: ``(rows, cols)`` bool cells of :data:`CELL_PX` with other content.
        inside: ``(rows, cols)`` bool cells that were compared.

    Returns:
        True when the largest changed region (at least :data:`MIN_REPLACED_CELLS` cells)
        fills at least 40 % of its bounding box (flat parts of two pictures may agree) and, of
        the box's sides that lie inside the compared region, at least two and two in three are
        an edge (at half their points) in both images (a side lies inside when half the
        cells next to it were compared).
    """
    n, _, stats, _ = cv2.connectedComponentsWithStats(changed.astype(np.uint8), connectivity=8)
    if n < 2:
        return False
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = (int(v) for v in stats[k])
    if area < MIN_REPLACED_CELLS or area < 0.4 * w * h:
        return False
    c = CELL_PX
    rows, cols = inside.shape
    sides = []
    # (image, transposed?) sides: top, bottom (rows), left, right (columns).
    if y > 0 and inside[y - 1, x : x + w].mean() >= 0.5:
        sides.append(_edge_line(ref, other, y * c, (x * c, (x + w) * c), +1))
    if y + h < rows and inside[y + h, x : x + w].mean() >= 0.5:
        sides.append(_edge_line(ref, other, (y + h) * c, (x * c, (x + w) * c), -1))
    ref_t, other_t = np.ascontiguousarray(ref.T), np.ascontiguousarray(other.T)
    if x > 0 and inside[y : y + h, x - 1].mean() >= 0.5:
        sides.append(_edge_line(ref_t, other_t, x * c, (y * c, (y + h) * c), +1))
    if x + w < cols and inside[y : y + h, x + w].mean() >= 0.5:
        sides.append(_edge_line(ref_t, other_t, (x + w) * c, (y * c, (y + h) * c), -1))
    framed = sum(min(fa, fb) >= 0.5 for fa, fb in sides)
    return framed >= 2 and framed >= 2 / 3 * len(sides)


def _moved_cells(
    trusted: np.ndarray,
    cell_flow: np.ndarray,
    tensor: tuple[np.ndarray, np.ndarray, np.ndarray],
    eigen: tuple[np.ndarray, np.ndarray],
    ncc: tuple[np.ndarray, np.ndarray],
    sharpness: np.ndarray,
    projective: bool = False,
) -> np.ndarray:
    """Cells whose content moved, beyond the small correction all cells agree on.

    Args:
        trusted: ``(rows, cols)`` bool, textured cells that did not change (they fit the
            global correction).
        cell_flow: ``(rows, cols, 2)`` mean optical flow per cell, pixels.
        tensor: ``(txx, tyy, txy)`` structure tensor per cell.
        eigen: ``(half trace, spread)`` of the tensor: eigenvalues are ``half ± spread``.
        ncc: ``(in place, after shifting by the cell's flow)`` correlation per cell.
        sharpness: The smaller of the two photos' standard deviations per cell.
        projective: Correct by a homography (the global transform was one), else affine.

    Returns:
        ``(rows, cols)`` bool, in clusters of at least :data:`MIN_MOVED_CELLS` cells.
    """
    c = CELL_PX
    txx, tyy, txy = tensor
    half_trace, spread = eigen
    ncc0, ncc1 = ncc
    ys, xs = np.nonzero(trusted)
    moved = np.zeros_like(trusted)
    if len(ys) < 3:
        return moved
    # Global correction: an affine fit of cell centre -> centre + flow over trusted cells.
    centres = np.stack([(xs + 0.5) * c, (ys + 0.5) * c], axis=1).astype(np.float32)
    targets = centres + cell_flow[ys, xs].astype(np.float32)
    fit = None
    if projective and len(ys) >= 4:
        fit, _ = cv2.findHomography(centres, targets, cv2.LMEDS)
    if fit is None:
        fit, _ = cv2.estimateAffine2D(centres, targets, method=cv2.LMEDS, refineIters=10)
    if fit is None:
        fit = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    predicted = _map_points(centres, fit).astype(np.float32)
    # Only displacement across the cell's structure is observable (the aperture problem:
    # sliding along a straight edge changes nothing): weigh the residual by the structure
    # tensor, normalised by its largest eigenvalue.
    r = (targets - predicted).astype(np.float64)
    cxx, cyy, cxy = txx[ys, xs], tyy[ys, xs], txy[ys, xs]
    lam = (half_trace + spread)[ys, xs]
    energy = r[:, 0] ** 2 * cxx + 2 * r[:, 0] * r[:, 1] * cxy + r[:, 1] ** 2 * cyy
    error = np.sqrt(np.maximum(energy, 0.0) / np.maximum(lam, 1e-9))
    found = ncc1[ys, xs] >= MIN_FOUND_NCC
    gain = ncc1[ys, xs] - ncc0[ys, xs] >= MOVED_GAIN
    # Motion is only measurable where both photos show structure.
    sharp = sharpness[ys, xs] >= MIN_TEXTURE
    moved[ys, xs] = (error > MOVED_PX) & found & gain & sharp
    # A moving object spans neighbouring cells; isolated cells are flow noise (weak texture,
    # colour shifts that change grey levels unevenly).
    _, labels, stats, _ = cv2.connectedComponentsWithStats(moved.astype(np.uint8), connectivity=8)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < MIN_MOVED_CELLS)
    moved &= ~np.isin(labels, small[small > 0])
    return moved


class Verifier:
    """Verifies candidate pairs; decodes and describes each content once per run.

    Args:
        paths: Content key -> ``(path, format)`` of the file to decode for it.
        min_inliers: Matches consistent with one transform needed to decide anything.
        max_moved: Max fraction of textured cells that moved (in clusters of at least
            :data:`MIN_MOVED_CELLS`) in a copy.
        max_changed: Max fraction of the shared region with other content in a copy.

    Attributes:
        decoded: Contents decoded so far.
        decode_seconds: Time spent decoding contents (working images, silhouettes).
        keypoint_seconds: Time spent on their ORB keypoints.
        pairs: Pairs verified.
        pair_seconds: Time spent on pairs (matching, RANSAC, photometry).
        reused: Verdicts a caller took from its memo instead (counted by the caller).
    """

    def __init__(
        self,
        paths: dict[str, tuple[str, str | None]],
        min_inliers: int = MIN_INLIERS,
        max_moved: float = MAX_MOVED,
        max_changed: float = MAX_CHANGED_FRACTION,
    ) -> None:
        self.paths = paths
        self.min_inliers = min_inliers
        self.max_moved = max_moved
        self.max_changed = max_changed
        self._views: dict[str, View | None] = {}
        self.decoded = 0
        self.decode_seconds = 0.0
        self.keypoint_seconds = 0.0
        self.pairs = 0
        self.pair_seconds = 0.0
        self.reused = 0
        self.ready: dict[tuple[str, str, tuple[bool, ...]], Verdict] = {}
        self._lock = threading.Lock()  # counters, when pairs are verified on several threads

    def view(self, key: str) -> View | None:
        """The content's view (None when it cannot be decoded), cached."""
        if key not in self._views:
            start = time.perf_counter()
            path, fmt = self.paths[key]
            try:
                self._views[key] = load_view(path, fmt)
            except (DecodeError, OSError) as exc:
                logger.info("cannot verify with %s: %s", path, exc)
                self._views[key] = None
            self.decoded += 1
            self.decode_seconds += time.perf_counter() - start
        return self._views[key]

    def prefetch(self, keys: Iterable[str]) -> None:
        """Decode contents and compute their (unmirrored) keypoints ahead, on all cores.

        The decoding and keypoint times are summed over the threads (a CPU cost, larger than
        the wall-clock time it took).
        """
        todo = [k for k in dict.fromkeys(keys) if k not in self._views]

        def work(key: str) -> tuple[str, View | None, float, float]:
            start = time.perf_counter()
            path, fmt = self.paths[key]
            try:
                view: View | None = load_view(path, fmt)
            except (DecodeError, OSError) as exc:
                logger.info("cannot verify with %s: %s", path, exc)
                view = None
            decoded = time.perf_counter()
            if view is not None:
                view.keypoints(False)
            return key, view, decoded - start, time.perf_counter() - decoded

        for key, view, decode, keypoints in parallel(work, todo):
            self._views[key] = view
            self.decoded += 1
            self.decode_seconds += decode
            self.keypoint_seconds += keypoints

    def verify(self, a_key: str, b_key: str, mirrored: Iterable[bool] = (False,)) -> Verdict:
        """Is ``b`` a copy of ``a``?

        Args:
            a_key: The keeper's content key.
            b_key: The candidate's content key.
            mirrored: Parities of ``b`` to try in order (True: ``b`` mirrored left-right);
                the first one with a transform decides.

        Returns:
            The verdict, with evidence.
        """
        key = (a_key, b_key, tuple(mirrored))
        if key in self.ready:
            return self.ready.pop(key)
        a, b = self.view(a_key), self.view(b_key)
        start = time.perf_counter()
        spent = [0.0]
        try:
            verdict = self._verify(a, b, key[2], spent)
        except (cv2.error, np.linalg.LinAlgError) as exc:  # hostile pixels: odd corners
            logger.warning("cannot verify %s with %s: %s", a_key, b_key, exc)
            verdict = Verdict("unknown", "verification failed")
        # Keypoints are computed on first use (the mirrored ones only if tried) and timed
        # apart: they are a per-content cost, the rest is per pair.
        verdict.seconds = time.perf_counter() - start - spent[0]
        with self._lock:
            self.pairs += 1
            self.pair_seconds += verdict.seconds
            self.keypoint_seconds += spent[0]
        return verdict

    def verify_ahead(self, pairs: Sequence[tuple[str, str, tuple[bool, ...]]]) -> None:
        """Verify pairs on all cores; :meth:`verify` then returns these verdicts at once.

        Args:
            pairs: ``(a_key, b_key, parities)`` as :meth:`verify` will be asked.
        """
        todo = [p for p in dict.fromkeys(pairs) if p not in self.ready]
        for pair, verdict in zip(todo, parallel(lambda p: self.verify(*p), todo)):
            self.ready[pair] = verdict

    def _keypoints(
        self, view: View, mirrored: bool, spent: list[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        if mirrored in view.features:
            return view.features[mirrored]
        start = time.perf_counter()
        features = view.keypoints(mirrored)  # two threads may both compute it: harmless
        spent[0] += time.perf_counter() - start
        return features

    def _verify(
        self, a: View | None, b: View | None, parities: tuple[bool, ...], spent: list[float]
    ) -> Verdict:
        if a is None or b is None:
            return Verdict("unknown", "cannot decode")
        geometry = None
        mirrored = False
        for m in parities:
            fa, fb = self._keypoints(a, False, spent), self._keypoints(b, m, spent)
            geometry = _match(fa, fb, self.min_inliers)
            if geometry is not None and geometry.inliers >= self.min_inliers:
                mirrored = m
                break
            geometry = None
        if geometry is None:
            # Another aspect ratio: the copy may be stretched or squashed as a whole.
            for m in parities:
                grey = b.mirrored_grey() if m else b.grey
                start = time.perf_counter()
                stretched = _stretched_keypoints(a.grey, grey)
                spent[0] += time.perf_counter() - start
                if stretched is None:
                    break
                geometry = _match(self._keypoints(a, False, spent), stretched[0],
                                  self.min_inliers, stretched[1])
                if geometry is not None and geometry.inliers >= self.min_inliers:
                    mirrored = m
                    break
                geometry = None
        if geometry is None:
            return Verdict("unknown", "too few matching keypoints")
        verdict = self._judge(a, b, geometry, mirrored)
        if verdict.status != "copy" and verdict.reason.startswith(PERSPECTIVE_RETRY):
            # No affine transform explains the pair: a keystone corrected or a skew applied
            # in an editor is a homography of the whole frame (see _perspective_problem).
            assert geometry.matched is not None
            projective = _match_perspective(geometry.matched, b.grey.shape, self.min_inliers)
            if projective is not None and projective.inliers >= self.min_inliers:
                second = self._judge(a, b, projective, mirrored)
                if second.status == "copy":
                    return second
        return verdict

    def _judge(self, a: View, b: View, geometry: _Geometry, mirrored: bool) -> Verdict:
        """The verdict on a pair given its transform (affine or projective)."""
        evidence: dict[str, Any] = {
            "inliers": geometry.inliers,
            "matches": geometry.matches,
            "rotation": round(geometry.rotation, 1),
            "anisotropy": round(geometry.anisotropy, 3),
            "mirrored": mirrored,
        }
        if geometry.inliers < MIN_INLIER_RATIO * geometry.matches:
            return Verdict("unknown", "inconsistent matches", evidence)
        projective = not _affine(geometry.matrix)
        if projective:
            evidence["perspective"] = round(geometry.perspective, 3)
        problem = _implausible(geometry)
        if problem:
            # A shear is a change of viewpoint: the camera moved between two shots. A copy is
            # rotated, scaled, cropped, mirrored or resized along an axis, never sheared.
            status = "different" if problem.startswith("sheared") else "unknown"
            return Verdict(status, problem, evidence)
        b_grey = b.mirrored_grey() if mirrored else b.grey
        b_content = b.content()[:, ::-1] if mirrored else b.content()
        cover = _coverage(a, b_content, geometry)
        evidence.update(
            shared_a=round(cover["shared_a"], 3),
            shared_b=round(cover["shared_b"], 3),
            crop=round(min(cover["shared_a"], cover["shared_b"]), 3),
        )
        if max(cover["shared_a"], cover["shared_b"]) < MIN_CONTAINED:
            return Verdict("different", "neither photo lies inside the other", evidence)
        if min(cover["shared_a"], cover["shared_b"]) < MIN_SHARED:
            # Smaller than a crop is ever kept: only a photo pasted into another one (a
            # screenshot, a collage, a poster) still counts as its copy.
            pasted = 0.0
            if min(cover["shared_a"], cover["shared_b"]) >= MIN_PASTED:
                if cover["shared_b"] >= cover["shared_a"]:  # b lies inside a
                    pasted = _pasted(a.grey, geometry.matrix, b_grey.shape)
                else:
                    pasted = _pasted(b_grey, _invert(geometry.matrix),
                                     a.grey.shape)
            evidence["pasted"] = round(pasted, 3)
            if pasted < PASTED_SIDES:
                return Verdict("different", "too small a part of one photo", evidence)
        if cover["spread"] < MIN_SPREAD:
            return Verdict("different", "matches cover only a small part", evidence)
        if projective:
            problem = _perspective_problem(a, b_content, geometry, cover)
            if problem:
                return Verdict("different", problem, evidence)
        photometry = self._photometry(a, b, b_grey, b_content, geometry, cover)
        if photometry is None:
            return Verdict("unknown", "too small to compare", evidence)
        evidence.update(
            moved=round(photometry["moved"], 3),
            changed=round(photometry["changed"], 3),
            cells=photometry["cells"],
            tone=round(photometry["tone"], 1),
        )
        if photometry["moved"] > self.max_moved:
            return Verdict("different", "parts of the picture moved (another shot)", evidence)
        if photometry["changed"] > self.max_changed:
            return Verdict("different", "much of the picture differs", evidence)
        if photometry["replaced"]:
            return Verdict("different", "another picture in the same frame", evidence)
        frames = _frames(a.grey, a.content(), b_grey, b_content, geometry.matrix)
        evidence.update({k: round(v, 3) for k, v in frames.items()})
        # Which photo shows the other with something around it (bars, black corners, a
        # caption, a page)? The one whose frame holds more than the shared picture, when the
        # other's frame is a pasted edge in it (a crop's frame is not).
        inner = "b" if frames["inside_b"] >= frames["inside_a"] else "a"
        evidence["inner"] = inner
        if "pasted" not in evidence and min(frames["inside_a"], frames["inside_b"]) < 0.95:
            if inner == "b":
                pasted = _pasted(a.grey, geometry.matrix, b_grey.shape)
            else:
                pasted = _pasted(b_grey, _invert(geometry.matrix),
                                 a.grey.shape)
            evidence["pasted"] = round(pasted, 3)
        return Verdict("copy", "", evidence)

    @staticmethod
    def _photometry(
        a: View,
        b: View,
        b_grey: np.ndarray,
        b_content: np.ndarray,
        g: _Geometry,
        cover: dict[str, float],
    ) -> dict[str, float] | None:
        """Warp onto the photo that lies inside the other, at the detail both have."""
        m = _homogeneous(g.matrix)  # b -> a
        if cover["shared_b"] >= cover["shared_a"]:
            # b is the inner photo (a crop of a): compare in b's frame.
            ref, ref_detail, ref_content = b_grey, b.detail, b_content
            other, other_detail, other_content = a.grey, a.detail, a.content()
            to_ref = np.linalg.inv(m)
        else:
            ref, ref_detail, ref_content = a.grey, a.detail, a.content()
            other, other_detail, other_content = b_grey, b.detail, b_content
            to_ref = m
        # ref px per other px (of a homography: at the centre of the other photo)
        local = _jacobian(to_ref, other.shape[1] / 2, other.shape[0] / 2)
        scale = math.sqrt(abs(float(np.linalg.det(local))))
        factor = min(1.0, ref_detail, other_detail * scale)
        h, w = ref.shape
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        if min(size) < MIN_COMPARE_SIDE:
            return None
        down = np.diag([factor, factor, 1.0])
        warp = down @ to_ref
        if _affine(g.matrix):
            warp = warp[:2]
        ref_small = cv2.resize(ref, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        # Pre-blur when the warp shrinks the other photo (no aliasing), then warp.
        shrink = factor * scale
        src = other.astype(np.float32)
        if shrink < 0.8:
            src = _gauss(src, 0.5 / shrink)
        warped = _warp(src, warp, size, cv2.INTER_LINEAR)
        # Compare where the other photo has pixels, leaving out border fill on one side only
        # (black corners of a rotated copy over the picture of the other); fill on both
        # sides (a logo's white background) is picture that agrees.
        inside = _warp(np.ones(other.shape, np.uint8), warp, size, cv2.INTER_NEAREST)
        other_fill = _warp((~other_content).astype(np.uint8), warp, size, cv2.INTER_NEAREST)
        ref_fill = cv2.resize(
            (~ref_content).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
        )
        valid = inside & ~(other_fill ^ ref_fill) & 1
        valid = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        sigma = 0.8
        return _photometry(_gauss(ref_small, sigma), _gauss(warped, sigma), valid,
                           projective=not _affine(g.matrix))
