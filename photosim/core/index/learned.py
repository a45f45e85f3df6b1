"""Learning from the user: a descriptor projection trained on their "similar" verdicts.

When the user tells find similar that a result belongs with the query ("similar") or not
("not similar"), the pair is stored (``similarity_verdicts``, schema 6). ``learn`` fits a small
linear map of the descriptors to those verdicts, the idea of metric learning with a
contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006; the triplet loss of Schroff et al.,
FaceNet, CVPR 2015, is its three-photo variant):

    f(x) = normalise(x + (x U) V^T),   U, V: (D, r) float32, r = :data:`RANK`

a low-rank correction of the identity, so a handful of verdicts cannot move the descriptors
far and the calibrated thresholds keep their meaning. The loss is ``(1 - cos)^2`` over similar
pairs plus ``max(0, cos - margin)^2`` over not-similar ones, plus ``decay * (|U|^2 + |V|^2)``,
minimised with Adam in NumPy on the CPU (seconds for hundreds of verdicts). The cosines
of up to 1000 other photos of the library are kept close to their plain values, so the
projection changes what the verdicts are about and little else.

A projection is only kept if it separates verdicts it was *not* trained on at least as well
as the plain descriptors: a quarter of the verdicts is held back, the ROC AUC of the cosine
similarities on them is compared, and only then is the projection refitted on every verdict
and stored (``projections`` table). Find similar and the similar tier then compare projected
descriptors; the exact and near tiers never use it (copies are decided by hashes, keypoints and
calibrated descriptor cosines, whatever the user's taste in scenes). ``reset`` forgets it.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from photosim.core.catalog import Catalog
from photosim.core.types import Error

logger = logging.getLogger(__name__)

RANK = 16  # columns of U and V: the correction's rank
MARGIN = 0.5  # not-similar pairs are pushed below this cosine (the graph's storage floor)
POSITIVE = 0.9  # similar pairs are pulled above this cosine (not to 1: scenes stay apart)
PRESERVE = 1.0  # weight of keeping the other photos' cosines as they were
LIBRARY_SAMPLE = 1000  # library descriptors whose pairwise cosines are preserved
PRESERVE_BATCH = 256  # of them per step
DECAY = 1e-3  # weight decay of U and V (pulls f back to the identity)
STEPS = 300  # Adam steps, full batch
LEARNING_RATE = 0.01
MIN_EACH = 5  # "similar" and "not similar" verdicts needed, each
HOLD_OUT = 0.25  # share of the verdicts held back to decide whether to keep the projection
SEED = 15  # the split and the initialisation are reproducible


class LearnError(Error):
    """No projection can be learned (too few verdicts, no descriptors)."""


@dataclass
class Projection:
    """A learned descriptor projection ``f(x) = normalise(x + (x U) V^T)``.

    Attributes:
        model: Descriptor model id it applies to.
        u: ``(D, r)`` float32.
        v: ``(D, r)`` float32.
        report: What it was trained on and how it did (``verdicts``, ``similar``,
            ``not_similar``, ``held_out_auc_plain``, ``held_out_auc_learned``, ``seconds``).
    """

    model: str
    u: np.ndarray
    v: np.ndarray
    report: dict[str, Any]

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Project descriptors.

        Args:
            vectors: ``(N, D)`` (or ``(D,)``) float32 descriptors, L2-normalised.

        Returns:
            The same shape, float32, L2-normalised (a zero row stays zero).
        """
        x = np.asarray(vectors, np.float32)
        y = x + (x @ self.u) @ self.v.T
        norm = np.linalg.norm(y, axis=-1, keepdims=True)
        return (y / np.maximum(norm, 1e-12)).astype(np.float32)

    def codes(self, vectors: np.ndarray) -> np.ndarray:
        """What :meth:`cosines` needs of each descriptor: ``(N, 2r + 1)`` float32 rows
        ``[x U, x V, |x|^2]`` (r floats each instead of D: a library's codes fit in memory).

        Args:
            vectors: ``(N, D)`` float32 descriptors (the stored, L2-normalised ones).
        """
        x = np.asarray(vectors, np.float32)
        return np.concatenate(
            [x @ self.u, x @ self.v, (x * x).sum(axis=1, keepdims=True)], axis=1
        ).astype(np.float32)

    def cosines(self, raw: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarities of projected pairs from their plain cosines and codes.

        With ``p = x U`` and ``q = x V``, ``f(a) . f(b) = a . b + p_b . q_a + p_a . q_b +
        p_a (V^T V) p_b`` before normalisation, so a pair costs O(r) given ``a . b``.

        Args:
            raw: ``(M,)`` plain inner products ``a . b``.
            a: ``(M, 2r + 1)`` codes of the first photos (:meth:`codes`).
            b: ``(M, 2r + 1)`` codes of the second.

        Returns:
            ``(M,)`` float32 cosine similarities of the projected descriptors.
        """
        r = self.u.shape[1]
        gram = self.v.T @ self.v
        pa, qa, na = a[:, :r], a[:, r : 2 * r], a[:, 2 * r]
        pb, qb, nb = b[:, :r], b[:, r : 2 * r], b[:, 2 * r]
        dot = (np.asarray(raw, np.float32) + (pb * qa).sum(1) + (pa * qb).sum(1)
               + ((pa @ gram) * pb).sum(1))
        norm_a = np.sqrt(np.maximum(na + 2 * (pa * qa).sum(1) + ((pa @ gram) * pa).sum(1), 1e-24))
        norm_b = np.sqrt(np.maximum(nb + 2 * (pb * qb).sum(1) + ((pb @ gram) * pb).sum(1), 1e-24))
        return (dot / (norm_a * norm_b)).astype(np.float32)

    def to_bytes(self) -> bytes:
        """The ``.npz`` blob stored in the catalog."""
        buf = io.BytesIO()
        np.savez(buf, u=self.u, v=self.v)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, model: str, data: bytes, report: dict[str, Any]) -> Projection:
        """Read a stored blob.

        Raises:
            LearnError: The blob is not a projection of matching shapes.
        """
        try:
            with np.load(io.BytesIO(data)) as npz:
                u, v = np.asarray(npz["u"], np.float32), np.asarray(npz["v"], np.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise LearnError(f"the stored projection of {model} is unreadable: {exc}") from exc
        if u.ndim != 2 or u.shape != v.shape:
            raise LearnError(f"the stored projection of {model} has shapes {u.shape}, {v.shape}")
        return cls(model, u, v, report)


def _normalised(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norm = np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    return y / norm, norm


def _through_norm(grad: np.ndarray, unit: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Gradient with respect to ``y`` of a loss whose gradient with respect to
    ``y / |y|`` (rows) is ``grad``."""
    return (grad - unit * (grad * unit).sum(axis=1, keepdims=True)) / norm


def fit(
    a: np.ndarray, b: np.ndarray, similar: np.ndarray, rank: int = RANK, steps: int = STEPS,
    margin: float = MARGIN, decay: float = DECAY, seed: int = SEED,
    library: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``U, V`` to verdict pairs (contrastive loss, Hadsell et al. 2006), by Adam
    (Kingma & Ba, 2015) on analytic gradients in NumPy (core never imports torch).

    The loss: ``mean over similar pairs of max(0, POSITIVE - cos)^2 + mean over not-similar
    pairs of max(0, cos - margin)^2 + PRESERVE * mean over library pairs of (cos' - cos)^2 +
    decay * (|U|^2 + |V|^2)``, where ``cos'`` is the projected cosine of two library photos
    (a batch of up to :data:`PRESERVE_BATCH` per step) and ``cos`` their plain one.

    Args:
        a: ``(P, D)`` float32 descriptors of the pairs' first photos, L2-normalised.
        b: ``(P, D)`` float32 descriptors of their second photos.
        similar: ``(P,)`` bool, the verdicts.
        rank: Columns of ``U`` and ``V``.
        steps: Adam steps (every verdict pair in each).
        margin: Cosine below which a not-similar pair costs nothing.
        decay: Weight of ``|U|^2 + |V|^2``.
        seed: Initialisation (and library batch) seed.
        library: ``(M, D)`` float32 descriptors whose cosines the projection should keep.

    Returns:
        ``(U, V)``, each ``(D, rank)`` float32.
    """
    rng = np.random.default_rng(seed)
    xa = np.asarray(a, np.float32)
    xb = np.asarray(b, np.float32)
    pos = np.asarray(similar, bool)
    dim = xa.shape[1]
    u = (rng.standard_normal((dim, rank)) * 0.01).astype(np.float32)
    v = np.zeros((dim, rank), np.float32)
    lib = np.asarray(library, np.float32) if library is not None and len(library) > 1 else None
    moments = [np.zeros_like(u), np.zeros_like(u), np.zeros_like(v), np.zeros_like(v)]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    n_pos, n_neg = max(1, int(pos.sum())), max(1, int((~pos).sum()))
    for step in range(1, steps + 1):
        xs = [xa, xb]
        grads_y: list[np.ndarray] = []
        ya, yb = xa + (xa @ u) @ v.T, xb + (xb @ u) @ v.T
        ha, na = _normalised(ya)
        hb, nb = _normalised(yb)
        cos = (ha * hb).sum(axis=1)
        dcos = np.where(pos, -2.0 * np.maximum(POSITIVE - cos, 0.0) / n_pos,
                        2.0 * np.maximum(cos - margin, 0.0) / n_neg).astype(np.float32)
        grads_y += [_through_norm(dcos[:, None] * hb, ha, na),
                    _through_norm(dcos[:, None] * ha, hb, nb)]
        if lib is not None:
            batch = lib if len(lib) <= PRESERVE_BATCH else lib[
                rng.choice(len(lib), PRESERVE_BATCH, replace=False)]
            yl = batch + (batch @ u) @ v.T
            hl, nl = _normalised(yl)
            diff = hl @ hl.T - batch @ batch.T
            g = (2.0 * PRESERVE / diff.size) * diff  # d loss / d cos', symmetric
            xs.append(batch)
            grads_y.append(_through_norm(2.0 * g @ hl, hl, nl))
        grad_u = 2.0 * decay * u
        grad_v = 2.0 * decay * v
        for x, gy in zip(xs, grads_y):
            grad_v += gy.T @ (x @ u)
            grad_u += x.T @ (gy @ v)
        for i, (param, grad) in enumerate(((u, grad_u), (v, grad_v))):
            m, s2 = moments[2 * i], moments[2 * i + 1]
            m *= beta1
            m += (1 - beta1) * grad
            s2 *= beta2
            s2 += (1 - beta2) * grad * grad
            param -= (LEARNING_RATE * (m / (1 - beta1**step))
                      / (np.sqrt(s2 / (1 - beta2**step)) + eps)).astype(np.float32)
    return u.astype(np.float32), v.astype(np.float32)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC: the probability that a random positive scores above a random negative
    (ties count half; Mann-Whitney U). 0.5 when one class is empty."""
    scores = np.asarray(scores, np.float64)
    positive = np.asarray(positive, bool)
    p, n = scores[positive], scores[~positive]
    if not len(p) or not len(n):
        return 0.5
    above = (p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()
    return float(above / (len(p) * len(n)))


def _pairs(catalog: Catalog, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The verdict pairs whose two contents have descriptors: ``(a, b, similar)``."""
    verdicts = catalog.similarity_verdicts()
    ids = catalog.embedding_ids_by_hash(model)
    wanted = sorted({ids[h] for a, b, _ in verdicts for h in (a, b) if h in ids})
    found, hashes, vectors = catalog.embeddings(model, ids=wanted) if wanted else (
        np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32))
    by_hash = dict(zip(hashes, vectors))
    rows = [(by_hash[a], by_hash[b], s) for a, b, s in verdicts if a in by_hash and b in by_hash]
    if not rows:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), np.zeros(0, bool)
    a = np.stack([r[0] for r in rows]).astype(np.float32)
    b = np.stack([r[1] for r in rows]).astype(np.float32)
    return a, b, np.array([r[2] for r in rows], bool)


def _sample(catalog: Catalog, model: str) -> np.ndarray:
    """Up to :data:`LIBRARY_SAMPLE` of the library's descriptors, ``(M, D)`` float32."""
    ids = sorted(catalog.embedding_ids_by_hash(model).values())
    if len(ids) > LIBRARY_SAMPLE:
        rng = np.random.default_rng(SEED)
        ids = sorted(rng.choice(ids, LIBRARY_SAMPLE, replace=False).tolist())
    return np.asarray(catalog.embeddings(model, ids=ids)[2], np.float32)


def learn(catalog: Catalog, model: str) -> Projection:
    """Learn, check on held-back verdicts and store the projection of ``model``.

    Returns:
        The stored projection (``report["kept"]`` True), or the rejected one (``kept`` False:
        it did not separate the held-back verdicts at least as well as the plain descriptors;
        nothing is stored, and a projection stored before is left as it was).

    Raises:
        LearnError: Fewer than :data:`MIN_EACH` "similar" or "not similar" verdicts between
            photos that have descriptors.
    """
    started = time.perf_counter()
    a, b, similar = _pairs(catalog, model)
    n_pos, n_neg = int(similar.sum()), int((~similar).sum())
    if n_pos < MIN_EACH or n_neg < MIN_EACH:
        raise LearnError(
            f"learning needs at least {MIN_EACH} 'similar' and {MIN_EACH} 'not similar' "
            f"verdicts between photos with {model} descriptors; there are {n_pos} and {n_neg}"
        )
    rng = np.random.default_rng(SEED)
    held = np.zeros(len(similar), bool)
    for label in (True, False):  # a stratified split: both kinds are held back
        members = np.flatnonzero(similar == label)
        take = max(1, int(round(len(members) * HOLD_OUT)))
        held[rng.choice(members, take, replace=False)] = True
    library = _sample(catalog, model)
    u, v = fit(a[~held], b[~held], similar[~held], library=library)
    trial = Projection(model, u, v, {})
    plain_auc = auc((a[held] * b[held]).sum(axis=1), similar[held])
    learned_auc = auc((trial.apply(a[held]) * trial.apply(b[held])).sum(axis=1), similar[held])
    report: dict[str, Any] = {
        "verdicts": len(similar), "similar": n_pos, "not_similar": n_neg,
        "held_out": int(held.sum()),
        "held_out_auc_plain": round(plain_auc, 4), "held_out_auc_learned": round(learned_auc, 4),
        "rank": RANK, "kept": learned_auc >= plain_auc,
    }
    if not report["kept"]:
        report["seconds"] = round(time.perf_counter() - started, 2)
        logger.info("projection of %s not kept: %s", model, report)
        return Projection(model, u, v, report)
    u, v = fit(a, b, similar, library=library)
    report["seconds"] = round(time.perf_counter() - started, 2)
    projection = Projection(model, u, v, report)
    catalog.put_projection(model, projection.to_bytes(), json.dumps(report))
    logger.info("projection of %s learned: %s", model, report)
    return projection


def load(catalog: Catalog, model: str | None) -> Projection | None:
    """The stored projection of ``model`` (None when there is none, or it is unreadable:
    then a warning is logged and the plain descriptors are used)."""
    if not model:
        return None
    stored = catalog.projection(model)
    if stored is None:
        return None
    data, report, _ = stored
    try:
        return Projection.from_bytes(model, data, json.loads(report))
    except (LearnError, ValueError) as exc:
        logger.warning("ignoring the learned projection: %s", exc)
        return None


def library_codes(
    catalog: Catalog, model: str, projection: Projection, chunk: int = 20_000
) -> dict[str, np.ndarray]:
    """``content hash -> codes`` (:meth:`Projection.codes`) of every stored descriptor of
    ``model``, read a chunk at a time (the descriptors themselves are not kept)."""
    ids = sorted(catalog.embedding_ids_by_hash(model).values())
    out: dict[str, np.ndarray] = {}
    for start in range(0, len(ids), chunk):
        _, hashes, vectors = catalog.embeddings(model, ids=ids[start : start + chunk])
        out.update(zip(hashes, projection.codes(np.asarray(vectors, np.float32))))
    return out


def reset(catalog: Catalog, model: str, verdicts: bool = False) -> tuple[bool, int]:
    """Forget the projection of ``model`` (and, with ``verdicts``, every similarity verdict).

    Returns:
        ``(a projection was stored, verdicts forgotten)``.
    """
    had = catalog.delete_projection(model)
    forgotten = catalog.clear_similarity_verdicts() if verdicts else 0
    return had, forgotten
