"""Pair precision and recall of duplicate groups against a ground-truth file.

Ground truth follows the ``photosim-groundtruth/v1`` schema (see ``shared/data/dev``): any two
members of one ``near_duplicates`` group are a duplicate pair; two members of one ``similar``
group that are not duplicates are a similar pair; ``unreadable`` files are left out; every
other pair is negative. A predicted pair is any two photos that share a group (what a user
sees as "these are duplicates").
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from photosim.core.types import Error

Pair = frozenset[str]


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
    """

    root: Path
    duplicate: set[Pair]
    exact: set[Pair]
    similar: set[Pair]
    hard_negative: set[Pair]
    unreadable: set[str]
    images: dict[str, dict[str, Any]] = field(default_factory=dict)


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
    return Truth(path.parent, duplicate, exact, similar, hard, unreadable, images)


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
