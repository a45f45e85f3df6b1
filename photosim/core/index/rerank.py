"""Re-ranking of "find similar": query expansion and diffusion on the k-nearest-neighbour graph.

A descriptor ranks the library by cosine similarity to the query. Two classic steps re-order
the first results using the library itself:

- **alpha-query expansion** (alpha-QE, Radenović, Tolias & Chum, TPAMI 2018, after the average
  query expansion of Chum et al., ICCV 2007): the query is replaced by the L2-normalised sum of
  itself and its first ``n`` results, each weighted by its cosine similarity to the power
  ``alpha``, and the library is ranked again by the new query.
- **Diffusion** (Iscen, Tolias, Avrithis, Furon & Chum, "Efficient diffusion on region
  manifolds", CVPR 2017; Zhou et al., NIPS 2003): the query's nearest neighbours seed a random
  walk on the library's k-nearest-neighbour graph, so photos linked to the query *through*
  other photos (the other side of a building, a scene seen through a series of shots) rise.
  The ranking solves ``(I - alpha S) f = y`` by conjugate gradient on the graph truncated to
  the query's first ``R`` results (Iscen et al., section 3.3), where ``S = D^-1/2 W D^-1/2`` is
  the symmetrically normalised affinity of the stored graph (``W_ij = max(0, s_ij)^gamma``)
  and ``y_i = s(q, x_i)^gamma`` on the query's first ``seeds`` neighbours.

The graph is the one the scan stores (:mod:`photosim.core.index.graph`: 16 neighbours per
vector down to cosine 0.5). A row is written when its vector is added and never rewritten,
so the affinity is the union of both directions of the stored edges (a photo added later links
back through its own row) rather than the mutual neighbourhoods of the paper.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from photosim.core.catalog import Catalog
from photosim.core.index import graph

logger = logging.getLogger(__name__)

RERANKS = ("none", "qe", "diffusion")

QE_N = 5  # results that expand the query (Radenović et al. 2018 use 1 to 50; small sets here)
QE_ALPHA = 3.0  # weight of a result: its cosine similarity ** alpha

DIFFUSION_ALPHA = 0.7  # random-walk continuation (Iscen et al. use 0.99 on 5k-100k photos;
# see benchmarks/RETRIEVAL.md: on small groups it lets large clusters outrank a lone copy)
DIFFUSION_GAMMA = 3.0  # affinity = cosine ** gamma (Iscen et al. 2017)
DIFFUSION_SEEDS = 3  # query neighbours that seed the walk (Iscen et al.: 10)
DIFFUSION_TRUNCATE = 1000  # results re-ranked by diffusion; later ones keep their cosine order
CG_ITERATIONS = 20  # conjugate-gradient iterations (Iscen et al. report 20 suffice)
CG_TOLERANCE = 1e-6  # relative residual at which conjugate gradient stops early
SEED_FLOOR = graph.MIN_COSINE  # a query links to the results the graph would link it to


def expand_query(
    query: np.ndarray, results: np.ndarray, sims: np.ndarray, n: int = QE_N,
    alpha: float = QE_ALPHA,
) -> np.ndarray:
    """alpha-query expansion (Radenović et al., TPAMI 2018).

    Args:
        query: ``(D,)`` float32 query descriptor, L2-normalised.
        results: ``(R, D)`` float32 descriptors of the query's results, best first,
            L2-normalised (the query's own content may be among them: it counts once more).
        sims: ``(R,)`` their cosine similarities to the query.
        n: Results that expand the query (the first ``n``; fewer when ``R < n``).
        alpha: Exponent of the weights; 0 gives average query expansion (Chum et al. 2007).

    Returns:
        ``(D,)`` float32 expanded query, L2-normalised (the query itself when ``n`` is 0 or
        no result has a positive similarity).
    """
    n = min(n, len(results))
    weights = np.clip(np.asarray(sims[:n], np.float32), 0.0, None) ** np.float32(alpha)
    expanded = np.asarray(query, np.float32) + weights @ np.asarray(results[:n], np.float32)
    norm = float(np.linalg.norm(expanded))
    if norm < 1e-12:
        return np.asarray(query, np.float32)
    return (expanded / norm).astype(np.float32)


class Diffusion:
    """Diffusion re-ranking over a k-nearest-neighbour graph (Iscen et al., CVPR 2017).

    Args:
        rows: ``(E,)`` int64 labels of the edges' first ends (vector ids).
        neighbours: ``(E,)`` int64 labels of their second ends.
        sims: ``(E,)`` float32 cosine similarities of the edges.
        gamma: Affinity exponent: ``W_ij = max(0, s_ij) ** gamma``.

    Attributes:
        labels: ``(N,)`` int64 sorted labels of the graph's nodes.
        affinity: ``(N, N)`` float32 ``scipy.sparse`` CSR matrix, symmetric (the union of both
            directions of the edges, the larger similarity where both are stored).
        build_seconds: Time to build it.
    """

    def __init__(
        self, rows: np.ndarray, neighbours: np.ndarray, sims: np.ndarray,
        gamma: float = DIFFUSION_GAMMA, k: int = graph.GRAPH_K, floor: float = graph.MIN_COSINE,
    ) -> None:
        from scipy import sparse

        started = time.perf_counter()
        rows = np.asarray(rows, np.int64)
        neighbours = np.asarray(neighbours, np.int64)
        sims = np.asarray(sims, np.float32)
        self.labels = np.unique(np.concatenate([rows, neighbours]))
        n = len(self.labels)
        x = np.searchsorted(self.labels, rows)
        y = np.searchsorted(self.labels, neighbours)
        # Reciprocal neighbours: i -> j is kept when i would also be among j's k neighbours,
        # i.e. s_ij reaches the k-th similarity of j's row (the floor while the row is not
        # full). A row only gains better neighbours as photos are added, so its stored k-th
        # similarity is a lower bound and the test holds whatever order photos came in.
        per_row = np.bincount(x, minlength=n)
        kth = np.full(n, np.inf, np.float32)
        np.minimum.at(kth, x, sims)
        kth = np.where(per_row >= k, kth, np.float32(floor))
        keep = (x != y) & (sims >= kth[y] - 1e-6)
        weights = np.clip(sims[keep], 0.0, None) ** np.float32(gamma)
        one_way = sparse.coo_matrix((weights, (x[keep], y[keep])), shape=(n, n)).tocsr()
        one_way.sum_duplicates()
        self.affinity = one_way.maximum(one_way.T).tocsr().astype(np.float32)
        self.gamma = gamma
        self.build_seconds = time.perf_counter() - started

    @classmethod
    def from_catalog(cls, catalog: Catalog, model: str) -> Diffusion | None:
        """The diffusion over the graph the scan stored for ``model``.

        Rows the scan has not written yet (a cancelled scan) are added first.

        Returns:
            None when the graph has no edge (an empty or one-photo library).
        """
        graph.update_graph(catalog, model)
        rows, neighbours, sims = graph.read_edges(catalog, model, graph.storage_floor(model))
        if not len(rows):
            return None
        return cls(rows, neighbours, sims)

    def __len__(self) -> int:
        return len(self.labels)

    def scores(
        self, labels: np.ndarray, sims: np.ndarray, seeds: int = DIFFUSION_SEEDS,
        alpha: float = DIFFUSION_ALPHA,
    ) -> np.ndarray:
        """Diffusion scores of a query's results on the graph truncated to them.

        Args:
            labels: ``(R,)`` int64 labels of the query's results, best first (the truncation:
                the walk stays on these nodes). Labels the graph does not hold are isolated
                nodes: only their seed value, if any, scores them.
            sims: ``(R,)`` float32 their cosine similarities to the query.
            seeds: The first ``seeds`` results seed the walk with ``max(0, sim) ** gamma``.
            alpha: Probability of walking on rather than jumping back to the seeds, in [0, 1).

        Returns:
            ``(R,)`` float64 scores ``f`` solving ``(I - alpha S) f = y``; higher is more
            similar (0 for results the walk does not reach).

        Raises:
            ValueError: ``alpha`` outside [0, 1), or labels and sims of different lengths.
        """
        from scipy import sparse
        from scipy.sparse.linalg import cg

        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        labels = np.asarray(labels, np.int64)
        sims = np.asarray(sims, np.float64)
        if labels.shape != sims.shape:
            raise ValueError(f"{len(labels)} labels but {len(sims)} similarities")
        r = len(labels)
        y = np.zeros(r, np.float64)
        y[:seeds] = np.where(sims[:seeds] >= SEED_FLOOR, sims[:seeds], 0.0) ** self.gamma
        if not r or not y.any():
            return y
        at = np.searchsorted(self.labels, labels).clip(0, max(0, len(self.labels) - 1))
        known = self.labels[at] == labels if len(self.labels) else np.zeros(r, bool)
        inside = np.flatnonzero(known)
        # The affinity among the results the graph holds, placed at their result positions.
        sub = self.affinity[at[inside]][:, at[inside]].tocoo()
        full = sparse.csr_matrix(
            (sub.data.astype(np.float64), (inside[sub.row], inside[sub.col])), shape=(r, r)
        )
        degree = np.asarray(full.sum(axis=1)).ravel()
        scale = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-30)), 0.0)
        normalised = sparse.diags(scale) @ full @ sparse.diags(scale)
        system = sparse.identity(r, format="csr") - alpha * normalised
        f, _ = cg(system, y, rtol=CG_TOLERANCE, atol=0.0, maxiter=CG_ITERATIONS)
        return np.asarray(f, np.float64)

    def order(
        self, labels: np.ndarray, sims: np.ndarray, seeds: int = DIFFUSION_SEEDS,
        alpha: float = DIFFUSION_ALPHA, truncate: int = DIFFUSION_TRUNCATE,
    ) -> np.ndarray:
        """The re-ranked order of a query's results.

        Args:
            labels: ``(R,)`` int64 labels of the results, by decreasing cosine similarity.
            sims: ``(R,)`` their cosine similarities to the query.
            seeds: See :meth:`scores`.
            alpha: See :meth:`scores`.
            truncate: Only the first ``truncate`` results are re-ranked (by diffusion score,
                then cosine); the rest follow in their cosine order.

        Returns:
            ``(R,)`` int64 positions into ``labels``, best first.
        """
        head = min(len(labels), truncate)
        f = self.scores(labels[:head], sims[:head], seeds, alpha)
        first = np.lexsort((-np.asarray(sims[:head], np.float64), -f))
        return np.concatenate([first, np.arange(head, len(labels))]).astype(np.int64)
