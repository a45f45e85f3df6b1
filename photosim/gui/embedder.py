"""The shared embedder, loaded lazily in a worker thread (importing torch takes seconds).

Hash-only mode is a normal state, not an error: when the model is ``none`` or its weights are
missing, :func:`get_embedder` returns ``(None, reason)`` and the caller shows the reason.
"""

from __future__ import annotations

import logging
import threading

from photosim.config import Settings
from photosim.library import Embedder

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict[tuple, tuple[Embedder | None, str | None]] = {}
_lazy: dict[tuple, Embedder] = {}

HOW_TO_FIX = (
    "Exact and near-duplicates still work from perceptual hashes. To enable descriptor search, "
    "pick the model efficientnet_lite0 in Settings (its weights are installed with photosim), "
    "or connect to the internet once so the chosen model's weights can download; or pick "
    "model \"none\" to silence this note."
)


def get_embedder(settings: Settings) -> tuple[Embedder | None, str | None]:
    """The embedder of ``settings`` (loaded once), or ``(None, why hash-only)``.

    Call from a worker thread only: this may import torch.
    """
    if settings.model == "none":
        return None, None
    key = (settings.model, settings.pooling, settings.device, settings.weights,
           settings.precision)
    with _lock:
        if key not in _cache:
            from photosim import embed  # lazy: keeps torch out of start-up

            try:
                emb = embed.load_embedder(
                    settings.model, pooling=settings.pooling, device=settings.device,
                    weights=settings.weights, precision=settings.precision, progress=False,
                )
                _cache[key] = (emb, None)
            except embed.WeightsUnavailableError as exc:
                logger.warning("hash-only mode: %s", exc)
                _cache[key] = (None, f"Hash-only mode: {exc}. {HOW_TO_FIX}")
            except embed.EmbedError as exc:
                logger.warning("hash-only mode: %s", exc)
                _cache[key] = (None, f"Hash-only mode: the model cannot be used ({exc}). "
                                     f"{HOW_TO_FIX}")
        return _cache[key]


def scan_embedder(settings: Settings) -> Embedder | None:
    """A lazy embedder for scans (shared, one per model): torch and the weights load only when
    a file needs a descriptor, so the quiet rescan at start-up of an unchanged library never
    loads them. If they cannot load, the scan goes on hash-only and its summary's
    ``embed_note`` says why (see :func:`hash_only_notice`). None for model ``"none"``."""
    if settings.model == "none":
        return None
    key = (settings.model, settings.pooling, settings.device, settings.weights,
           settings.precision)
    with _lock:
        if key not in _lazy:
            from photosim import embed  # the package itself does not import torch

            try:
                _lazy[key] = embed.LazyEmbedder(
                    settings.model, pooling=settings.pooling, device=settings.device,
                    weights=settings.weights, precision=settings.precision, progress=False,
                )
            except embed.EmbedError as exc:
                logger.warning("hash-only mode: %s", exc)
                return None
        return _lazy[key]


def hash_only_notice(reason: str) -> str:
    """The banner text for a scan that could not compute descriptors."""
    return f"Hash-only mode: {reason}. {HOW_TO_FIX}"
