"""Intermediate-layer descriptors: does a mid-level block of the backbone beat the last one?

``python -m benchmarks.midlevel [--json FILE]`` decodes ``../shared/data/dev`` and
``../shared/data/calib`` exactly as the scan does (the squashed model input of
:func:`photosim.core.scan.imageio.decode_file`), runs the default backbone (EfficientNet-Lite0,
packaged ImageNet weights) once per photo, and pools the output of each of its last stages
(global average and GeM, L2-normalised) as well as the final feature map the product pools.
Seed 000 observed that mid-level layers can beat the last one for near-copies (see also
Babenko & Lempitsky, "Aggregating deep convolutional features", ICCV 2015, on the layers of
off-the-shelf CNN descriptors).

Two figures per descriptor and set:

- ``mAP``: the retrieval mAP of ``photosim eval`` (queries: every member of a ``similar``
  group; relevant: its similar group and its near-duplicates; the gallery is every other photo);
- ``copy_mAP``: near-copy retrieval (queries: every member of a near-duplicate group; relevant:
  its other copies only; dev only, calib has no copies).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("dev", "calib")
STAGES = (3, 4, 5)  # EfficientNet-Lite0 blocks: 80 ch at 14 px, 112 at 14, 192 at 7 (input 224)


def _photos(folder: Path, truth: Any) -> list[str]:
    names = []
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and name != "groundtruth.json" and not name.endswith(".md") \
                and name not in truth.unreadable:
            names.append(name)
    return names


def descriptors(folder: Path, truth: Any) -> tuple[list[str], dict[str, np.ndarray]]:
    """``(names, {descriptor: (N, C) float32 L2-normalised})`` of the readable photos."""
    import torch

    from photosim.core.scan.imageio import DecodeError, decode_file
    from photosim.core.types import DecodeRequest
    from photosim.embed import load_embedder, pooling
    from photosim.embed.preprocess import to_batch

    embedder = load_embedder(precision="float32")
    model = embedder._trunk.model  # timm EfficientNet behind _ForwardFeatures
    taken: dict[int, torch.Tensor] = {}
    for stage in STAGES:
        model.blocks[stage].register_forward_hook(
            lambda _m, _i, out, stage=stage: taken.__setitem__(stage, out.float()))
    names, out = [], {}
    kept: list[str] = []
    for name in _photos(folder, truth):
        try:
            img = decode_file(DecodeRequest(str(folder / name), embedder.input_size, 64))
        except DecodeError:
            continue
        kept.append(name)
        names.append(img.model_input)
    feats: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for start in range(0, len(names), 16):
            x = to_batch(names[start : start + 16], embedder.input_size, torch.device("cpu"),
                         torch.float32, torch.channels_last, embedder._mean, embedder._std)
            last = embedder._trunk(x).float()
            maps = {"last": last, **{f"block{s}": taken[s] for s in STAGES}}
            for key, fmap in maps.items():
                for pool in ("avg", "gem"):
                    v = pooling.average(fmap) if pool == "avg" else pooling.gem(fmap)
                    v = torch.nn.functional.normalize(v, dim=1)
                    feats.setdefault(f"{key}-{pool}", []).append(v.numpy())
    for key, chunks in feats.items():
        out[key] = np.concatenate(chunks).astype(np.float32)
    return kept, out


def measure() -> dict[str, Any]:
    """``{set: {descriptor: {"mAP", "copy_mAP", "dim"}}}``.

    Raises:
        FileNotFoundError: ``../shared/data`` is not beside the repository.
    """
    from photosim.core.evaluate import load_truth, mean_average_precision

    def _rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    results: dict[str, Any] = {}
    for name in SETS:
        folder = SHARED / name
        if not (folder / "groundtruth.json").is_file():
            raise FileNotFoundError(f"{folder} with its groundtruth.json is needed")
        truth = load_truth(folder / "groundtruth.json")
        names, descs = descriptors(folder, truth)
        scene = [i for i, n in enumerate(names) if n in truth.scene_members]
        copies = {n for p in truth.duplicate for n in p}
        copy_queries = [i for i, n in enumerate(names) if n in copies]
        results[name] = {
            key: {"dim": int(m.shape[1]),
                  "mAP": _rounded(mean_average_precision(
                      names, m, scene, truth.duplicate | truth.similar)),
                  "copy_mAP": _rounded(mean_average_precision(
                      names, m, copy_queries, truth.duplicate))}
            for key, m in descs.items()
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.midlevel",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "midlevel.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("PHOTOSIM_OFFLINE", "1")
    try:
        results = measure()
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print("| descriptor | dim | dev mAP | dev copy mAP | calib mAP |")
    print("|---|---|---|---|---|")
    for key in results["dev"]:
        d, c = results["dev"][key], results["calib"][key]
        print(f"| {key} | {d['dim']} | {d['mAP']} | {d['copy_mAP']} | {c['mAP']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
