"""Distributed embedding on Ray: throughput with 1 and 2 workers, and agreement with a scan.

``python -m benchmarks.cluster [--json FILE] [--shard-size N] [--runs 1x1,2x1,1x2]`` embeds
``../shared/data/dev`` + ``../shared/data/calib`` (found beside the repository) with
:func:`photosim.library.cluster.index_shards` on a local Ray instance of this machine's CPUs,
once per run ``WORKERSxCPUS`` (workers, and CPUs each worker reserves: its decode processes
and, in turn, its torch threads), each into a fresh shard folder, and scans the same folders
with the desktop pipeline (every core) as the reference. Default model and settings
throughout.

Figures per run:

- ``images_per_second``: files embedded per second from the first shard handed to a worker
  to the last one written (the steady rate, what a long archive run sees);
- ``wall_images_per_second``: files per second of the whole run, Ray's start and the workers'
  model loading included (a fixed cost of about 10 s here that a long run amortises);
- ``min_cosine``: the smallest cosine similarity between a shard's descriptor and the desktop
  scan's descriptor of the same content (1.0 means identical up to float16 storage);
- rows, errors and shards (every file must have a row).

The figures go to ``benchmarks/cluster.json`` (or ``--json FILE``) and are printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FOLDERS = ("dev", "calib")
OUT = Path(__file__).with_name("cluster.json")
SHARD_SIZE = 32  # small enough that 2 workers share ~250 photos evenly (8 shards)


def _drain(gen: Any) -> Any:
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def desktop_scan(folders: list[Path], work: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The desktop scan of ``folders``: ``(content hash -> descriptor, figures)``."""
    from photosim.config import Settings
    from photosim.library import Library, load_embedder

    settings = Settings()
    embedder, reason = load_embedder(settings, quiet=True)
    if embedder is None:
        raise SystemExit(f"no model: {reason}")
    with Library(work / "desktop.db") as library:
        summary = _drain(library.scan([str(f) for f in folders], settings, embedder))
        model = embedder.model_id
        vectors = {
            p.content_hash: library.catalog.embedding(p.content_hash, model)
            for p in library.photos()
        }
    figures = {
        "files": summary.seen, "errors": summary.errors, "seconds": round(summary.seconds, 2),
        "images_per_second": round(summary.images_per_second, 2), "model": model,
        "device": embedder.device, "precision": getattr(embedder, "precision", None),
        "decode_workers": settings.worker_count(),
    }
    return vectors, figures


def ray_run(folders: list[Path], work: Path, workers: int, cpus: int, shard_size: int,
            reference: dict[str, np.ndarray]) -> dict[str, Any]:
    """One :func:`index_shards` run with ``workers`` workers of ``cpus`` CPUs on a fresh
    local Ray instance."""
    import pyarrow.parquet as pq

    from photosim.config import Settings
    from photosim.library import ClusterOptions, index_shards

    out = work / f"shards-{workers}x{cpus}"
    options = ClusterOptions(num_cpus=os.cpu_count(), workers=workers, cpus_per_worker=cpus,
                             shard_size=shard_size)
    started = time.monotonic()
    summary = _drain(index_shards([str(f) for f in folders], out, Settings(), options))
    wall = time.monotonic() - started
    cosines, rows, errors = [], 0, 0
    for shard in sorted(out.glob("shard-*.parquet")):
        table = pq.read_table(shard, columns=["content_hash", "status", "descriptor"])
        for row in table.to_pylist():
            rows += 1
            if row["status"] != "ok":
                errors += 1
                continue
            mine = np.frombuffer(row["descriptor"], dtype="<f2").astype(np.float32)
            cosines.append(float(mine @ reference[row["content_hash"]]))
    return {
        "workers": workers,
        "cpus_per_worker": cpus,
        "shards": summary.shards,
        "rows": rows,
        "errors": errors,
        "devices": summary.devices,
        "seconds": round(wall, 2),
        "embed_seconds": round(summary.embed_seconds, 2),
        "images_per_second": round(summary.images_per_second, 2),
        "wall_images_per_second": round(summary.files_done / wall, 2),
        "min_cosine": round(min(cosines), 5) if cosines else None,
        "descriptors": len(cosines),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", metavar="FILE", default=str(OUT))
    parser.add_argument("--shard-size", type=int, default=SHARD_SIZE)
    parser.add_argument("--runs", default="1x1,2x1,1x2",
                        help="WORKERSxCPUS of each run (default 1x1,2x1,1x2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("PHOTOSIM_OFFLINE", "1")
    folders = [SHARED / name for name in FOLDERS]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise SystemExit(f"missing data: {', '.join(missing)}")
    report: dict[str, Any] = {
        "schema": "photosim-bench-cluster/v1",
        "machine": {"cpus": os.cpu_count(), "cpu": _cpu_name()},
        "data": [f"../shared/data/{name}" for name in FOLDERS],
        "shard_size": args.shard_size,
    }
    with tempfile.TemporaryDirectory(prefix="photosim-bench-cluster-") as tmp:
        work = Path(tmp)
        reference, report["desktop"] = desktop_scan(folders, work)
        print("desktop scan:", json.dumps(report["desktop"]), flush=True)
        report["runs"] = []
        for spec in args.runs.split(","):
            workers, _, cpus = spec.partition("x")
            row = ray_run(folders, work, int(workers), int(cpus or 1), args.shard_size,
                          reference)
            report["runs"].append(row)
            print("ray:", json.dumps(row), flush=True)
    one = [r for r in report["runs"] if (r["workers"], r["cpus_per_worker"]) == (1, 1)]
    two = [r for r in report["runs"] if (r["workers"], r["cpus_per_worker"]) == (2, 1)]
    if one and two and one[0]["images_per_second"]:
        report["speedup_2_workers"] = round(
            two[0]["images_per_second"] / one[0]["images_per_second"], 2)
        print(f"speed-up from 1 to 2 workers of 1 CPU: {report['speedup_2_workers']}x")
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
