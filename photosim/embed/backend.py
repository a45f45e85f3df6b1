"""The torch side of :mod:`photosim.embed`: device, weights, backbone and batched inference.

The one module of photosim that imports torch at module level (ruff TID253 allows it here);
:func:`photosim.embed.load_embedder` imports it on first use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from photosim.embed import EmbedError, WeightsUnavailableError, weights_cache_path
from photosim.embed.models import ModelSpec, Trunk
from photosim.embed.pooling import POOLINGS
from photosim.embed.preprocess import to_batch

logger = logging.getLogger(__name__)

# Seconds a download may stall (per connect or read, not in total) before we give up.
DOWNLOAD_TIMEOUT_S = 15.0
GPU_BATCH_SIZE = 32
CPU_BATCH_SIZE = 16
_RESNET_TRUNK = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class TorchEmbedder:
    """A torchvision backbone cut before its classifier, plus a global pooling.

    Implements :class:`photosim.core.types.Embedder`. Not thread-safe: one thread owns it.

    Attributes:
        model_id: ``f"{name}-{pooling}"``, e.g. ``"efficientnet_b1-avg"``.
        dim: Descriptor dimension D.
        input_size: Side S in pixels of the expected square input.
        device: Where inference runs, e.g. ``"cpu"``, ``"cuda:0"``, ``"mps"``.
        batch_size: Images per forward pass.
    """

    def __init__(
        self,
        spec: ModelSpec,
        trunk: torch.nn.Module,
        pooling: str,
        device: torch.device,
        batch_size: int | None,
    ) -> None:
        self.model_id = f"{spec.name}-{pooling}"
        self.dim = spec.dim
        self.input_size = spec.input_size
        self.device = str(device)
        on_gpu = device.type != "cpu"
        self.batch_size = batch_size or (GPU_BATCH_SIZE if on_gpu else CPU_BATCH_SIZE)
        # Half precision on CUDA: tensor cores and half the memory traffic. CPU and MPS stay in
        # float32, where half-precision speed depends on the hardware.
        self._dtype = torch.float16 if device.type == "cuda" else torch.float32
        # channels_last is the fast layout of cuDNN and oneDNN convolutions (1.15x to 1.6x on
        # an AVX-512 CPU for our three models); MPS stays contiguous, its channels_last kernels have had silent correctness bugs
        # (https://github.com/pytorch/pytorch/issues/180984).
        self._memory_format = (
            torch.contiguous_format if device.type == "mps" else torch.channels_last
        )
        self._device = device
        self._pool = POOLINGS[pooling]
        self._trunk = trunk.eval().to(
            device=device, dtype=self._dtype, memory_format=self._memory_format
        )

    def __repr__(self) -> str:
        return f"<TorchEmbedder {self.model_id} on {self.device}, batch {self.batch_size}>"

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embed images, in batches of ``batch_size``.

        Args:
            images: N >= 0 arrays ``(S, S, 3)``, uint8, RGB, ``S == input_size``.

        Returns:
            ``(N, D)`` float32 array on the CPU, each row L2-normalised.

        Raises:
            ValueError: An image has another shape or dtype.
        """
        out = np.empty((len(images), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                x = to_batch(chunk, self.input_size, self._device, self._dtype, self._memory_format)
                # Pool in float32: GeM's x ** 3 overflows float16 (max 65504) above ~40.
                descriptors = _l2_normalise(self._pool(self._trunk(x).float()))
                out[start : start + len(chunk)] = descriptors.cpu().numpy()
        return out


def _l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``(N, D)`` float32 scaled to unit L2 norm, whatever their magnitude.

    ``F.normalize`` clamps the norm at eps=1e-12, which leaves rows of tiny activations (seen
    with poorly scaled weights) shorter than 1; scaling by the row's max first keeps the squares
    in range. An all-zero row stays zero.
    """
    tiny = torch.finfo(x.dtype).tiny
    x = x / x.abs().amax(dim=1, keepdim=True).clamp_min(tiny)
    return x / x.norm(dim=1, keepdim=True).clamp_min(tiny)


def load(
    spec: ModelSpec,
    *,
    pooling: str,
    device: str | None,
    weights: Path | None,
    progress: bool,
    batch_size: int | None,
) -> TorchEmbedder:
    """Build the embedder of :func:`photosim.embed.load_embedder` (arguments validated there).

    Raises:
        WeightsUnavailableError: Official weights not cached and the download failed.
        EmbedError: Unavailable device; unreadable or mismatching weights.
    """
    started = time.perf_counter()
    target = resolve_device(device)
    if weights is None:
        weights = weights_cache_path(spec.name)
        if not weights.is_file():
            _download(spec, weights, progress)
    state = _read_state_dict(weights, spec)
    # Build on the meta device: random initialisation of millions of parameters is wasted work
    # when every one of them is replaced by the state_dict right after (assign=True).
    with torch.device("meta"):
        model = getattr(torchvision.models, spec.builder)()
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise EmbedError(
            f"{weights} is not a state_dict of torchvision.models.{spec.builder}() "
            f"(model {spec.name}): {_one_line(exc)}"
        ) from exc
    if target.type == "cpu":
        torch.set_num_threads(_usable_cpus())
    embedder = TorchEmbedder(spec, _trunk(model, spec), pooling, target, batch_size)
    logger.info(
        "loaded %r from %s in %.1f s (%d threads)",
        embedder,
        weights,
        time.perf_counter() - started,
        torch.get_num_threads(),
    )
    return embedder


def resolve_device(requested: str | None) -> torch.device:
    """The device to run on.

    Args:
        requested: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, or None for the best
            available: CUDA, then Apple MPS, then CPU.

    Returns:
        The device, with an explicit index for CUDA.

    Raises:
        EmbedError: The string is not a device, or the device is not available here.
    """
    if requested is None:
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise EmbedError(f"unknown device {requested!r}; use cpu, cuda, cuda:N or mps") from exc
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = device.index or 0
        if index >= count:
            raise EmbedError(
                f"device {requested!r} is not available: this machine has {count} usable CUDA "
                f"device(s) (torch {torch.__version__}, CUDA {torch.version.cuda})"
            )
        return torch.device("cuda", index)
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise EmbedError("device 'mps' is not available: no Apple Metal GPU for this torch")
        return device
    raise EmbedError(f"unsupported device {requested!r}; use cpu, cuda, cuda:N or mps")


def _download(spec: ModelSpec, path: Path, progress: bool) -> None:
    """Download the official weights of ``spec`` to ``path`` through torch hub.

    Raises:
        WeightsUnavailableError: No network, or the download stalled or could not be written.
        EmbedError: The downloaded file does not match the hash in its name.
    """
    url: str = getattr(torchvision.models, spec.weights_enum)[spec.weights_member].url
    # Same check as torchvision's weights API: the file name carries a SHA-256 prefix.
    match = torch.hub.HASH_REGEX.search(path.name)
    hash_prefix = match.group(1) if match else None
    logger.info("downloading %s weights from %s to %s", spec.name, url, path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            torch.hub.download_url_to_file(
                url, str(path), hash_prefix=hash_prefix, progress=progress
            )
    except OSError as exc:  # URLError, socket timeouts and disk errors are all OSErrors
        raise WeightsUnavailableError(
            spec.name, path, f"the download from {url} failed ({_one_line(exc)})"
        ) from exc
    except RuntimeError as exc:
        raise EmbedError(f"download of {url} is corrupt, try again: {exc}") from exc


def _read_state_dict(path: Path, spec: ModelSpec) -> Mapping[str, Any]:
    """Load a state_dict file without running any pickled code.

    Raises:
        EmbedError: Missing, unreadable or not a state_dict.
    """
    expected = f"a state_dict of torchvision.models.{spec.builder}() (model {spec.name})"
    if not path.is_file():
        raise EmbedError(f"weights file {path} does not exist; expected {expected}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # torch.load raises UnpicklingError, RuntimeError, EOFError, ... depending on the damage.
    except Exception as exc:
        raise EmbedError(
            f"cannot read weights file {path}: expected {expected} ({_one_line(exc)})"
        ) from exc
    if not isinstance(state, Mapping):
        raise EmbedError(f"weights file {path} holds a {type(state).__name__}, expected {expected}")
    return state


def _trunk(model: torch.nn.Module, spec: ModelSpec) -> torch.nn.Module:
    """The part of ``model`` that outputs the last feature map ``(N, dim, h, w)``."""
    if spec.trunk is Trunk.RESNET:
        return torch.nn.Sequential(OrderedDict((n, getattr(model, n)) for n in _RESNET_TRUNK))
    features: torch.nn.Module = model.features
    return features


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Temporarily set the process-wide socket timeout.

    torch.hub's ``urlopen`` takes no timeout, so the default timeout is the only way to keep a
    dead network from hanging the download forever.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _usable_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and container limits)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _one_line(exc: BaseException) -> str:
    """``exc`` as one short line, for messages shown in a status bar."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
