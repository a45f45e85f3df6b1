"""B9: photosim's scan and first duplicate grouping side by side with the Czkawka engine.

Czkawka (``pip install czkawka``: Python bindings of Czkawka's image-similarity engine, in
Rust) hashes every image and groups those within a Hamming distance. photosim does more per
photo (content hash, perceptual hashes in eight orientations, a CNN descriptor, a thumbnail,
keypoint sketches) and verifies loose candidates with local features; this benchmark puts a
number on what that costs and what it buys:

- **time**: wall-clock of ``photosim scan`` then ``photosim duplicates`` on a fresh catalog
  (two processes, as a user runs them), with the default model and hash-only, against
  ``ImageSimilarity().find_similar()`` in its own process (no cache between runs);
- **quality**: pair precision, recall and F1 of the near-duplicate groups of each against
  the ground truth (:mod:`photosim.core.evaluate`), Czkawka at its default similarity and at
  the best level of a sweep (its best case: chosen on the same data).

Data sets: ``../shared/data/dev`` (when present) and a generated library of copies: each
source photo (the multi-view shots of ``../shared/data/calib``, else generated scenes) saved
at most 1600 px wide plus five copies (half size, re-encoded, cropped, rotated, the same
bytes), so the other shots of a scene are near-misses, not duplicates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

#: Czkawka similarity levels swept for its best case.
CZKAWKA_LEVELS = (0, 5, 10, 15, 20)
GOAL_RATIO = 1.5
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MAX_SIDE = 1600  # pixels: the long side of a generated library's originals
VARIANTS = ("original", "half", "reencoded", "cropped", "rotated", "copy")

_CZKAWKA = """
import json, sys, time
from czkawka import ImageSimilarity
started = time.perf_counter()
finder = ImageSimilarity()
finder.set_directories([sys.argv[1]])
if sys.argv[2] != "default":
    finder.set_similarity(int(sys.argv[2]))
groups = finder.find_similar()
print(json.dumps({"seconds": time.perf_counter() - started,
                  "groups": [[str(p) for p in g] for g in groups]}))
"""


def _scene(seed: int, width: int = 960, height: int = 720) -> Any:
    """A small photo-like scene (smooth colour noise, shapes, lines) as a PIL image."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    acc = np.zeros((height, width, 3), np.float32)
    for grid, amp in ((4, 90), (16, 50), (64, 25)):
        small = rng.normal(0, 1, (max(2, grid * height // width), grid, 3)).astype(np.float32)
        for c in range(3):
            up = Image.fromarray(small[:, :, c], "F").resize((width, height),
                                                             Image.Resampling.BICUBIC)
            acc[:, :, c] += amp * np.asarray(up)
    img = Image.fromarray(np.clip(acc + 128, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(25):
        x, y, r = (int(v) for v in rng.integers(0, (width, height, 150)))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return img


def copy_library(folder: Path, sources: list[Path] | int, seed: int = 0) -> Path:
    """Write a library of originals and their copies, with its ground truth.

    Args:
        folder: Where to write (created).
        sources: Photos to copy, or how many scenes to generate instead.
        seed: Crop offsets and generated scenes.

    Returns:
        The ``groundtruth.json`` written (``photosim-groundtruth/v1``: one near-duplicate
        group per original, the six files of :data:`VARIANTS`).
    """
    from PIL import Image, ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    count = sources if isinstance(sources, int) else len(sources)
    groups, images = [], {}
    for i in range(count):
        if isinstance(sources, int):
            img = _scene(seed * 1000 + i)
        else:
            with Image.open(sources[i]) as src:
                img = ImageOps.exif_transpose(src).convert("RGB")
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        w, h = img.size
        names = [f"p{i:04d}_{v}.{'jpg'}" for v in VARIANTS]
        paths = [folder / n for n in names]
        img.save(paths[0], "JPEG", quality=92)
        img.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(paths[1], "JPEG", quality=90)
        img.save(paths[2], "JPEG", quality=70)
        dx, dy = int(rng.integers(0, w // 10 + 1)), int(rng.integers(0, h // 10 + 1))
        img.crop((dx, dy, dx + int(w * 0.85), dy + int(h * 0.85))).save(paths[3], "JPEG", quality=90)
        img.transpose(Image.Transpose.ROTATE_90).save(paths[4], "JPEG", quality=90)
        shutil.copyfile(paths[0], paths[5])
        groups.append(names)
        images.update({n: {"transform": v} for n, v in zip(names, VARIANTS, strict=True)})
    truth = folder / "groundtruth.json"
    truth.write_text(json.dumps({
        "schema": "photosim-groundtruth/v1", "near_duplicates": groups, "similar": [],
        "unreadable": [], "images": images,
    }))
    return truth


def _run(argv: list[str]) -> tuple[str, float]:
    """Run a child process; ``(stdout, wall seconds)``.

    Raises:
        RuntimeError: It failed.
    """
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=7200,
                          env={**os.environ, "PHOTOSIM_OFFLINE": "1"})
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed: {proc.stderr.strip()[-300:]}")
    return proc.stdout, wall


def _score(groups: list[list[str]], folder: Path, truth_path: Path) -> dict[str, float]:
    from photosim.core.evaluate import load_truth, relative_pairs, score

    truth = load_truth(truth_path)
    universe = set(truth.images) - truth.unreadable
    pairs = {frozenset(p) for g in groups for p in combinations(g, 2)}
    s = score(relative_pairs(pairs, folder), truth.duplicate, universe)
    return {"precision": round(s.precision, 3), "recall": round(s.recall, 3),
            "f1": round(s.f1, 3)}


def photosim_run(folder: Path, truth: Path, catalog: Path, *scan_args: str) -> dict[str, Any]:
    """``photosim scan`` then ``photosim duplicates`` (near tier) on a fresh catalog."""
    for old in catalog.parent.glob(catalog.name + "*"):
        old.unlink()
    cli = [sys.executable, "-m", "photosim", "--catalog", str(catalog)]
    _, scan_s = _run([*cli, "scan", "-q", *scan_args, str(folder)])
    out, dup_s = _run([*cli, "duplicates", "--json"])
    report = json.loads(out)
    groups = [[m["path"] for m in g["members"]] for g in report["groups"]]
    return {"seconds": round(scan_s + dup_s, 2), "scan_s": round(scan_s, 2),
            "duplicates_s": round(dup_s, 2), "groups": len(groups),
            **_score(groups, folder, truth)}


def czkawka_run(folder: Path, truth: Path, level: int | None = None) -> dict[str, Any]:
    """Czkawka's ``find_similar()`` in a child process (default similarity, or ``level``)."""
    out, wall = _run([sys.executable, "-c", _CZKAWKA, str(folder),
                      "default" if level is None else str(level)])
    report = json.loads(out)
    return {"seconds": round(wall, 2), "engine_s": round(report["seconds"], 2),
            "groups": len(report["groups"]), **_score(report["groups"], folder, truth)}


def bench_b9(ctx: Any) -> dict[str, Any]:
    """photosim scan + first ``duplicates`` vs the Czkawka engine, time and F1."""
    try:
        import czkawka  # noqa: F401
    except ImportError:
        return {"sets": {}, "note": "czkawka is not installed (pip install czkawka)"}
    sets: dict[str, tuple[Path, Path]] = {}
    dev = SHARED / "dev"
    if not ctx.scale.b9_scenes and (dev / "groundtruth.json").is_file():
        sets["dev"] = (dev, dev / "groundtruth.json")
    lib = ctx.work / "b9-copies"
    calib = sorted(p for p in (SHARED / "calib").glob("*/*") if p.suffix.lower() in
                   (".jpg", ".jpeg", ".png")) if (SHARED / "calib").is_dir() else []
    sources: list[Path] | int = calib if calib and not ctx.scale.b9_scenes else max(
        1, ctx.scale.b9_scenes)
    sets["copies"] = (lib, copy_library(lib, sources))
    out: dict[str, Any] = {"sets": {}}
    for name, (folder, truth) in sets.items():
        ctx.log(f"B9 {name}: photosim (default model, then hash-only) and Czkawka")
        row: dict[str, Any] = {"files": len(json.loads(truth.read_text())["images"])}
        row["photosim"] = photosim_run(folder, truth, ctx.work / f"b9-{name}.db")
        row["photosim_hash_only"] = photosim_run(
            folder, truth, ctx.work / f"b9-{name}-hashes.db", "--model", "none")
        row["czkawka"] = czkawka_run(folder, truth)
        sweep = {level: czkawka_run(folder, truth, level) for level in CZKAWKA_LEVELS}
        best = max(sweep, key=lambda lv: sweep[lv]["f1"])
        row["czkawka_best"] = {"level": best, **sweep[best]}
        row["ratio"] = round(row["photosim"]["seconds"] / row["czkawka"]["seconds"], 2)
        row["ratio_hash_only"] = round(
            row["photosim_hash_only"]["seconds"] / row["czkawka"]["seconds"], 2)
        out["sets"][name] = row
    return out


def summary_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """B9's rows of the RESULTS.md table."""
    from benchmarks.suite import _vs

    if not r.get("sets"):
        return [("B9 scan + first duplicates vs Czkawka", r.get("note", "n/a"), "-", "n/a")]
    rows = []
    for name, s in r["sets"].items():
        p, h, c, cb = s["photosim"], s["photosim_hash_only"], s["czkawka"], s["czkawka_best"]
        rows.append((
            f"B9 scan + first duplicates vs Czkawka, {name} ({s['files']} files)",
            f"photosim {p['seconds']:.1f} s (scan {p['scan_s']:.1f} + duplicates "
            f"{p['duplicates_s']:.1f}), F1 **{p['f1']:.3f}**; hash-only {h['seconds']:.1f} s "
            f"(**{s['ratio_hash_only']:.2f}x**), F1 {h['f1']:.3f}; Czkawka {c['seconds']:.1f} s, "
            f"F1 **{c['f1']:.3f}** (best level {cb['level']}: F1 {cb['f1']:.3f}); "
            f"ratio **{s['ratio']:.2f}x**",
            f"<= {GOAL_RATIO}x", _vs(s["ratio"], GOAL_RATIO, False)))
    return rows
