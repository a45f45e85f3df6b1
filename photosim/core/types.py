"""Typed values shared by core, embed, cli and gui.

This module imports neither Qt nor torch, so every layer may depend on it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


class Error(Exception):
    """Base class of every error photosim raises on purpose."""


@runtime_checkable
class Embedder(Protocol):
    """Computes global image descriptors (embeddings) in batches.

    Implementations live in :mod:`photosim.embed` (torchvision backbones) and in tests (small
    deterministic embedders). Core receives one by injection and never imports torch.

    Attributes:
        model_id: Stable identifier stored with every descriptor, e.g. ``"efficientnet_b1-avg"``.
            Descriptors of different ``model_id`` are never compared.
        dim: Descriptor dimension D.
        input_size: Side S in pixels of the square RGB input the embedder expects; decoding
            resizes each photo to ``(S, S, 3)`` in the worker processes so inference only does
            tensor work.
        device: Where inference runs, e.g. ``"cpu"`` or ``"cuda:0"``.
    """

    model_id: str
    dim: int
    input_size: int
    device: str

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embed a batch of images.

        Args:
            images: N arrays of shape ``(S, S, 3)``, dtype uint8, RGB, ``S == input_size``.
                N may be 0: the scan calls ``embed([])`` once to make a lazy embedder load
                (and fail early) before any decoding is planned for it.

        Returns:
            ``(N, D)`` float32 array, each row L2-normalised (unit norm).

        Raises:
            photosim.core.types.Error: Descriptors cannot be made here (e.g. missing weights);
                the scan then goes on hash-only and reports the message.
        """
        ...


@runtime_checkable
class TaggingEmbedder(Embedder, Protocol):
    """An :class:`Embedder` whose backbone also has a trained ImageNet-1k classifier head.

    The scan stores each photo's most probable classes as tags (:mod:`photosim.core.tags`)
    from the same forward pass that computes its descriptor.

    Attributes:
        tag_model: Name the tags are stored under (the backbone's registry name, e.g.
            ``"efficientnet_lite0"``); "" when this embedder turns out to have no head.
    """

    tag_model: str

    def embed_and_tag(
        self, images: Sequence[np.ndarray], k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Descriptors and the top ``k`` ImageNet-1k classes of a batch of images.

        Args:
            images: As :meth:`Embedder.embed`.
            k: Classes kept per image, 1 <= k <= 1000.

        Returns:
            ``(descriptors (N, D) float32 L2-normalised, labels (N, k) int64 class indices,
            probabilities (N, k) float32 softmax probabilities)``, most probable first.

        Raises:
            photosim.core.types.Error: As :meth:`Embedder.embed`.
            ValueError: ``k`` out of range, or no classifier head.
        """
        ...


@runtime_checkable
class TextImageEmbedder(Protocol):
    """A joint text-image embedding model (CLIP): images and texts in one space.

    Implemented by :class:`photosim.embed.clip.ClipEmbedder`; core receives one by injection.

    Attributes:
        model_id: Identifier stored with every image embedding (e.g.
            ``"clip:ViT-B-32/laion2b_s34b_b79k"``).
        dim: Embedding dimension D.
    """

    model_id: str
    dim: int

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, D)`` float32 L2-normalised embeddings of N uint8 RGB images of any size."""
        ...

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """``(N, D)`` float32 L2-normalised embeddings of N texts."""
        ...


@dataclass(frozen=True)
class DecodeRequest:
    """What a decode worker needs for one file.

    Attributes:
        path: File path (str; may hold surrogate escapes for non-UTF-8 names).
        model_size: Side in pixels of the square model input to produce, or 0 for none.
        thumb_size: Longest side in pixels of the stored thumbnail.
        sketch: Also compute the detail sketch (keypoint codes for near-duplicate candidates,
            see :func:`photosim.core.dedup.verify.detail_sketch`).
    """

    path: str
    model_size: int = 0
    thumb_size: int = 256
    sketch: bool = False


@dataclass
class DecodedImage:
    """Everything photosim derives from one decode of one file.

    Attributes:
        content_hash: xxh3-128 of the file bytes, 32 lowercase hex chars.
        size: File size in bytes as read.
        width: Pixel width after EXIF orientation is applied.
        height: Pixel height after EXIF orientation is applied.
        format: Pillow format name from the content (``"JPEG"``, ``"PNG"``, ``"HEIF"``...).
        taken_at: EXIF DateTimeOriginal as ISO-8601 ``"YYYY-MM-DDTHH:MM:SS"``, or None.
        camera: EXIF ``Make Model`` (trimmed), or None.
        phash: 64-bit perceptual hash (DCT, imagehash.phash) as a signed int64.
        dhash: 64-bit difference hash (imagehash.dhash) as a signed int64.
        thumbnail: JPEG bytes, longest side <= thumb_size pixels, upright.
        variants: ``(phash, dhash)`` of the 7 other orientations (see
            :func:`photosim.core.scan.hashing.orientation_hashes`), signed int64.
        model_input: ``(S, S, 3)`` uint8 RGB array for the embedder, or None.
        grey: True when the picture carries no colour (a greyscale file, or colour channels
            equal within compression noise; see :func:`photosim.core.scan.imageio.is_grey`).
        capture: The camera's record of the exposure (date taken to the sub-second,
            exposure time, f-number, ISO, bias), or None without one.
        sketch: The detail sketch, ``(N,)`` uint64 keypoint codes as little-endian bytes
            (8 N bytes; empty when not asked for or when the picture has no keypoints).
    """

    content_hash: str
    size: int
    width: int
    height: int
    format: str
    taken_at: str | None
    camera: str | None
    phash: int
    dhash: int
    thumbnail: bytes
    model_input: np.ndarray | None = None
    variants: tuple[tuple[int, int], ...] = ()
    grey: bool = False
    capture: str | None = None
    sketch: bytes = b""


class ScanStage(str, enum.Enum):
    """Phase of a scan reported in :class:`Progress`."""

    WALKING = "walking"
    PROCESSING = "processing"
    INDEXING = "indexing"
    DONE = "done"


@dataclass(frozen=True)
class Progress:
    """One progress report yielded by a long-running core generator.

    Attributes:
        stage: Current phase.
        done: Files finished in this phase.
        total: Files to do in this phase (0 if unknown yet).
        message: Short human-readable status line.
        errors: Files that failed so far.
    """

    stage: ScanStage
    done: int
    total: int
    message: str = ""
    errors: int = 0


@dataclass
class ScanSummary:
    """Counts of one scan, returned when the scan generator finishes.

    Attributes:
        seen: Files found by the walk (candidates by name or content sniffing).
        new: Paths not in the catalog before.
        changed: Paths whose size or mtime_ns differed.
        unchanged: Paths skipped on stat alone.
        removed: Catalog paths that vanished from disk.
        errors: Files recorded with an error reason.
        decoded: Files actually decoded (new content).
        reused: Files whose content was already known, or decoded once in this scan for an
            identical file (metadata, thumbnail and descriptor reused, not recomputed).
        embedded: Descriptors computed.
        seconds: Wall-clock duration.
        cancelled: True if the scan stopped early on request.
        embed_note: Why descriptors were not computed, if they were not.
    """

    seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    errors: int = 0
    decoded: int = 0
    reused: int = 0
    embedded: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    embed_note: str | None = None
    error_samples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        """New and changed files processed per second of wall-clock time."""
        work = self.new + self.changed
        return work / self.seconds if self.seconds > 0 else 0.0
