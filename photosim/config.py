"""Settings and on-disk locations.

One frozen dataclass holds every tunable with its default; the CLI overrides fields from flags,
the GUI (later) persists them. Core code receives a :class:`Settings`, never reads the
environment itself. Paths come from platformdirs so they follow each OS's conventions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP_NAME = "photosim"
CATALOG_ENV = "PHOTOSIM_CATALOG"
CATALOG_FILENAME = "catalog.db"


def data_dir() -> Path:
    """Per-user data folder (catalog, vector index), e.g. ``~/.local/share/photosim``."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    """Per-user log folder, e.g. ``~/.local/state/photosim/log``."""
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def default_catalog_path() -> Path:
    """The catalog path: ``$PHOTOSIM_CATALOG`` if set, else ``data_dir()/catalog.db``."""
    env = os.environ.get(CATALOG_ENV)
    if env:
        return Path(env).expanduser()
    return data_dir() / CATALOG_FILENAME


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds of the three tiers of sameness (see DESIGN.md).

    The cosine thresholds are calibrated for the default backbone (EfficientNet-Lite0, average
    pooling) on the cosine distributions of duplicate, same-scene and different pairs of
    ``../shared/data/dev`` and ``../shared/data/calib`` (302, 949 and 15,607 pairs; the
    README's "Calibrated thresholds" has the table): ``similar_cosine`` is the lowest 0.025 step
    that no pair of different scenes reaches (pair precision 1.000; 0.99 already at 0.775);
    ``near_cosine`` is the 99th percentile of same-scene pairs that are not copies, rounded up
    (0.942 -> 0.95), so another shot of a scene is not presumed a copy by its descriptor;
    ``loose_cosine`` only proposes candidates that verification must confirm: three in four
    duplicate pairs reach it.

    Attributes:
        near_phash: Max pHash Hamming distance (of 64 bits) for a hash-only near-duplicate.
        near_dhash: Max dHash Hamming distance (of 64 bits) for a hash-only near-duplicate.
        near_hash_sum: Max pHash + dHash distance; both hashes must agree, which keeps
            different photos of one scene apart.
        near_aspect: Max relative difference of aspect ratios (width / height) of a near pair.
        near_cosine: Min descriptor cosine similarity for a descriptor-backed near-duplicate.
        near_cosine_phash: Max pHash distance that confirms a descriptor near-duplicate.
        similar_cosine: Min descriptor cosine similarity for the "similar" tier.
        verify: Check candidates with local features (keypoints, one geometric transform,
            nothing moved; see :mod:`photosim.core.dedup.verify`). A pair within the hash limits
            above is then a duplicate unless verification shows another shot; a looser
            candidate is a duplicate only if verification confirms it. False: hashes and
            descriptors alone decide, as before verification existed.
        keypoint_candidates: Also find candidates by keypoint sketches of the thumbnails
            (crops, rotations with black corners, pasted logos: copies whose hashes differ).
            Sketches cost about 1.5 ms per new photo and are cached beside the catalog.
        loose_hash_sum: Max pHash + dHash distance (best orientation) of a loose candidate,
            a duplicate only once verified.
        loose_cosine: Min descriptor cosine similarity of a loose candidate.
        min_inliers: Min keypoint matches consistent with one transform that verify a copy.
        max_moved: Max fraction of textured cells found displaced after alignment, in
            clusters of 3 or more neighbouring cells (an object that moved). 0: any motion
            makes the pair another shot of the scene, not a copy.
        max_changed: Max fraction of the shared region whose content differs (overlays,
            pasted logos and text are allowed up to this).
    """

    near_phash: int = 14
    near_dhash: int = 16
    near_hash_sum: int = 22
    near_aspect: float = 0.10
    near_cosine: float = 0.95
    near_cosine_phash: int = 22
    similar_cosine: float = 0.80
    verify: bool = True
    keypoint_candidates: bool = True
    loose_hash_sum: int = 36
    loose_cosine: float = 0.85
    min_inliers: int = 15
    max_moved: float = 0.0
    max_changed: float = 0.25


@dataclass(frozen=True)
class Settings:
    """Every user-tunable setting, with defaults.

    Attributes:
        model: Registry name of the backbone (see :func:`photosim.embed.available_models`), or
            ``"none"`` for hash-only scanning.
        pooling: Global pooling of the feature map: ``"avg"``, ``"gem"`` or ``"rmac"``.
        device: ``None`` for automatic (CUDA, then MPS, then CPU) or an explicit device.
        weights: Optional path of a local state_dict file for the backbone.
        precision: CPU inference precision: ``"auto"`` (bfloat16 where the CPU has it natively
            and it reproduces float32 descriptors, else float32), ``"float32"``, ``"bfloat16"``.
        thumb_size: Longest side of stored thumbnails, pixels.
        workers: Decode worker processes; 0 means one per CPU core.
        batch_size: Files per catalog transaction and per inference batch.
        exclude: Glob patterns (matched against the file or folder name and the full path)
            that the walk skips.
        thresholds: Tier thresholds.
        knn: Neighbours fetched per photo from the vector index when grouping.
        rerank: How "find similar" re-ranks the first results: ``"diffusion"`` (on the
            library's kNN graph, the default: it wins on both evaluation sets, see
            ``benchmarks/RETRIEVAL.md``), ``"qe"`` (alpha-query expansion) or ``"none"``
            (cosine similarity only).
        clip: Optional CLIP model for text search, ``"ARCH/TAG"`` of open_clip (e.g.
            ``"ViT-B-32/laion2b_s34b_b79k"``); "" for none (the default: tags only). A library
            that has CLIP embeddings keeps its own model.
        clip_weights: Optional path of a local state_dict file for the CLIP model.
    """

    model: str = "efficientnet_lite0"
    pooling: str = "avg"
    device: str | None = None
    weights: str | None = None
    precision: str = "auto"
    thumb_size: int = 256
    workers: int = 0
    batch_size: int = 32
    exclude: tuple[str, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    knn: int = 16
    rerank: str = "diffusion"
    clip: str = ""
    clip_weights: str | None = None

    @property
    def model_id(self) -> str | None:
        """Catalog key of descriptors made with these settings, or None when hash-only."""
        if self.model == "none":
            return None
        return f"{self.model}-{self.pooling}"

    def worker_count(self) -> int:
        """Number of decode worker processes to start (at least 1)."""
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)
