"""Keeper correctness on a generated library of edited copies: is the original kept?

``python -m benchmarks.keeper [--sources DIR]`` copies each photo of ``../shared/data/calib``
(at most 1024 px wide) into a library: the original (JPEG q88), a half-size copy, a q75
re-encode, and one edited copy saved at q97 (same pixels, a larger file): a caption, a pasted
logo, a brightness change or a greyscale copy, in turn. A second library holds only the
original and its edited copy (a pair: which of two differs by an edit cannot be told). Both
are scanned hash-only and grouped (near tier, default thresholds, keypoint verification);
a group's keeper is correct when it is the original. The same grouping is run with the
"unedited anchor" rule off (``grouping._ANCHOR_TRIES = 0``) for comparison (the colour over
greyscale rule of :func:`photosim.core.dedup.keeper.keeper_key` is on in both).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _edits() -> dict[str, Any]:
    from PIL import Image, ImageDraw, ImageFont

    def caption(img: Image.Image) -> Image.Image:
        out = img.copy()
        w, h = out.size
        font = ImageFont.load_default(size=max(12, h // 14))
        ImageDraw.Draw(out).text((w * 0.06, h * 0.8), "(c) 2024 holiday", fill=(255, 255, 255),
                                 font=font, stroke_width=2, stroke_fill=(0, 0, 0))
        return out

    def logo(img: Image.Image) -> Image.Image:
        out = img.copy()
        w, h = out.size
        cx, cy, r = w * 0.75, h * 0.28, 0.08 * w
        ImageDraw.Draw(out).ellipse((cx - r, cy - r, cx + r, cy + r), fill=(245, 245, 245),
                                    outline=(0, 0, 0), width=3)
        return out

    def brighter(img: Image.Image) -> Image.Image:
        arr = np.asarray(img, np.float32) * 1.2 + 10
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")

    def grey(img: Image.Image) -> Image.Image:
        return img.convert("L").convert("RGB")

    return {"caption": caption, "logo": logo, "brightness": brighter, "greyscale": grey}


def build(folder: Path, sources: list[Path], pairs_only: bool) -> dict[str, str]:
    """Write the library; ``{group key: the original's file name}``."""
    from PIL import Image, ImageOps

    edits = list(_edits().items())
    originals = {}
    for i, src in enumerate(sources):
        with Image.open(src) as im:
            img = ImageOps.exif_transpose(im).convert("RGB")
        img.thumbnail((1024, 1024), Image.Resampling.LANCZOS)
        kind, edit = edits[i % len(edits)]
        sub = folder / f"p{i:03d}"
        sub.mkdir(parents=True)
        img.save(sub / "original.jpg", quality=88)
        if not pairs_only:
            w, h = img.size
            img.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(sub / "half.jpg",
                                                                        quality=90)
            img.save(sub / "export.jpg", quality=75)
        edit(img).save(sub / f"{kind}.jpg", quality=97)
        originals[sub.name] = kind
    return originals


def score(catalog_path: Path, folder: Path, kinds: dict[str, str]) -> dict[str, Any]:
    from photosim.core.catalog import Catalog
    from photosim.core.dedup.grouping import find_duplicates

    with Catalog(catalog_path) as catalog:
        result = find_duplicates(catalog, "near")
    per_kind: dict[str, list[int]] = {k: [0, 0] for k in sorted(set(kinds.values()))}
    for group in result.groups:
        subs = {Path(m.photo.path).parent.name for m in group.members}
        if len(subs) != 1:
            continue  # a group across photos: not a keeper question (reported as mixed)
        (sub,) = subs
        kept = Path(group.keeper.path).name
        per_kind[kinds[sub]][0] += kept == "original.jpg"
        per_kind[kinds[sub]][1] += 1
    right = sum(r for r, _ in per_kind.values())
    total = sum(t for _, t in per_kind.values())
    return {"groups": len(result.groups), "keeper_correct": right, "of": total,
            "by_edit": {k: f"{r}/{t}" for k, (r, t) in per_kind.items()}}


def main(argv: list[str] | None = None) -> int:
    import subprocess

    from photosim.core.dedup import grouping

    parser = argparse.ArgumentParser(prog="python -m benchmarks.keeper",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=Path, default=SHARED / "calib")
    args = parser.parse_args(argv)
    sources = sorted(p for p in args.sources.rglob("*")
                     if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not sources:
        print(f"error: no photos under {args.sources}", file=sys.stderr)
        return 1
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="photosim-keeper-") as tmp:
        for name, pairs_only in (("groups of four", False), ("pairs", True)):
            folder = Path(tmp) / name.replace(" ", "-")
            kinds = build(folder, sources, pairs_only)
            db = Path(tmp) / f"{folder.name}.db"
            subprocess.run([sys.executable, "-m", "photosim", "--catalog", str(db), "scan",
                            "-q", "--model", "none", str(folder)], check=True,
                           stdout=subprocess.DEVNULL)
            tries = grouping._ANCHOR_TRIES
            grouping._ANCHOR_TRIES = 0
            before = score(db, folder, kinds)
            grouping._ANCHOR_TRIES = tries
            out[name] = {"rule off": before, "rule on": score(db, folder, kinds)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
