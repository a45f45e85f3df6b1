"""Duplicate groups in tiers: exact, near-duplicate, similar.

Work happens on unique contents (one per content hash), so byte-identical copies are one unit.

1. **Candidates** come from k-nearest-neighbour queries, never from all pairs: the hash index
   (pHash and dHash bits as a vector, see :func:`photosim.core.index.hash_vectors`) and, when the
   catalog holds CNN descriptors, the descriptor index.
2. **Verification** of each candidate pair against the tier's evidence (:func:`match`):
   near-duplicate by perceptual hashes (both pHash and dHash close, same aspect ratio), or by
   descriptor cosine confirmed by pHash and aspect ratio; similar by descriptor cosine alone.
3. **Grouping without chaining**: contents are visited best keeper first
   (:mod:`photosim.core.keeper`); each unassigned content opens a group and takes the
   unassigned candidates that match *it* directly. A photo that only resembles another member
   never joins through it.

Groups are cumulative: a near-duplicate group also holds the exact copies, a similar group
the near-duplicates. Each member carries its strongest match and a "why" line.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from photosim.config import Thresholds
from photosim.core.catalog import Catalog, Photo
from photosim.core.hashing import ORIENTATIONS, SWAPS_AXES, hamming
from photosim.core.index import HASH_BITS, HASH_MODEL, VectorIndex, hash_vectors
from photosim.core.keeper import keeper_key, keeper_reason, rank
from photosim.core.types import Error

logger = logging.getLogger(__name__)

TIERS = ("exact", "near", "similar")
_TIER_RANK = {"keeper": -1, "exact": 0, "near": 1, "similar": 2}
# A dHash with this few bits set (or this few unset) means no gradient structure: flat or
# blank images, whose hashes all look alike. They only ever match as exact copies.
_FLAT_HASH_BITS = 2
_QUERY_CHUNK = 4096


class DuplicatesError(Error):
    """Grouping cannot be done as asked (unknown tier, missing descriptors)."""


@dataclass
class Content:
    """One unique content (content hash) and the photos that hold it, best copy first."""

    content_hash: str
    photos: list[Photo]

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
        p = self.best
        upright = np.array([[p.phash or 0, p.dhash or 0]], dtype=np.int64)
        if not p.variants:
            return upright
        return np.concatenate([upright, np.frombuffer(p.variants, np.int64).reshape(-1, 2)])

    @property
    def flat(self) -> bool:
        """True when the perceptual hashes carry no structure (blank or flat images)."""
        bits = hamming(self.best.dhash or 0, 0)
        return bits <= _FLAT_HASH_BITS or bits >= 64 - _FLAT_HASH_BITS


@dataclass
class Member:
    """One photo in a group.

    Attributes:
        photo: The catalog row.
        match: ``"keeper"``, or how it matches the keeper: ``"exact"``, ``"near"``,
            ``"similar"``.
        why: Human-readable evidence, e.g. ``"pHash 3/64, dHash 5/64, 50 % scale"``.
        evidence: Machine-readable evidence (``phash_distance``, ``dhash_distance``,
            ``cosine``, ``scale``, ``aspect_difference``).
    """

    photo: Photo
    match: str
    why: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Group:
    """A duplicate group, keeper first.

    Attributes:
        id: 1-based, in output order.
        tier: The loosest match inside the group (``exact`` < ``near`` < ``similar``).
        members: Keeper first, then the others best copy first.
    """

    id: int
    tier: str
    members: list[Member]

    @property
    def keeper(self) -> Photo:
        """The photo to keep."""
        return self.members[0].photo

    @property
    def reclaimable_bytes(self) -> int:
        """Bytes freed by removing every member but the keeper."""
        return sum(m.photo.size for m in self.members[1:])


@dataclass
class GroupingResult:
    """Groups of one tier with the settings that produced them.

    Attributes:
        tier: Requested tier.
        groups: Groups, largest reclaimable bytes first.
        evidence: ``"bytes"``, ``"hashes"`` or ``"descriptors+hashes"``.
        model: Descriptor model id used, or None.
        notes: Plain-language remarks (e.g. why descriptors were not used).
        comparisons: Candidate pairs verified (the cost of grouping).
        contents: Unique contents considered.
    """

    tier: str
    groups: list[Group]
    evidence: str
    model: str | None
    notes: list[str]
    comparisons: int
    contents: int


def match(
    a: Content, b: Content, cosine: float | None, tier: str, th: Thresholds
) -> tuple[str, dict[str, Any]] | None:
    """Verify one candidate pair of distinct contents.

    Args:
        a: The group's keeper content.
        b: The candidate.
        cosine: Descriptor cosine similarity of the pair, or None if unknown.
        tier: Loosest tier accepted (``"near"`` or ``"similar"``).
        th: Thresholds.

    Returns:
        ``(matched tier, evidence)`` or None when the pair does not match.
    """
    pa, pb = a.best, b.best
    # The orientation of ``a`` that best matches ``b`` upright (mirrored and rotated copies).
    best = (128, 0, 0, 0)
    for v, (vp, vd) in enumerate(a.orientations.tolist()):
        p, d = hamming(vp, pb.phash or 0), hamming(vd, pb.dhash or 0)
        if p + d < best[0]:
            best = (p + d, p, d, v)
    _, p, d, orientation = best
    a_aspect = 1.0 / a.aspect if orientation in SWAPS_AXES else a.aspect
    aspect = abs(a_aspect - b.aspect) / max(a_aspect, b.aspect)
    small, big = sorted((max(1, pa.pixels), max(1, pb.pixels)))
    evidence: dict[str, Any] = {
        "phash_distance": p,
        "dhash_distance": d,
        "aspect_difference": round(aspect, 4),
        "scale": round(float(np.sqrt(small / big)), 4),
    }
    if orientation:
        evidence["orientation"] = ORIENTATIONS[orientation]
    if cosine is not None:
        evidence["cosine"] = round(float(cosine), 4)
    if aspect <= th.near_aspect and not (a.flat or b.flat):
        by_hash = p <= th.near_phash and d <= th.near_dhash and p + d <= th.near_hash_sum
        by_descriptor = (
            cosine is not None
            and cosine >= th.near_cosine
            and p <= th.near_cosine_phash
            and not orientation
        )
        if by_hash or by_descriptor:
            return "near", evidence
    if tier == "similar" and cosine is not None and cosine >= th.similar_cosine:
        return "similar", evidence
    return None


def why_line(match_tier: str, evidence: dict[str, Any]) -> str:
    """Format evidence as the short "why matched" line shown to users."""
    if match_tier == "exact":
        return "identical bytes (same xxh3-128 content hash)"
    parts = [
        f"pHash {evidence['phash_distance']}/64",
        f"dHash {evidence['dhash_distance']}/64",
    ]
    if "cosine" in evidence:
        parts.append(f"cosine {evidence['cosine']:.3f}")
    scale = evidence.get("scale", 1.0)
    parts.append(f"{scale * 100:.0f} % scale" if scale < 0.995 else "same size")
    if "orientation" in evidence:
        parts.append(evidence["orientation"])
    if evidence.get("aspect_difference", 0) > 0.01:
        parts.append(f"aspect differs {evidence['aspect_difference'] * 100:.0f} %")
    return ", ".join(parts)


def load_contents(catalog: Catalog) -> dict[str, Content]:
    """Decoded photos of the catalog grouped by content hash, best copy first."""
    by_hash: dict[str, list[Photo]] = defaultdict(list)
    for photo in catalog.photos():
        if photo.content_hash:
            by_hash[photo.content_hash].append(photo)
    return {h: Content(h, rank(ps)) for h, ps in by_hash.items()}


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
    labels, sims = index.knn(queries, k + 1)
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
    contents: dict[str, Content], catalog: Catalog, k: int, min_similarity: float
) -> dict[str, dict[str, float]]:
    """Candidates from the hash index, queried with every orientation of every content."""
    found: dict[str, dict[str, float]] = defaultdict(dict)
    items = list(contents.values())
    for start in range(0, len(items), _QUERY_CHUNK):
        chunk = items[start : start + _QUERY_CHUNK]
        hashes = [c.content_hash for c in chunk for _ in range(len(c.orientations))]
        codes = np.concatenate([c.orientations for c in chunk])
        queries = hash_vectors(codes[:, 0], codes[:, 1])
        _knn_pairs(catalog, HASH_MODEL, contents, hashes, queries, k, min_similarity, found)
    return found


def find_duplicates(
    catalog: Catalog,
    tier: str = "near",
    thresholds: Thresholds | None = None,
    model: str | None = None,
    k: int = 16,
) -> GroupingResult:
    """Group the catalog's photos into duplicate groups of one tier.

    Args:
        catalog: Open catalog.
        tier: ``"exact"``, ``"near"`` or ``"similar"``.
        thresholds: Tier thresholds (defaults when None).
        model: Descriptor model id; None uses the model of the last scan, if any.
        k: Neighbours per content fetched from each index.

    Returns:
        The groups and how they were found.

    Raises:
        DuplicatesError: Unknown tier, or ``similar`` without descriptors.
    """
    if tier not in TIERS:
        raise DuplicatesError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    th = thresholds or Thresholds()
    contents = load_contents(catalog)
    notes: list[str] = []
    model = model or catalog.get_meta("model")
    has_descriptors = bool(model) and catalog.embedding_stats(model)[0] > 0  # type: ignore[arg-type]
    if tier == "exact":
        evidence = "bytes"
    elif has_descriptors:
        evidence = "descriptors+hashes"
    else:
        evidence = "hashes"
        model = None
        notes.append(
            "no CNN descriptors in this catalog: near-duplicates are found by perceptual "
            "hashes alone (scan with model weights for descriptor evidence)"
        )
        if tier == "similar":
            raise DuplicatesError(
                "the similar tier needs CNN descriptors, and this catalog has none: scan again "
                "with model weights available (see `photosim scan --help`)"
            )

    candidates: dict[str, dict[str, float | None]] = defaultdict(dict)
    if tier != "exact":
        # Hash candidates: total Hamming distance of pHash+dHash within the near threshold.
        # Half a bit of slack: hash vectors are stored as float16, so an inner product at
        # exactly the threshold can round just below it.
        min_hash_sim = 1.0 - 2.0 * (th.near_hash_sum + 0.5) / HASH_BITS
        for h, others in _hash_neighbours(contents, catalog, k, min_hash_sim).items():
            for other in others:
                candidates[h].setdefault(other, None)
        if model:
            floor = th.similar_cosine if tier == "similar" else th.near_cosine
            for h, others in _descriptor_neighbours(catalog, model, contents, k, floor).items():
                for other, sim in others.items():
                    candidates[h][other] = sim
    verdicts = catalog.not_duplicate_pairs()

    order = sorted(contents.values(), key=lambda c: keeper_key(c.best))
    assigned: set[str] = set()
    groups: list[Group] = []
    comparisons = 0
    for content in order:
        if content.content_hash in assigned:
            continue
        members = [Member(content.best, "keeper", "kept: best copy by the keeper rule")]
        members += [
            Member(p, "exact", why_line("exact", {}), {"identical_bytes": True})
            for p in content.photos[1:]
        ]
        joined = [content.content_hash]
        for other_hash, cosine in candidates.get(content.content_hash, {}).items():
            if other_hash in assigned or other_hash in joined:
                continue
            if tuple(sorted((content.content_hash, other_hash))) in verdicts:
                continue
            comparisons += 1
            other = contents[other_hash]
            result = match(content, other, cosine, tier, th)
            if result is None:
                continue
            matched, pair_evidence = result
            joined.append(other_hash)
            why = why_line(matched, pair_evidence)
            members += [Member(p, matched, why, pair_evidence) for p in other.photos]
        if len(members) < 2:
            continue
        assigned.update(joined)
        head, rest = members[0], sorted(members[1:], key=lambda m: keeper_key(m.photo))
        # Explain the choice against the best copy of other content (exact copies tie).
        runner_up = next((m for m in rest if m.match != "exact"), rest[0])
        head.why = f"kept: {keeper_reason(head.photo, runner_up.photo)}"
        loosest = max((m.match for m in rest), key=_TIER_RANK.__getitem__)
        groups.append(Group(0, loosest, [head, *rest]))
    groups.sort(key=lambda g: (-g.reclaimable_bytes, g.keeper.path))
    for number, group in enumerate(groups, 1):
        group.id = number
    return GroupingResult(tier, groups, evidence, model, notes, comparisons, len(contents))


def group_pairs(groups: list[Group]) -> set[frozenset[str]]:
    """All unordered path pairs that share a group (what a user sees as "duplicates")."""
    pairs: set[frozenset[str]] = set()
    for group in groups:
        paths = [m.photo.path for m in group.members]
        for i, a in enumerate(paths):
            for b in paths[i + 1 :]:
                pairs.add(frozenset((a, b)))
    return pairs
