"""Archive scale: recall, latency and memory of the compressed index against bytes per photo.

``python -m benchmarks.archive [--sizes 1000000,10000000] [--codes 16,32,64] [--json FILE]``
builds :class:`~photosim.core.index.compressed.CompressedIndex` (IVF-PQ with OPQ, the product's
class and parameters) over synthetic clustered descriptors and measures, like the PQ papers'
tables (Jégou et al., TPAMI 2011, table of recall@R against code size):

- **recall@R** (R = 1, 10, 100): the share of queries whose true nearest neighbour is among
  the first R candidates of the compressed search, before re-ranking (Jégou's definition);
- **recall@10 after re-ranking**: the overlap of the 10 results the product returns (the first
  :data:`~photosim.core.index.compressed.RERANK` candidates re-scored with their float16
  descriptors) with the exact 10 nearest;
- query p50/p99 (one query at a time, re-ranking included), build time (training, adding,
  writing the float16 store) and memory: the index's own RAM (codes, ids, coarse quantizer)
  and the anonymous resident memory (RssAnon) of a fresh process that loads the saved index
  and answers the queries (the float16 store's pages are file cache: RssFile, reported apart).

Data: :func:`benchmarks.suite.synthetic_descriptors`' model (series of about 20 photos around
a centre, a decaying spectrum, cosine about 0.8 inside a series), 256-d (descriptors after
the product's PCA, ``scan --pca 256``), generated and added in chunks so 10M never sit in RAM;
exact neighbours of the queries are computed on the fly. A sanity row uses the real
EfficientNet-Lite0 descriptors (1280-d) of ``../shared/data/dev`` + ``calib`` when present.
``--hashes 10000000`` adds the perceptual-hash index at that size (the binary inverted file
of :mod:`photosim.core.index.binary`): synthetic 128-bit hashes in series (members about 48
bits apart), and for 500 of them planted copies 6, 12 and 22 bits away (22: the near tier's
hash sum); the share of copies among the 16 neighbours the graph keeps, p50/p99, memory.

Goal (issue 16): 10M photos searchable in <= 2 GB RAM, recall@10 >= 0.9, p99 <= 10 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM = 256
QUERIES = 500
CHUNK = 250_000
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class Stream:
    """Chunks of clustered unit vectors, the same for a given ``(n, dim, seed)``."""

    def __init__(self, n: int, dim: int, seed: int = 0) -> None:
        self.n, self.dim = n, dim
        rng = np.random.default_rng(seed)
        self.spectrum = (1.0 / np.sqrt(1.0 + np.arange(dim) / 8.0)).astype(np.float32)
        self.centres = rng.standard_normal((max(1, n // 20), dim), dtype=np.float32)
        self.centres *= self.spectrum
        self.seed = seed

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        out = self.centres[rng.integers(0, len(self.centres), count)]
        out += 0.5 * rng.standard_normal((count, self.dim), dtype=np.float32) * self.spectrum
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def chunks(self):
        for index, start in enumerate(range(0, self.n, CHUNK)):
            rng = np.random.default_rng((self.seed, index))
            yield start, self.draw(rng, min(CHUNK, self.n - start))

    def queries(self, count: int) -> np.ndarray:
        return self.draw(np.random.default_rng((self.seed, 2**31)), count)


def _memory() -> dict[str, float]:
    """This process's memory from /proc, MB (empty off Linux)."""
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def build(n: int, code_bytes: int, work: Path, log: Any = print) -> dict[str, Any]:
    """Build and save an index of ``n`` vectors; save the queries and their exact top 100."""
    from photosim.core.index.compressed import CompressedIndex, compressed_paths

    stream = Stream(n, DIM, seed=n % 9973)
    queries = stream.queries(QUERIES)
    paths = compressed_paths(work / "archive.db", f"synthetic-{n}-{code_bytes}")
    started = time.perf_counter()
    # Training sample: the first chunk's worth of vectors from every part of the stream.
    sample = next(iter(stream.chunks()))[1]
    index = CompressedIndex.create(paths[0].stem, sample, paths, count=n, code_bytes=code_bytes)
    train_s = time.perf_counter() - started
    best_s = np.full((QUERIES, 100), -2.0, np.float32)
    best_i = np.zeros((QUERIES, 100), np.int64)
    for start, chunk in stream.chunks():
        index.add(np.arange(start, start + len(chunk), dtype=np.int64), chunk)
        sims = queries @ chunk.T
        top = np.argpartition(-sims, min(100, sims.shape[1] - 1), axis=1)[:, :100]
        cand_s = np.concatenate([best_s, np.take_along_axis(sims, top, 1)], axis=1)
        cand_i = np.concatenate([best_i, top + start], axis=1)
        keep = np.argsort(-cand_s, axis=1)[:, :100]
        best_s = np.take_along_axis(cand_s, keep, 1)
        best_i = np.take_along_axis(cand_i, keep, 1)
        if start and start % 2_000_000 == 0:
            log(f"    {start:,} added")
    index.save()
    build_s = time.perf_counter() - started
    np.save(work / "queries.npy", queries)
    np.save(work / "truth.npy", best_i)
    return {
        "vectors": n, "dim": DIM, "code_bytes": code_bytes, "shape": index.shape,
        "train_s": round(train_s, 1), "build_s": round(build_s, 1),
        "index_ram_mb": round(index.memory_bytes / 2**20, 1),
        "store_gb": round(paths[2].stat().st_size / 2**30, 2),
        "build_process": _memory(),
        "files": [str(p) for p in paths],
    }


def query(work: Path, model: str, nprobes: list[int], reranks: list[int]) -> dict[str, Any]:
    """In a fresh process: load the saved index, answer the queries, measure (see module)."""
    import faiss

    from photosim.core.index.compressed import CompressedIndex, compressed_paths

    paths = compressed_paths(work / "archive.db", model)
    meta = json.loads(paths[1].read_text())
    index = CompressedIndex(model, meta["dim"], paths, faiss.read_index(str(paths[0])),
                            meta["shape"])
    index.set_live(np.load(paths[1].with_suffix(".live.npy")))
    queries = np.load(work / "queries.npy")
    truth = np.load(work / "truth.npy")
    loaded = _memory()
    rows = []
    for nprobe, rerank in [(p, r) for p in nprobes for r in reranks]:
        index.set_nprobe(nprobe)
        index.rerank = rerank
        _, raw = index._index.search(queries, 100)  # the compressed ranking, for recall@R
        recall_r = {f"recall_at_{r}": round(float(np.mean([truth[i, 0] in raw[i, :r]
                                                           for i in range(len(queries))])), 4)
                    for r in (1, 10, 100)}
        index.knn(queries[:5], 10)  # warm-up: the store's first pages
        times, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            labels, _ = index.knn(q[None, :], 10)
            times.append(time.perf_counter() - t0)
            found.append(labels[0])
        overlap = np.mean([len(set(f.tolist()) & set(t[:10].tolist())) / 10
                           for f, t in zip(found, truth)])
        rows.append({"nprobe": nprobe, "rerank": rerank, **recall_r, "recall_at_10_reranked": round(overlap, 4),
                     "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3),
                     "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3)})
    return {"loaded": loaded, "after_queries": _memory(), "nprobe": rows}


HASH_FLIPS = (6, 12, 22)  # bits apart of the planted copies (22: the near tier's hash sum)


def hash_codes(n: int, seed: int) -> np.ndarray:
    """``(n, 128)`` bool hash bits of photo-like structure: series around 1 centre in 10, 25 %
    of the bits flipped (members of a series are about 48 bits apart)."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2, (max(1, n // 10), 128), dtype=np.uint8).astype(bool)
    out = np.empty((n, 128), bool)
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        out[start:start + count] = (centres[rng.integers(0, len(centres), count)]
                                    ^ (rng.random((count, 128)) < 0.25))
    return out


def build_hashes(n: int, work: Path, log: Any = print) -> dict[str, Any]:
    """Build and save the binary hash index of ``n`` codes, ``QUERIES`` of them with a planted
    copy for each of :data:`HASH_FLIPS` (labels ``n + j * QUERIES + i``)."""
    from photosim.core.index.binary import BinaryHashIndex, binary_paths
    from photosim.core.index.vectors import HASH_MODEL

    bits = hash_codes(n, seed=n % 9973)
    rng = np.random.default_rng(1)
    queries = rng.choice(n, QUERIES, replace=False)
    plants = []
    for flips in HASH_FLIPS:
        copy = bits[queries].copy()
        for row in copy:
            row[rng.choice(128, flips, replace=False)] ^= True
        plants.append(copy)
    bits = np.concatenate([bits, *plants])
    paths = binary_paths(work / "archive.db", HASH_MODEL)
    started = time.perf_counter()

    def vectors(rows: np.ndarray) -> np.ndarray:
        return rows.astype(np.float32) * 2 - 1  # the sign is what the index keeps

    pick = np.sort(rng.choice(len(bits), min(len(bits), 200_000), replace=False))
    index = BinaryHashIndex.create(HASH_MODEL, vectors(bits[pick]), paths, count=len(bits))
    train_s = time.perf_counter() - started
    for start in range(0, len(bits), CHUNK):
        chunk = bits[start:start + CHUNK]
        index.add(np.arange(start, start + len(chunk), dtype=np.int64), vectors(chunk))
    index.save()
    np.save(work / "hash_queries.npy", bits[queries])
    return {"codes": len(bits), "nlist": index.nlist, "train_s": round(train_s, 1),
            "build_s": round(time.perf_counter() - started, 1),
            "index_ram_mb": round(index.memory_bytes / 2**20, 1)}


def query_hashes(work: Path, n: int, k: int = 16) -> dict[str, Any]:
    """In a fresh process: load the binary hash index, query with the originals; the share
    of planted copies among the first ``k`` (the neighbour graph's k), p50/p99, memory."""
    import faiss

    from photosim.core.index.binary import BinaryHashIndex, binary_paths
    from photosim.core.index.vectors import HASH_MODEL

    paths = binary_paths(work / "archive.db", HASH_MODEL)
    index = BinaryHashIndex(HASH_MODEL, paths, faiss.read_index_binary(str(paths[0])))
    index.set_live(np.load(paths[2]))
    queries = np.load(work / "hash_queries.npy").astype(np.float32) * 2 - 1
    loaded = _memory()
    index.knn(queries[:5], k)
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        labels, _ = index.knn(q[None, :], k)
        times.append(time.perf_counter() - t0)
        found.append(labels[0])
    recall = {f"found_at_{flips}_bits": round(float(np.mean(
        [n + j * QUERIES + i in found[i] for i in range(QUERIES)])), 4)
        for j, flips in enumerate(HASH_FLIPS)}
    return {"nprobe": index.shape["nprobe"], "k": k, **recall,
            "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3),
            "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3),
            "loaded": loaded, "after_queries": _memory()}


def real_row(log: Any = print) -> dict[str, Any] | None:
    """The real Lite0 descriptors of dev + calib through the compressed index (a sanity row:
    231 photos, every one also a query)."""
    if not (SHARED / "dev").is_dir():
        return None
    from photosim.core.catalog import Catalog
    from photosim.core.index.compressed import CompressedIndex, compressed_paths

    with tempfile.TemporaryDirectory() as work:
        db = Path(work) / "c.db"
        proc = subprocess.run([sys.executable, "-m", "photosim", "--catalog", str(db), "scan",
                               "-q", str(SHARED / "dev"), str(SHARED / "calib")],
                              capture_output=True, text=True,
                              env={**os.environ, "PHOTOSIM_OFFLINE": "1"})
        if proc.returncode != 0:
            log(f"real row skipped: {proc.stderr.strip()[-200:]}")
            return None
        with Catalog(db) as catalog:
            model = catalog.get_meta("model")
            ids, _, x = catalog.embeddings(model)
        index = CompressedIndex.create(model, x, compressed_paths(db, model), code_bytes=32)
        index.add(ids, x)
        labels, _ = index.knn(x, 10)
        truth = ids[np.argsort(-(x @ x.T), axis=1)[:, :10]]
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(labels.tolist(),
                                                                      truth.tolist())])
        return {"vectors": len(x), "dim": x.shape[1], "code_bytes": 32, "shape": index.shape,
                "recall_at_10_reranked": round(float(overlap), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--codes", default="16,32,64", help="code bytes at the first size")
    parser.add_argument("--codes-after", default="32", help="code bytes at the other sizes")
    parser.add_argument("--nprobe", default="32,64,128,256")
    parser.add_argument("--rerank", default="100", help="candidates re-scored per query")
    parser.add_argument("--keep", metavar="DIR",
                        help="build into DIR and keep it; an index already there is reused")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--no-real", action="store_true", help="skip the dev + calib row")
    parser.add_argument("--hashes", default="", metavar="N,...",
                        help="also the binary hash index at these sizes (e.g. 10000000)")
    parser.add_argument("--query", nargs=2, metavar=("WORK", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--query-hashes", nargs=2, metavar=("WORK", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    nprobes = [int(v) for v in args.nprobe.split(",")]
    reranks = [int(v) for v in args.rerank.split(",")]
    if args.query_hashes:
        print(json.dumps(query_hashes(Path(args.query_hashes[0]), int(args.query_hashes[1]))))
        return 0
    if args.query:  # the fresh process of one measurement
        print(json.dumps(query(Path(args.query[0]), args.query[1], nprobes, reranks)))
        return 0
    sizes = [int(v) for v in args.sizes.split(",") if v]
    codes = [int(v) for v in args.codes.split(",")]
    codes_after = [int(v) for v in args.codes_after.split(",")]
    report: dict[str, Any] = {"schema": "photosim-bench-archive/v1", "queries": QUERIES,
                              "dim": DIM, "rows": []}
    for i, n in enumerate(sizes):
        for code_bytes in (codes if i == 0 else codes_after):
            with tempfile.TemporaryDirectory(dir=os.environ.get("ARCHIVE_WORK")) as temp:
                work = Path(args.keep) / f"{n}-{code_bytes}" if args.keep else Path(temp)
                work.mkdir(parents=True, exist_ok=True)
                built = work / "build.json"
                if built.exists():
                    row = json.loads(built.read_text())
                    print(f"{n:,} x {DIM}-d, {code_bytes} B codes: reusing {work}", flush=True)
                else:
                    print(f"{n:,} x {DIM}-d, {code_bytes} B codes: building", flush=True)
                    row = build(n, code_bytes, work)
                    built.write_text(json.dumps(row))
                model = Path(row["files"][0]).stem.split(".", 1)[1]
                proc = subprocess.run([sys.executable, "-m", "benchmarks.archive", "--query",
                                       str(work), model, "--nprobe", args.nprobe,
                                       "--rerank", args.rerank],
                                      capture_output=True, text=True, check=True)
                row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
                del row["files"]
                report["rows"].append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    for n in [int(v) for v in args.hashes.split(",") if v]:
        with tempfile.TemporaryDirectory(dir=os.environ.get("ARCHIVE_WORK")) as temp:
            work = Path(args.keep) / f"hashes-{n}" if args.keep else Path(temp)
            work.mkdir(parents=True, exist_ok=True)
            print(f"{n:,} perceptual hashes: building", flush=True)
            row = {"codes": n, **build_hashes(n, work)}
            proc = subprocess.run([sys.executable, "-m", "benchmarks.archive", "--query-hashes",
                                   str(work), str(n)], capture_output=True, text=True, check=True)
            row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
            report.setdefault("hashes", []).append(row)
            print(json.dumps(row), flush=True)
    report["real"] = None if args.no_real else real_row()
    print(json.dumps(report["real"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
