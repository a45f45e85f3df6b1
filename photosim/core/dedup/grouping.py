"""Duplicate groups in tiers: exact, near-duplicate, similar.

Work happens on unique contents (one per content hash), so byte-identical copies are one unit.

1. **Candidates** come from k-nearest-neighbour queries and an inverted file, never from all
   pairs:

   - the hash index (pHash and dHash bits as a vector, see
     :func:`photosim.core.index.vectors.hash_vectors`), queried with all 8 orientations of every
     content, down to the *loose* floor ``Thresholds.loose_hash_sum``;
   - keypoint sketches of the stored thumbnails (an inverted file, see
     :func:`photosim.core.dedup.verify.sketch_candidates`): copies whose hashes differ (crops,
     rotations with black corners, pasted logos) still share many keypoints. This is the
     recall of a catalog without CNN descriptors;
   - with CNN descriptors, the descriptor index down to ``Thresholds.loose_cosine``
     (``similar_cosine`` for the similar tier).

2. **Three bands** decide each candidate pair (:func:`judge`):

   - *presumed*: the hash evidence of :func:`match` (both pHash and dHash close, same aspect
     ratio; or descriptor cosine confirmed by pHash) — today's tight thresholds. The pair is a
     near-duplicate unless local-feature verification rebuts it: another shot of the scene
     (something moved: consecutive video frames, bursts) or mostly other content. When
     verification cannot tell (too few keypoints, file gone), the hashes decide.
   - *loose*: any other candidate. A near-duplicate only when verification confirms it:
     one plausible transform (rotation, scale, crop, non-uniform resize along the axes,
     mirror) with enough keypoint inliers, the shared region covering most of one photo, and
     nothing moved (:class:`photosim.core.dedup.verify.Verifier`).
   - *reject*: neither (for the similar tier, the descriptor cosine may still make the pair
     "similar": a rebutted video frame is exactly that).

3. **Grouping without chaining**: contents are visited best keeper first
   (:mod:`photosim.core.dedup.keeper`); each unassigned content opens a group and takes the
   unassigned candidates that match *it* directly. A photo that only resembles another member
   never joins through it.

Transparent images whose flattened picture is (almost) blank — a white logo on transparency
flattened on white — are described by their alpha silhouette for both candidates and
verification, so the same logo in white and in black is found (see
:func:`photosim.core.dedup.verify.load_view`).

Groups are cumulative: a near-duplicate group also holds the exact copies, a similar group
the near-duplicates. Each member carries its strongest match and a "why" line naming the
evidence (hash distances and orientation, keypoint inliers, scale, crop, rotation).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from photosim.config import Thresholds
from photosim.core.catalog import Catalog, Photo
from photosim.core.dedup.keeper import keeper_key, keeper_reason, rank
from photosim.core.index import graph
from photosim.core.index.vectors import HASH_MODEL, VectorIndex, hash_vectors
from photosim.core.scan.hashing import ORIENTATIONS, SWAPS_AXES, hamming, orientation_hashes
from photosim.core.types import Error

logger = logging.getLogger(__name__)

TIERS = ("exact", "near", "similar")
_TIER_RANK = {"keeper": -1, "exact": 0, "near": 1, "similar": 2}
# A dHash with this few bits set (or this few unset) means no gradient structure: flat or
# blank images, whose hashes all look alike. They only ever match as exact copies.
_FLAT_HASH_BITS = 2
_QUERY_CHUNK = 4096
_SKETCH_CHUNK = 512  # thumbnails read from the catalog at a time
# Candidate sources, in the order they are reported.
SOURCES = ("hashes", "keypoints", "silhouette", "descriptors")
SKETCH_SUFFIX = ".sketch.npz"
VERDICT_MEMO = 50_000  # verification verdicts remembered per process (see _verify)
_VERDICTS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_NEW_VERDICTS: list[tuple[Any, ...]] = []  # computed since the last save_verdicts
# Bump when verification changes what it accepts: stored verdicts of other versions are ignored.
VERIFY_VERSION = 5
# A verified copy with at least this fraction of the picture changed is an edited copy (an
# overlay, a retouch); why_line says "N % edited" from the same fraction.
EDITED_FRACTION = 0.02
TONE_EDIT = 8.0  # grey levels the tone curve moves a pixel by: a brightness/contrast edit
_ANCHOR_TRIES = 2  # edited-against copies tried as the keeper instead (_unedited_anchor)


class DuplicatesError(Error):
    """Grouping cannot be done as asked (unknown tier, missing descriptors)."""


@dataclass
class Content:
    """One unique content (content hash) and the photos that hold it, best copy first.

    Attributes:
        content_hash: The xxh3-128 content hash.
        photos: Photos with this content, best copy first.
        silhouette: ``(8, 2)`` int64 hashes of the alpha silhouette per orientation, used
            instead of the stored hashes when the flattened picture is blank (None: not).
    """

    content_hash: str
    photos: list[Photo]
    silhouette: np.ndarray | None = None
    _codes: list[tuple[int, int]] | None = field(default=None, repr=False, compare=False)
    _flat: tuple[int, bool] | None = field(default=None, repr=False, compare=False)

    @property
    def best(self) -> Photo:
        """The best-ranked photo of this content."""
        return self.photos[0]

    @property
    def aspect(self) -> float:
        """Width / height of the upright image."""
        p = self.best
        return (p.width or 1) / max(1, p.height or 1)

    @property
    def orientations(self) -> np.ndarray:
        """``(V, 2)`` int64 ``(phash, dhash)`` per orientation, upright first (V = 8, or 1)."""
        if self.silhouette is not None:
            return self.silhouette
        p = self.best
        upright = np.array([[p.phash or 0, p.dhash or 0]], dtype=np.int64)
        if not p.variants:
            return upright
        return np.concatenate([upright, np.frombuffer(p.variants, np.int64).reshape(-1, 2)])

    @property
    def orientation_codes(self) -> list[tuple[int, int]]:
        """:attr:`orientations` as a list of ``(phash, dhash)`` ints (cached: grouping reads
        it for every candidate pair)."""
        if self.silhouette is not None:
            return [(int(p), int(d)) for p, d in self.silhouette.tolist()]
        if self._codes is None:
            self._codes = [(int(p), int(d)) for p, d in self.orientations.tolist()]
        return self._codes

    @property
    def upright(self) -> tuple[int, int]:
        """``(phash, dhash)`` of the upright image (of its silhouette, if one is used)."""
        if self.silhouette is not None:
            return int(self.silhouette[0, 0]), int(self.silhouette[0, 1])
        return self.best.phash or 0, self.best.dhash or 0

    @property
    def flat(self) -> bool:
        """True when the perceptual hashes carry no structure (blank or flat images).

        Cached (grouping asks for every candidate pair), again when a silhouette is set."""
        key = id(self.silhouette)
        if self._flat is None or self._flat[0] != key:
            bits = hamming(self.upright[1], 0)
            self._flat = (key, bits <= _FLAT_HASH_BITS or bits >= 64 - _FLAT_HASH_BITS)
        return self._flat[1]


@dataclass
class Member:
    """One photo in a group.

    Attributes:
        photo: The catalog row.
        match: ``"keeper"``, or how it matches the keeper: ``"exact"``, ``"near"``,
            ``"similar"``.
        why: Human-readable evidence, e.g.
            ``"pHash 3/64, dHash 5/64, 50 % scale; 412 keypoints agree"``.
        evidence: Machine-readable evidence: ``phash_distance``, ``dhash_distance``,
            ``orientation``, ``aspect_difference``, ``scale``, ``cosine``, ``source`` (the
            candidate source), ``band`` (``"presumed"`` or ``"loose"``) and, when verified,
            ``verification`` (``"copy"`` or ``"unknown"``), ``inliers``, ``rotation``,
            ``mirrored``, ``crop``, ``moved``, ``changed``; ``capture`` when the camera's
            records show two captures (:func:`capture_difference`).
    """

    photo: Photo
    match: str
    why: str
    evidence: dict[str, Any] = field(default_factory=dict)


class Group:
    """A duplicate group, keeper first.

    A grouping session builds the members of a group only when they are first read (their
    evidence and "why" lines cost more than the grouping itself); the keeper, the photo
    count and the reclaimable bytes are known without them.

    Args:
        id: 1-based, in output order.
        tier: The loosest match inside the group (``exact`` < ``near`` < ``similar``).
        members: Keeper first, then the others best copy first; or None with ``build``.
        build: Called with ``pending`` when the members are first read (instead of
            ``members``); one builder serves many groups.
        pending: What ``build`` needs to make this group's members.
        keeper: The keeper's photo (required with ``build``).
        photos: The number of members (required with ``build``).
        reclaimable: Bytes freed by removing every member but the keeper (required with
            ``build``).

    Raises:
        ValueError: Neither ``members`` nor a complete ``build`` description.
    """

    __slots__ = ("id", "tier", "_members", "_build", "_pending", "_keeper", "_photos",
                 "_reclaimable")

    def __init__(
        self,
        id: int,  # noqa: A002 - the group number, as in the JSON output
        tier: str,
        members: list[Member] | None = None,
        *,
        build: Callable[[Any], list[Member]] | None = None,
        pending: Any = None,
        keeper: Photo | None = None,
        photos: int | None = None,
        reclaimable: int | None = None,
    ) -> None:
        if members is None and (build is None or keeper is None or photos is None
                                or reclaimable is None):
            raise ValueError("a group needs its members, or a builder with keeper, photo "
                             "count and reclaimable bytes")
        self.id, self.tier = id, tier
        self._members, self._build, self._pending = members, build, pending
        self._keeper, self._photos, self._reclaimable = keeper, photos, reclaimable

    @property
    def members(self) -> list[Member]:
        """Keeper first, then the others best copy first."""
        if self._members is None:
            assert self._build is not None
            self._members = self._build(self._pending)
            self._build = self._pending = None
        return self._members

    @property
    def keeper(self) -> Photo:
        """The photo to keep."""
        return self._keeper if self._keeper is not None else self.members[0].photo

    @property
    def photo_count(self) -> int:
        """Members, the keeper included."""
        return self._photos if self._photos is not None else len(self.members)

    @property
    def reclaimable_bytes(self) -> int:
        """Bytes freed by removing every member but the keeper."""
        if self._reclaimable is not None:
            return self._reclaimable
        return sum(m.photo.size for m in self.members[1:])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Group):
            return NotImplemented
        return (self.id, self.tier, self.members) == (other.id, other.tier, other.members)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return f"Group(id={self.id}, tier={self.tier!r}, photos={self.photo_count})"


@dataclass
class GroupingResult:
    """Groups of one tier with the settings that produced them.

    Attributes:
        tier: Requested tier.
        groups: Groups, largest reclaimable bytes first.
        evidence: ``"bytes"``, ``"hashes"`` or ``"descriptors+hashes"``: what finds and
            presumes duplicates (local features check them when ``local_features``).
        model: Descriptor model id used, or None.
        notes: Plain-language remarks (e.g. why descriptors were not used).
        comparisons: Candidate pairs judged (the cost of grouping).
        contents: Unique contents considered.
        local_features: True when candidates were verified with keypoints (and, without
            descriptors, also found by keypoint sketches).
        candidates: Distinct candidate pairs per source (:data:`SOURCES`).
        verified: Pairs checked with local features in this grouping.
        remembered: Pairs decided by a verdict remembered from an earlier check in this
            process (another tier, the same pair the other way round): no cost.
        confirmed: Loose candidates that verification confirmed as copies.
        rebutted: Pairs within the hash (or descriptor) limits that verification showed to be
            different shots or different pictures.
        decoded: Contents decoded for verification.
        seconds: Seconds per stage: ``candidates`` (index queries), ``sketch`` (keypoint
            sketches and silhouettes, wall-clock), ``decode`` (decoding the contents verified)
            and ``keypoints`` (their ORB keypoints), both summed over the threads that did
            them, ``verify`` (matching, RANSAC and photometry of the pairs), ``total``
            (wall-clock, everything).
    """

    tier: str
    groups: list[Group]
    evidence: str
    model: str | None
    notes: list[str]
    comparisons: int
    contents: int
    local_features: bool = False
    candidates: dict[str, int] = field(default_factory=dict)
    verified: int = 0
    remembered: int = 0
    confirmed: int = 0
    rebutted: int = 0
    decoded: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def built(self) -> GroupingResult:
        """Build every group's members now (a grouping session builds them when first read:
        call this on a worker thread before handing the result to the GUI). Returns self."""
        for group in self.groups:
            group.members  # noqa: B018 - reading builds them
        return self


def match(
    a: Content,
    b: Content,
    cosine: float | None,
    tier: str,
    th: Thresholds,
    cache: dict[tuple[str, str], dict[str, Any]] | None = None,
    scene: float | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """The hash and descriptor evidence of one candidate pair of distinct contents.

    This is the *presumption* of :func:`judge`: no pixels are read.

    Args:
        a: The group's keeper content.
        b: The candidate.
        cosine: Descriptor cosine similarity of the pair, or None if unknown.
        tier: Loosest tier accepted (``"near"`` or ``"similar"``).
        th: Thresholds.
        scene: The learned similarity of the pair (see :func:`presumed_tier`), or None.

    Returns:
        ``(matched tier, evidence)`` or None when the evidence does not reach a tier.
    """
    evidence = hash_evidence(a, b, cosine, cache)
    if scene is not None:
        evidence["learned_cosine"] = round(float(scene), 4)
    matched = presumed_tier(
        evidence["phash_distance"], evidence["dhash_distance"], evidence["aspect_difference"],
        "orientation" in evidence, a.flat or b.flat or _captures_differ(a, b), cosine, tier, th,
        scene,
    )
    return None if matched is None else (matched, evidence)


def presumed_tier(
    phash_distance: int,
    dhash_distance: int,
    aspect_difference: float,
    oriented: bool,
    flat: bool,
    cosine: float | None,
    tier: str,
    th: Thresholds,
    scene: float | None = None,
) -> str | None:
    """The tier that hash and descriptor evidence alone give a pair (the rule of :func:`match`).

    Args:
        phash_distance: pHash Hamming distance (bits of 64) at the best orientation.
        dhash_distance: dHash Hamming distance (bits of 64) at that orientation.
        aspect_difference: Relative aspect-ratio difference after the orientation.
        oriented: The best orientation is not upright.
        flat: The pair cannot be near-duplicates: either photo's hashes carry no structure
            (:attr:`Content.flat`), or the camera recorded two captures
            (:func:`capture_difference`).
        cosine: Descriptor cosine similarity, or None.
        tier: Loosest tier accepted.
        th: Thresholds.
        scene: The similarity that decides the similar band when the library has a learned
            projection (:mod:`photosim.core.index.learned`); None: ``cosine``. The near band
            always uses the plain ``cosine``.

    Returns:
        ``"near"``, ``"similar"`` or None.
    """
    p, d = phash_distance, dhash_distance
    if aspect_difference <= th.near_aspect and not flat:
        by_hash = p <= th.near_phash and d <= th.near_dhash and p + d <= th.near_hash_sum
        by_descriptor = (
            cosine is not None
            and cosine >= th.near_cosine
            and p <= th.near_cosine_phash
            and not oriented
        )
        if by_hash or by_descriptor:
            return "near"
    scene = cosine if scene is None else scene
    if tier == "similar" and scene is not None and scene >= th.similar_cosine:
        return "similar"
    return None


def hash_evidence(
    a: Content,
    b: Content,
    cosine: float | None,
    cache: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Hash distances at the orientation of ``a`` that best matches ``b``, and more.

    Args:
        a: The keeper's content.
        b: The candidate's.
        cosine: Descriptor cosine similarity, or None.
        cache: Threshold-independent evidence of pairs already measured (a
            :class:`GroupingSession` keeps it across re-groupings); read and filled.

    Returns:
        A new dict: ``phash_distance``, ``dhash_distance``, ``orientation`` (name, when not
        upright), ``aspect_difference`` (relative, after the orientation), ``scale`` (square
        root of the pixel-count ratio) and ``cosine`` (when known).
    """
    key = (a.content_hash, b.content_hash)
    if cache is not None and key in cache:
        evidence = dict(cache[key])
    else:
        evidence = _hash_evidence(a, b)
        if cache is not None:
            cache[key] = dict(evidence)
    if cosine is not None:
        evidence["cosine"] = round(float(cosine), 4)
    return evidence


def _hash_evidence(a: Content, b: Content) -> dict[str, Any]:
    bp, bd = b.upright
    best = (129, 0, 0, 0)
    for v, (vp, vd) in enumerate(a.orientation_codes):
        p, d = hamming(vp, bp), hamming(vd, bd)
        if p + d < best[0]:
            best = (p + d, p, d, v)
    _, p, d, orientation = best
    a_aspect = 1.0 / a.aspect if orientation in SWAPS_AXES else a.aspect
    aspect = abs(a_aspect - b.aspect) / max(a_aspect, b.aspect)
    small, big = sorted((max(1, a.best.pixels), max(1, b.best.pixels)))
    evidence: dict[str, Any] = {
        "phash_distance": p,
        "dhash_distance": d,
        "aspect_difference": round(aspect, 4),
        "scale": round(float(np.sqrt(small / big)), 4),
    }
    if orientation:
        evidence["orientation"] = ORIENTATIONS[orientation]
        evidence["orientation_index"] = orientation
    return evidence


@dataclass
class Judgement:
    """The decision on one candidate pair.

    Attributes:
        tier: ``"near"``, ``"similar"``, or None when the pair does not match.
        outcome: ``"presumed"`` (hash or descriptor evidence; verification agreed or could not
            tell), ``"confirmed"`` (a loose candidate verified as a copy), ``"rebutted"``
            (presumed, but verification showed another shot or other content), ``"similar"``
            (descriptor cosine only) or ``"rejected"``.
        evidence: What was measured (see :class:`Member`).
    """

    tier: str | None
    outcome: str
    evidence: dict[str, Any]


def judge(
    a: Content,
    b: Content,
    cosine: float | None,
    tier: str,
    th: Thresholds,
    verifier: Any | None,
    source: str = "hashes",
    support: int | None = None,
    cache: dict[tuple[str, str], dict[str, Any]] | None = None,
    scene: float | None = None,
) -> Judgement:
    """Decide one candidate pair with the three bands (see the module docstring).

    Args:
        a: The group's keeper content.
        b: The candidate.
        cosine: Descriptor cosine similarity, or None.
        tier: Loosest tier accepted.
        th: Thresholds.
        verifier: A :class:`photosim.core.dedup.verify.Verifier`, or None to decide on hashes and
            descriptors alone.
        source: Where the candidate came from (:data:`SOURCES`), recorded in the evidence.
        support: Keypoint-sketch keys the pair shares (None: unknown). A loose candidate with
            fewer than :data:`photosim.core.dedup.verify.SKETCH_MIN_SHARED` is rejected without
            decoding: a copy shares far more (see :func:`_support`).
        cache: Pair evidence measured before (see :func:`hash_evidence`).
        scene: The learned similarity that decides the similar band (see
            :func:`presumed_tier`), or None for ``cosine``.

    Returns:
        The judgement.
    """
    presumption = match(a, b, cosine, tier, th, cache, scene)
    evidence = presumption[1] if presumption else hash_evidence(a, b, cosine, cache)
    evidence["source"] = source
    captures = capture_difference(a.best.capture, b.best.capture)
    if captures is not None:  # two shots, whatever the pixels say: never verified as a copy
        evidence["band"], evidence["capture"] = "loose", captures
        if presumption is not None and presumption[0] == "similar":
            return Judgement("similar", "similar", evidence)
        return Judgement(None, "rejected", evidence)
    presumed = presumption is not None and presumption[0] == "near"
    evidence["band"] = "presumed" if presumed else "loose"
    if scene is not None:
        evidence["learned_cosine"] = round(float(scene), 4)
    scene = cosine if scene is None else scene
    similar = tier == "similar" and scene is not None and scene >= th.similar_cosine
    otherwise = Judgement("similar", "similar", evidence) if similar else None
    if verifier is None or not th.verify or a.flat or b.flat:
        if presumed:
            return Judgement("near", "presumed", evidence)
        return otherwise or Judgement(None, "rejected", evidence)
    if support is not None:
        evidence["sketch_shared"] = support
    if not _worth_verifying(a, b, cosine, tier, th, support, presumption):
        return otherwise or Judgement(None, "rejected", evidence)
    verdict = _verify(verifier, a.content_hash, b.content_hash, _parities(evidence, th), th)
    evidence["verification"] = verdict.status
    if verdict.reason:
        evidence["verification_reason"] = verdict.reason
    evidence.update(verdict.evidence)
    if verdict.status == "copy":
        return Judgement("near", "presumed" if presumed else "confirmed", evidence)
    if presumed and verdict.status == "unknown":
        return Judgement("near", "presumed", evidence)
    if presumed:
        return Judgement(otherwise.tier if otherwise else None, "rebutted", evidence)
    return otherwise or Judgement(None, "rejected", evidence)


_CAPTURE_LABELS = {"t": ("exposure", " s"), "f": ("f-number", ""), "iso": ("ISO", ""),
                   "ev": ("exposure bias", " EV")}
_CLOCK_CORRECTION_S = 900  # whole quarter hours: a time-zone or camera-clock correction


def capture_difference(a: str | None, b: str | None) -> str | None:
    """Why two photos are different captures by the camera's own record, or None.

    Exposure brackets, bursts and tripod series look like copies (same framing, nothing
    moved) but are different photos: the camera records each exposure
    (:attr:`photosim.core.catalog.Photo.capture`: date taken to the sub-second, exposure time,
    f-number, ISO, bias), and copies carry the record of the shot they copy. Two records that
    differ in a setting both have, or in the time taken (beyond a correction by whole quarter
    hours, as a time-zone fix makes), are two captures. Missing records prove nothing.

    Args:
        a: One photo's capture record, or None.
        b: The other's.

    Returns:
        A short reason (``"different captures: exposure 0.004 s vs 0.0167 s"``), or None.
    """
    if not a or not b or a == b:
        return None
    when_a, *settings_a = a.split("|")
    when_b, *settings_b = b.split("|")
    for x, y in zip(settings_a, settings_b, strict=False):
        name, _, va = x.partition("=")
        vb = y.partition("=")[2]
        if va and vb and va != vb and name in _CAPTURE_LABELS:
            label, unit = _CAPTURE_LABELS[name]
            return f"different captures: {label} {va}{unit} vs {vb}{unit}"
    try:
        (da, _, sub_a), (db, _, sub_b) = when_a.partition("."), when_b.partition(".")
        seconds = (datetime.fromisoformat(da) - datetime.fromisoformat(db)).total_seconds()
    except ValueError:
        return None
    if sub_a and sub_b:
        seconds += float("0." + sub_a) - float("0." + sub_b)
    seconds = abs(seconds)
    if seconds < 1e-6 or (seconds % _CLOCK_CORRECTION_S == 0 and sub_a == sub_b):
        return None
    return f"different captures: taken {seconds:.2f} s apart"


def _captures_differ(a: Content, b: Content) -> bool:
    return capture_difference(a.best.capture, b.best.capture) is not None


def _verify(
    verifier: Any, a: str, b: str, parities: tuple[bool, ...], th: Thresholds
) -> Any:
    """``verifier.verify(a, b, parities)``, memoised across groupings in this process.

    A verdict depends only on the two contents (their hashes) and the verification
    thresholds, so grouping the same catalog again — another tier, a changed hash threshold,
    the GUI after a cleanup — reuses it instead of decoding the photos again. At most
    :data:`VERDICT_MEMO` verdicts are kept (least recently used dropped; a few hundred bytes
    each).
    """
    key = (a, b, parities, th.min_inliers, th.max_moved, th.max_changed)
    verdict = _VERDICTS.get(key)
    if verdict is None:
        # The pair was already judged the other way round (the first keeper did not take the
        # second, which now keeps its own group): a rejection holds both ways.
        reverse = _VERDICTS.get((b, a, parities, *key[3:]))
        if reverse is not None and reverse.status != "copy":
            verdict = reverse
    if verdict is None:
        verdict = verifier.verify(a, b, parities)
        _NEW_VERDICTS.append(key)
    else:
        verifier.reused += 1
    _VERDICTS[key] = verdict
    _VERDICTS.move_to_end(key)
    if len(_VERDICTS) > VERDICT_MEMO:
        _VERDICTS.popitem(last=False)
    return verdict


def _remembered(a: str, b: str, th: Thresholds) -> bool:
    """True when a verdict on this pair (either order, either parity) is remembered."""
    rest = (th.min_inliers, th.max_moved, th.max_changed)
    return any(
        (x, y, parities, *rest) in _VERDICTS
        for x, y in ((a, b), (b, a))
        for parities in ((False,), (True, False))
    )


def _verdict_key_text(key: tuple[Any, ...]) -> str:
    return json.dumps([VERIFY_VERSION, *key])


def load_verdicts(catalog: Catalog) -> int:
    """Bring the verdicts stored in the catalog into this process's memo.

    Verification decodes both photos of a pair (tens of milliseconds); storing its verdicts
    makes every later grouping — a new app session, another tier — cost nothing for pairs
    already judged. Verdicts of another algorithm version are ignored. Returns how many loaded.
    """
    from photosim.core.dedup.verify import Verdict

    loaded = 0
    for key_text, verdict_text in catalog.verifications():
        try:
            version, a, b, parities, *rest = json.loads(key_text)
            data = json.loads(verdict_text)
        except (ValueError, TypeError):
            continue
        if version != VERIFY_VERSION:
            continue
        key = (a, b, tuple(parities), *rest)
        if key not in _VERDICTS:
            _VERDICTS[key] = Verdict(data["status"], data.get("reason", ""),
                                     data.get("evidence", {}), 0.0)
            loaded += 1
    while len(_VERDICTS) > VERDICT_MEMO:
        _VERDICTS.popitem(last=False)
    return loaded


def save_verdicts(catalog: Catalog, keys: Iterable[tuple[Any, ...]]) -> None:
    """Store the memo's verdicts of ``keys`` in the catalog (see :func:`load_verdicts`)."""
    rows = []
    for key in keys:
        verdict = _VERDICTS.get(key)
        if verdict is not None:
            data = {"status": verdict.status, "reason": verdict.reason,
                    "evidence": verdict.evidence}
            rows.append((_verdict_key_text(key), json.dumps(data, default=float)))
    if rows:
        catalog.put_verifications(rows)


def forget_verdicts() -> None:
    """Drop the verification verdicts remembered in this process (not those stored in a
    catalog, see :func:`load_verdicts`)."""
    _VERDICTS.clear()
    _NEW_VERDICTS.clear()


def _worth_verifying(
    a: Content,
    b: Content,
    cosine: float | None,
    tier: str,
    th: Thresholds,
    support: int | None,
    presumption: tuple[str, dict[str, Any]] | None | bool = False,
) -> bool:
    """False for a loose candidate whose sketches share too few keys to be a copy.

    A pair whose descriptors are as close as copies' (cosine >= ``th.near_cosine``, above
    99 % of other shots of a scene) is always worth it: a copy stretched to another aspect
    ratio shares few sketch keys (its keypoints changed shape) and no hash presumption."""
    from photosim.core.dedup.verify import SKETCH_MIN_SHARED

    if support is None or support >= SKETCH_MIN_SHARED:
        return True
    if cosine is not None and cosine >= th.near_cosine:
        return True
    if presumption is False:
        presumption = match(a, b, cosine, tier, th)
    return presumption is not None and presumption[0] == "near"  # type: ignore[index]


def _support(
    sketches: dict[str, np.ndarray],
    a: Content,
    b: Content,
    source: str,
    th: Thresholds,
    cache: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> int | None:
    """Sketch keys a candidate pair shares, when both sketches are informative.

    Sketch candidates already share enough; for others (hashes, descriptors) the count is
    known only when both photos have at least twice :data:`SKETCH_MIN_SHARED` keypoints in
    their sketch (a tiny or blank thumbnail proves nothing) and the hashes do not point to a
    mirror (keypoint descriptors of a mirrored copy differ): otherwise None.
    """
    from photosim.core.dedup.verify import SKETCH_MIN_SHARED, shared_keys

    if source in ("keypoints", "silhouette"):
        return None
    sa, sb = sketches.get(a.content_hash), sketches.get(b.content_hash)
    if sa is None or sb is None or min(len(sa), len(sb)) < 2 * SKETCH_MIN_SHARED:
        return None
    if _parities(hash_evidence(a, b, None, cache), th)[0]:
        return None
    return shared_keys(sa, sb)


def _parities(evidence: dict[str, Any], th: Thresholds) -> tuple[bool, ...]:
    """Mirror parities of the candidate to try in verification, most likely first.

    Keypoint descriptors are rotation-invariant but not mirror-invariant. When the best hash
    orientation is a mirror and the hashes are close enough to mean it, the mirrored
    candidate is tried first (then the plain one); otherwise only the plain one.
    """
    from photosim.core.dedup.verify import MIRRORING

    index = evidence.get("orientation_index", 0)
    close = evidence["phash_distance"] + evidence["dhash_distance"] <= th.loose_hash_sum
    if index in MIRRORING and close:
        return (True, False)
    return (False,)


def why_line(
    match_tier: str, evidence: dict[str, Any], similar_from: float | None = None
) -> str:
    """Format evidence as the short "why matched" line shown to users.

    Examples: ``"pHash 2/64, dHash 4/64, 50 % scale; 412 keypoints agree"``,
    ``"412 keypoints agree (one transform, nothing moved): rotated 30°, crop keeps 83 %,
    same size; hashes differ (pHash 26/64, dHash 27/64)"``, ``"same scene, another shot:
    cosine 0.871 (similar from 0.80); pHash 30/64, dHash 27/64"``.

    Args:
        match_tier: ``"exact"``, ``"near"`` or ``"similar"``.
        evidence: The pair's evidence (:func:`hash_evidence` and verification keys).
        similar_from: The similar tier's cosine threshold, named in a similar match's line.
    """
    if match_tier == "exact":
        return "identical bytes (same xxh3-128 content hash)"
    hashes = f"pHash {evidence['phash_distance']}/64, dHash {evidence['dhash_distance']}/64"
    if match_tier == "similar" and "cosine" in evidence:
        floor = f" (similar from {similar_from:.2f})" if similar_from is not None else ""
        line = f"same scene, another shot: cosine {evidence['cosine']:.3f}{floor}; {hashes}"
        return line + (f"; {evidence['capture']}" if "capture" in evidence else "")
    if evidence.get("source") == "silhouette":
        hashes += " of the alpha silhouette"
    orientation = f" {evidence['orientation']}" if "orientation" in evidence else ""
    scale = evidence.get("scale", 1.0)
    size = f"{scale * 100:.0f} % scale" if scale < 0.995 else "same size"
    verified = evidence.get("verification") == "copy"
    parts: list[str] = []
    if verified and evidence.get("band") == "loose":
        parts.append(f"{evidence['inliers']} keypoints agree")
        parts += _geometry_words(evidence)
        parts.append(size)
        if "cosine" in evidence:
            parts.append(f"cosine {evidence['cosine']:.3f}")
        parts.append(f"hashes differ ({hashes})")
        return ", ".join(parts)
    parts.append(hashes + orientation)
    if "cosine" in evidence:
        parts.append(f"cosine {evidence['cosine']:.3f}")
    parts.append(size)
    if evidence.get("aspect_difference", 0) > 0.01:
        parts.append(f"aspect differs {evidence['aspect_difference'] * 100:.0f} %")
    line = ", ".join(parts)
    if verified:
        extra = _geometry_words(evidence)
        line += f"; {evidence['inliers']} keypoints agree" + (
            f" ({', '.join(extra)})" if extra else ""
        )
    elif evidence.get("verification") == "unknown":
        line += f"; not verified ({evidence.get('verification_reason', 'no evidence')})"
    return line


def _geometry_words(evidence: dict[str, Any]) -> list[str]:
    words: list[str] = []
    if evidence.get("mirrored"):
        words.append("mirrored")
    rotation = float(evidence.get("rotation", 0.0))
    if abs(rotation) >= 0.5:
        words.append(f"rotated {abs(rotation):.0f}°")
    crop = float(evidence.get("crop", 1.0))
    if crop < 0.97:
        words.append(f"crop keeps {crop * 100:.0f} %")
    if "perspective" in evidence:
        words.append(f"perspective changed {float(evidence['perspective']) * 100:.0f} %")
    aniso = float(evidence.get("anisotropy", 1.0))
    if max(aniso, 1 / aniso) > 1.03:
        words.append(f"stretched {max(aniso, 1 / aniso):.2f}x")
    if float(evidence.get("changed", 0.0)) >= EDITED_FRACTION:
        words.append(f"{evidence['changed'] * 100:.0f} % edited")
    if float(evidence.get("tone", 0.0)) >= TONE_EDIT:
        words.append(f"brightness or contrast changed, {evidence['tone']:.0f} levels")
    return words


def load_contents(catalog: Catalog) -> dict[str, Content]:
    """Decoded photos of the catalog grouped by content hash, best copy first."""
    by_hash: dict[str, list[Photo]] = defaultdict(list)
    for photo in catalog.photos():
        if photo.content_hash:
            by_hash[photo.content_hash].append(photo)
    return {h: Content(h, rank(ps) if len(ps) > 1 else ps) for h, ps in by_hash.items()}


def _knn_pairs(
    catalog: Catalog,
    model: str,
    contents: dict[str, Content],
    query_hashes: list[str],
    queries: np.ndarray,
    k: int,
    min_similarity: float,
    found: dict[str, dict[str, float]],
) -> None:
    """Add ``query hash -> {neighbour hash: similarity}`` (symmetric) from one index."""
    index = VectorIndex.open(catalog, model)
    if index is None or not len(queries):
        return
    label_hash = {label: h for h, label in catalog.embedding_ids_by_hash(model).items()}
    labels, sims = index.knn(queries, k + 1, catalog=catalog)
    for query_hash, row_labels, row_sims in zip(query_hashes, labels, sims):
        for label, sim in zip(row_labels.tolist(), row_sims.tolist()):
            other = label_hash.get(label)
            if other is None or other == query_hash or other not in contents:
                continue
            if sim >= min_similarity and sim > found[query_hash].get(other, -2.0):
                found[query_hash][other] = sim
                found[other][query_hash] = sim


def _descriptor_neighbours(
    catalog: Catalog, model: str, contents: dict[str, Content], k: int, min_similarity: float
) -> dict[str, dict[str, float]]:
    """Candidates from the CNN descriptor index: ``hash -> {other hash: cosine}``."""
    found: dict[str, dict[str, float]] = defaultdict(dict)
    by_hash = catalog.embedding_ids_by_hash(model)
    labels = [by_hash[h] for h in contents if h in by_hash]
    for start in range(0, len(labels), _QUERY_CHUNK):
        _, hashes, vectors = catalog.embeddings(model, ids=labels[start : start + _QUERY_CHUNK])
        _knn_pairs(catalog, model, contents, hashes, vectors, k, min_similarity, found)
    return found


def _hash_neighbours(
    contents: dict[str, Content],
    catalog: Catalog,
    k: int,
    min_similarity: float,
    only: Iterable[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Candidates from the hash index, queried with every orientation of every content (of
    the ``only`` contents, when given)."""
    found: dict[str, dict[str, float]] = defaultdict(dict)
    items = list(contents.values()) if only is None else [contents[h] for h in only]
    for start in range(0, len(items), _QUERY_CHUNK):
        chunk = items[start : start + _QUERY_CHUNK]
        hashes = [c.content_hash for c in chunk for _ in range(len(c.orientations))]
        codes = np.concatenate([c.orientations for c in chunk])
        queries = hash_vectors(codes[:, 0], codes[:, 1])
        _knn_pairs(catalog, HASH_MODEL, contents, hashes, queries, k, min_similarity, found)
    return found


def _graph_neighbours(
    catalog: Catalog,
    model: str,
    contents: dict[str, Content],
    k: int,
    min_similarity: float,
    skip_rows: set[str] | frozenset[str] = frozenset(),
) -> dict[str, dict[str, float]] | None:
    """Candidates read from the stored k-nearest-neighbour graph (see
    :mod:`photosim.core.index.graph`): ``hash -> {other hash: similarity}``, symmetric.

    Rows the scan did not write yet (an older catalog, a cancelled scan) are added first.
    Rows of ``skip_rows`` contents are ignored (their queries differ from their stored codes).

    Returns:
        The candidates, or None when the graph does not hold what ``k`` and
        ``min_similarity`` ask for (the caller then queries the index).
    """
    if not graph.covers(model, k, min_similarity):
        return None
    graph.update_graph(catalog, model)
    rows, neighbours, sims = graph.read_edges(catalog, model, min_similarity)
    # Labels -> positions among the contents' labels (-1: a deleted vector or a content
    # not grouped), then one entry per unordered pair with its best similarity.
    by_hash = catalog.embedding_ids_by_hash(model)
    hashes = [h for h in contents if h in by_hash and h not in skip_rows]
    skipped = [h for h in skip_rows if h in contents and h in by_hash]
    known = np.array([by_hash[h] for h in hashes + skipped], np.int64)
    sorter = np.argsort(known)
    sorted_known = known[sorter]

    def position(labels: np.ndarray) -> np.ndarray:
        if not len(known):
            return np.full(len(labels), -1, np.int64)
        at = np.searchsorted(sorted_known, labels).clip(0, len(known) - 1)
        return np.where(sorted_known[at] == labels, sorter[at], -1)

    x, y = position(rows), position(neighbours)
    # Rows of skipped contents are ignored; edges *to* them are kept.
    keep = (x >= 0) & (x < len(hashes)) & (y >= 0) & (x != y)
    x, y, sims = x[keep], y[keep], sims[keep]
    lo, hi = np.minimum(x, y), np.maximum(x, y)
    order = np.lexsort((-sims, hi, lo))
    lo, hi, sims = lo[order], hi[order], sims[order]
    first = np.ones(len(lo), bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    names = hashes + skipped
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for a, b, sim in zip(lo[first].tolist(), hi[first].tolist(), sims[first].tolist()):
        found[names[a]][names[b]] = sim
        found[names[b]][names[a]] = sim
    return found


def _local_candidates(
    catalog: Catalog,
    contents: dict[str, Content],
    verifier: Any,
    k: int,
    seconds: dict[str, float],
) -> tuple[list[tuple[str, str]], set[str], dict[str, np.ndarray]]:
    """Keypoint-sketch candidates, and alpha silhouettes for blank transparent images.

    Sketches come from the stored thumbnails (cached beside the catalog, see
    :class:`photosim.core.dedup.verify.SketchCache`). A content whose thumbnail is (almost) blank
    and whose format can carry transparency is decoded; if it has an alpha silhouette, its
    hashes and sketch are replaced by the silhouette's (:attr:`Content.silhouette`).

    Returns:
        ``(sketch pairs, hashes of contents now described by their silhouette, sketch by
        content hash)``.
    """
    from PIL import Image

    from photosim.core.dedup import verify

    started = time.perf_counter()
    cache = verify.SketchCache(catalog.path.parent / f"{catalog.path.stem}{SKETCH_SUFFIX}")
    hashes = list(contents)
    # Sketch what the cache lacks (and recheck near-empty sketches of formats with alpha:
    # they may be blank logos), a chunk of thumbnails at a time on all cores. SQLite stays on
    # this thread.
    todo = [
        h for h in hashes
        if (codes := cache.get(h)) is None
        or (len(codes) < verify.SKETCH_MIN_SHARED and _alpha_format(contents[h]))
    ]
    blank: set[str] = set()
    for start in range(0, len(todo), _SKETCH_CHUNK):
        chunk = todo[start : start + _SKETCH_CHUNK]
        jpegs = [catalog.thumbnail(h) for h in chunk]
        for h, (codes, is_blank) in zip(chunk, verify.parallel(verify.sketch_thumbnail, jpegs)):
            cache.put(h, codes)
            if is_blank:
                blank.add(h)
    sketches: list[np.ndarray] = []
    silhouettes: set[str] = set()
    for h in hashes:
        content = contents[h]
        codes = cache.get(h)
        if h in blank and _alpha_format(content):
            view = verifier.view(h)
            if view is not None and view.silhouette:
                silhouettes.add(h)
                ink = Image.fromarray(view.grey)
                content.silhouette = np.array(orientation_hashes(ink), dtype=np.int64)
                codes = verify.sketch_codes(view.grey)
        sketches.append(codes if codes is not None else np.zeros(0, np.uint64))
    cache.save(hashes)
    pairs = [(hashes[p.a], hashes[p.b]) for p in verify.sketch_candidates(sketches, k)]
    pairs += _detail_candidates(catalog, hashes, silhouettes, k)
    seconds["sketch"] = time.perf_counter() - started
    return pairs, silhouettes, dict(zip(hashes, sketches))


def _detail_candidates(
    catalog: Catalog, hashes: list[str], silhouettes: set[str], k: int
) -> list[tuple[str, str]]:
    """Candidate pairs from the detail sketches the scan stored (see
    :func:`photosim.core.dedup.verify.detail_sketch`); a pair the thumbnail sketches found
    too is recorded once (:meth:`_Candidates.add`).

    A crop keeping a third of a photo, or a photo pasted at half its width into a poster,
    shares too few keypoints with it at thumbnail size; at the working size of verification
    it shares enough. Contents scanned before detail sketches existed have none (their
    thumbnail sketch still takes part). Each sketch is cut to its strongest
    ``DETAIL_BUDGET / contents`` codes, so that the inverted file stays within about 1.2 GB;
    above 50,000 contents (fewer codes per photo than a thumbnail sketch holds) the detail
    pass is skipped.
    """
    from photosim.core.dedup import verify

    wanted = [h for h in hashes if h not in silhouettes]
    cap = min(verify.DETAIL_FEATURES, verify.DETAIL_BUDGET // max(1, len(wanted)))
    if cap < verify.SKETCH_FEATURES:
        logger.info("detail sketches skipped: %d contents exceed the budget", len(wanted))
        return []
    detail = catalog.sketches(wanted)
    if len(detail) < 2:
        return []
    keys = [h for h in hashes if h in detail]
    found = verify.sketch_candidates([detail[h][:cap] for h in keys], k,
                                     max_posting=verify.DETAIL_MAX_POSTING)
    return [(keys[p.a], keys[p.b]) for p in found]


def _alpha_format(content: Content) -> bool:
    from photosim.core.dedup.verify import ALPHA_FORMATS

    return (content.best.format or "") in ALPHA_FORMATS


def _new_verifier(contents: dict[str, Content], th: Thresholds) -> Any | None:
    """A verifier for these contents, or None when OpenCV is not installed."""
    try:
        from photosim.core.dedup.verify import Verifier
    except ImportError as exc:  # pragma: no cover - opencv is a dependency
        logger.warning("local-feature verification unavailable: %s", exc)
        return None
    paths = {h: (c.best.path, c.best.format) for h, c in contents.items()}
    return Verifier(paths, th.min_inliers, th.max_moved, th.max_changed)


def find_duplicates(
    catalog: Catalog,
    tier: str = "near",
    thresholds: Thresholds | None = None,
    model: str | None = None,
    k: int = 16,
) -> GroupingResult:
    """Group the catalog's photos into duplicate groups of one tier.

    Three steps: the evidence available (:func:`_evidence_kind`), candidate pairs from the
    stored neighbour graph, the indexes and keypoint sketches (:func:`_collect_candidates`),
    then groups around keepers, best copy first, each candidate judged against the keeper
    itself (:func:`_assign_groups`). A :class:`GroupingSession` keeps the first two in memory
    so that another threshold re-groups without reading the catalog again.

    With ``thresholds.verify`` (the default) candidates are checked with local features:
    photos that have a candidate are decoded again (once per call, on all cores), keypoint
    sketches of new contents are computed from their thumbnails and cached beside the
    catalog (``<catalog>.sketch.npz``, a rebuildable cache like the index files), and
    verdicts are remembered for the rest of the process (:func:`forget_verdicts`).

    Args:
        catalog: Open catalog.
        tier: ``"exact"``, ``"near"`` or ``"similar"``.
        thresholds: Tier thresholds (defaults when None).
        model: Descriptor model id; None uses the model of the last scan, if any.
        k: Neighbours per content fetched from each index (and from the sketch index).

    Returns:
        The groups and how they were found.

    Raises:
        DuplicatesError: Unknown tier, or ``similar`` without descriptors.
    """
    return GroupingSession(catalog, tier, model, k).group(thresholds).built()


class GroupingSession:
    """One tier's grouping of a catalog, kept in memory for fast re-grouping.

    The first :meth:`group` reads the photos and the candidate pairs (the stored neighbour
    graph, keypoint sketches) and measures each pair's threshold-independent evidence; later
    calls with other thresholds reuse all of it, re-reading only the "not duplicates"
    verdicts, so a threshold slider can follow the mouse. Thresholds looser than those the
    candidates were collected with collect them again. The catalog must not change in
    between: open a new session after a scan or a cleanup.

    Args:
        catalog: Open catalog (used from this thread only).
        tier: ``"exact"``, ``"near"`` or ``"similar"``.
        model: Descriptor model id; None uses the model of the last scan, if any.
        k: Neighbours per content fetched from each index.
        lazy: Without verification, decide pairs on cached numbers and build each group's
            members when first read (the fast path); False builds every member at once, as
            a grouping with verification does (the reference the fast path is tested
            against).

    Raises:
        DuplicatesError: Unknown tier.
    """

    def __init__(
        self,
        catalog: Catalog,
        tier: str = "near",
        model: str | None = None,
        k: int = 16,
        lazy: bool = True,
    ) -> None:
        if tier not in TIERS:
            raise DuplicatesError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
        self.catalog, self.tier, self.k, self.lazy = catalog, tier, k, lazy
        self._model = model
        self._contents: dict[str, Content] | None = None
        self._order: list[Content] = []
        self._found: _Candidates | None = None
        self._narrowed: dict[tuple[float, float | None, bool], _Candidates] = {}
        self._table: _PairTable | None = None
        # The learned similarity of the similar tier: None until loaded, False when the
        # library has no learned projection.
        self._scenes: _Scenes | None | bool = None

    def group(self, thresholds: Thresholds | None = None) -> GroupingResult:
        """Group with ``thresholds`` (defaults when None); see :func:`find_duplicates`.

        Raises:
            DuplicatesError: ``similar`` without descriptors.
        """
        with _collector_paused():
            return self._group(thresholds)

    def _group(self, thresholds: Thresholds | None) -> GroupingResult:
        started = time.perf_counter()
        th = thresholds or Thresholds()
        if self._contents is None:
            self._contents = load_contents(self.catalog)
            self._order = sorted(self._contents.values(), key=lambda c: keeper_key(c.best))
        contents = self._contents
        evidence, model, notes = _evidence_kind(
            self.catalog, self.tier, th, self._model or self.catalog.get_meta("model")
        )
        seconds = dict.fromkeys(("candidates", "sketch", "decode", "keypoints", "verify"), 0.0)
        verifier = _new_verifier(contents, th) if self.tier != "exact" and th.verify else None
        if verifier is not None:
            load_verdicts(self.catalog)
        found, floors = _Candidates(), (2.0, None, False)
        if self.tier == "similar" and model and self._scenes is None:
            self._scenes = _Scenes.load(self.catalog, model)
        scenes = self._scenes or None
        if self.tier != "exact":
            floors = _floors(self.tier, th, model, verifier is not None, scenes is not None)
            if self._found is None or not self._found.covers(floors):
                self._found = _collect_candidates(
                    self.catalog, contents, self.tier, th, model, verifier, self.k, seconds,
                    scenes is not None,
                )
                self._narrowed = {self._found.floors: self._found}
                self._table = None
        verdicts = self.catalog.not_duplicate_pairs()
        if verifier is None and self.lazy:  # hashes and descriptors alone: the fast path
            if self._table is None and self._found is not None:
                self._table = _PairTable(self._found)
            tally = _assign_presumed(
                self._order, contents, self._table, floors, self.tier, th, verdicts, scenes)
            if self._table is not None:
                found.counts = self._table.view(floors).counts
        else:
            if self._found is not None:
                if floors not in self._narrowed:
                    self._narrowed[floors] = self._found.narrowed(floors)
                found = self._narrowed[floors]
            tally = _assign_groups(
                self._order, contents, found, self.tier, th, verifier, verdicts, scenes)
        if verifier is not None:
            seconds["decode"] = verifier.decode_seconds
            seconds["keypoints"] = verifier.keypoint_seconds
            seconds["verify"] = verifier.pair_seconds
        if _NEW_VERDICTS:
            save_verdicts(self.catalog, _NEW_VERDICTS)
            _NEW_VERDICTS.clear()
        seconds["total"] = time.perf_counter() - started
        return GroupingResult(
            self.tier,
            tally.groups,
            evidence + ("+keypoints" if verifier is not None else ""),
            model,
            notes,
            tally.comparisons,
            len(contents),
            local_features=verifier is not None,
            candidates=found.counts,
            verified=verifier.pairs if verifier is not None else 0,
            remembered=verifier.reused if verifier is not None else 0,
            confirmed=tally.confirmed,
            rebutted=len(tally.rebutted),
            decoded=verifier.decoded if verifier is not None else 0,
            seconds={name: round(value, 4) for name, value in seconds.items()},
        )


def _evidence_kind(
    catalog: Catalog, tier: str, th: Thresholds, model: str | None
) -> tuple[str, str | None, list[str]]:
    """``(evidence, descriptor model or None, notes)`` of a grouping.

    Raises:
        DuplicatesError: The similar tier without descriptors.
    """
    notes: list[str] = []
    has_descriptors = bool(model) and catalog.embedding_stats(model)[0] > 0  # type: ignore[arg-type]
    if tier == "exact":
        return "bytes", model, notes
    if has_descriptors:
        return "descriptors+hashes", model, notes
    if tier == "similar":
        raise DuplicatesError(
            "the similar tier needs CNN descriptors, and this catalog has none: scan again "
            "with model weights available (see `photosim scan --help`)"
        )
    how = (
        "perceptual hashes and keypoint sketches, verified with keypoints"
        if th.verify else "perceptual hashes alone"
    )
    notes.append(
        f"no CNN descriptors in this catalog: near-duplicates are found by {how} "
        "(scan with model weights for descriptor evidence)"
    )
    return "hashes", None, notes


@dataclass
class _Candidates:
    """Candidate pairs of a grouping, threshold-independent once collected.

    Attributes:
        pairs: ``content -> {other content: descriptor cosine or None}``, both directions.
        source: Where each pair was first found (a key of :data:`SOURCES`).
        counts: Pairs per source.
        sketches: Keypoint sketches by content (for the support of a keypoint candidate).
    """

    pairs: dict[str, dict[str, float | None]] = field(default_factory=lambda: defaultdict(dict))
    source: dict[frozenset[str], str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    sketches: dict[str, np.ndarray] = field(default_factory=dict)
    floors: tuple[float, float | None, bool] = (2.0, None, False)
    events: list[tuple[str, str, float | None, str]] = field(default_factory=list)
    evidence: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def add(
        self, a: str, b: str, cosine: float | None, kind: str, similarity: float | None = None
    ) -> None:
        """Record the pair ``{a, b}`` (a known cosine replaces an unknown one).

        Args:
            a: A content hash.
            b: Another.
            cosine: Descriptor cosine similarity (descriptor candidates), else None.
            kind: The source (:data:`SOURCES`).
            similarity: The hash similarity of a hash candidate (what its floor filters).
        """
        self.events.append((a, b, cosine if cosine is not None else similarity, kind))
        key = frozenset((a, b))
        if key not in self.source:
            self.source[key] = kind
            self.counts[kind] += 1
        for x, y in ((a, b), (b, a)):
            if cosine is not None or y not in self.pairs[x]:
                self.pairs[x][y] = cosine

    def covers(self, floors: tuple[float, float | None, bool]) -> bool:
        """True when these candidates include every pair that ``floors`` would collect."""
        hash_floor, cos_floor, sketches = floors
        mine_hash, mine_cos, mine_sketches = self.floors
        return (
            mine_hash <= hash_floor
            and (cos_floor is None or (mine_cos is not None and mine_cos <= cos_floor))
            and (mine_sketches or not sketches)
        )

    def narrowed(self, floors: tuple[float, float | None, bool]) -> _Candidates:
        """The candidates that collecting with the tighter ``floors`` would have found, in the
        same order (the neighbour graph is filtered by a floor, never cut by it)."""
        hash_floor, cos_floor, sketches = floors
        out = _Candidates(sketches=self.sketches, floors=floors, evidence=self.evidence)
        for a, b, value, kind in self.events:
            if kind == "descriptors":
                if cos_floor is not None and value is not None and value >= cos_floor:
                    out.add(a, b, value, kind)
            elif value is None:  # a keypoint-sketch pair
                if not sketches:
                    continue
                out.add(a, b, None, kind)
            elif value >= hash_floor:
                out.add(a, b, None, kind, value)
        return out


def _floors(
    tier: str, th: Thresholds, model: str | None, verifying: bool, learned: bool = False
) -> tuple[float, float | None, bool]:
    """``(hash similarity floor, descriptor cosine floor or None, keypoint sketches?)`` of the
    candidates a grouping with these thresholds collects (``learned``: the similar tier has a
    learned similarity, which may lift a pair the plain cosine leaves below the similar
    threshold: every stored neighbour is a candidate)."""
    hash_sum = max(th.loose_hash_sum, th.near_hash_sum) if verifying else th.near_hash_sum
    cos_floor = None
    if model:
        cos_floor = th.similar_cosine if tier == "similar" else th.near_cosine
        if verifying:
            cos_floor = min(cos_floor, th.loose_cosine)
        if learned and tier == "similar":
            cos_floor = min(cos_floor, graph.MIN_COSINE)
    return graph.hash_floor(hash_sum), cos_floor, verifying and th.keypoint_candidates


def _collect_candidates(
    catalog: Catalog,
    contents: dict[str, Content],
    tier: str,
    th: Thresholds,
    model: str | None,
    verifier: Any,
    k: int,
    seconds: dict[str, float],
    learned: bool = False,
) -> _Candidates:
    """Candidate pairs from keypoint sketches, the hash graph and the descriptor graph."""
    floors = _floors(tier, th, model, verifier is not None, learned)
    hash_floor, cos_floor, use_sketches = floors
    found = _Candidates(floors=floors)
    sketch_pairs: list[tuple[str, str]] = []
    silhouettes: set[str] = set()
    if use_sketches:
        sketch_pairs, silhouettes, found.sketches = _local_candidates(
            catalog, contents, verifier, k, seconds
        )
    query_started = time.perf_counter()
    # Candidates come from the graph the scan stored; contents described by their alpha
    # silhouette query the hash index with the silhouette's codes.
    hash_found = _graph_neighbours(catalog, HASH_MODEL, contents, k, hash_floor, silhouettes)
    if hash_found is None:
        hash_found = _hash_neighbours(contents, catalog, k, hash_floor)
    elif silhouettes:
        extra = _hash_neighbours(contents, catalog, k, hash_floor, silhouettes)
        for h, others in extra.items():
            for other, sim in others.items():
                if sim > hash_found[h].get(other, -2.0):
                    hash_found[h][other] = hash_found[other][h] = sim
    for h, others in hash_found.items():
        for other, sim in others.items():
            kind = "silhouette" if {h, other} & silhouettes else "hashes"
            found.add(h, other, None, kind, sim)
    for a, b in sketch_pairs:
        found.add(a, b, None, "silhouette" if {a, b} & silhouettes else "keypoints")
    if model and cos_floor is not None:
        neighbours = _graph_neighbours(catalog, model, contents, k, cos_floor)
        if neighbours is None:
            neighbours = _descriptor_neighbours(catalog, model, contents, k, cos_floor)
        for h, others in neighbours.items():
            for other, sim in others.items():
                found.add(h, other, sim, "descriptors")
    seconds["candidates"] = time.perf_counter() - query_started
    return found


@dataclass
class _Tally:
    """What :func:`_assign_groups` made and counted."""

    groups: list[Group] = field(default_factory=list)
    comparisons: int = 0
    confirmed: int = 0
    rebutted: set[frozenset[str]] = field(default_factory=set)


def _assign_groups(
    order: list[Content],
    contents: dict[str, Content],
    found: _Candidates,
    tier: str,
    th: Thresholds,
    verifier: Any,
    verdicts: set[tuple[str, str]],
    scenes: _Scenes | None = None,
) -> _Tally:
    """Groups around keepers: contents in ``order`` (best copy first, see :func:`keeper_key`),
    each candidate judged against the keeper itself (groups never chain); contents already in
    a group are not considered again."""
    tally = _Tally()
    ctx = _Judging(contents, found, tier, th, verifier, verdicts, scenes)
    for content in order:
        h = content.content_hash
        if h in ctx.assigned or (len(content.photos) < 2 and not found.pairs.get(h)):
            continue
        _verify_ahead(content, ctx)
        members, joined = _members_of(content, ctx, tally)
        if len(members) < 2:
            continue
        edited = _edited(members)
        members = _ordered(members)
        if edited:
            anchored = _unedited_anchor(content, joined, edited, ctx, tally)
            if anchored is not None:
                members, joined = anchored
        for _ in range(_ANCHOR_TRIES):  # a framed copy may frame the photo in turn (a meme
            anchored = _framed_anchor(members, joined, ctx, tally)  # pasted into a poster)
            if anchored is None:
                break
            members, joined = anchored
        ctx.assigned.update(joined)
        loosest = max((m.match for m in members[1:]), key=_TIER_RANK.__getitem__)
        tally.groups.append(Group(0, loosest, members))
    _number(tally.groups)
    return tally


def _is_edit(evidence: dict[str, Any]) -> bool:
    """True when verification found an edit between the two photos of a pair: a region of
    at least :data:`EDITED_FRACTION` changed (an overlay, a retouch), the tone of the
    whole picture moved by :data:`TONE_EDIT` grey levels or more (brightness, contrast,
    curves), or one is a perspective warp of the other (a keystone corrected, a skew: only
    such pairs carry ``perspective``). Either side may be the edited one."""
    return (float(evidence.get("changed", 0.0)) >= EDITED_FRACTION
            or float(evidence.get("tone", 0.0)) >= TONE_EDIT
            or "perspective" in evidence)


def _edited(members: list[Member]) -> list[str]:
    """Contents of the members that verification found edited against the keeper
    (:func:`_is_edit`)."""
    out: list[str] = []
    for m in members[1:]:
        h = m.photo.content_hash
        if _is_edit(m.evidence) and h not in out:
            out.append(h)  # type: ignore[arg-type]
    return out


class _Scenes:
    """The similar tier's learned similarity (:mod:`photosim.core.index.learned`): each
    content's codes, and a pair's projected cosine from its plain cosine in O(r)."""

    def __init__(self, projection: Any, codes: dict[str, np.ndarray]) -> None:
        self.projection, self.codes = projection, codes

    @classmethod
    def load(cls, catalog: Catalog, model: str) -> _Scenes | bool:
        """The library's learned similarity for ``model``, or False when it has none."""
        from photosim.core.index import learned

        projection = learned.load(catalog, model)
        if projection is None:
            return False
        return cls(projection, learned.library_codes(catalog, model, projection))

    def cosine(self, a: str, b: str, cosine: float | None) -> float | None:
        """The learned similarity of contents ``a`` and ``b`` whose plain cosine is
        ``cosine`` (None when the cosine or either content's descriptor is unknown)."""
        ca, cb = self.codes.get(a), self.codes.get(b)
        if cosine is None or ca is None or cb is None:
            return None
        raw = np.array([cosine], np.float32)
        return float(self.projection.cosines(raw, ca[None, :], cb[None, :])[0])


@dataclass
class _Judging:
    """What the steps of one grouping's assignment share.

    Attributes:
        contents: Contents by hash.
        found: The candidate pairs.
        tier: Loosest tier accepted.
        th: Thresholds.
        verifier: A :class:`photosim.core.dedup.verify.Verifier`, or None.
        verdicts: The user's "not duplicates" pairs, each ``(smaller hash, larger hash)``.
        scenes: The learned similarity of the similar tier, or None.
        assigned: Contents already in a group.
    """

    contents: dict[str, Content]
    found: _Candidates
    tier: str
    th: Thresholds
    verifier: Any
    verdicts: set[tuple[str, str]]
    scenes: _Scenes | None = None
    assigned: set[str] = field(default_factory=set)


def _regrouped(
    candidate: Content, ctx: _Judging, tally: _Tally, mates: Sequence[str] = ()
) -> tuple[list[Member], list[str], _Tally]:
    """The group ``candidate`` would keep as keeper: ``(members, contents joined, its
    tally)``; the comparisons count in ``tally`` (the rest only if the caller adopts it).
    ``mates`` (the contents of the group it would take over) are judged against it too,
    candidates or not: a copy the old keeper's candidates found may be missing from the new
    keeper's (an emoji pasted over the original hides it from the original's nearest
    neighbours, not from the meme's). A flat content (no structure) keeps no group:
    ``([], [], empty tally)``."""
    scratch = _Tally()
    if candidate.flat:
        return [], [], scratch
    _verify_ahead(candidate, ctx)
    others, rejoined = _members_of(candidate, ctx, scratch, mates)
    tally.comparisons += scratch.comparisons
    return others, rejoined, scratch


def _unedited_anchor(
    content: Content,
    joined: list[str],
    edited: list[str],
    ctx: _Judging,
    tally: _Tally,
) -> tuple[list[Member], list[str]] | None:
    """The same group kept by another copy, when the keeper is the edited one.

    Verification says that a region or the tone differs between two copies
    (:func:`_is_edit`), not which of them was edited. When copies differ from the keeper by
    an edit, the keeper may be the edited copy (a caption or watermark added to the
    original, or its brightness raised, saved as a larger file) and they the unedited ones.
    Each of the best (by :func:`keeper_key`) of those copies is tried as the keeper: it
    keeps the group if every content still matches it and either fewer differ from it by an
    edit (the copy the others match without an edit is the original), or as
    few differ and it gathers more copies (an edit that changed the hashes hides the other
    copies from the edited keeper: they would split into a group of their own).

    Returns:
        ``(members ordered, contents joined)`` of the group around the new keeper, or None
        to keep the group as it is.
    """
    tried = sorted((ctx.contents[h] for h in edited), key=lambda c: keeper_key(c.best))
    for candidate in tried[:_ANCHOR_TRIES]:
        others, rejoined, scratch = _regrouped(candidate, ctx, tally, joined)
        still = len(_edited(others))
        if not set(joined) <= set(rejoined) or still > len(edited) or (
            still == len(edited) and len(rejoined) == len(joined)
        ):
            continue
        tally.confirmed += scratch.confirmed
        tally.rebutted |= scratch.rebutted
        others = _ordered(others)
        n = len(edited)
        others[0].why = (
            f"kept: the others match it without an edit ({n} "
            f"{'differs' if n == 1 else 'differ'} from {os.path.basename(content.best.path)} "
            "by an edited region or tone)"
        )
        return others, rejoined
    return None


def _framed_picture(keeper: Member, member: Member) -> bool:
    """True when the keeper shows the member's picture inside a frame of its own.

    Padding, black corners of a rotated copy, a caption bar above a meme, a web page around
    a screenshot, a poster around a pasted photo: verification finds the member's whole
    picture inside the keeper, with its frame a step edge in the keeper (``pasted``, see
    :func:`photosim.core.dedup.verify._pasted`; a crop's frame is not). The keeper then won
    the rule by pixels that are not picture: the member is the photo, unless the keeper
    shows the picture itself with more pixels (picture pixels: the photo's pixels times the
    fraction of its frame that is the shared picture).
    """
    from photosim.core.dedup.verify import PASTED_SIDES

    e = member.evidence
    if e.get("verification") != "copy" or e.get("inner") != "b":
        return False
    if e.get("pasted", 0.0) < PASTED_SIDES:
        return False
    outer = keeper.photo.pixels * float(e.get("inside_a", 1.0))
    inner = member.photo.pixels * float(e.get("inside_b", 1.0))
    return inner >= 0.9 * outer


def _framed_anchor(
    members: list[Member], joined: list[str], ctx: _Judging, tally: _Tally
) -> tuple[list[Member], list[str]] | None:
    """The same group kept by the picture the keeper frames (see :func:`_framed_picture`).

    The best such member (by :func:`keeper_key`) is tried as the keeper: it keeps the group
    when every content still matches it directly (groups never chain).

    Returns:
        ``(members ordered, contents joined)`` of the group around the new keeper, or None
        to keep the group as it is.
    """
    keeper = members[0]
    framed = sorted((m for m in members[1:] if _framed_picture(keeper, m)),
                    key=lambda m: keeper_key(m.photo))
    for member in framed[:_ANCHOR_TRIES]:
        candidate = ctx.contents[member.photo.content_hash]  # type: ignore[index]
        others, rejoined, scratch = _regrouped(candidate, ctx, tally, joined)
        if not set(joined) <= set(rejoined):
            continue
        tally.confirmed += scratch.confirmed
        tally.rebutted |= scratch.rebutted
        others = _ordered(others)
        others[0].why = (
            f"kept: the photo itself; {os.path.basename(keeper.photo.path)} shows it with a "
            "frame, bars or a caption around it"
        )
        return others, rejoined
    return None


def _ordered(members: list[Member]) -> list[Member]:
    """The keeper, then the others best copy first; the keeper's "why" names what it beat."""
    head, rest = members[0], sorted(members[1:], key=lambda m: keeper_key(m.photo))
    # Explain the choice against the best copy of other content (exact copies tie).
    runner_up = next((m for m in rest if m.match != "exact"), rest[0])
    head.why = f"kept: {keeper_reason(head.photo, runner_up.photo)}"
    return [head, *rest]


def _number(groups: list[Group]) -> None:
    """Sort groups largest reclaimable bytes first (then keeper path) and number them."""
    groups.sort(key=lambda g: (-g.reclaimable_bytes, g.keeper.path))
    for number, group in enumerate(groups, 1):
        group.id = number


def _verify_ahead(content: Content, ctx: _Judging) -> None:
    """Decode this keeper and the candidates it will verify, and verify them, on all cores
    (:func:`_members_of` then finds the verdicts ready); nothing without a verifier."""
    if ctx.verifier is None or content.flat:
        return
    contents, found, tier, th = ctx.contents, ctx.found, ctx.tier, ctx.th
    assigned, verdicts, verifier = ctx.assigned, ctx.verdicts, ctx.verifier
    h = content.content_hash
    todo = [
        o for o, cosine in found.pairs.get(h, {}).items()
        if o not in assigned and not contents[o].flat
        and not _captures_differ(content, contents[o])
        and tuple(sorted((h, o))) not in verdicts
        and not _remembered(h, o, th)
        and _worth_verifying(
            content, contents[o], cosine, tier, th,
            _support(found.sketches, content, contents[o], found.source[frozenset((h, o))], th,
                     found.evidence),
        )
    ]
    if todo:
        verifier.prefetch([h, *todo])
        verifier.verify_ahead([
            (h, o, _parities(hash_evidence(content, contents[o], None), th)) for o in todo
        ])


def _members_of(
    content: Content, ctx: _Judging, tally: _Tally, mates: Sequence[str] = ()
) -> tuple[list[Member], list[str]]:
    """The group ``content`` keeps: its own copies and every candidate judged a match.

    ``mates``: contents judged too, as keypoint candidates, when not candidates already
    (see :func:`_regrouped`).

    Returns:
        ``(members, contents joined)``, the keeper first.
    """
    contents, found, tier, th = ctx.contents, ctx.found, ctx.tier, ctx.th
    assigned, verdicts, verifier = ctx.assigned, ctx.verdicts, ctx.verifier
    members = _own_members(content)
    joined = [content.content_hash]
    pairs = found.pairs.get(content.content_hash, {})
    extra = {m: None for m in mates if m != content.content_hash and m not in pairs}
    for other_hash, cosine in [*pairs.items(), *extra.items()]:
        if other_hash in assigned or other_hash in joined:
            continue
        if tuple(sorted((content.content_hash, other_hash))) in verdicts:
            continue
        tally.comparisons += 1
        other = contents[other_hash]
        kind = found.source.get(frozenset((content.content_hash, other_hash)), "keypoints")
        support = _support(found.sketches, content, other, kind, th, found.evidence)
        scene = ctx.scenes.cosine(content.content_hash, other_hash, cosine) if ctx.scenes else None
        result = judge(content, other, cosine, tier, th, verifier, kind, support, found.evidence,
                       scene)
        if result.outcome == "confirmed":
            tally.confirmed += 1
        elif result.outcome == "rebutted":
            tally.rebutted.add(frozenset((content.content_hash, other_hash)))
        if result.tier is None:
            continue
        joined.append(other_hash)
        members += _joined_members(other, result, th)
    return members, joined


def _own_members(content: Content) -> list[Member]:
    """The keeper (the content's best copy) and the content's other copies."""
    members = [Member(content.best, "keeper", "kept: best copy by the keeper rule")]
    members += [
        Member(p, "exact", why_line("exact", {}), {"identical_bytes": True})
        for p in content.photos[1:]
    ]
    return members


def _joined_members(other: Content, result: Judgement, th: Thresholds) -> list[Member]:
    """The photos of a content judged a match, with the pair's evidence and why line."""
    assert result.tier is not None
    evidence = result.evidence
    evidence.pop("orientation_index", None)
    why = why_line(result.tier, evidence, th.similar_cosine)
    return [Member(p, result.tier, why, evidence) for p in other.photos]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a burst of allocations.

    Grouping allocates about one object per photo, candidate pair and group, none of them
    cyclic; with 10^5 photos (and their rows) alive, the full collections this triggers
    scan every live object and more than double the time of a re-group. Reference counting
    still frees everything; the collector runs again afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _PairTable:
    """Collected candidates as arrays, so that other thresholds re-group without rebuilding them.

    Each unordered candidate pair gets an id; its events (every time a source found it, with
    the descriptor cosine or hash similarity) are kept in collection order, so that for any
    floors the pair's source, cosine and presence are those :meth:`_Candidates.narrowed`
    would give. The threshold-independent hash evidence of each directed pair is measured
    once, on first use.

    Args:
        found: Candidates collected by :func:`_collect_candidates`.

    Attributes:
        adjacency: ``content -> [(other content, pair id)]``, every pair on both sides.
        pairs: Number of distinct pairs.
    """

    def __init__(self, found: _Candidates) -> None:
        self.found = found
        ids: dict[tuple[str, str], int] = {}
        pids: list[int] = []
        for a, b, _, _ in found.events:
            pids.append(ids.setdefault((a, b) if a < b else (b, a), len(ids)))
        codes = {kind: i for i, kind in enumerate(SOURCES)}
        self._pid = np.asarray(pids, dtype=np.int64)
        self._kind = np.asarray([codes[e[3]] for e in found.events], dtype=np.int8)
        self._value = np.asarray(
            [np.nan if e[2] is None else e[2] for e in found.events], dtype=np.float64)
        self.pairs = len(ids)
        adjacency: defaultdict[str, list[tuple[str, int]]] = defaultdict(list)
        for (a, b), pid in ids.items():
            adjacency[a].append((b, pid))
            adjacency[b].append((a, pid))
        self.adjacency = dict(adjacency)
        self._views: dict[tuple[float, float | None, bool], _PairView] = {}
        self._evidence: dict[tuple[str, str], tuple[int, int, float, bool, bool]] = {}
        self._keepers: list[tuple[Content, str, bool, list[tuple[str, int]]]] | None = None
        # (photos, bytes) of every content in :meth:`keepers`.
        self.photos: dict[str, tuple[int, int]] = {}

    def keepers(
        self, order: list[Content]
    ) -> list[tuple[Content, str, bool, list[tuple[str, int]]]]:
        """``(content, hash, has copies, candidates)`` of the contents in ``order`` that can
        keep a group (they have copies or candidates), computed once."""
        if self._keepers is None:
            self._keepers = [
                (c, c.content_hash, len(c.photos) > 1, self.adjacency.get(c.content_hash, []))
                for c in order
                if len(c.photos) > 1 or c.content_hash in self.adjacency
            ]
            self.photos = {
                c.content_hash: (len(c.photos), sum(p.size for p in c.photos))
                for c, _, _, _ in self._keepers
            }
        return self._keepers

    def view(self, floors: tuple[float, float | None, bool]) -> _PairView:
        """Which pairs collecting with ``floors`` finds, with their source and cosine.

        Vectorised over the events (a few milliseconds for 10^5 pairs); cached per floors.
        """
        if floors in self._views:
            return self._views[floors]
        hash_floor, cos_floor, sketches = floors
        value = self._value
        descriptor = self._kind == SOURCES.index("descriptors")
        known = ~np.isnan(value)
        with np.errstate(invalid="ignore"):
            passes = ~descriptor & known & (value >= hash_floor)
            if cos_floor is not None:
                passes |= descriptor & (value >= cos_floor)
        if sketches:
            passes |= ~descriptor & ~known
        events = np.flatnonzero(passes)
        # The source is the first event that passes; the cosine the last descriptor event's.
        pids, first = np.unique(self._pid[events], return_index=True)
        kind = np.full(self.pairs, -1, dtype=np.int8)
        kind[pids] = self._kind[events[first]]
        later = events[descriptor[events]][::-1]
        described, last = np.unique(self._pid[later], return_index=True)
        cosine = np.full(self.pairs, np.nan)
        cosine[described] = value[later[last]]
        counts = np.bincount(kind[pids], minlength=len(SOURCES)).tolist()
        view = _PairView(
            passing=(kind >= 0).tolist(),
            source=[SOURCES[k] if k >= 0 else "" for k in kind.tolist()],
            cosine=[None if c != c else c for c in cosine.tolist()],
            counts={name: int(n) for name, n in zip(SOURCES, counts, strict=True)},
        )
        self._views[floors] = view
        return view

    def presumed(
        self, a: Content, b: Content, cosine: float | None, tier: str, th: Thresholds,
        scenes: _Scenes | None = None,
    ) -> str | None:
        """:func:`presumed_tier` of the pair (``a`` the keeper), its hash evidence cached."""
        key = (a.content_hash, b.content_hash)
        measured = self._evidence.get(key)
        if measured is None:
            e = hash_evidence(a, b, None, self.found.evidence)
            measured = (e["phash_distance"], e["dhash_distance"], e["aspect_difference"],
                        "orientation" in e, a.flat or b.flat or _captures_differ(a, b))
            self._evidence[key] = measured
        scene = scenes.cosine(a.content_hash, b.content_hash, cosine) if scenes else None
        return presumed_tier(*measured, cosine, tier, th, scene)


@dataclass
class _PairView:
    """The pairs of a :class:`_PairTable` that one set of floors collects (by pair id).

    Attributes:
        passing: Whether each pair is a candidate.
        source: Its source (:data:`SOURCES`), "" when not a candidate.
        cosine: Its descriptor cosine, or None.
        counts: Candidate pairs per source.
    """

    passing: list[bool]
    source: list[str]
    cosine: list[float | None]
    counts: dict[str, int]


def _assign_presumed(
    order: list[Content],
    contents: dict[str, Content],
    table: _PairTable | None,
    floors: tuple[float, float | None, bool],
    tier: str,
    th: Thresholds,
    verdicts: set[tuple[str, str]],
    scenes: _Scenes | None = None,
) -> _Tally:
    """:func:`_assign_groups` without verification, for a grouping session.

    The same groups, members and evidence, but each pair is decided on cached numbers
    (:meth:`_PairTable.presumed`) and a group's members, with their evidence and why lines,
    are built only when first read (:class:`Group`, :class:`_Members`), so re-grouping 10^5
    photos costs one pass over the keepers and their candidates and a few objects per group.
    """
    tally = _Tally()
    if table is None:
        table = _PairTable(_Candidates())
    view = table.view(floors)
    passing, cosines, presumed = view.passing, view.cosine, table.presumed
    keepers, rank = table.keepers(order), _TIER_RANK
    build, photos, groups = (_Members(contents, table, view, tier, th, scenes), table.photos,
                             tally.groups)
    assigned: set[str] = set()
    joined: list[tuple[str, int, str]] = []
    for content, h, copies, candidates in keepers:
        if h in assigned:
            continue
        for other, pid in candidates:
            if not passing[pid] or other in assigned:
                continue
            if verdicts and ((h, other) if h < other else (other, h)) in verdicts:
                continue
            tally.comparisons += 1
            matched = presumed(content, contents[other], cosines[pid], tier, th, scenes)
            if matched is not None:
                joined.append((other, pid, matched))
        if not (joined or copies):
            continue
        assigned.add(h)
        count, size = photos[h]
        loosest = "exact" if copies else "keeper"
        for other, _, matched in joined:
            assigned.add(other)
            n, b = photos[other]
            count, size = count + n, size + b
            if rank[matched] > rank[loosest]:
                loosest = matched
        best = content.photos[0]
        groups.append(Group(0, loosest, build=build, pending=(content, joined), keeper=best,
                            photos=count, reclaimable=size - best.size))
        joined = []
    _number(groups)
    return tally


class _Members:
    """Builds the members of the groups :func:`_assign_presumed` made, when first read: each
    pair judged again (the same :func:`judge` as the eager path, without verification)."""

    def __init__(
        self,
        contents: dict[str, Content],
        table: _PairTable,
        view: _PairView,
        tier: str,
        th: Thresholds,
        scenes: _Scenes | None = None,
    ) -> None:
        self.contents, self.table, self.view, self.tier, self.th = contents, table, view, tier, th
        self.scenes = scenes

    def __call__(self, pending: tuple[Content, list[tuple[str, int, str]]]) -> list[Member]:
        content, joined = pending
        found, th = self.table.found, self.th
        members = _own_members(content)
        for other_hash, pid, _ in joined:
            other = self.contents[other_hash]
            kind, cosine = self.view.source[pid], self.view.cosine[pid]
            support = _support(found.sketches, content, other, kind, th, found.evidence)
            scene = (self.scenes.cosine(content.content_hash, other_hash, cosine)
                     if self.scenes else None)
            result = judge(content, other, cosine, self.tier, th, None, kind, support,
                           found.evidence, scene)
            members += _joined_members(other, result, th)
        return _ordered(members)


def group_pairs(groups: list[Group]) -> set[frozenset[str]]:
    """All unordered path pairs that share a group (what a user sees as "duplicates")."""
    pairs: set[frozenset[str]] = set()
    for group in groups:
        paths = [m.photo.path for m in group.members]
        for i, a in enumerate(paths):
            for b in paths[i + 1 :]:
                pairs.add(frozenset((a, b)))
    return pairs
