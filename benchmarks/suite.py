"""The speed and memory benchmarks B1 to B12 (``python -m benchmarks``, see its ``--help``).

Speed goals are checked here, never by timed tests. Every figure that is compared with a goal
is a *ratio measured in the same run* (these machines are shared and noisy), or a latency whose
bound does not depend on load. The suite generates its own data in a temporary folder:

- B1/B2: ``>= 200`` photo-like 12 MP JPEGs (3 to 5 MB each: multi-octave noise, shapes, lines and
  per-file sensor noise, so JPEG entropy decoding costs what it costs on real photos);
- B3/B6: a tree of 20,000 small JPEGs;
- B4/B5/B6: synthetic clustered descriptors (100k at the default model's dimension, 1M at 256);
- B12: the archive benchmark's synthetic descriptors (:mod:`benchmarks.archive`, 1M at 256-d by
  default, ``--archive-vectors 10000000`` for issue 16's 10M goal: about 15 minutes, 5 GB of
  disk).

It writes ``bench.json`` (every figure, the machine, the command) and ``RESULTS.md`` (a table:
benchmark, figure, goal, met?) into ``--out``. ``--quick`` runs every benchmark at a small
scale in well under a minute (CI smoke test; its figures are not meaningful).

torch is imported lazily, only by the benchmarks that need a model (B1, B8).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import versus

logger = logging.getLogger(__name__)

BENCHMARKS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12")
#: Keys each benchmark's JSON section always has (null when not measurable here).
REPORT_KEYS: dict[str, tuple[str, ...]] = {
    "B1": ("files", "mean_file_mb", "images_per_s", "bound_images_per_s", "pipeline_efficiency",
           "stage_cpu_ms", "cores", "model", "device"),
    "B2": ("files", "images_per_s", "bare_decode_images_per_s", "ratio_to_bare_decode",
           "findimagedupes_images_per_s", "ratio_to_findimagedupes"),
    "B3": ("files", "first_scan_s", "rescan_s", "walk_stat_s", "ratio_to_walk_stat"),
    "B4": ("small", "large"),
    "B5": ("small", "large", "regroup_ms", "product"),
    "B6": ("scan_peak_mb", "scan_photos", "index_mb", "index_vectors", "index_dim"),
    "B7": ("version_s", "import_cli_s", "python_s", "gui_window_s"),
    "B8": ("gpu", "embeddings_per_s", "images_per_s"),
    "B9": ("sets",),
    "B10": ("vectors", "dim", "graph_edges", "diffusion_build_s", "reranks"),
    "B12": ("vectors", "dim", "code_bytes", "nprobe", "rerank", "recall_at_10", "p50_ms",
            "p99_ms", "rss_anon_mb", "index_ram_mb", "store_gb", "build_s"),
    "B11": ("embed_cpu_ms", "embed_and_tag_cpu_ms", "tags_share", "photos", "words",
            "search_p50_ms", "search_p99_ms"),
}
GOALS = {
    "B1": 0.85, "B2_bare": 0.8, "B2_fid": 3.0, "B3": 2.0, "B4_p99_ms": 1.0, "B4_recall": 0.99,
    "B5_s": 10.0, "B5_regroup_ms": 200.0, "B6_mb": 1536.0, "B7_s": 1.0, "B10_p99_ms": 50.0,
    "B11_share": 0.05, "B11_p99_ms": 100.0,
    # B12 (issue 16): 10M photos in <= 2 GB RAM, recall@10 >= 0.9, p99 <= 10 ms
    "B12_recall": 0.9, "B12_p99_ms": 10.0, "B12_mb": 2048.0,
}
# B11's queries: everyday words, from one class ("church") to 118 ("dog").
B11_WORDS = ("dog", "cat", "bird", "car", "boat", "church", "building", "fruit", "flower",
             "computer", "golden retriever", "dogs on a seashore")
JPEG_W, JPEG_H = 4000, 3000  # 12 MP
_PAD = 160  # per-file crop offsets inside a scene
K_RECALL = 10
EF_SWEEP = (16, 32, 64, 128, 256)
GRAPH_K = 16
NOTES_MARKER = "<!-- notes: kept by python -m benchmarks -->"


class BenchError(Exception):
    """The benchmark suite cannot run as asked."""


@dataclass(frozen=True)
class Scale:
    """How big each data set is."""

    jpegs: int
    small_files: int
    b4_small: int
    b4_large: int
    b4_large_dim: int
    queries: int
    graph_sample: int
    startup_runs: int
    scan_runs: int  # B1 scans (best of), B2 scan/bare-loop pairs (best of each)
    b6_model_photos: int  # B6's scan with the model (of B3's small files)
    b9_scenes: int  # B9: generated scenes to copy (0: the calibration photos, and the dev set)
    b12_vectors: int = 1_000_000  # B12: vectors in the compressed index


FULL = Scale(jpegs=400, small_files=20_000, b4_small=100_000, b4_large=1_000_000,
             b4_large_dim=256, queries=1000, graph_sample=50_000, startup_runs=7, scan_runs=2,
             b6_model_photos=10_000, b9_scenes=0)
QUICK = Scale(jpegs=8, small_files=600, b4_small=5_000, b4_large=20_000, b4_large_dim=256,
              queries=100, graph_sample=5_000, startup_runs=2, scan_runs=1, b6_model_photos=200,
              b9_scenes=3, b12_vectors=5_000)


# ============================================================================ data
def _scene(seed: int) -> np.ndarray:
    """A photo-like ``(H+pad, W+pad, 3)`` uint8 scene: fractal colour noise, shapes, lines."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    h, w = JPEG_H + _PAD, JPEG_W + _PAD
    acc = np.zeros((h, w, 3), np.float32)
    for grid, amp in ((6, 90), (24, 50), (96, 30), (384, 18), (1536, 10)):
        small = rng.normal(0, 1, (max(2, grid * h // w), grid, 3)).astype(np.float32)
        for c in range(3):
            up = Image.fromarray(small[:, :, c], "F").resize((w, h), Image.Resampling.BICUBIC)
            acc[:, :, c] += amp * np.asarray(up)
    mix = rng.uniform(0.3, 1.0, (3, 3)).astype(np.float32)
    acc = acc @ mix.T / mix.sum(1)
    img = Image.fromarray(np.clip(acc + 128, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(20, 400))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r // 2), fill=colour)
        else:
            points = [(x + int(rng.integers(-r, r)), y + int(rng.integers(-r, r))) for _ in range(5)]
            draw.polygon(points, fill=colour)
    for _ in range(300):
        xs, ys = rng.integers(0, w, 2), rng.integers(0, h, 2)
        draw.line((int(xs[0]), int(ys[0]), int(xs[1]), int(ys[1])),
                  fill=tuple(int(v) for v in rng.integers(0, 256, 3)),
                  width=int(rng.integers(1, 6)))
    return np.asarray(img)


def make_jpegs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """Write ``count`` distinct photo-like 12 MP JPEGs (about 3 to 5 MB) into ``folder``.

    A few scenes are generated (about 3 s each); every file is a different crop of one with its
    own sensor noise (amplitude 3 to 7 levels), brightness and JPEG quality, so files differ in
    content and size like a real shoot.
    """
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scenes = [_scene(seed + i) for i in range(max(1, min(4, count // 50)))]
    noise = rng.integers(-7, 8, (JPEG_H + _PAD, JPEG_W + _PAD, 3), dtype=np.int8)
    paths = []
    for i in range(count):
        scene = scenes[i % len(scenes)]
        oy, ox, ny, nx = (int(v) for v in rng.integers(0, _PAD, 4))
        amp = int(rng.integers(3, 8))
        gain = float(rng.uniform(0.85, 1.1))
        pixels = scene[oy : oy + JPEG_H, ox : ox + JPEG_W].astype(np.int16)
        if gain != 1.0:
            pixels = (pixels * gain).astype(np.int16)
        pixels += (noise[ny : ny + JPEG_H, nx : nx + JPEG_W] * amp) // 7
        path = folder / f"IMG_{i:05d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            path, "JPEG", quality=int(rng.integers(88, 94))
        )
        paths.append(path)
    return paths


def make_small_tree(folder: Path, count: int, per_folder: int = 200, seed: int = 1) -> None:
    """Write ``count`` distinct small JPEGs (48x32 noise over a gradient) in sub-folders."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    gx = np.linspace(0, 255, 48, dtype=np.float32)[None, :, None]
    for i in range(count):
        sub = folder / f"d{i // per_folder:04d}"
        if i % per_folder == 0:
            sub.mkdir(parents=True, exist_ok=True)
        a = gx * rng.uniform(0.2, 1.0, 3) + rng.normal(0, 40, (32, 48, 3))
        buf = io.BytesIO()
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=80)
        (sub / f"p{i:06d}.jpg").write_bytes(buf.getvalue())


def synthetic_descriptors(
    n: int, dim: int, queries: int, seed: int = 0, chunk: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors like CNN descriptors of a photo library (after PCA).

    Photos come in series of about 20 (bursts, trips): each series has a centre, each photo
    is its centre plus noise of a decaying spectrum (as PCA components have), cosine about 0.8
    inside a series. Queries are fresh draws from the same series (not in the data set).

    Returns:
        ``(data (n, dim) float32, queries (queries, dim) float32)``, rows L2-normalised.
    """
    rng = np.random.default_rng(seed)
    spectrum = (1.0 / np.sqrt(1.0 + np.arange(dim) / 8.0)).astype(np.float32)
    centres = rng.standard_normal((max(1, n // 20), dim), dtype=np.float32) * spectrum

    def draw(count: int) -> np.ndarray:
        out = centres[rng.integers(0, len(centres), count)]
        out += 0.5 * rng.standard_normal((count, dim), dtype=np.float32) * spectrum
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    data = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        data[start : start + chunk] = draw(min(chunk, n - start))
    return data, draw(queries)


# ============================================================================ measuring
class PeakRss:
    """Samples the resident memory of a process tree (Linux /proc; 0 elsewhere).

    ``peak_mb`` is the largest sum over the process and all its descendants seen (sampled
    every ``interval`` seconds).

    Args:
        pid: Root of the tree (default: this process).
        interval: Seconds between samples.
    """

    def __init__(self, pid: int | None = None, interval: float = 0.05) -> None:
        self.peak_mb = 0.0
        self.pid = pid or os.getpid()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="photosim-bench-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.sample())

    def sample(self) -> float:
        """Current RSS in MB of the tree (0 where /proc is missing)."""
        children: dict[int, list[int]] = {}
        try:
            names = os.listdir("/proc")
        except OSError:
            return 0.0
        for name in names:
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(name))
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo.extend(children.get(pid, ()))
        total = 0
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        for pid in pids:
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * page
            except (OSError, ValueError, IndexError):
                continue
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_mb = max(self.peak_mb, self.sample())


def rss_mb() -> float:
    """Resident memory of this process alone, MB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cores() -> int:
    """CPUs this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    ram_gb = None
    try:
        with open("/proc/meminfo") as f:
            ram_gb = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    import hnswlib  # noqa: F401  (version below)
    import PIL

    info: dict[str, Any] = {
        "cpu": model,
        "cores": cores(),
        "ram_gb": ram_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    return info


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000.0, q))


# ============================================================================ context
@dataclass
class Context:
    """What the benchmarks share within one run."""

    scale: Scale
    work: Path
    device: str
    log: Callable[[str], None]
    jpegs: list[Path] | None = None
    embedder: Any = None
    weights: Path | None = None
    b1_peak_mb: float | None = None
    b3_peak_mb: float | None = None
    b3_catalog: Path | None = None
    b4_large_index: Path | None = None
    b4_graphs: dict[str, Any] | None = None

    def photos(self) -> list[Path]:
        if self.jpegs is None:
            self.log(f"generating {self.scale.jpegs} 12 MP JPEGs")
            self.jpegs = make_jpegs(self.work / "jpegs", self.scale.jpegs)
        return self.jpegs

    def model(self) -> Any:
        """The default model with its weights: the packaged ones, else random ones (speed does
        not depend on the values)."""
        if self.embedder is None:
            from photosim import embed

            if embed.weights_cached(embed.DEFAULT_MODEL):
                self.weights = embed.weights_cache_path(embed.DEFAULT_MODEL)
            else:
                self.weights = random_weights(embed.DEFAULT_MODEL, self.work)
            self.embedder = embed.load_embedder(
                embed.DEFAULT_MODEL, weights=self.weights, device=self.device, progress=False
            )
        return self.embedder


def random_weights(name: str, folder: Path) -> Path:
    """A seeded random-init state_dict of ``name``, batch-norm statistics set from noise.

    At plain random init EfficientNet's activations vanish; one noise batch in train mode with
    momentum 1 gives the running statistics the scale trained weights have.
    """
    import torch
    import torchvision

    from photosim.embed import MODELS

    spec = MODELS[name]
    torch.manual_seed(0)
    model = getattr(torchvision.models, spec.builder)()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = 1.0
    with torch.no_grad():
        model.train()(torch.randn(4, 3, spec.input_size, spec.input_size))
    path = folder / f"{name}.pth"
    torch.save(model.state_dict(), path)
    return path


def _scan(catalog_path: Path, folder: Path, embedder: Any) -> tuple[float, Any]:
    from photosim.config import Settings
    from photosim.core.catalog import Catalog
    from photosim.core.scan.pipeline import run_scan, scan

    with Catalog(catalog_path) as catalog:
        started = time.perf_counter()
        summary = run_scan(scan(catalog, [str(folder)], Settings(), embedder))
        return time.perf_counter() - started, summary


def _busy_seconds() -> float | None:
    """CPU-seconds the whole machine has been busy (all processes, steal included)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _cli_scan(catalog_path: Path, folder: Path, *extra: str) -> tuple[dict[str, Any], float]:
    """``photosim scan`` in a child process, as a user runs it.

    Returns:
        ``(the scan's JSON summary, peak MB of the child and its decode workers)``; the
        summary's ``seconds`` is the scan's own clock: not interpreter start, but the load of
        the model (torch import, weights), which a scan does when it first needs it.
        The summary gains ``other_load_cores``: the cores other processes of the machine
        kept busy meanwhile (machine busy time minus ours, over the child's life).
    """
    import resource

    argv = [sys.executable, "-m", "photosim", "scan", "-q", "--json", "--catalog",
            str(catalog_path), *extra, str(folder)]
    env = {**os.environ, "PHOTOSIM_OFFLINE": "1"}
    busy0, ours0 = _busy_seconds(), _own_cpu(resource)
    started = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as proc:
        with PeakRss(proc.pid) as rss:
            stdout, stderr = proc.communicate(timeout=7200)
    wall = time.perf_counter() - started
    busy1, ours1 = _busy_seconds(), _own_cpu(resource)
    if proc.returncode != 0:
        raise BenchError(f"photosim scan failed ({proc.returncode}): {stderr.strip()[-400:]}")
    summary = json.loads(stdout)
    summary["other_load_cores"] = None
    if busy0 is not None and busy1 is not None:
        others = (busy1 - busy0) - (ours1 - ours0)
        summary["other_load_cores"] = round(min(cores(), max(0.0, others / wall)), 2)
    return summary, rss.peak_mb


def _own_cpu(resource: Any) -> float:
    """CPU-seconds of this process and its waited-for children (and theirs)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


# ============================================================================ B1
def bench_b1(ctx: Context) -> dict[str, Any]:
    """End-to-end scan with the default model; stage costs measured alone; efficiency."""
    from PIL import Image

    from photosim.core.scan import imageio
    from photosim.core.scan.hashing import content_hash, orientation_hashes
    from photosim.core.types import DecodeRequest

    paths = ctx.photos()
    embedder = ctx.model()
    n = len(paths)
    # Stage costs, CPU-seconds per image, each alone in this process on a sample of files.
    sample = paths[: min(n, 12)]
    blobs = [p.read_bytes() for p in sample]
    req = DecodeRequest(str(sample[0]), embedder.input_size, 256, sketch=True)
    short = max(req.model_size, imageio.HASH_MIN_SIDE)
    imageio.decode_bytes(blobs[0], req)  # warm-up (plugins, EXIF code paths)

    def cpu(fn: Callable[[bytes], Any], inputs: Sequence[Any]) -> float:
        started = time.process_time()
        for x in inputs:
            fn(x)
        return (time.process_time() - started) / len(inputs)

    uprights = [imageio._load_upright(b, min_short=short, min_long=max(short, 256))[0]
                for b in blobs]
    works = [im.reduce(-(-max(im.size) // imageio.WORK_MAX_SIDE)) for im in uprights]

    def thumb(im: Any) -> None:
        buf = io.BytesIO()
        imageio._fit(im, 256, Image.Resampling.BICUBIC).save(buf, "JPEG", quality=85)

    stages = {
        "read_and_content_hash": cpu(lambda p: content_hash(Path(p).read_bytes()), sample),
        "decode_draft": cpu(
            lambda b: imageio._load_upright(b, min_short=short, min_long=max(short, 256)), blobs
        ),
        "perceptual_hashes": cpu(lambda im: orientation_hashes(
            im.reduce(-(-max(im.size) // imageio.WORK_MAX_SIDE))), uprights),
        "thumbnail": cpu(thumb, works),
        "detail_sketch": cpu(imageio._detail_sketch, works),
        "model_input_resize": cpu(lambda im: np.array(im.resize(
            (req.model_size, req.model_size), Image.Resampling.BILINEAR,
            reducing_gap=imageio.REDUCING_GAP)), uprights),
    }
    whole_decode = cpu(lambda b: imageio.decode_bytes(b, req), blobs)
    stages["inference"], inference_wall, bf16 = _inference_cost(embedder)
    per_image = sum(stages.values())
    bound = cores() / per_image
    ctx.log(f"B1 stage CPU ms/img: { {k: round(v * 1e3, 1) for k, v in stages.items()} }")
    # End to end: `photosim scan` into a fresh catalog; its own clock starts after the model
    # is loaded (load time is not per image). Best of 2 (load elsewhere only adds time).
    runs = []
    for attempt in range(ctx.scale.scan_runs):
        summary, peak = _cli_scan(ctx.work / f"b1-{attempt}.db", paths[0].parent, "--model",
                                  embedder.model_id.rsplit("-", 1)[0], "--weights",
                                  str(ctx.weights), "--device", ctx.device)
        if summary["embedded"] != n or summary["errors"]:
            raise BenchError(f"B1 scan embedded {summary['embedded']} of {n}: {summary}")
        runs.append((summary["seconds"], summary["other_load_cores"], peak))
    seconds, other_load, peak = min(runs)
    ctx.b1_peak_mb = max(r[2] for r in runs)
    rate = n / seconds
    # The same bound with the cores other processes left us during that scan.
    free = None if other_load is None else max(0.1, cores() - other_load)
    return {
        "files": n,
        "mean_file_mb": round(sum(p.stat().st_size for p in paths) / n / 1e6, 2),
        "images_per_s": round(rate, 2),
        "scan_s": round(seconds, 2),
        "bound_images_per_s": round(bound, 2),
        "pipeline_efficiency": round(rate / bound, 3),
        "other_load_cores": other_load,
        "pipeline_efficiency_free_cores": None if free is None else round(
            rate / (free / per_image), 3),
        "scan_runs_s": [round(r[0], 2) for r in runs],
        "stage_cpu_ms": {k: round(v * 1e3, 2) for k, v in stages.items()},
        "decode_file_cpu_ms": round(whole_decode * 1e3, 2),
        "inference_wall_ms_per_image": round(inference_wall * 1e3, 2),
        "inference_bf16_cpu_ms": None if bf16 is None else round(bf16 * 1e3, 2),
        "cores": cores(),
        "model": embedder.model_id,
        "device": embedder.device,
        "batch_size": embedder.batch_size,
        "peak_rss_mb": round(peak, 1),
    }


def _inference_cost(embedder: Any) -> tuple[float, float, float | None]:
    """CPU-seconds per image of inference (one thread: no parallel overhead counted), the wall
    seconds per image with the embedder's own thread count, and bf16-autocast CPU-s per image
    when the CPU supports bfloat16 natively (None otherwise, and on GPUs)."""
    import torch

    size = embedder.input_size
    rng = np.random.default_rng(0)
    images = list(rng.integers(0, 256, (2 * embedder.batch_size, size, size, 3), np.uint8))
    embedder.embed(images[: embedder.batch_size])  # warm-up
    started = time.perf_counter()
    embedder.embed(images)
    wall = (time.perf_counter() - started) / len(images)
    if not embedder.device.startswith("cpu"):
        return wall, wall, None  # a GPU stage costs no CPU-seconds of the bound's kind
    threads = embedder.threads
    embedder.threads = 1  # applied by embed() on the calling thread
    def best_of_3() -> float:
        embedder.embed(images[: embedder.batch_size])  # warm-up at this thread count
        runs = []
        for _ in range(3):  # the least CPU time: load elsewhere only adds to it
            started = time.process_time()
            embedder.embed(images)
            runs.append((time.process_time() - started) / len(images))
        return min(runs)

    try:
        cpu = best_of_3()
        bf16 = None
        if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                bf16 = best_of_3()
    finally:
        embedder.threads = threads
    return cpu, wall, bf16


# ============================================================================ B2
def _bare_decode(path: str) -> int:
    """Read and decode one JPEG with the same DCT-scaled draft as a hash-only scan."""
    from PIL import Image

    from photosim.core.scan.imageio import HASH_MIN_SIDE

    with open(path, "rb") as f:
        img = Image.open(io.BytesIO(f.read()))
        w, h = img.size
        need = (256, HASH_MIN_SIDE) if w >= h else (HASH_MIN_SIDE, 256)
        img.draft("RGB", need)
        img.load()
    return img.width


def bench_b2(ctx: Context) -> dict[str, Any]:
    """Hash-only scan vs a bare decode loop on the same cores vs findimagedupes."""
    paths = ctx.photos()
    n = len(paths)
    # The bare loop gets the same number of processes, already started (a stricter baseline
    # than the scan, which pays for starting its workers). Alternated, best of 3 each.
    scans, bares = [], []
    with mp.get_context("spawn").Pool(cores()) as pool:
        pool.map(_bare_decode, [str(paths[0])] * cores())
        for attempt in range(ctx.scale.scan_runs + 1):
            summary, _ = _cli_scan(ctx.work / f"b2-{attempt}.db", paths[0].parent,
                                   "--model", "none")
            if summary["decoded"] != n:
                raise BenchError(f"B2 scan decoded {summary['decoded']} of {n}")
            scans.append(summary["seconds"])
            started = time.perf_counter()
            pool.map(_bare_decode, [str(p) for p in paths], chunksize=1)
            bares.append(time.perf_counter() - started)
    seconds = min(scans)
    rate = n / seconds
    bare = n / min(bares)
    fid_rate, fid_note = _findimagedupes(paths[0].parent, n, ctx)
    return {
        "files": n,
        "images_per_s": round(rate, 2),
        "scan_s": round(seconds, 2),
        "scan_runs_s": [round(x, 2) for x in scans],
        "bare_runs_s": [round(x, 2) for x in bares],
        "bare_decode_images_per_s": round(bare, 2),
        "ratio_to_bare_decode": round(rate / bare, 3),
        "findimagedupes_images_per_s": None if fid_rate is None else round(fid_rate, 2),
        "ratio_to_findimagedupes": None if fid_rate is None else round(rate / fid_rate, 2),
        "findimagedupes_note": fid_note,
    }


def _findimagedupes(folder: Path, n: int, ctx: Context) -> tuple[float | None, str]:
    exe = shutil.which("findimagedupes")
    if exe is None:
        return None, "findimagedupes is not installed (Debian: apt-get install findimagedupes)"
    db = ctx.work / "fid.db"
    started = time.perf_counter()
    # -f: fingerprint database (computes every fingerprint, as a first scan would); -q quiet.
    proc = subprocess.run([exe, "-q", "-f", str(db), str(folder)], capture_output=True,
                          text=True, timeout=3600)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        return None, f"findimagedupes failed ({proc.returncode}): {proc.stderr.strip()[:200]}"
    return n / seconds, f"{exe} -q -f DB FOLDER (single process, as shipped)"


# ============================================================================ B3
def bench_b3(ctx: Context) -> dict[str, Any]:
    """Rescan of an unchanged tree vs a bare os.walk + stat of it."""
    tree = ctx.work / "small"
    n = ctx.scale.small_files
    ctx.log(f"B3: writing {n} small files")
    make_small_tree(tree, n)
    db = ctx.work / "b3.db"
    summary, ctx.b3_peak_mb = _cli_scan(db, tree, "--model", "none")
    first = summary["seconds"]
    ctx.b3_catalog = db
    if summary["decoded"] != n:
        raise BenchError(f"B3 first scan decoded {summary['decoded']} of {n}")
    rescans, walks = [], []
    for _ in range(3):  # alternate, best of 3 each: load on the machine only adds time
        started = time.perf_counter()
        count = 0
        for folder, _dirs, files in os.walk(tree):
            for name in files:
                os.stat(os.path.join(folder, name))
                count += 1
        walks.append(time.perf_counter() - started)
        seconds, summary = _scan(db, tree, None)
        if summary.unchanged != n or summary.new or summary.changed:
            raise BenchError("B3 rescan did not find the tree unchanged")
        rescans.append(seconds)
    return {
        "files": n,
        "first_scan_s": round(first, 2),
        "first_scan_images_per_s": round(n / first, 1),
        "rescan_s": round(min(rescans), 3),
        "walk_stat_s": round(min(walks), 3),
        "ratio_to_walk_stat": round(min(rescans) / min(walks), 2),
    }


# ============================================================================ B4
def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth))
    return hits / truth.size


def _exact_knn(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    sims = queries @ data.T
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def _b4_one(ctx: Context, n: int, dim: int, label: str) -> dict[str, Any]:
    from photosim.core.index import vectors as index_mod
    from photosim.core.index.vectors import VectorIndex

    ctx.log(f"B4 {label}: {n} x {dim} descriptors")
    data, queries = synthetic_descriptors(n, dim, ctx.scale.queries, seed=n + dim)
    truth = np.concatenate([_exact_knn(data, queries[i : i + 100], K_RECALL)
                            for i in range(0, len(queries), 100)])
    paths = (ctx.work / f"{label}.hnsw", ctx.work / f"{label}.json", ctx.work / f"{label}.npy")
    index = VectorIndex(f"bench-{label}", dim, paths)
    ids = np.arange(n, dtype=np.int64)
    started = time.perf_counter()
    for start in range(0, n, 50_000):
        index.add(ids[start : start + 50_000], data[start : start + 50_000])
    build = time.perf_counter() - started
    raw = index._index  # the hnswlib object: the curve is measured without our wrapper
    curve = []
    for ef in EF_SWEEP:
        raw.set_ef(ef)
        found, times = [], []
        for q in queries:
            q1 = q[None, :]
            t0 = time.perf_counter()
            labels, _ = raw.knn_query(q1, k=K_RECALL)
            times.append(time.perf_counter() - t0)
            found.append(labels[0])
        curve.append({"ef": ef, "recall_at_10": round(_recall(np.array(found), truth), 4),
                      "p50_ms": round(percentile_ms(times, 50), 4),
                      "p99_ms": round(percentile_ms(times, 99), 4)})
    # The product's query path: VectorIndex.knn (lock, ef, conversions) at its default ef.
    found, times = [], []
    for q in queries:
        q1 = q[None, :]
        t0 = time.perf_counter()
        labels, _ = index.knn(q1, K_RECALL)
        times.append(time.perf_counter() - t0)
        found.append(labels[0])
    result = {
        "vectors": n,
        "dim": dim,
        "build_s": round(build, 1),
        "build_us_per_vector": round(build / n * 1e6, 1),
        "ef_search": index_mod.EF_SEARCH,
        "p50_ms": round(percentile_ms(times, 50), 4),
        "p99_ms": round(percentile_ms(times, 99), 4),
        "recall_at_10": round(_recall(np.array(found), truth), 4),
        "curve": curve,
        "M": index_mod.M,
        "ef_construction": index_mod.EF_CONSTRUCTION,
    }
    # kNN graph for B5: every vector's GRAPH_K neighbours (a scan cost), timed on a sample.
    sample = min(n, ctx.scale.graph_sample)
    started = time.perf_counter()
    labels, sims = index.knn(data[:sample], GRAPH_K + 1)
    graph_s = (time.perf_counter() - started) / sample
    result["graph_us_per_photo"] = round(graph_s * 1e6, 1)
    if ctx.b4_graphs is None:
        ctx.b4_graphs = {}
    ctx.b4_graphs[label] = {"n": n, "labels": labels, "sims": sims, "us": graph_s * 1e6}
    if label == "large":
        index.save()
        ctx.b4_large_index = paths[0]
        ctx.b4_graphs[label]["dim"] = dim
    del index, raw, data
    return result


def bench_b4(ctx: Context) -> dict[str, Any]:
    """Find-similar latency and recall@10 at 100k (default model's dim) and 1M (256-d)."""
    from photosim.embed import DEFAULT_MODEL, MODELS

    s = ctx.scale
    return {
        "small": _b4_one(ctx, s.b4_small, MODELS[DEFAULT_MODEL].dim, "small"),
        "large": _b4_one(ctx, s.b4_large, s.b4_large_dim, "large"),
    }


# ============================================================================ B5
def group_from_graph(
    labels: np.ndarray, sims: np.ndarray, order: np.ndarray, threshold: float
) -> np.ndarray:
    """Keeper-first grouping without chaining, from a precomputed k-nearest-neighbour graph.

    The same rule as :func:`photosim.core.dedup.grouping.find_duplicates`: contents are visited in
    keeper order; an unassigned one opens a group and takes the unassigned neighbours that
    match *it* (similarity >= threshold, either direction of the kNN graph).

    Args:
        labels: ``(N, k)`` int neighbour ids (``-1`` for none).
        sims: ``(N, k)`` similarities.
        order: ``(N,)`` ids in keeper order, best first.
        threshold: Minimum similarity of a match.

    Returns:
        ``(N,)`` int64 group id per content (the keeper's id), ``-1`` for contents in no group.
    """
    from scipy import sparse

    n = len(labels)
    rows = np.repeat(np.arange(n), labels.shape[1])
    cols = labels.reshape(-1)
    keep = (sims.reshape(-1) >= threshold) & (cols >= 0) & (cols != rows)
    rows, cols = rows[keep], cols[keep]
    graph = sparse.coo_matrix(
        (np.ones(2 * len(rows), np.int8),
         (np.concatenate([rows, cols]), np.concatenate([cols, rows]))),
        shape=(n, n),
    ).tocsr()
    group = np.full(n, -1, np.int64)
    indptr, indices = graph.indptr, graph.indices
    degree = np.diff(indptr)
    for node in order[degree[order] > 0].tolist():
        if group[node] >= 0:
            continue
        nbrs = indices[indptr[node] : indptr[node + 1]]
        free = nbrs[group[nbrs] < 0]
        if len(free):
            group[node] = node
            group[free] = node
    return group


def bench_b5(ctx: Context) -> dict[str, Any]:
    """Grouping from the kNN graph at 100k and 1M; re-group after a threshold change."""
    if not ctx.b4_graphs:
        ctx.log("B5 needs B4's graphs: running B4")
        bench_b4(ctx)
    assert ctx.b4_graphs is not None
    out: dict[str, Any] = {}
    rng = np.random.default_rng(5)
    for label in ("small", "large"):
        g = ctx.b4_graphs[label]
        n = g["n"]
        labels, sims = g["labels"], g["sims"]
        # The graph was queried for a sample of the photos; tile it to all N (ids shifted
        # per tile) so grouping sees a graph of the full size with the same structure.
        reps = -(-n // len(labels))
        shift = (np.arange(reps) * len(labels)).repeat(len(labels))[:n, None]
        full_labels = (np.tile(labels, (reps, 1))[:n] % len(labels) + shift) % n
        full_sims = np.tile(sims, (reps, 1))[:n]
        order = rng.permutation(n)
        # The "similar" tier's cosine (0.80) keeps about half of this graph's edges: a harder
        # case than near-duplicates (0.92), which keep few.
        group_from_graph(full_labels, full_sims, order, 0.80)  # warm-up (scipy import)
        started = time.perf_counter()
        groups = group_from_graph(full_labels, full_sims, order, 0.80)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        group_from_graph(full_labels, full_sims, order, 0.82)
        regroup = time.perf_counter() - started
        out[label] = {
            "photos": n,
            "group_s": round(seconds, 3),
            "regroup_ms": round(regroup * 1e3, 1),
            "groups": int(len(np.unique(groups[groups >= 0]))),
            "graph_us_per_photo_in_scan": round(g["us"], 1),
            "graph_sampled_photos": len(labels),
        }
    out["regroup_ms"] = out["small"]["regroup_ms"]
    ctx.log(f"B5: photosim's own grouping on a synthetic library of {ctx.scale.b4_small:,}")
    out["product"] = product_grouping(ctx.work, ctx.scale.b4_small)
    return out


def synthetic_library(catalog: Any, n: int, seed: int = 7, copies: float = 0.3) -> int:
    """Fill ``catalog`` with ``n`` photos as a scan would leave them, without image files.

    Photos come in shoots (folders of 200); a fraction ``copies`` are near-copies of an earlier
    photo (0 to 10 of the 128 hash bits flipped, often resized: same aspect, fewer pixels, a
    later mtime), the rest distinct photos with independent hashes. The hash vectors are
    stored as the scan's batches store them; the index and the kNN graph are not built.

    Returns:
        The number of near-copies.
    """
    from photosim.core.index.vectors import HASH_MODEL, hash_vectors

    rng = np.random.default_rng(seed)
    codes = rng.integers(-(2**63), 2**63 - 1, (n, 2), dtype=np.int64, endpoint=True)
    variants = rng.integers(-(2**63), 2**63 - 1, (n, 14), dtype=np.int64, endpoint=True)
    width = np.full(n, 4000)
    height = np.full(n, 3000)
    base = np.arange(n)
    is_copy = (rng.random(n) < copies) & (np.arange(n) > 0)
    for i in np.flatnonzero(is_copy).tolist():
        b = int(rng.integers(0, i))
        base[i] = base[b]
        bits = rng.choice(128, size=int(rng.integers(0, 11)), replace=False)
        words = codes[base[i]].view(np.uint64).copy()
        for bit in bits.tolist():
            words[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
        codes[i] = words.view(np.int64)
        variants[i] = variants[base[i]]
        if rng.random() < 0.5:
            width[i], height[i] = 2000, 1500
    t0 = 1_600_000_000 * 10**9
    for start in range(0, n, 10_000):
        stop = min(n, start + 10_000)
        rows = [
            {
                "path": f"/library/shoot{i // 200:05d}/IMG_{i:07d}.jpg",
                "folder": "/library",
                "size": int(width[i] * height[i] // 4),
                "mtime_ns": t0 + i * 10**9,
                "content_hash": f"{i:032x}",
                "width": int(width[i]),
                "height": int(height[i]),
                "format": "JPEG",
                "phash": int(codes[i, 0]),
                "dhash": int(codes[i, 1]),
                "variants": variants[i].tobytes(),
                "status": "ok",
            }
            for i in range(start, stop)
        ]
        with catalog.transaction():
            catalog.upsert_photos(rows)
            catalog.put_embeddings(
                HASH_MODEL,
                [r["content_hash"] for r in rows],
                hash_vectors(codes[start:stop, 0], codes[start:stop, 1]),
            )
    return int(is_copy.sum())


def product_grouping(work: Path, n: int) -> dict[str, Any]:
    """The product's scan-side graph and grouping on a synthetic library of ``n`` photos.

    Times the index stage a scan runs (hash index build plus the kNN graph of every vector),
    then :func:`find_duplicates` (near tier, hash evidence; verification off: the library has
    no pixels) in a fresh state, then again after a threshold change.
    """
    from photosim.config import Thresholds
    from photosim.core.catalog import Catalog
    from photosim.core.dedup.grouping import GroupingSession, find_duplicates
    from photosim.core.index.graph import update_graph
    from photosim.core.index.vectors import HASH_MODEL, VectorIndex

    db = work / f"b5-{n}.db"
    with Catalog(db) as catalog:
        copies = synthetic_library(catalog, n)
        started = time.perf_counter()
        index = VectorIndex.open(catalog, HASH_MODEL)
        built = time.perf_counter() - started
        started = time.perf_counter()
        update_graph(catalog, HASH_MODEL, index)
        graphed = time.perf_counter() - started
    with Catalog(db) as catalog:
        th = Thresholds(verify=False)
        started = time.perf_counter()
        result = find_duplicates(catalog, "near", th)
        grouped = time.perf_counter() - started
        started = time.perf_counter()
        again = find_duplicates(catalog, "near", dataclasses.replace(th, near_hash_sum=8))
        regrouped = time.perf_counter() - started
        # What a threshold slider does: one session, then other thresholds (best of 3 moves).
        session = GroupingSession(catalog, "near")
        session.group(th)
        moves = []
        for hash_sum in (8, 16, 12):
            started = time.perf_counter()
            session.group(dataclasses.replace(th, near_hash_sum=hash_sum))
            moves.append(time.perf_counter() - started)
    return {
        "photos": n,
        "near_copies": copies,
        "index_build_us_per_photo": round(built / n * 1e6, 1),
        "graph_us_per_photo": round(graphed / n * 1e6, 1),
        "group_s": round(grouped, 2),
        "regroup_s": round(regrouped, 2),
        "session_regroup_ms": round(min(moves) * 1e3, 1),
        "groups": len(result.groups),
        "groups_after_change": len(again.groups),
        "comparisons": result.comparisons,
        "stage_s": result.seconds,
    }


# ============================================================================ B6
_HOLD_INDEX = """
import json, os, sys
import numpy as np
from pathlib import Path
sys.path.insert(0, sys.argv[2])  # the repository root, where the benchmarks package lives
from benchmarks.suite import rss_mb
from photosim.core.index.vectors import VectorIndex
hnsw = Path(sys.argv[1]); meta = json.loads(hnsw.with_suffix(".json").read_text())
before = rss_mb()
index = VectorIndex(meta["model"], meta["dim"], (hnsw, hnsw.with_suffix(".json"),
                    hnsw.with_suffix(".npy")), load_capacity=meta["capacity"])
index._live = set(np.load(hnsw.with_suffix(".npy")).tolist())
index.knn(np.ones((1, meta["dim"]), np.float32) / meta["dim"] ** 0.5, 10)
print(json.dumps({"mb": rss_mb() - before, "count": len(index), "dim": meta["dim"]}))
"""


def bench_b6(ctx: Context) -> dict[str, Any]:
    """Peak memory of scans (parent + workers) and of holding the large index."""
    if ctx.b4_large_index is None:
        ctx.log("B6 needs B4's large index: building it")
        s = ctx.scale
        _b4_one(ctx, s.b4_large, s.b4_large_dim, "large")
    if ctx.b3_peak_mb is None:
        bench_b3(ctx)
    assert ctx.b4_large_index is not None
    proc = subprocess.run([sys.executable, "-c", _HOLD_INDEX, str(ctx.b4_large_index),
                           str(Path(__file__).resolve().parents[1])],
                          capture_output=True, text=True, timeout=1800, check=True)
    held = json.loads(proc.stdout.strip().splitlines()[-1])
    # A scan with the default model of B3's small files (the first 10k in full mode): memory
    # must not grow with the library (the decoded backlog is bounded).
    embedder = ctx.model()
    folders = sorted(p for p in (ctx.work / "small").iterdir() if p.is_dir())
    folders = folders[: max(1, ctx.scale.b6_model_photos // 200)]
    ctx.log(f"B6: scanning {len(folders) * 200} small photos with the model")
    summary, model_peak = _cli_scan(
        ctx.work / "b6.db", folders[0], "--model", embedder.model_id.rsplit("-", 1)[0],
        "--weights", str(ctx.weights), "--device", "cpu", *map(str, folders[1:]))
    return {
        "scan_10k_with_model_peak_mb": round(model_peak, 1),
        "scan_10k_with_model_photos": summary["embedded"],
        "scan_10k_with_model_s": round(summary["seconds"], 1),
        "scan_peak_mb": round(ctx.b3_peak_mb or 0.0, 1),
        "scan_photos": ctx.scale.small_files,
        "scan_kind": "`photosim scan --model none` of B3's tree (process + decode workers)",
        "scan_with_model_peak_mb": None if ctx.b1_peak_mb is None else round(ctx.b1_peak_mb, 1),
        "scan_with_model_photos": ctx.scale.jpegs if ctx.b1_peak_mb is not None else None,
        "index_mb": round(held["mb"], 1),
        "index_vectors": held["count"],
        "index_dim": held["dim"],
    }


# ============================================================================ B7
def _startup(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, timeout=120)
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))  # the first run warms the page cache


def _first_window(runs: int, work: Path) -> tuple[float, float, bool]:
    """Median seconds from ``main()`` to the first shown window (the app's own clock), median
    wall seconds of the whole process, and whether torch was imported (offscreen Qt)."""
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "PHOTOSIM_EXIT_AFTER_SHOW": "1", "PHOTOSIM_CATALOG": str(work / "b7.db")}
    shown, walls, torch_seen = [], [], False
    for _ in range(runs + 1):
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "photosim"], capture_output=True,
                              text=True, env=env, timeout=120, check=True)
        walls.append(time.perf_counter() - started)
        line = next(x for x in proc.stdout.splitlines() if x.startswith("first window shown"))
        shown.append(float(line.split("after ")[1].split(" s")[0]))
        torch_seen = torch_seen or line.endswith("True")
    return float(np.median(shown[1:])), float(np.median(walls[1:])), torch_seen


def bench_b7(ctx: Context) -> dict[str, Any]:
    """Start-up: launch to the first shown window (offscreen Qt), and CLI proxies."""
    runs = ctx.scale.startup_runs
    py = sys.executable
    out: dict[str, Any] = {
        "python_s": round(_startup([py, "-c", "pass"], runs), 3),
        "version_s": round(_startup([py, "-m", "photosim", "--version"], runs), 3),
        "import_cli_s": round(_startup([py, "-c", "import photosim.cli"], runs), 3),
        "gui_window_s": None,
        "gui_process_s": None,
    }
    try:
        shown, wall, torch_seen = _first_window(runs, ctx.work)
    except (subprocess.SubprocessError, OSError, StopIteration, ValueError) as exc:
        out["note"] = f"the GUI could not be started here: {exc}"
        return out
    out.update(gui_window_s=round(shown, 3), gui_process_s=round(wall, 3),
               torch_imported=torch_seen,
               note="`python -m photosim` with QT_QPA_PLATFORM=offscreen and "
                    "PHOTOSIM_EXIT_AFTER_SHOW=1: main() to the window shown (the app's clock), "
                    "and the whole process including interpreter start and exit")
    return out


# ============================================================================ B8
def bench_b8(ctx: Context) -> dict[str, Any]:
    """GPU throughput (half precision, channels_last) and end-to-end scan on the GPU."""
    empty = {"gpu": None, "embeddings_per_s": None, "images_per_s": None}
    if not ctx.device.startswith("cuda"):
        return {**empty, "note": "not run (CPU only): pass --device cuda on a machine with a GPU"}
    import torch

    if not torch.cuda.is_available():
        return {**empty, "note": "not run: torch sees no CUDA device here"}
    embedder = ctx.model()
    size = embedder.input_size
    batch = 128
    images = list(np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), np.uint8))
    embedder.embed(images)
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        embedder.embed(images)  # returns numpy: synchronised
        best = min(best, time.perf_counter() - started)
    paths = ctx.photos()
    seconds, summary = _scan(ctx.work / "b8.db", paths[0].parent, embedder)
    return {
        "gpu": torch.cuda.get_device_name(),
        "embeddings_per_s": round(batch / best, 1),
        "images_per_s": round(len(paths) / seconds, 2),
        "precision": "float16, channels_last",
        "batch_size": embedder.batch_size,
    }


# ============================================================================ B10
def bench_b10(ctx: Context) -> dict[str, Any]:
    """Re-ranked find similar at 100k: query p50/p99 of plain, alpha-QE and diffusion ranking.

    The product's query path without the catalog: :meth:`VectorIndex.knn` for the first
    results, :func:`photosim.core.index.rerank.expand_query` then a second query (QE), or the
    first :data:`~photosim.core.index.rerank.DIFFUSION_TRUNCATE` results re-ordered by
    :meth:`~photosim.core.index.rerank.Diffusion.order` on the library's kNN graph (built as
    the scan builds it: every vector's 16 neighbours down to cosine 0.5). QE's neighbour
    descriptors come from memory here (the product reads 5 rows from SQLite).
    """
    from photosim.core.index import graph, rerank
    from photosim.core.index.vectors import VectorIndex
    from photosim.embed import DEFAULT_MODEL, MODELS

    n, dim = ctx.scale.b4_small, MODELS[DEFAULT_MODEL].dim
    ctx.log(f"B10: {n} x {dim} descriptors, kNN graph, {ctx.scale.queries} queries per ranking")
    data, queries = synthetic_descriptors(n, dim, ctx.scale.queries, seed=10 + n)
    paths = (ctx.work / "b10.hnsw", ctx.work / "b10.json", ctx.work / "b10.npy")
    index = VectorIndex("bench-b10", dim, paths)
    ids = np.arange(n, dtype=np.int64)
    for start in range(0, n, 50_000):
        index.add(ids[start : start + 50_000], data[start : start + 50_000])
    started = time.perf_counter()
    rows, nbrs, sims = [], [], []
    for start in range(0, n, 10_000):
        labels, found = index.knn(data[start : start + 10_000], graph.GRAPH_K + 1)
        owner = np.repeat(ids[start : start + len(labels)], labels.shape[1])
        keep = (labels.reshape(-1) != owner) & (found.reshape(-1) >= graph.MIN_COSINE)
        rows.append(owner[keep])
        nbrs.append(labels.reshape(-1)[keep])
        sims.append(found.reshape(-1)[keep])
    graph_s = time.perf_counter() - started
    diffusion = rerank.Diffusion(np.concatenate(rows), np.concatenate(nbrs), np.concatenate(sims))
    k = 20

    def plain(q: np.ndarray) -> np.ndarray:
        return index.knn(q[None, :], k + 1)[0][0]

    def qe(q: np.ndarray) -> np.ndarray:
        labels, found = index.knn(q[None, :], rerank.QE_N + 1)
        expanded = rerank.expand_query(q, data[labels[0]], found[0])
        return index.knn(expanded[None, :], k + 1)[0][0]

    def diffuse(q: np.ndarray) -> np.ndarray:
        labels, found = index.knn(q[None, :], rerank.DIFFUSION_TRUNCATE)
        return labels[0][diffusion.order(labels[0], found[0])][: k + 1]

    out: dict[str, Any] = {
        "vectors": n, "dim": dim, "graph_edges": int(diffusion.affinity.nnz),
        "graph_build_s": round(graph_s, 1), "diffusion_build_s": round(diffusion.build_seconds, 2),
        "truncate": rerank.DIFFUSION_TRUNCATE, "reranks": {},
    }
    for name, ranker in (("none", plain), ("qe", qe), ("diffusion", diffuse)):
        ranker(queries[0])  # warm-up (imports, first allocation)
        times = []
        for q in queries:
            t0 = time.perf_counter()
            ranker(q)
            times.append(time.perf_counter() - t0)
        out["reranks"][name] = {"p50_ms": round(percentile_ms(times, 50), 3),
                                "p99_ms": round(percentile_ms(times, 99), 3)}
    return out


def bench_b11(ctx: Context) -> dict[str, Any]:
    """Tags and text search: what the classifier head adds to inference, and a tag search
    over a library of ``b4_small`` photos.

    Inference: one-thread CPU time per image of :meth:`embed` and of :meth:`embed_and_tag`
    (descriptor and top-5 classes from one forward pass), least of 5 interleaved runs each. Search: the
    product's query path (:func:`photosim.core.tags.search_tags` on a catalog), with every
    photo's 5 stored classes drawn uniformly from the 1,000: a broad word ("dog", 118 classes)
    matches ~6 % of the photos. The first query reads the tags into memory (once per library
    state, :func:`photosim.core.tags.search_tags`): its time is reported apart.
    """
    from photosim.core.catalog import Catalog
    from photosim.core.tags import search_tags

    embedder = ctx.model()
    rng = np.random.default_rng(11)
    size = embedder.input_size
    images = list(rng.integers(0, 256, (2 * embedder.batch_size, size, size, 3), np.uint8))
    threads = getattr(embedder, "threads", None)
    try:
        if threads is not None:
            embedder.threads = 1
        calls = {"embed": lambda: embedder.embed(images),
                 "embed_and_tag": lambda: embedder.embed_and_tag(images, 5)}
        runs: dict[str, list[float]] = {name: [] for name in calls}
        for call in calls.values():
            call()  # warm-up
        for _ in range(5):  # interleaved, so load elsewhere hits both alike
            for name, call in calls.items():
                started = time.process_time()
                call()
                runs[name].append((time.process_time() - started) / len(images))
        costs = {name: min(times) for name, times in runs.items()}
    finally:
        if threads is not None:
            embedder.threads = threads
    n = ctx.scale.b4_small
    ctx.log(f"B11: tags of {n} photos, {len(B11_WORDS)} words")
    with Catalog(ctx.work / "b11.db") as catalog:
        synthetic_library(catalog, n, seed=11)
        hashes = [f"{i:032x}" for i in range(n)]
        for start in range(0, n, 10_000):
            chunk = hashes[start : start + 10_000]
            labels = np.stack([rng.choice(1000, 5, replace=False) for _ in chunk])
            probs = -np.sort(-rng.dirichlet(np.full(6, 0.5), len(chunk))[:, :5], axis=1)
            with catalog.transaction():
                catalog.put_tags("bench", chunk, labels, probs)
        t0 = time.perf_counter()
        search_tags(catalog, "dogs")  # the first query: the vocabulary and the tag table
        first_s = time.perf_counter() - t0
        times = []
        rounds = max(1, ctx.scale.queries // (10 * len(B11_WORDS)))
        for _ in range(rounds):
            for word in B11_WORDS:
                t0 = time.perf_counter()
                search_tags(catalog, word, k=20)
                times.append(time.perf_counter() - t0)
    plain, tagged = costs["embed"], costs["embed_and_tag"]
    return {
        "embed_cpu_ms": round(plain * 1e3, 2),
        "embed_and_tag_cpu_ms": round(tagged * 1e3, 2),
        "tags_share": round((tagged - plain) / plain, 4),
        "photos": n,
        "words": list(B11_WORDS),
        "queries": len(times),
        "first_query_s": round(first_s, 2),
        "search_p50_ms": round(percentile_ms(times, 50), 2),
        "search_p99_ms": round(percentile_ms(times, 99), 2),
    }


# ============================================================================ B12
def bench_b12(ctx: Context) -> dict[str, Any]:
    """The compressed index (IVF-PQ, 32-byte codes) at archive scale, as the product queries
    it: recall@10 of the results returned (re-ranked) against exact search, query p50/p99 one
    query at a time, and the anonymous resident memory of a fresh process that loaded the
    saved index and answered the queries (the float16 store's pages are file cache). The full
    table against code size and ``nprobe`` is ``python -m benchmarks.archive``."""
    from benchmarks import archive
    from photosim.core.index.compressed import CODE_BYTES, NPROBE, RERANK

    n = ctx.scale.b12_vectors
    work = ctx.work / "b12"
    work.mkdir(exist_ok=True)
    ctx.log(f"B12: compressed index of {n:,} x {archive.DIM}-d synthetic descriptors")
    row = archive.build(n, CODE_BYTES, work, log=ctx.log)
    model = Path(row["files"][0]).stem.split(".", 1)[1]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.archive", "--query", str(work),
                           model, "--nprobe", str(NPROBE), "--rerank", str(RERANK)],
                          capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    q = measured["nprobe"][0]
    return {
        "vectors": n, "dim": archive.DIM, "code_bytes": CODE_BYTES, "nprobe": q["nprobe"],
        "rerank": q["rerank"], "recall_at_10": q["recall_at_10_reranked"],
        "p50_ms": q["p50_ms"], "p99_ms": q["p99_ms"],
        "rss_anon_mb": measured["after_queries"].get("RssAnon"),
        "index_ram_mb": row["index_ram_mb"], "store_gb": row["store_gb"],
        "build_s": row["build_s"], "shape": row["shape"],
    }


RUNNERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "B1": bench_b1, "B2": bench_b2, "B3": bench_b3, "B4": bench_b4,
    "B5": bench_b5, "B6": bench_b6, "B7": bench_b7, "B8": bench_b8, "B9": versus.bench_b9,
    "B10": bench_b10, "B11": bench_b11, "B12": bench_b12,
}


# ============================================================================ report
def _fmt(value: Any, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def _vs(value: float | None, goal: float, higher_is_better: bool) -> str:
    """"yes", or "no" with how far the figure is from its goal."""
    if value is None:
        return "n/a"
    if (value >= goal) if higher_is_better else (value <= goal):
        return "yes"
    if higher_is_better:
        return f"**no**: {(1 - value / goal) * 100:.0f} % short"
    return f"**no**: {value / goal:.2f}x the goal"


def summary_rows(b: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(benchmark, figure, goal, met)`` rows of the markdown table."""
    rows: list[tuple[str, str, str, str]] = []
    if "B1" in b and "error" not in b["B1"]:
        r = b["B1"]
        st = ", ".join(f"{k} {v:.1f}" for k, v in r["stage_cpu_ms"].items())
        rows.append(("B1 scan, default model, CPU",
                     f"{r['images_per_s']:.2f} img/s ({r['files']} x {r['mean_file_mb']} MB); "
                     f"bound {r['bound_images_per_s']:.2f} img/s = {r['cores']} cores / "
                     f"{sum(r['stage_cpu_ms'].values()):.1f} CPU-ms per image ({st}); "
                     f"efficiency **{r['pipeline_efficiency']:.2f}** (other processes kept "
                     f"{_fmt(r.get('other_load_cores'))} cores busy meanwhile; against the cores "
                     f"left: {_fmt(r.get('pipeline_efficiency_free_cores'))})",
                     f">= {GOALS['B1']}", _vs(r["pipeline_efficiency"], GOALS["B1"], True)))
    if "B2" in b and "error" not in b["B2"]:
        r = b["B2"]
        rows.append(("B2 hash-only scan vs bare decode",
                     f"{r['images_per_s']:.2f} img/s vs {r['bare_decode_images_per_s']:.2f}: "
                     f"**{r['ratio_to_bare_decode']:.3f}**", f">= {GOALS['B2_bare']}",
                     _vs(r["ratio_to_bare_decode"], GOALS["B2_bare"], True)))
        ratio = r["ratio_to_findimagedupes"]
        rows.append(("B2 hash-only scan vs findimagedupes",
                     f"{_fmt(r['findimagedupes_images_per_s'])} img/s: **{_fmt(ratio)}x**",
                     f">= {GOALS['B2_fid']}x",
                     _vs(ratio, GOALS["B2_fid"], True)))
    if "B3" in b and "error" not in b["B3"]:
        r = b["B3"]
        rows.append(("B3 rescan, unchanged tree",
                     f"{r['files']} files: {r['rescan_s']:.3f} s vs os.walk+stat "
                     f"{r['walk_stat_s']:.3f} s: **{r['ratio_to_walk_stat']:.2f}**",
                     f"<= {GOALS['B3']}", _vs(r["ratio_to_walk_stat"], GOALS["B3"], False)))
    if "B4" in b and "error" not in b["B4"]:
        for key in ("small", "large"):
            r = b["B4"][key]
            met = [_vs(r["p99_ms"], GOALS["B4_p99_ms"], False),
                   _vs(r["recall_at_10"], GOALS["B4_recall"], True)]
            verdict = "yes" if met == ["yes", "yes"] else "; ".join(
                f"{what} {m}" for what, m in zip(("p99", "recall"), met) if m != "yes")
            best = next((c for c in r["curve"] if c["recall_at_10"] >= GOALS["B4_recall"]), None)
            extra = ("" if best is None else
                     f"; curve: ef={best['ef']} reaches recall {best['recall_at_10']:.3f} at "
                     f"p99 {best['p99_ms']:.3f} ms")
            rows.append((f"B4 find similar, {r['vectors']:,} x {r['dim']}-d",
                         f"p50 {r['p50_ms']:.3f} ms, p99 **{r['p99_ms']:.3f} ms**, recall@10 "
                         f"**{r['recall_at_10']:.3f}** (ef {r['ef_search']}){extra}",
                         f"p99 <= {GOALS['B4_p99_ms']} ms, recall >= {GOALS['B4_recall']}"
                         + ("" if key == "large" else " (goal stated at 1M)"), verdict))
    if "B5" in b and "error" not in b["B5"]:
        r = b["B5"]
        for key in ("small", "large"):
            g = r[key]
            rows.append((f"B5 grouping from the kNN graph, {g['photos']:,} photos",
                         f"**{g['group_s']:.2f} s** (graph build in the scan: "
                         f"{g['graph_us_per_photo_in_scan']:.0f} us/photo)",
                         f"<= {GOALS['B5_s']} s" if key == "large" else "-",
                         _vs(g["group_s"], GOALS["B5_s"], False) if key == "large" else "-"))
        rows.append(("B5 re-group after a threshold change",
                     f"**{r['regroup_ms']:.0f} ms** at {r['small']['photos']:,}",
                     f"<= {GOALS['B5_regroup_ms']:.0f} ms",
                     _vs(r["regroup_ms"], GOALS["B5_regroup_ms"], False)))
        p = r.get("product")
        if p:
            rows.append((f"B5 photosim's find_duplicates from the stored graph, "
                         f"{p['photos']:,} photos ({p['near_copies']:,} near-copies)",
                         f"group **{p['group_s']:.2f} s**, a fresh grouping after a threshold "
                         f"change {p['regroup_s']:.2f} s, re-group in a grouping session "
                         f"**{p.get('session_regroup_ms', float('nan')):.0f} ms** (scan side: "
                         f"index {p['index_build_us_per_photo']:.0f} + graph "
                         f"{p['graph_us_per_photo']:.0f} us/photo)",
                         f"re-group <= {GOALS['B5_regroup_ms']:.0f} ms",
                         _vs(p.get("session_regroup_ms", p["regroup_s"] * 1e3),
                             GOALS["B5_regroup_ms"], False)))
    if "B6" in b and "error" not in b["B6"]:
        r = b["B6"]
        rows.append(("B6 peak memory, scan",
                     f"**{_fmt(r.get('scan_10k_with_model_peak_mb'), '.0f')} MB** scanning "
                     f"{_fmt(r.get('scan_10k_with_model_photos'), ',')} photos with the model "
                     f"({_fmt(r['scan_with_model_peak_mb'], '.0f')} MB for "
                     f"{_fmt(r['scan_with_model_photos'], 'd')} 12 MP photos; hash-only "
                     f"{r['scan_peak_mb']:.0f} MB for {r['scan_photos']:,}), process + decode "
                     "workers", "-", "-"))
        rows.append((f"B6 holding the index, {r['index_vectors']:,} x {r['index_dim']}-d",
                     f"**{r['index_mb']:.0f} MB**", f"< {GOALS['B6_mb']:.0f} MB",
                     _vs(r["index_mb"], GOALS["B6_mb"], False)))
    if "B7" in b and "error" not in b["B7"]:
        r = b["B7"]
        if r.get("gui_window_s") is not None:
            rows.append(("B7 launch to first window",
                         f"**{r['gui_window_s']:.3f} s** from main() to the window shown, "
                         f"{r['gui_process_s']:.3f} s for the whole process (torch imported: "
                         f"{r.get('torch_imported')}); `photosim --version` "
                         f"{r['version_s']:.3f} s, bare python {r['python_s']:.3f} s",
                         f"<= {GOALS['B7_s']} s", _vs(r["gui_window_s"], GOALS["B7_s"], False)))
        else:
            rows.append(("B7 launch to first window",
                         f"window: n/a ({r.get('note')}); `photosim --version` "
                         f"{r['version_s']:.3f} s", f"<= {GOALS['B7_s']} s", "n/a"))
    if "B8" in b and "error" not in b["B8"]:
        r = b["B8"]
        rows.append(("B8 GPU", r["note"] if r["gpu"] is None else
                     f"{r['gpu']}: {r['embeddings_per_s']} embeddings/s fp16 channels_last, "
                     f"{r['images_per_s']} img/s end to end", "record", "-"))
    if "B9" in b and "error" not in b["B9"]:
        rows += versus.summary_rows(b["B9"])
    if "B10" in b and "error" not in b["B10"]:
        r = b["B10"]
        rr = r["reranks"]
        worst = max(v["p99_ms"] for v in rr.values())
        rows.append((f"B10 re-ranked find similar, {r['vectors']:,} x {r['dim']}-d",
                     "; ".join(f"{name}: p50 {v['p50_ms']:.2f} ms, p99 **{v['p99_ms']:.2f} ms**"
                               for name, v in rr.items())
                     + f" (diffusion on the first {r['truncate']} results of a graph of "
                     f"{r['graph_edges']:,} edges, built in {r['diffusion_build_s']:.2f} s)",
                     f"p99 <= {GOALS['B10_p99_ms']:.0f} ms",
                     _vs(worst, GOALS["B10_p99_ms"], False)))
    if "B11" in b and "error" not in b["B11"]:
        r = b["B11"]
        rows.append(("B11 tags in the scan",
                     f"{r['embed_cpu_ms']:.1f} -> {r['embed_and_tag_cpu_ms']:.1f} CPU-ms per "
                     f"image with the top-5 classes: **{r['tags_share'] * 100:+.1f} %**",
                     f"<= {GOALS['B11_share'] * 100:.0f} %",
                     _vs(r["tags_share"], GOALS["B11_share"], False)))
        rows.append((f"B11 text search, {r['photos']:,} photos",
                     f"{len(r['words'])} words (1 to 118 classes): p50 {r['search_p50_ms']:.1f} "
                     f"ms, p99 **{r['search_p99_ms']:.1f} ms** (the first query, which reads the tags "
                     f"into memory: {r.get('first_query_s', 0):.2f} s)",
                     f"p99 <= {GOALS['B11_p99_ms']:.0f} ms",
                     _vs(r["search_p99_ms"], GOALS["B11_p99_ms"], False)))
    if "B12" in b and "error" not in b["B12"]:
        r = b["B12"]
        rss = r["rss_anon_mb"]
        rows.append((f"B12 compressed index, {r['vectors']:,} photos",
                     f"{r['code_bytes']} B/photo, nprobe {r['nprobe']}, {r['rerank']} re-ranked: "
                     f"recall@10 **{r['recall_at_10']:.3f}**, p50 {r['p50_ms']:.2f} ms, p99 "
                     f"**{r['p99_ms']:.2f} ms**, {_fmt(rss, '.0f')} MB anonymous RAM (built in "
                     f"{r['build_s']:.0f} s; goal stated for 10M)",
                     f"recall >= {GOALS['B12_recall']}, p99 <= {GOALS['B12_p99_ms']:.0f} ms, "
                     f"<= {GOALS['B12_mb'] / 1024:.0f} GB",
                     "yes" if (r["recall_at_10"] >= GOALS["B12_recall"]
                               and r["p99_ms"] <= GOALS["B12_p99_ms"]
                               and rss is not None and rss <= GOALS["B12_mb"])
                     else "**no**"))
    for key, r in b.items():
        if "error" in r:
            rows.append((key, f"failed: {r['error']}", "-", "**no**"))
    return rows


def write_markdown(report: dict[str, Any], path: Path) -> None:
    """Write the RESULTS.md table of ``report``."""
    m = report["machine"]
    lines = [
        "# photosim benchmark results",
        "",
        f"Generated by `{report['command']}` on {report['date']} "
        f"({'quick mode: small data, figures not meaningful' if report['quick'] else 'full mode'}).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}, Python "
        f"{m['python']}; load average {m.get('load_average_start')} at start, "
        f"{m.get('load_average_end')} at the end (the cores are shared: ratios, not absolute "
        "figures, are compared with the goals).",
        "",
        "| benchmark | figure | goal | met? |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in summary_rows(report["benchmarks"])]
    dates = {name: r.get("run_at") for name, r in report["benchmarks"].items()}
    if report.get("kept_from_earlier_report"):
        lines += ["", "Run at: " + "; ".join(f"{n} {d}" for n, d in dates.items()) + "."]
    lines += ["", "Every figure, the stage costs and the B4 recall/latency curves are in "
              "`bench.json` next to this file.", ""]
    # Hand-written analysis below the marker survives re-runs.
    notes = ""
    if path.is_file():
        old = path.read_text()
        if NOTES_MARKER in old:
            notes = old[old.index(NOTES_MARKER):]
    path.write_text("\n".join(lines) + ("\n" + notes if notes else ""))


def _previous_results(path: Path, quick: bool) -> dict[str, Any]:
    """The benchmarks of an earlier report of the same mode, each stamped with its run time."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if old.get("quick") != quick:
        return {}
    return {name: {"run_at": old.get("date"), **result}
            for name, result in old.get("benchmarks", {}).items()}


def run(
    out: Path,
    *,
    quick: bool = False,
    only: Sequence[str] = BENCHMARKS,
    device: str = "cpu",
    work: Path | None = None,
    command: str = "python -m benchmarks",
    log: Callable[[str], None] = lambda s: None,
    archive_vectors: int | None = None,
) -> dict[str, Any]:
    """Run the benchmarks; write ``bench.json`` and ``RESULTS.md`` into ``out``.

    Args:
        out: Output folder (created).
        quick: Small data sets (CI smoke test).
        only: Benchmarks to run, e.g. ``("B1", "B4")``.
        device: Inference device of B1/B8 (``cpu`` or ``cuda``).
        work: Where the data sets are generated (a temporary folder, removed, when None).
        command: The command line recorded in the report.
        log: Receives one line per step.
        archive_vectors: B12's index size (default: 1M, or 5,000 with ``quick``).

    Returns:
        The report (as written to ``bench.json``).

    Raises:
        BenchError: An unknown benchmark name.
    """
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        raise BenchError(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(BENCHMARKS)}")
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "quick": quick,
        "device": device,
        "machine": machine(),
        "benchmarks": {},
    }
    # A partial run keeps the other benchmarks of the last full-mode report in ``out`` (each
    # result says when it ran), so RESULTS.md stays one table.
    previous = _previous_results(out / "bench.json", quick) if set(only) != set(BENCHMARKS) else {}
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="photosim-bench-", dir=work) as tmp:
        scale = QUICK if quick else FULL
        if archive_vectors:
            scale = dataclasses.replace(scale, b12_vectors=archive_vectors)
        ctx = Context(scale, Path(tmp), device, log)
        for name in BENCHMARKS:
            if name not in only:
                continue
            log(f"{name}: running")
            started = time.perf_counter()
            try:
                result = RUNNERS[name](ctx)
            except Exception as exc:  # one failed benchmark must not lose the others
                logger.exception("%s failed", name)
                result = {**dict.fromkeys(REPORT_KEYS[name]), "error": f"{type(exc).__name__}: {exc}"}
            result["seconds"] = round(time.perf_counter() - started, 1)
            result["run_at"] = time.strftime("%Y-%m-%d %H:%M %Z")
            report["benchmarks"][name] = result
            log(f"{name}: {json.dumps(result)[:400]}")
            (out / "bench.json").write_text(json.dumps(report, indent=2))
    kept = sorted(set(previous) - set(report["benchmarks"]))
    report["benchmarks"] = {
        name: report["benchmarks"].get(name) or previous[name]
        for name in BENCHMARKS
        if name in report["benchmarks"] or name in previous
    }
    if kept:
        report["kept_from_earlier_report"] = kept
    if hasattr(os, "getloadavg"):
        report["machine"]["load_average_end"] = os.getloadavg()
    if "torch" in sys.modules:
        report["machine"]["torch"] = sys.modules["torch"].__version__
        report["machine"]["torch_threads"] = sys.modules["torch"].get_num_threads()
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    write_markdown(report, out / "RESULTS.md")
    return report
