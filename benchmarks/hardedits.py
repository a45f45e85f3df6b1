"""Hard edits: which copies a user made of a photo does the near tier find, and at what price?

``python -m benchmarks.hardedits [--sources DIR] [--per-photo N] [--json FILE]`` builds a
library from photos the near-duplicate rules were not designed on (default: the multi-view
shots of ``../shared/data/calib``; the other views of a scene are the hard negatives) and
gives each original (JPEG q90, at most 1024 px) ``N`` edited copies, the edit kinds taken in
turn so that every kind is applied to about the same number of photos. The edits are those of
issue 13, made with AugLy (Papakipos & Bitton, 2022) where its 1.0 release works with today's
Pillow and NumPy, else with Pillow:

============  ===================================================================
crop50        a crop keeping 50 % of the area (off centre)
crop30        a crop keeping 30 % of the area
pad           ``augly.image.pad_square`` (black bars to a square)
aspect        ``augly.image.change_aspect_ratio`` (stretched to 1.6 or 1/1.6)
rotate        a 6° rotation on a new, larger canvas (black corners), Pillow
screenshot    ``augly.image.overlay_onto_screenshot`` (inside a web page)
embedded      the photo at 45 % of the width pasted into a larger generated picture
meme          a caption bar above the photo (what ``meme_format`` does), Pillow
emoji         ``augly.image.overlay_emoji`` (a 30 % emoji)
text          ``augly.image.overlay_text`` (big red text)
blur          ``augly.image.blur`` (radius 4 px at 1024 px)
pixelize      ``augly.image.pixelization`` (ratio 0.3)
perspective   a projective warp (corners moved by 5 % of the short side), border fill
              cropped out (a keystone corrected) or kept (a skew), Pillow
============  ===================================================================

With ``--distractors N``, N distinct generated pictures (:func:`distractor`) fill the library
up (``--distractors 9656``: 10,000 photos), for the cost of a first grouping at that size.

The library is scanned with the default model (descriptors are candidates too) and grouped
in the near tier with the library's default thresholds. Reported: per edit kind, the share
of edited copies grouped with their original (recall); pair precision of the near tier (every
pair in a group of different originals is false: another view of the same scene, or another
scene); keeper correctness (the group holding an original keeps it); comparisons and
verifications per photo; and the time of the grouping.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MAX_SIDE = 1024  # pixels: the long side of an original


def edits() -> dict[str, Any]:
    """The edit kinds, ``{name: f(image RGB, rng) -> image RGB}``."""
    import augly.image as imaugs
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    def crop(fraction: float) -> Any:
        def apply(img: Image.Image, rng: random.Random) -> Image.Image:
            w, h = img.size
            side = fraction ** 0.5
            cw, ch = int(w * side), int(h * side)
            x = int(rng.uniform(0.0, 1.0) * (w - cw))
            y = int(rng.uniform(0.0, 1.0) * (h - ch))
            return img.crop((x, y, x + cw, y + ch))
        return apply

    def aspect(img: Image.Image, rng: random.Random) -> Image.Image:
        return imaugs.change_aspect_ratio(img, ratio=rng.choice((1.6, 1 / 1.6)))

    def rotate(img: Image.Image, rng: random.Random) -> Image.Image:
        return img.rotate(rng.choice((-6, 6)), Image.Resampling.BICUBIC, expand=True,
                          fillcolor=(0, 0, 0))

    def embedded(img: Image.Image, rng: random.Random) -> Image.Image:
        w, h = img.size
        canvas = Image.new("RGB", (w, h), (rng.randrange(256), rng.randrange(256),
                                           rng.randrange(256)))
        draw = ImageDraw.Draw(canvas)
        for _ in range(12):  # a busy poster around the photo
            x, y = rng.randrange(w), rng.randrange(h)
            r = rng.randrange(20, w // 4)
            draw.ellipse((x - r, y - r, x + r, y + r),
                         fill=tuple(rng.randrange(256) for _ in range(3)))
        small = img.resize((int(w * 0.45), int(h * 0.45)), Image.Resampling.LANCZOS)
        canvas.paste(small, (int(w * rng.uniform(0.05, 0.5)), int(h * rng.uniform(0.05, 0.5))))
        return canvas

    def meme(img: Image.Image, rng: random.Random) -> Image.Image:
        w, h = img.size
        bar = int(h * 0.22)
        out = Image.new("RGB", (w, h + bar), (255, 255, 255))
        out.paste(img, (0, bar))
        font = ImageFont.load_default(size=max(14, bar // 3))
        ImageDraw.Draw(out).text((w * 0.05, bar * 0.3), "when the holiday photos load",
                                 fill=(0, 0, 0), font=font)
        return out

    def perspective(img: Image.Image, rng: random.Random) -> Image.Image:
        # A projective warp, as an editor's perspective tool makes it (AugLy's
        # perspective_transform, whose 1.0 release fails on today's NumPy): the corners move
        # by 5 % of the short side (normal), then either the border fill is cropped out (a
        # keystone corrected) or kept around the picture (a skew on the same canvas).
        import cv2

        w, h = img.size
        sigma = 0.05 * min(w, h)
        frame = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
        moved = [(x + rng.gauss(0, sigma), y + rng.gauss(0, sigma)) for x, y in frame]
        to_input = cv2.getPerspectiveTransform(np.float32(moved), np.float32(frame))
        coefficients = tuple((to_input / to_input[2, 2]).ravel()[:8])
        out = img.transform((w, h), Image.Transform.PERSPECTIVE, coefficients,
                            Image.Resampling.BICUBIC)
        if rng.random() < 0.5:  # crop the fill out
            (x0, y0), (x1, y1), (x2, y2), (x3, y3) = moved
            box = (max(0, x0, x3), max(0, y0, y1), min(w, x1, x2), min(h, y2, y3))
            out = out.crop(tuple(round(v) for v in box))
        return out

    return {
        "crop50": crop(0.5),
        "crop30": crop(0.3),
        "pad": lambda img, rng: imaugs.pad_square(img),
        "aspect": aspect,
        "rotate": rotate,
        "screenshot": lambda img, rng: imaugs.overlay_onto_screenshot(img).convert("RGB"),
        "embedded": embedded,
        "meme": meme,
        "emoji": lambda img, rng: imaugs.overlay_emoji(
            img, emoji_size=0.3, x_pos=rng.uniform(0.1, 0.6), y_pos=rng.uniform(0.1, 0.6)
        ).convert("RGB"),
        "text": lambda img, rng: imaugs.overlay_text(
            img, font_size=0.12, y_pos=rng.uniform(0.2, 0.7)).convert("RGB"),
        "blur": lambda img, rng: img.filter(ImageFilter.GaussianBlur(4)),
        "pixelize": lambda img, rng: imaugs.pixelization(img, ratio=0.3),
        "perspective": perspective,
    }


def distractor(seed: int, size: tuple[int, int] = (800, 600)) -> Any:
    """A distinct photo-like picture (smooth colour noise, shapes, lines), as a PIL image:
    the rest of a library, unrelated to every source photo."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    w, h = size
    acc = np.zeros((h, w, 3), np.float32)
    for grid, amp in ((4, 70), (16, 40), (64, 20)):
        small = rng.normal(0, 1, (max(2, grid * h // w), grid, 3)).astype(np.float32)
        for c in range(3):
            up = Image.fromarray(small[:, :, c], "F").resize((w, h), Image.Resampling.BICUBIC)
            acc[:, :, c] += amp * np.asarray(up)
    img = Image.fromarray(np.clip(acc + 128, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(25):
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(10, 150))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r // 2), fill=colour)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r), fill=colour)
    for _ in range(40):
        xs, ys = rng.integers(0, w, 2), rng.integers(0, h, 2)
        draw.line((int(xs[0]), int(ys[0]), int(xs[1]), int(ys[1])),
                  fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(1, 4)))
    return img


def build(folder: Path, sources: list[Path], per_photo: int, seed: int = 13) -> dict[str, Any]:
    """Write the library; returns ``{file name: (original's name, edit kind or None)}``."""
    from PIL import Image, ImageOps

    kinds = list(edits().items())
    rng = random.Random(seed)
    truth: dict[str, Any] = {}
    turn = 0
    for i, src in enumerate(sources):
        with Image.open(src) as im:
            img = ImageOps.exif_transpose(im).convert("RGB")
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        name = f"p{i:03d}"
        img.save(folder / f"{name}.jpg", quality=90)
        truth[f"{name}.jpg"] = (name, None)
        for _ in range(per_photo):
            kind, edit = kinds[turn % len(kinds)]
            turn += 1
            edited = edit(img, rng).convert("RGB")
            edited.save(folder / f"{name}-{kind}.jpg", quality=85)
            truth[f"{name}-{kind}.jpg"] = (name, kind)
    return truth


def score(catalog_path: Path, truth: dict[str, Any]) -> dict[str, Any]:
    """Near-tier recall per edit kind, pair precision and keeper correctness."""
    from photosim.core.catalog import Catalog
    from photosim.core.dedup.grouping import find_duplicates

    started = time.perf_counter()
    with Catalog(catalog_path) as catalog:
        result = find_duplicates(catalog, "near")
        photos = len(catalog.photos())
    seconds = time.perf_counter() - started
    group_of: dict[str, int] = {}
    false_pairs = true_pairs = 0
    false_kinds: dict[str, int] = defaultdict(int)
    keeper_right = keeper_total = 0
    for gi, group in enumerate(result.groups):
        names = [Path(m.photo.path).name for m in group.members]
        for n in names:
            group_of[n] = gi
        for a, b in combinations(names, 2):
            if truth[a][0] == truth[b][0]:
                true_pairs += 1
            else:
                false_pairs += 1
                kinds = sorted(truth[n][1] or "original" for n in (a, b))
                false_kinds[" + ".join(kinds)] += 1
        originals = [n for n in names if truth[n][1] is None]
        if originals:
            keeper_total += 1
            keeper_right += Path(group.keeper.path).name in originals
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, (original, kind) in truth.items():
        if kind is None:
            continue
        orig = f"{original}.jpg"
        found[kind][1] += 1
        found[kind][0] += name in group_of and group_of[name] == group_of.get(orig)
    recall = {k: f"{r}/{t}" for k, (r, t) in found.items()}
    hit = sum(r for r, _ in found.values())
    total = sum(t for _, t in found.values())
    predicted = true_pairs + false_pairs
    return {
        "photos": photos,
        "groups": len(result.groups),
        "recall": round(hit / max(1, total), 3),
        "recall_by_edit": recall,
        "pair_precision": round(true_pairs / predicted, 4) if predicted else None,
        "false_pairs": false_pairs,
        "false_pairs_by_kinds": dict(sorted(false_kinds.items(), key=lambda kv: -kv[1])),
        "keeper_correct": f"{keeper_right}/{keeper_total}",
        "comparisons_per_photo": round(result.comparisons / max(1, photos), 2),
        "verified_per_photo": round(result.verified / max(1, photos), 2),
        "candidates": result.candidates,
        "grouping_seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Build, scan, group and print the figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hardedits",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=Path, default=SHARED / "calib")
    parser.add_argument("--per-photo", type=int, default=3, metavar="N",
                        help="edited copies per original (default 3)")
    parser.add_argument("--model", default=None, help="descriptor model (default: the app's)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="build the library here and keep it (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--distractors", type=int, default=0, metavar="N",
                        help="add N distinct generated pictures (a library of 10k photos: the "
                             "cost of a first grouping at that size)")
    args = parser.parse_args(argv)
    sources = sorted(p for p in args.sources.rglob("*")
                     if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not sources:
        print(f"error: no photos under {args.sources}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="photosim-hardedits-") as tmp:
        root = args.keep or Path(tmp)
        folder = root / "library"
        folder.mkdir(parents=True, exist_ok=True)
        truth = build(folder, sources, args.per_photo)
        for i in range(args.distractors):
            name = f"x{i:05d}.jpg"
            distractor(1_000_000 + i).save(folder / name, quality=88)
            truth[name] = (name, None)
        db = root / "catalog.db"
        scan = [sys.executable, "-m", "photosim", "--catalog", str(db), "scan", "-q"]
        if args.model:
            scan += ["--model", args.model]
        started = time.perf_counter()
        subprocess.run([*scan, str(folder)], check=True, stdout=subprocess.DEVNULL)
        out = {"sources": str(args.sources), "originals": len(sources),
               "scan_seconds": round(time.perf_counter() - started, 1)}
        out.update(score(db, truth))
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
