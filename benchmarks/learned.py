"""Learning from the user's verdicts: does the learned projection improve find similar?

``python -m benchmarks.learned [--json FILE]`` simulates a user on ``../shared/data/dev`` and
``../shared/data/calib`` (each scanned with the default model on a fresh catalog). The photos
are split in two halves at random (seeded, 5 splits). The user works with the first half only:
they query its photos and mark each of the first 10 results from that half "similar" (same
scene or a copy, by the ground truth) or "not similar". Their first N verdicts go into the
catalog (``similarity_verdicts``) and :func:`photosim.core.index.learned.learn` trains,
checks on held-back verdicts, and keeps (or not) the projection.

The held-back photos judge it: every photo of the *second* half that has a relevant photo is
a query, the gallery is every other photo of the set, and mAP is compared with and without
the projection. Also reported: the similar tier (pairs at cosine >= ``similar_cosine``) with
and without the projection, over all pairs of the set, and the near tier's precision (which
the projection never touches: it is computed to show it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("dev", "calib")
BUDGETS = (10, 25, 50, 100, 200)
SPLITS = 5
SHOWN = 10  # results per query the simulated user judges


def _scan(folder: Path, catalog: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "photosim", "--catalog", str(catalog), "scan",
                           "-q", str(folder)], capture_output=True, text=True,
                          env={**os.environ, "PHOTOSIM_OFFLINE": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"scan of {folder} failed: {proc.stderr.strip()[-400:]}")


def _tier(names: list[str], matrix: np.ndarray, threshold: float, relevant: set[Any],
          ) -> tuple[float, float]:
    sims = matrix @ matrix.T
    iu = np.triu_indices(len(names), 1)
    predicted = sims[iu] >= threshold
    truth = np.array([frozenset((names[i], names[j])) in relevant for i, j in zip(*iu)], bool)
    tp = int((predicted & truth).sum())
    return tp / max(1, int(predicted.sum())), tp / max(1, int(truth.sum()))


def measure(work: Path, log: Any = print) -> dict[str, Any]:
    """``{set: {budget: {...figures averaged over the splits...}}}``."""
    from photosim.config import Thresholds
    from photosim.core.catalog import Catalog
    from photosim.core.evaluate import load_truth, mean_average_precision
    from photosim.core.index import learned

    threshold = Thresholds().similar_cosine
    out: dict[str, Any] = {}
    for set_name in SETS:
        folder = SHARED / set_name
        if not (folder / "groundtruth.json").is_file():
            raise FileNotFoundError(f"{folder} with its groundtruth.json is needed")
        truth = load_truth(folder / "groundtruth.json")
        relevant = truth.duplicate | truth.similar
        base = work / f"{set_name}.db"
        log(f"{set_name}: scanning")
        _scan(folder, base)
        with Catalog(base) as catalog:
            model = catalog.get_meta("model")
            by_hash = dict(zip(*catalog.embeddings(model)[1:]))
            photos = sorted((os.path.relpath(p.path, folder).replace(os.sep, "/"),
                             p.content_hash) for p in catalog.photos()
                            if p.content_hash in by_hash)  # a split independent of scan order
        names = [n for n, _ in photos]
        hashes = [h for _, h in photos]
        matrix = np.stack([by_hash[h] for h in hashes]).astype(np.float32)
        rows: dict[str, Any] = {}
        for budget in BUDGETS:
            figures: dict[str, list[float]] = {}
            for split in range(SPLITS):
                rng = np.random.default_rng(1000 + split)
                first = rng.permutation(len(names)) < len(names) // 2
                # The user's verdicts: their queries' first results within their half.
                verdicts: list[tuple[str, str, bool]] = []
                seen: set[frozenset[str]] = set()
                for q in rng.permutation(np.flatnonzero(first)):
                    sims = matrix @ matrix[q]
                    shown = [i for i in np.argsort(-sims) if first[i] and hashes[i] != hashes[q]]
                    for i in shown[:SHOWN]:
                        pair = frozenset((hashes[q], hashes[i]))
                        if pair in seen:
                            continue
                        seen.add(pair)
                        verdicts.append((hashes[q], hashes[i],
                                         frozenset((names[q], names[i])) in relevant))
                verdicts = verdicts[:budget]
                db = work / f"{set_name}-{budget}-{split}.db"
                shutil.copy(base, db)
                with Catalog(db) as catalog:
                    for a, b, s in verdicts:
                        catalog.add_similarity_verdict(a, b, s)
                    try:
                        projection = learned.learn(catalog, model)
                    except learned.LearnError:
                        projection = None
                db.unlink()
                for suffix in ("-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
                queries = [i for i in np.flatnonzero(~first) if names[i] in truth.scene_members]
                kept = projection is not None and projection.report["kept"]
                projected = projection.apply(matrix) if kept else matrix
                plain_p, plain_r = _tier(names, matrix, threshold, relevant)
                new_p, new_r = _tier(names, projected, threshold, relevant)
                for key, value in (
                    ("verdicts", len(verdicts)),
                    ("similar_verdicts", sum(s for *_, s in verdicts)),
                    ("kept", float(kept)),
                    ("mAP_plain", mean_average_precision(names, matrix, queries, relevant)),
                    ("mAP_learned", mean_average_precision(names, projected, queries, relevant)),
                    ("similar_tier_precision_plain", plain_p),
                    ("similar_tier_recall_plain", plain_r),
                    ("similar_tier_precision_learned", new_p),
                    ("similar_tier_recall_learned", new_r),
                    ("train_seconds", projection.report.get("seconds", 0.0) if projection else 0.0),
                ):
                    figures.setdefault(key, []).append(float(value))
            rows[str(budget)] = {k: round(float(np.mean(v)), 4) for k, v in figures.items()}
            log(f"{set_name} {budget} verdicts: {rows[str(budget)]}")
        out[set_name] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.learned",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "learned.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="photosim-learned-") as tmp:
        try:
            results = measure(Path(tmp), lambda line: print(line, file=sys.stderr))
        except (RuntimeError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print("| set | verdicts (similar) | kept | mAP plain | mAP learned | similar tier P / R plain "
          "| learned | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for set_name, rows in results.items():
        for r in rows.values():
            print(f"| {set_name} | {r['verdicts']:.0f} ({r['similar_verdicts']:.0f}) | "
                  f"{r['kept']:.1f} | {r['mAP_plain']:.4f} | {r['mAP_learned']:.4f} | "
                  f"{r['similar_tier_precision_plain']:.3f} / {r['similar_tier_recall_plain']:.3f}"
                  f" | {r['similar_tier_precision_learned']:.3f} / "
                  f"{r['similar_tier_recall_learned']:.3f} | {r['train_seconds']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
