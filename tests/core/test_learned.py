"""Learning from the user's verdicts: the projection, its checks, storage and use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import ColorGridEmbedder, make_photo

from photosim.config import Settings, Thresholds
from photosim.core.catalog import Catalog
from photosim.core.dedup.grouping import find_duplicates, presumed_tier
from photosim.core.index import learned
from photosim.core.index.learned import LearnError, Projection, auc, fit
from photosim.core.scan.pipeline import run_scan, scan
from photosim.core.search import find_similar

MODEL = "test-colorgrid"


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_codes_give_the_projected_cosines() -> None:
    rng = np.random.default_rng(1)
    p = Projection("m", rng.normal(0, 0.2, (32, 4)).astype(np.float32),
                   rng.normal(0, 0.2, (32, 4)).astype(np.float32), {})
    a, b = _unit(rng.normal(size=(20, 32))), _unit(rng.normal(size=(20, 32)))
    want = (p.apply(a) * p.apply(b)).sum(axis=1)
    got = p.cosines((a * b).sum(axis=1), p.codes(a), p.codes(b))
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.allclose(np.linalg.norm(p.apply(a), axis=1), 1.0, atol=1e-5)
    back = Projection.from_bytes("m", p.to_bytes(), {})
    np.testing.assert_array_equal(back.u, p.u)
    with pytest.raises(LearnError, match="unreadable"):
        Projection.from_bytes("m", b"not an npz", {})


def test_fit_learns_what_the_plain_cosine_misses() -> None:
    """Scenes whose photos differ along a nuisance direction (lighting, say) more than two
    scenes differ: the plain cosine mixes them up, the verdicts teach the projection to
    ignore the nuisance; held-back pairs are separated better."""
    rng = np.random.default_rng(7)
    dim = 24
    centres = _unit(rng.normal(size=(6, dim)))
    nuisance = _unit(rng.normal(size=dim))

    def shots(n: int) -> tuple[np.ndarray, np.ndarray]:
        scene = rng.integers(0, 6, n)
        light = rng.normal(0, 1.5, (n, 1))
        return _unit(centres[scene] * 0.6 + light * nuisance + rng.normal(0, 0.05, (n, dim))), scene

    def pairs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, s = shots(2 * n)
        return x[:n], x[n:], s[:n] == s[n:]

    a, b, same = pairs(400)
    u, v = fit(a, b, same, library=shots(200)[0])
    proj = Projection("m", u, v, {})
    ta, tb, tsame = pairs(300)  # pairs the fit never saw
    plain = auc((ta * tb).sum(axis=1), tsame)
    learnt = auc((proj.apply(ta) * proj.apply(tb)).sum(axis=1), tsame)
    assert learnt > plain + 0.1, (plain, learnt)


def test_auc_by_hand() -> None:
    assert auc(np.array([0.9, 0.8, 0.1]), np.array([True, False, False])) == 1.0
    assert auc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5
    assert auc(np.array([0.1, 0.9]), np.array([True, False])) == 0.0
    assert auc(np.array([0.3]), np.array([True])) == 0.5


@pytest.fixture()
def library(tmp_path: Path) -> Catalog:
    folder = tmp_path / "photos"
    for i in range(14):
        make_photo(folder / f"p{i:02d}.jpg", seed=100 + i)
    catalog = Catalog(tmp_path / "c.db")
    assert run_scan(scan(catalog, [str(folder)], Settings(workers=1), ColorGridEmbedder())).errors == 0
    return catalog


def _hashes(catalog: Catalog) -> list[str]:
    return [p.content_hash for p in sorted(catalog.photos(), key=lambda p: p.path)]


def test_learn_needs_both_kinds_of_verdicts(library: Catalog) -> None:
    h = _hashes(library)
    for other in h[1:7]:
        library.add_similarity_verdict(h[0], other, True)
    with pytest.raises(LearnError, match="at least 5 'similar' and 5 'not similar'.*6 and 0"):
        learned.learn(library, MODEL)
    with pytest.raises(ValueError, match="two different contents"):
        library.add_similarity_verdict(h[0], h[0], True)
    assert library.projection(MODEL) is None


def test_learned_similarity_is_stored_used_and_reset(library: Catalog) -> None:
    h = _hashes(library)
    paths = sorted(p.path for p in library.photos())
    # The user's taste: photos 0-6 belong together, 7-13 do not belong with them.
    for i in range(1, 7):
        library.add_similarity_verdict(h[0], h[i], True)
        library.add_similarity_verdict(h[i], h[(i % 6) + 1], True)
    for i in range(7, 14):
        library.add_similarity_verdict(h[0], h[i], False)
        library.add_similarity_verdict(h[1], h[i], False)
    projection = learned.learn(library, MODEL)
    report = projection.report
    assert report["verdicts"] == 26 and report["similar"] == 12 and report["not_similar"] == 14
    assert report["held_out"] >= 2 and 0.0 <= report["held_out_auc_learned"] <= 1.0
    if not report["kept"]:  # pragma: no cover - the check refused: nothing stored
        assert library.projection(MODEL) is None
        pytest.skip("the held-back check refused this projection")
    stored = learned.load(library, MODEL)
    assert stored is not None and stored.report == report
    # Find similar ranks by the learned similarity: the photos marked similar come first.
    result = find_similar(library, paths[0], k=13, rerank="none")
    assert any("learned from your 26 verdicts" in n for n in result.notes)
    top = {hit.photo.content_hash for hit in result.hits[:6]}
    assert top == set(h[1:7])
    th = Thresholds(verify=False)
    near_before = find_duplicates(library, "near", th, model=MODEL).groups
    find_duplicates(library, "similar", th, model=MODEL)  # runs with the learned similarity
    # Reset: the plain similarity again.
    had, forgotten = learned.reset(library, MODEL, verdicts=True)
    assert had and forgotten == 26 and learned.load(library, MODEL) is None
    plain = find_similar(library, paths[0], k=13, rerank="none")
    assert not any("learned" in n for n in plain.notes)
    assert [g.members for g in find_duplicates(library, "near", th, model=MODEL).groups] == [
        g.members for g in near_before]


def test_the_learned_similarity_decides_the_similar_band_only() -> None:
    th = Thresholds()
    # Hashes far apart: only descriptors can match. A plain cosine of 0.6 is no match...
    assert presumed_tier(30, 30, 0.0, False, False, 0.6, "similar", th) is None
    # ...the learned similarity lifts it to similar, never to near.
    assert presumed_tier(30, 30, 0.0, False, False, 0.6, "similar", th, scene=0.85) == "similar"
    assert presumed_tier(18, 20, 0.0, False, False, 0.6, "similar", th, scene=0.99) == "similar"
    assert presumed_tier(30, 30, 0.0, False, False, 0.6, "near", th, scene=0.99) is None
    # And it can take a pair out of the similar band: the user said "not similar".
    assert presumed_tier(30, 30, 0.0, False, False, 0.85, "similar", th, scene=0.4) is None
    # Near evidence keeps the plain cosine: 0.96 with close pHashes is near, whatever is learned.
    assert presumed_tier(20, 30, 0.0, False, False, 0.96, "similar", th, scene=0.3) == "near"
