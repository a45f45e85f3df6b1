"""Pair precision and recall of duplicate groups against a ground-truth file.

Ground truth follows the ``photosim-groundtruth/v1`` schema (see ``shared/data/dev``): any two
members of one ``near_duplicates`` group are a duplicate pair; two members of one ``similar``
group that are not duplicates are a similar pair; ``unreadable`` files are left out; every
other pair is negative. A predicted pair is any two photos that share a group (what a user
sees as "these are duplicates").

:func:`evaluate` groups an already scanned catalog in every tier and reports, per tier, pair
precision, recall and F1; the false positives, naming those that are hard negatives or
"similar" shots; near-duplicate recall per transform kind (:data:`KINDS`, from the free-text
``transform`` of each copy by :func:`transform_kind`); comparisons and verified pairs per
content; and the time of each grouping stage per photo. :func:`retrieval_report` measures
"find similar" as a retrieval task (mAP, recall@10). ``photosim eval`` prints both.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from photosim.core.types import Error

Pair = frozenset[str]

#: Transform kinds that near-duplicate recall is reported for, in report order.
KINDS = (
    "exact", "re-encode", "resize", "crop", "rotate", "flip", "grey", "brightness", "overlay",
    "edit",
)
# First rule whose keyword occurs in the (lower-case) transform text wins; the order settles
# texts that name two things ("PNG, downscaled" is a resize, "grayscale PGM" a grey copy,
# "logo pasted, re-cropped" an edit, "combo" = downscale + crop + JPEG a crop).
_KIND_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("exact", ("exact", "byte-identical", "identical jpeg bytes")),
    ("edit", ("edit", "pasted", "noise", "transparent pixels")),
    ("overlay", ("overlay", "copyright")),
    ("flip", ("flip", "mirror")),
    ("rotate", ("rotat", "orientation")),
    ("crop", ("crop", "combo")),
    ("grey", ("gray", "grey")),
    ("brightness", ("bright", "dark", "contrast", "hue", "colour", "color")),
    ("resize", ("resize", "downscal", "thumbnail", "scaled")),
    ("re-encode", ("jpeg", "png", "webp", "quality", "encode", "pgm", "alpha", "pixel-identical")),
)


class TruthError(Error):
    """The ground-truth file is missing or malformed."""


@dataclass
class Truth:
    """Scored pairs of a ground-truth file (paths relative to its folder).

    Attributes:
        root: Folder the relative paths are relative to.
        duplicate: Near-duplicate pairs (exact copies included).
        exact: Duplicate pairs whose files are byte-identical (same sha256).
        similar: Same-scene pairs that are not duplicates.
        hard_negative: Negative pairs from the hard-negative sets.
        unreadable: Files excluded from scoring.
        images: Per-file records (``transform``, ``sha256``...).
        scene_members: Files of every ``similar`` group (the retrieval queries).
    """

    root: Path
    duplicate: set[Pair]
    exact: set[Pair]
    similar: set[Pair]
    hard_negative: set[Pair]
    unreadable: set[str]
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    scene_members: set[str] = field(default_factory=set)


def _pairs(groups: Iterable[Iterable[str]]) -> set[Pair]:
    return {frozenset(p) for g in groups for p in combinations(sorted(set(g)), 2)}


def load_truth(path: str | os.PathLike[str]) -> Truth:
    """Read a ``photosim-groundtruth/v1`` file.

    Raises:
        TruthError: The file cannot be read or lacks ``near_duplicates``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        groups = data["near_duplicates"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TruthError(f"cannot read ground truth {path}: {exc}") from exc
    unreadable = set(data.get("unreadable", []))
    images = data.get("images", {})
    duplicate = {p for p in _pairs(groups) if not (p & unreadable)}
    sha = {name: rec.get("sha256") for name, rec in images.items()}
    exact = {p for p in duplicate if len({sha.get(n) for n in p} - {None}) == 1}
    similar = {p for p in _pairs(data.get("similar", [])) if not (p & unreadable)} - duplicate
    hard = _pairs(data.get("hard_negatives", [])) - duplicate - similar
    members = {name for group in data.get("similar", []) for name in group} - unreadable
    return Truth(path.parent, duplicate, exact, similar, hard, unreadable, images, members)


@dataclass
class Score:
    """Pair precision/recall of one prediction against one positive set."""

    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: list[tuple[str, str]]
    false_negatives: list[tuple[str, str]]


def score(predicted: set[Pair], positive: set[Pair], universe: set[str]) -> Score:
    """Score predicted pairs against positive pairs, counting only files in ``universe``."""
    predicted = {p for p in predicted if p <= universe}
    positive = {p for p in positive if p <= universe}
    tp = predicted & positive
    precision = len(tp) / len(predicted) if predicted else 1.0
    recall = len(tp) / len(positive) if positive else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(
        precision,
        recall,
        f1,
        len(tp),
        sorted(tuple(sorted(p)) for p in predicted - positive),  # type: ignore[misc]
        sorted(tuple(sorted(p)) for p in positive - predicted),  # type: ignore[misc]
    )


def relative_pairs(pairs: set[frozenset[str]], root: Path) -> set[Pair]:
    """Turn absolute path pairs into pairs of paths relative to ``root`` (others dropped)."""
    root_s = str(root.resolve())
    out: set[Pair] = set()
    for pair in pairs:
        rel = [os.path.relpath(p, root_s) for p in pair]
        if not any(r.startswith("..") for r in rel):
            out.add(frozenset(r.replace(os.sep, "/") for r in rel))
    return out


def transform_kind(transform: str | None) -> str | None:
    """The kind (:data:`KINDS`) of a copy's free-text transform; ``"other"`` if none fits.

    Examples: ``"crop"`` -> crop, ``"PNG, downscaled"`` -> resize, ``"exif_orientation"``
    -> rotate, ``"hue shift"`` -> brightness, ``"same RGBA logo, transparent pixels white
    instead of black"`` -> edit; None for an original (no transform).
    """
    if not transform:
        return None
    text = transform.lower()
    for kind, keywords in _KIND_RULES:
        if any(word in text for word in keywords):
            return kind
    return "other"


def recall_by_kind(truth: Truth, predicted: set[Pair]) -> dict[str, tuple[int, int]]:
    """Per transform kind: ``(found, total)`` duplicate pairs that involve such a copy.

    A pair of two copies counts for the kinds of both (a crop and a grey copy of one photo
    are one crop pair and one grey pair); a pair counts once per kind.
    """
    out: dict[str, list[int]] = {}
    for pair in truth.duplicate:
        kinds = {transform_kind(truth.images.get(name, {}).get("transform")) for name in pair}
        for kind in kinds - {None}:
            counts = out.setdefault(kind, [0, 0])  # type: ignore[arg-type]
            counts[1] += 1
            counts[0] += pair in predicted
    order = {kind: i for i, kind in enumerate(KINDS)}
    return {
        k: (v[0], v[1]) for k, v in sorted(out.items(), key=lambda kv: order.get(kv[0], 99))
    }


def recall_by_transform(truth: Truth, predicted: set[Pair]) -> dict[str, tuple[int, int]]:
    """Per copy transform: ``(found, total)`` duplicate pairs that involve such a copy."""
    out: dict[str, list[int]] = {}
    for pair in truth.duplicate:
        for name in pair:
            transform = truth.images.get(name, {}).get("transform")
            if transform:
                counts = out.setdefault(transform, [0, 0])
                counts[1] += 1
                counts[0] += pair in predicted
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def _ms(seconds: float, count: int) -> float:
    return round(1000.0 * seconds / max(1, count), 3)


def tier_report(
    result: Any, truth: Truth, folder: Path, universe: set[str], photos: int
) -> dict[str, Any]:
    """Score one tier's grouping (a :class:`photosim.core.dedup.grouping.GroupingResult`).

    Args:
        result: The grouping.
        truth: Ground truth.
        folder: Folder the truth's relative paths start from.
        universe: Readable, scored files (relative paths).
        photos: Readable photos (for per-photo times).

    Returns:
        A JSON-ready dict: precision, recall, F1, pair counts, false positives (and those that
        are hard negatives or similar shots), comparisons and verified pairs per content,
        candidates per source, stage seconds and milliseconds per photo.
    """
    from photosim.core.dedup.grouping import group_pairs

    predicted = relative_pairs(group_pairs(result.groups), folder)
    predicted = {p for p in predicted if p <= universe}
    if result.tier == "exact":
        positive = truth.exact
    elif result.tier == "similar":
        positive = truth.duplicate | truth.similar
    else:
        positive = truth.duplicate
    s = score(predicted, positive, universe)
    names = lambda pairs: sorted(tuple(sorted(p)) for p in pairs)  # noqa: E731
    report: dict[str, Any] = {
        "evidence": result.evidence,
        "local_features": getattr(result, "local_features", False),
        "precision": round(s.precision, 4),
        "recall": round(s.recall, 4),
        "f1": round(s.f1, 4),
        "true_positives": s.true_positives,
        "predicted_pairs": s.true_positives + len(s.false_positives),
        "positive_pairs": s.true_positives + len(s.false_negatives),
        "comparisons_per_photo": round(result.comparisons / max(1, result.contents), 2),
        "verified_per_photo": round(getattr(result, "verified", 0) / max(1, result.contents), 2),
        "remembered": getattr(result, "remembered", 0),
        "candidates": dict(getattr(result, "candidates", {})),
        "confirmed": getattr(result, "confirmed", 0),
        "rebutted": getattr(result, "rebutted", 0),
        "decoded": getattr(result, "decoded", 0),
        "false_positives": s.false_positives,
        "false_negatives": s.false_negatives,
        "hard_negative_hits": names(predicted & truth.hard_negative),
        "similar_hits": names(predicted & truth.similar) if result.tier != "similar" else [],
    }
    seconds = dict(getattr(result, "seconds", {}))
    report["seconds"] = seconds
    report["ms_per_photo"] = {stage: _ms(value, photos) for stage, value in seconds.items()}
    decoded = report["decoded"]
    if decoded:
        # Keypoints for candidates only (decode + ORB per decoded content, amortised over all
        # photos) against keypoints for every photo at scan time (ORB only: the scan has the
        # decoded image already).
        per_content = seconds.get("decode", 0.0) + seconds.get("keypoints", 0.0)
        report["keypoint_costs"] = {
            "candidate_time_ms_per_decoded_content": _ms(per_content, decoded),
            "candidate_time_ms_per_photo": _ms(per_content, photos),
            "scan_time_ms_per_photo": _ms(seconds.get("keypoints", 0.0), decoded),
            "verify_ms_per_pair": _ms(seconds.get("verify", 0.0), report_pairs(result)),
        }
    return report


def report_pairs(result: Any) -> int:
    """Pairs a grouping verified (0 when it verified none)."""
    return int(getattr(result, "verified", 0))


def evaluate(
    catalog: Any,
    folder: str | os.PathLike[str],
    truth: Truth,
    thresholds: Any = None,
    k: int = 16,
    tiers: Iterable[str] = ("exact", "near", "similar"),
) -> dict[str, Any]:
    """Group a scanned catalog in each tier and score it against the ground truth.

    Args:
        catalog: A :class:`photosim.core.catalog.Catalog` holding the scan of ``folder``.
        folder: The folder the truth describes.
        truth: Ground truth.
        thresholds: :class:`photosim.config.Thresholds` (defaults when None).
        k: Neighbours per content from each index.
        tiers: Tiers to evaluate.

    Returns:
        ``{"photos", "tiers": {tier: tier_report or {"skipped": reason}},
        "near_recall_by_kind", "near_recall_by_transform"}``.
    """
    from photosim.core.dedup.grouping import find_duplicates

    root = Path(folder).resolve()
    readable = {
        os.path.relpath(p.path, root).replace(os.sep, "/") for p in catalog.photos()
    }
    universe = readable - truth.unreadable
    out: dict[str, Any] = {"photos": len(universe), "tiers": {}}
    for tier in tiers:
        try:
            result = find_duplicates(catalog, tier, thresholds, k=k)
        except Error as exc:
            out["tiers"][tier] = {"skipped": str(exc)}
            continue
        out["tiers"][tier] = tier_report(result, truth, root, universe, len(universe))
        if tier == "near":
            predicted = {
                p for p in relative_pairs(_pairs_of(result), root) if p <= universe
            }
            out["near_recall_by_kind"] = {
                kind: {"found": f, "total": t, "recall": round(f / t, 4) if t else 1.0}
                for kind, (f, t) in recall_by_kind(truth, predicted).items()
            }
            out["near_recall_by_transform"] = {
                name: {"found": f, "total": t}
                for name, (f, t) in recall_by_transform(truth, predicted).items()
            }
    return out


def _pairs_of(result: Any) -> set[frozenset[str]]:
    from photosim.core.dedup.grouping import group_pairs

    return group_pairs(result.groups)


def average_precision(relevant: np.ndarray) -> float:
    """Average precision of one ranked list (Manning et al., Introduction to IR, ch. 8).

    Args:
        relevant: ``(G,)`` bool, the gallery in ranked order, True where relevant.

    Returns:
        Mean over the relevant items of the precision at their rank; 0.0 when none is relevant.
    """
    hits = np.flatnonzero(relevant)
    if hits.size == 0:
        return 0.0
    return float(np.mean(np.arange(1, hits.size + 1) / (hits + 1)))


def mean_average_precision(
    names: list[str], matrix: np.ndarray, queries: Iterable[int], relevant: set[Pair]
) -> float | None:
    """mAP of ranking every other row by cosine similarity to each query row.

    Args:
        names: ``(N,)`` names of the rows (relative paths, as in the truth's pairs).
        matrix: ``(N, D)`` float32 descriptors, L2-normalised.
        queries: Row indexes of the queries; a query without a relevant row is skipped.
        relevant: Unordered name pairs that count as relevant.

    Returns:
        The mean of :func:`average_precision` over the queries, or None without any.
    """
    aps = []
    for q in queries:
        sims = matrix @ matrix[q]
        sims[q] = -math.inf
        order = np.argsort(-sims, kind="stable")[:-1]
        rel = np.array([frozenset((names[q], names[i])) in relevant for i in order], bool)
        if rel.any():
            aps.append(average_precision(rel))
    return float(np.mean(aps)) if aps else None


def retrieval_report(
    catalog: Any,
    folder: str | os.PathLike[str],
    truth: Truth,
    model: str | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    rerank: str = "none",
) -> dict[str, Any]:
    """Retrieval quality of "find similar" on a scanned folder with ground truth.

    Every readable photo of a ``similar`` group is a query; the other members of its similar
    group and of its near-duplicate group are relevant; the gallery is every other readable
    photo. Photos are ranked by the cosine similarity of their stored vectors, as
    :func:`photosim.core.search.find_similar` ranks them through the vector index (here
    exhaustively, so the figure does not depend on the index's approximation; ties keep the
    catalog order). Reports mAP (mean average precision, :func:`average_precision`) and
    recall@10, the share of queries with at least one relevant photo among the first 10 (the
    Recall@K of deep metric learning, e.g. Oh Song et al., CVPR 2016), plus the mean share of
    the relevant photos found in the first 10 (out of at most 10).

    Args:
        catalog: A :class:`photosim.core.catalog.Catalog` holding the scan of ``folder``.
        folder: The folder the truth describes.
        truth: Ground truth.
        model: Model id of the vectors; None: the catalog's model if it stored descriptors,
            else the perceptual-hash vectors (``mode`` says which).
        transform: Applied to the ``(N, D)`` float32 matrix of the scored photos' vectors
            before ranking (e.g. a PCA-whitening, :meth:`photosim.core.index.pca.PCA.transform`);
            returns ``(N, d)``, whose rows are then L2-normalised. None: rank the stored vectors.
        rerank: ``"none"``, ``"qe"`` (alpha-query expansion over the distinct contents) or
            ``"diffusion"`` (on the kNN graph the scan stored; not with a ``transform``), as
            :func:`photosim.core.search.find_similar` re-ranks (see
            :mod:`photosim.core.index.rerank`); perceptual-hash vectors are never re-ranked.

    Returns:
        ``{"queries", "mAP", "recall_at_10", "relevant_in_top_10", "mode", "model",
        "gallery", "rerank", "query_ms"}`` (``query_ms``: mean ranking time per query); with no
        query, ``queries`` is 0 and the figures are None.

    Raises:
        ValueError: Unknown ``rerank``, or diffusion asked with a ``transform``.
    """
    import time

    from photosim.core.index import rerank as _rerank
    from photosim.core.index.vectors import HASH_MODEL

    root = Path(folder).resolve()
    if model is None:
        model = catalog.get_meta("model")
        if not model or catalog.embedding_stats(model)[0] == 0:
            model = HASH_MODEL
    if rerank not in _rerank.RERANKS:
        raise ValueError(f"unknown re-ranking {rerank!r}: one of {', '.join(_rerank.RERANKS)}")
    if rerank == "diffusion" and transform is not None:
        raise ValueError("diffusion re-ranks on the stored graph: not with a transform")
    if model == HASH_MODEL:
        rerank = "none"  # as find_similar: re-ranking works on CNN descriptors only
    by_hash = dict(zip(*catalog.embeddings(model)[1:]))
    names: list[str] = []
    hashes: list[str] = []
    vectors: list[np.ndarray] = []
    for photo in catalog.photos():
        name = os.path.relpath(photo.path, root).replace(os.sep, "/")
        if name.startswith("..") or name in truth.unreadable or photo.content_hash not in by_hash:
            continue
        names.append(name)
        hashes.append(photo.content_hash)
        vectors.append(by_hash[photo.content_hash])
    relevant_pairs = truth.duplicate | truth.similar
    queries = [i for i, name in enumerate(names) if name in truth.scene_members]
    out: dict[str, Any] = {
        "queries": len(queries),
        "gallery": max(0, len(names) - 1),
        "mode": "hashes" if model == HASH_MODEL else "descriptors",
        "model": None if model == HASH_MODEL else model,
        "mAP": None,
        "recall_at_10": None,
        "relevant_in_top_10": None,
        "rerank": rerank,
        "query_ms": None,
    }
    if not queries:
        return out
    matrix = np.stack(vectors).astype(np.float32)
    if transform is not None:
        matrix = np.asarray(transform(matrix), dtype=np.float32)
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    # Distinct contents (what the index holds and the re-ranking works on): a photo's place
    # in a ranking is its content's.
    content_of = {h: i for i, h in enumerate(dict.fromkeys(hashes))}
    row_content = np.array([content_of[h] for h in hashes], np.int64)
    first_row = np.zeros(len(content_of), np.int64)
    first_row[row_content[::-1]] = np.arange(len(hashes))[::-1]
    contents = matrix[first_row]
    diffusion = None
    if rerank == "diffusion":
        diffusion = _rerank.Diffusion.from_catalog(catalog, model)
        ids = catalog.embedding_ids_by_hash(model)
        content_labels = np.array([ids[h] for h in content_of], np.int64)
    aps, hits, shares = [], [], []
    spent = 0.0
    for q in queries:
        started = time.perf_counter()
        query = matrix[q]
        if rerank == "qe":
            sims = contents @ query
            best = [c for c in np.argsort(-sims, kind="stable") if c != row_content[q]]
            query = _rerank.expand_query(query, contents[best], sims[best])
        sims = matrix @ query
        if diffusion is not None:
            by_content = contents @ query
            ranked = np.argsort(-by_content, kind="stable")
            order_c = diffusion.order(content_labels[ranked], by_content[ranked])
            place = np.empty(len(contents), np.float32)
            place[ranked[order_c]] = np.arange(len(contents), dtype=np.float32)
            sims = -place[row_content]  # higher is better, like a similarity
        spent += time.perf_counter() - started
        sims[q] = -math.inf  # the query file itself is not in its gallery
        order = np.argsort(-sims, kind="stable")[:-1]
        relevant = np.array(
            [frozenset((names[q], names[i])) in relevant_pairs for i in order], dtype=bool
        )
        total = int(relevant.sum())
        aps.append(average_precision(relevant))
        hits.append(bool(relevant[:10].any()))
        shares.append(relevant[:10].sum() / min(10, total) if total else 0.0)
    out["mAP"] = round(float(np.mean(aps)), 4)
    out["recall_at_10"] = round(float(np.mean(hits)), 4)
    out["relevant_in_top_10"] = round(float(np.mean(shares)), 4)
    out["query_ms"] = round(spent / len(queries) * 1e3, 3)
    return out
