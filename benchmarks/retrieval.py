"""Retrieval quality of the pooling, whitening and re-ranking options with the packaged weights.

``python -m benchmarks.retrieval`` scans ``../shared/data/dev`` and ``../shared/data/calib``
once per pooling (global average, GeM, R-MAC: Babenko & Lempitsky 2015, Radenović et al.
2018, Tolias et al. 2016) with ``photosim eval`` (a fresh catalog each; the tiers, retrieval
figures and scan time come from its JSON), then ranks the same descriptors again after a
PCA-whitening (Jégou & Chum 2012) learned on the set itself and learned on the other set (a
library never whitens on photos it has not got, but the other set shows what a whitening
learned elsewhere does). The plain descriptors are also re-ranked by alpha-query expansion and
by diffusion on the stored kNN graph (:mod:`photosim.core.index.rerank`), as ``photosim eval``
reports them. It prints a markdown table and writes every figure as JSON.

Both sets are small (163 and 86 photos): a whitening learned on them has few samples per
dimension, which is why the dimensions tried stay well below the number of photos.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
POOLINGS = ("avg", "gem", "rmac")
WHITEN_DIMS = (32, 64)
SETS = ("dev", "calib")


def _eval(folder: Path, catalog: Path, model: str, pooling: str) -> dict[str, Any]:
    """``photosim eval`` of ``folder`` on a fresh catalog; its JSON report."""
    argv = [sys.executable, "-m", "photosim", "eval", str(folder), "--truth",
            str(folder / "groundtruth.json"), "--catalog", str(catalog), "--model", model,
            "--pooling", pooling, "--json", "-q"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "PHOTOSIM_OFFLINE": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"photosim eval failed: {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout)


def _descriptors(catalog_path: Path, model_id: str) -> np.ndarray:
    """``(N, D)`` float32 descriptors stored in a catalog."""
    from photosim.core.catalog import Catalog

    with Catalog(catalog_path) as catalog:
        return np.asarray(catalog.embeddings(model_id)[2], dtype=np.float32)


def _ranked(catalog_path: Path, folder: Path, model_id: str, transform: Any) -> dict[str, Any]:
    from photosim.core.catalog import Catalog
    from photosim.core.evaluate import load_truth, retrieval_report

    truth = load_truth(folder / "groundtruth.json")
    with Catalog(catalog_path) as catalog:
        return retrieval_report(catalog, folder, truth, model_id, transform)


def measure(work: Path, model: str, log: Any = print) -> dict[str, Any]:
    """Every pooling on every set, plain and whitened; ``{pooling: {set: figures}}``.

    Raises:
        RuntimeError: A scan failed.
        FileNotFoundError: ``../shared/data`` is not beside the repository.
    """
    from photosim.core.index.pca import fit_pca

    for name in SETS:
        if not (SHARED / name / "groundtruth.json").is_file():
            raise FileNotFoundError(f"{SHARED / name} with its groundtruth.json is needed")
    out: dict[str, Any] = {}
    for pooling in POOLINGS:
        model_id = f"{model}-{pooling}"
        catalogs = {name: work / f"{name}-{pooling}.db" for name in SETS}
        rows: dict[str, Any] = {}
        for name in SETS:
            log(f"{pooling}: photosim eval {name}")
            report = _eval(SHARED / name, catalogs[name], model, pooling)
            by_rerank = report["retrieval_by_rerank"]
            rows[name] = {
                "plain": by_rerank["none"],
                "plain+qe": by_rerank["qe"],
                "plain+diffusion": by_rerank["diffusion"],
                "scan_ms_per_photo": report.get("scan_ms_per_photo"),
                "similar": {k: report["tiers"]["similar"].get(k)
                            for k in ("precision", "recall", "f1")},
                "near": {k: report["tiers"]["near"].get(k) for k in ("precision", "recall")},
            }
        vectors = {name: _descriptors(catalogs[name], model_id) for name in SETS}
        for name in SETS:
            other = next(o for o in SETS if o != name)
            for dim in WHITEN_DIMS:
                for source in (name, other):
                    pca = fit_pca(vectors[source], dim, whiten=True)
                    key = f"whiten{dim}-{'self' if source == name else 'other'}"
                    rows[name][key] = _ranked(catalogs[name], SHARED / name, model_id,
                                              pca.transform)
        out[pooling] = rows
    return out


def table(results: dict[str, Any]) -> str:
    """A markdown table: a row per pooling, whitening and re-ranking; mAP and recall@10 per
    set, the similar tier (which re-ranking does not change) and the ranking time per query."""
    lines = ["| pooling | whitening | re-ranking | dev mAP | dev R@10 | calib mAP | calib R@10 | "
             "similar tier P / R (dev; calib) | ms/query (dev; calib) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for pooling, rows in results.items():
        variants = [k for k in rows["dev"] if k.startswith(("plain", "whiten"))]
        for variant in variants:
            dev, calib = rows["dev"][variant], rows["calib"][variant]
            whitening, _, how = variant.partition("+")
            similar = "-"
            if whitening == "plain":
                sd, sc = rows["dev"]["similar"], rows["calib"]["similar"]
                similar = (f"{sd['precision']:.3f} / {sd['recall']:.3f}; "
                           f"{sc['precision']:.3f} / {sc['recall']:.3f}")
            cost = "-"
            if dev.get("query_ms") is not None:
                cost = f"{dev['query_ms']:.2f}; {calib['query_ms']:.2f}"
            lines.append(f"| {pooling} | {whitening} | {how or 'none'} | {dev['mAP']:.4f} | "
                         f"{dev['recall_at_10']:.3f} | {calib['mAP']:.4f} | "
                         f"{calib['recall_at_10']:.3f} | {similar} | {cost} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrieval",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "retrieval.json")
    parser.add_argument("--work", type=Path, default=None,
                        help="where the catalogs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="photosim-retrieval-", dir=args.work) as tmp:
        try:
            results = measure(Path(tmp), args.model)
        except (RuntimeError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    args.out.write_text(json.dumps({"model": args.model, "results": results}, indent=1) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
