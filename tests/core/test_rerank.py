"""Re-ranking of find similar: alpha-query expansion and diffusion on the kNN graph."""

from __future__ import annotations

import numpy as np
import pytest

from photosim.core.index import rerank
from photosim.core.index.rerank import Diffusion, expand_query


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def _edges(vectors: np.ndarray, k: int, floor: float) -> tuple[np.ndarray, ...]:
    """The graph the scan stores: each vector's k best neighbours at or above ``floor``."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    rows, nbrs, found = [], [], []
    for i, row in enumerate(sims):
        for j in np.argsort(-row)[:k]:
            if row[j] >= floor:
                rows.append(i)
                nbrs.append(j)
                found.append(row[j])
    return np.array(rows), np.array(nbrs), np.array(found, np.float32)


def test_expand_query_is_the_weighted_sum_normalised() -> None:
    q = _unit([1.0, 0.0, 0.0])
    results = _unit([[0.8, 0.6, 0.0], [0.0, 0.0, 1.0]])
    sims = np.array([0.8, 0.0], np.float32)
    expanded = expand_query(q, results, sims, n=2, alpha=3.0)
    want = q + 0.8**3 * results[0]  # the second result has weight 0 ** 3
    np.testing.assert_allclose(expanded, want / np.linalg.norm(want), rtol=1e-6)
    assert expanded.dtype == np.float32
    # alpha 0 is average query expansion: every result counts once.
    avg = expand_query(q, results, sims, n=2, alpha=0.0)
    want = q + results[0] + results[1]
    np.testing.assert_allclose(avg, want / np.linalg.norm(want), rtol=1e-6)
    # n = 0, or nothing similar: the query itself.
    np.testing.assert_allclose(expand_query(q, results, sims, n=0), q)
    np.testing.assert_allclose(expand_query(q, results[1:], sims[1:], n=1), q)


def test_diffusion_follows_the_manifold() -> None:
    """A curve of photos (one scene seen from a turning camera) and a blob near the query:
    by cosine the blob outranks the far end of the curve; diffusion walks along the curve."""
    angles = np.linspace(0.0, 1.2, 13)
    curve = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles),
                      np.zeros_like(angles)], axis=1)
    blob_centre = _unit([0.55, 0.0, 0.835, 0.0])
    rng = np.random.default_rng(3)
    blob = _unit(blob_centre + 0.03 * rng.standard_normal((6, 4)))
    vectors = _unit(np.concatenate([curve, blob]))
    rows, nbrs, sims = _edges(vectors, k=3, floor=0.5)
    diffusion = Diffusion(rows, nbrs, sims, k=3)
    query = vectors[0]  # the first shot of the curve, a photo of the library
    cos = vectors @ query
    order = np.argsort(-cos, kind="stable")
    far_end = 12
    assert any(cos[b] > cos[far_end] for b in range(13, 19))  # cosine ranks some blob first
    reranked = order[diffusion.order(order, cos[order], seeds=3, alpha=0.9)]
    curve_places = [list(reranked).index(i) for i in range(13)]
    assert max(curve_places) < 13, reranked  # the whole curve before any photo of the blob


def test_reciprocal_neighbours_only() -> None:
    """An edge i -> j stays when i would be among j's k neighbours (j's row is full and its
    k-th similarity is above s_ij, or j's row is not full and s_ij reaches the floor)."""
    rows = np.array([0, 1, 1, 2, 2, 0])
    nbrs = np.array([1, 2, 3, 1, 3, 2])
    sims = np.array([0.6, 0.9, 0.8, 0.9, 0.7, 0.55], np.float32)
    # Row 1 holds k=2 neighbours (2: 0.9, 3: 0.8): 0 -> 1 at 0.6 is below 0.8, dropped.
    # Row 2 is full too (1: 0.9, 3: 0.7): 0 -> 2 at 0.55 is dropped.
    d = Diffusion(rows, nbrs, sims, gamma=1.0, k=2, floor=0.5)
    a = d.affinity.toarray()
    at = {int(label): i for i, label in enumerate(d.labels)}
    assert a[at[0], at[1]] == 0 and a[at[0], at[2]] == 0
    assert a[at[1], at[2]] == pytest.approx(0.9) and a[at[2], at[1]] == pytest.approx(0.9)
    # Node 3 has no row of its own (not full): 1 -> 3 and 2 -> 3 reach the floor and stay,
    # both ways (the affinity is symmetric).
    assert a[at[1], at[3]] == pytest.approx(0.8) and a[at[3], at[1]] == pytest.approx(0.8)
    np.testing.assert_array_equal(a, a.T)


def test_truncation_keeps_the_tail_in_cosine_order() -> None:
    vectors = _unit(np.random.default_rng(0).standard_normal((30, 8)))
    rows, nbrs, sims = _edges(vectors, k=4, floor=0.0)
    diffusion = Diffusion(rows, nbrs, sims, k=4, floor=0.0)
    cos = vectors @ vectors[0]
    order = np.argsort(-cos)
    positions = diffusion.order(order, cos[order], truncate=10)
    assert sorted(positions[:10]) == list(range(10))
    np.testing.assert_array_equal(positions[10:], np.arange(10, 30))


def test_labels_outside_the_graph_and_bad_arguments() -> None:
    d = Diffusion(np.array([5, 7]), np.array([7, 5]), np.array([0.9, 0.9], np.float32))
    f = d.scores(np.array([5, 99, 7]), np.array([1.0, 0.95, 0.9]), seeds=2)
    # 99 is not in the graph: it keeps its seed value only; 7 is reached through 5.
    assert f[1] == pytest.approx(0.95**3) and f[2] > 0
    assert d.scores(np.array([99]), np.array([0.2])).tolist() == [0.0]  # below the seed floor
    with pytest.raises(ValueError, match="alpha"):
        d.scores(np.array([5]), np.array([1.0]), alpha=1.0)
    with pytest.raises(ValueError, match="labels"):
        d.scores(np.array([5, 7]), np.array([1.0]))
    assert rerank.RERANKS == ("none", "qe", "diffusion")
