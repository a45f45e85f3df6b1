"""Tags and text search on hand-labelled photos: how often is a tag right, what does a word find?

``python -m benchmarks.tags [--json FILE] [--catalog DB]`` scans ``../shared/data/dev`` and
``../shared/data/calib`` into one library (the default model; or reads ``--catalog``, a
library of exactly those two folders) and judges its tags and its text search against
``benchmarks/tag_labels.json``: 164 photos labelled by hand, blind to photosim's tags, with the
objects they show (WordNet nouns; see the file's note for how they were chosen).

Judging, lenient about the labeller's word sense:

- a **tag** (an ImageNet class) is right for a photo when it is, or is below, *some* sense of
  one of the photo's label words (labels "church, dome": the tag "church" is right, "mosque"
  is not; label "building": "palace" is right);
- a **search result** is relevant to a word when the photo's labels hold the word, or a word
  whose classes all lie below it (labels "minivan" are relevant to "car"). Labels spread from
  the labelled file to its copies (same ``photo`` id in the ground truth); a result that is
  neither labelled nor a copy is *unjudged* and left out of the ranked list (condensed-list
  evaluation, Sakai 2007); how many were left out is reported.

Figures:

- tag precision@1 (top tag right), hit@5 (a right tag among the top 5), precision@5;
- the floor: ``TAG_FLOOR`` is chosen on one half of the labelled photos (sorted by path, even
  positions) as the lowest floor at which the shown tags are right at least
  :data:`TARGET_PRECISION` of the time, and the other half reports the precision and coverage
  it gives;
- search: for every label word that names tags and labels at least :data:`MIN_PHOTOS` photos
  (a rule, so the words are not picked by their results), precision@5 and @10 of the judged
  results and the recall of the labelled photos that show it.
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

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LABELS = Path(__file__).with_name("tag_labels.json")
FLOORS = (0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
TARGET_PRECISION = 0.5
MIN_PHOTOS = 3
SEARCH_K = 10


def _scan(folders: list[Path], catalog: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "photosim", "--catalog", str(catalog), "scan", "-q",
         *map(str, folders)],
        capture_output=True, text=True, env={**os.environ, "PHOTOSIM_OFFLINE": "1"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"scan failed: {proc.stderr.strip()[-400:]}")


def _labels_by_path() -> tuple[dict[str, set[str]], dict[str, str]]:
    """``(absolute path -> label words, absolute path -> the labelled file it copies)``,
    labels spread from each labelled file to its copies."""
    labelled = json.loads(LABELS.read_text())["photos"]
    out: dict[str, set[str]] = {}
    source: dict[str, str] = {}
    for set_name in ("dev", "calib"):
        images = json.loads((SHARED / set_name / "groundtruth.json").read_text())["images"]
        by_photo: dict[str, set[str]] = {}
        origin: dict[str, str] = {}
        for rel, entry in images.items():
            words = labelled.get(f"{set_name}/{rel}")
            if words is not None:
                by_photo.setdefault(entry["photo"], set()).update(words["objects"])
                origin[entry["photo"]] = str(SHARED / set_name / rel)
        for rel, entry in images.items():
            if entry["photo"] in by_photo:
                out[str(SHARED / set_name / rel)] = by_photo[entry["photo"]]
                source[str(SHARED / set_name / rel)] = origin[entry["photo"]]
    return out, source


def measure(catalog_path: Path, log: Any = print) -> dict[str, Any]:
    """Every figure of the module docstring, as a JSON-ready dict."""
    from photosim.core.catalog import Catalog
    from photosim.core.tags import search_tags, tag_model, vocabulary

    vocab = vocabulary()
    labels, source = _labels_by_path()
    labelled_files = {
        str(SHARED / p) for p in json.loads(LABELS.read_text())["photos"]
    }
    with Catalog(catalog_path) as catalog:
        model = tag_model(catalog)
        if model is None:
            raise RuntimeError(f"{catalog_path} has no tags")
        rows = {p.path: p for p in catalog.photos()}
        right_of: dict[str, frozenset[int]] = {}
        per_photo = []
        for path in sorted(labelled_files):
            photo = rows.get(path)
            if photo is None or photo.content_hash is None:
                continue
            allowed = frozenset().union(*(vocab.all_senses(w) for w in labels[path]))
            right_of[path] = allowed
            tags = catalog.tags(photo.content_hash, model)
            per_photo.append((path, tags, [label in allowed for label, _ in tags]))
        n = len(per_photo)
        tags_report = {
            "photos": n,
            "photos_with_a_taggable_label": sum(1 for p, _, _ in per_photo if right_of[p]),
            "precision_at_1": sum(r[0] for _, _, r in per_photo) / n,
            "hit_at_5": sum(any(r[:5]) for _, _, r in per_photo) / n,
            "precision_at_5": sum(sum(r[:5]) / 5 for _, _, r in per_photo) / n,
        }
        halves = {"calibration": per_photo[0::2], "held_out": per_photo[1::2]}
        floors: dict[str, list[dict[str, float]]] = {}
        for half, items in halves.items():
            floors[half] = []
            for floor in FLOORS:
                shown = [(ok, p) for _, tags, right in items
                         for (label, p), ok in zip(tags, right) if p >= floor]
                covered = sum(1 for _, tags, _ in items if tags and tags[0][1] >= floor)
                floors[half].append({
                    "floor": floor,
                    "tags_shown": len(shown),
                    "precision": sum(ok for ok, _ in shown) / max(1, len(shown)),
                    "coverage": covered / max(1, len(items)),
                })
        chosen = next((row["floor"] for row in floors["calibration"]
                       if row["precision"] >= TARGET_PRECISION), FLOORS[-1])
        held = next(row for row in floors["held_out"] if row["floor"] == chosen)
        words = sorted(
            {w for p in labelled_files if p in labels for w in labels[p]
             if vocab.concept(w) is not None},
        )
        counts = {w: sum(1 for p in labelled_files if w in labels.get(p, ())) for w in words}
        words = [w for w in words if counts[w] >= MIN_PHOTOS]
        half_of = {path: i % 2 for i, (path, _, _) in enumerate(per_photo)}
        search_table: dict[str, list[dict[str, float]]] = {"calibration": [], "held_out": []}
        per_word: dict[float, dict[str, dict[str, dict[str, Any]]]] = {}
        for floor in FLOORS:
            per_word[floor] = {"calibration": {}, "held_out": {}}
            for word in words:
                result = search_tags(catalog, word, k=1000, floor=floor)
                for h, half in enumerate(("calibration", "held_out")):
                    mine = {p for p in labels if half_of.get(source[p]) == h}
                    per_word[floor][half][word] = _judge(vocab, word, result.hits, labels, mine)
            for half in ("calibration", "held_out"):
                rows_ = per_word[floor][half].values()
                search_table[half].append({
                    "floor": floor,
                    "precision_at_10": sum(r["precision_at_10"] for r in rows_) / len(words),
                    "recall": sum(r["recall"] for r in rows_) / len(words),
                    "f1": sum(r["f1"] for r in rows_) / len(words),
                })
        search_floor = max(search_table["calibration"], key=lambda r: r["f1"])["floor"]
        search = {w: _judge(vocab, w, search_tags(catalog, w, k=1000, floor=search_floor).hits,
                            labels, set(labels))
                  for w in words}
        for word, row in search.items():
            log(f"  {word:10} {row}")
    answered = [s for s in search.values() if s["results"]]
    held_search = next(r for r in search_table["held_out"] if r["floor"] == search_floor)
    return {
        "schema": "photosim-bench-tags/v1",
        "model": model,
        "labels": str(LABELS.name),
        "tags": tags_report,
        "floor": {"target_precision": TARGET_PRECISION, "chosen": chosen,
                  "held_out_at_chosen": held, "table": floors},
        "search": {
            "floor": search_floor,
            "floor_rule": "the floor of the best mean F1 (precision@10, recall) over the words "
                          "on the calibration half of the labelled photos",
            "held_out_at_floor": held_search,
            "table": search_table,
            "words": search,
            "words_answered": len(answered),
            "mean_precision_at_5": sum(s["precision_at_5"] for s in answered)
            / max(1, len(answered)),
            "mean_precision_at_10": sum(s["precision_at_10"] for s in answered)
            / max(1, len(answered)),
            "mean_recall": sum(s["recall"] for s in search.values()) / max(1, len(search)),
        },
    }


def _judge(vocab: Any, word: str, hits: list[Any], labels: dict[str, set[str]],
           judged: set[str]) -> dict[str, Any]:
    """Precision@5/@10 of the judged results (files in ``judged``), recall of the judged files
    that show ``word``, and their F1 (of precision@10 and recall)."""
    target = vocab.all_senses(word)

    def relevant(path: str) -> bool:
        return any(
            w == word or (bool(vocab.all_senses(w)) and vocab.all_senses(w) <= target)
            for w in labels[path]
        )

    ranked = [relevant(h.photo.path) for h in hits if h.photo.path in judged]
    shows = {p for p in judged if relevant(p)}
    found = {h.photo.path for h in hits} & shows
    p10 = sum(ranked[:10]) / max(1, min(10, len(ranked)))
    recall = len(found) / max(1, len(shows))
    return {
        "files_showing_it": len(shows),
        "results": len(hits),
        "judged_results": len(ranked),
        "unjudged_in_top_10": sum(1 for h in hits[:SEARCH_K] if h.photo.path not in judged),
        "precision_at_5": sum(ranked[:5]) / max(1, min(5, len(ranked))),
        "precision_at_10": p10,
        "recall": recall,
        "f1": 2 * p10 * recall / (p10 + recall) if p10 + recall else 0.0,
    }


class _NoTags:
    """The default backbone seen as a plain :class:`~photosim.core.types.Embedder` (no
    ``embed_and_tag``): the scan then stores descriptors only, as before tags existed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id, self.dim, self.input_size = inner.model_id, inner.dim, inner.input_size

    @property
    def device(self) -> str:
        return str(self.inner.device)

    @property
    def threads(self) -> int | None:
        return self.inner.threads  # type: ignore[no-any-return]

    @threads.setter
    def threads(self, value: int | None) -> None:
        self.inner.threads = value

    def embed(self, images: Any) -> Any:
        return self.inner.embed(images)


def scan_cost(rounds: int = 3, log: Any = print) -> dict[str, Any]:
    """Wall seconds of a first scan of dev + calib with and without tags (alternating, least
    of ``rounds`` each; the model is loaded once, outside the timing)."""
    from photosim.config import Settings
    from photosim.core.catalog import Catalog
    from photosim.core.scan.pipeline import run_scan, scan
    from photosim.embed import load_embedder

    embedder = load_embedder()
    times: dict[str, list[float]] = {"with_tags": [], "without_tags": []}
    folders = [str(SHARED / "dev"), str(SHARED / "calib")]
    for _ in range(rounds):
        for name, model in (("with_tags", embedder), ("without_tags", _NoTags(embedder))):
            with tempfile.TemporaryDirectory() as work, Catalog(Path(work) / "c.db") as catalog:
                summary = run_scan(scan(catalog, folders, Settings(), model))
            times[name].append(summary.seconds)
            log(f"  scan {name}: {summary.seconds:.2f} s ({summary.embedded} embedded)")
    best = {name: min(values) for name, values in times.items()}
    return {"files": summary.seen, "seconds": times, "best_s": best,
            "tags_share": (best["with_tags"] - best["without_tags"]) / best["without_tags"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", metavar="FILE", help="write the figures here")
    parser.add_argument("--scan-cost", action="store_true",
                        help="also time first scans of dev + calib with and without tags")
    parser.add_argument("--catalog", metavar="DB",
                        help="a library of dev + calib, already scanned (default: scan now)")
    args = parser.parse_args(argv)
    if not (SHARED / "dev" / "groundtruth.json").is_file():
        print(f"{SHARED} is needed (dev and calib with groundtruth.json)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as work:
        catalog = Path(args.catalog) if args.catalog else Path(work) / "library.db"
        if not args.catalog:
            print("scanning dev + calib")
            _scan([SHARED / "dev", SHARED / "calib"], catalog)
        report = measure(catalog)
    if args.scan_cost:
        report["scan_cost"] = scan_cost()
        cost = report["scan_cost"]
        print(f"scan of {cost['files']} files: {cost['best_s']['without_tags']:.2f} s without "
              f"tags, {cost['best_s']['with_tags']:.2f} s with ({cost['tags_share']:+.1%})")
    print(json.dumps({k: report[k] for k in ("tags", "floor")}, indent=1)[:3000])
    s = report["search"]
    print(f"search: {s['words_answered']}/{len(s['words'])} words answered, "
          f"P@5 {s['mean_precision_at_5']:.3f}, P@10 {s['mean_precision_at_10']:.3f}, "
          f"recall {s['mean_recall']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
