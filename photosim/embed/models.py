"""Registry of torchvision backbones used as global image descriptors.

Pure data: importing this module imports neither torch nor torchvision, so the CLI and GUI can
list models and check the weights cache at start-up for free.

Every backbone is cut before its global pooling; :mod:`photosim.embed.pooling` turns the last
convolutional feature map ``(N, C, h, w)`` into a ``(N, C)`` descriptor.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from dataclasses import dataclass


class Trunk(str, enum.Enum):
    """How to cut a torchvision classifier down to its last convolutional feature map."""

    RESNET = "resnet"
    """``conv1 .. layer4``: every child before ``avgpool`` and ``fc``."""
    FEATURES = "features"
    """The model's ``.features`` module (EfficientNet, MobileNet)."""


@dataclass(frozen=True)
class ModelSpec:
    """One backbone of the registry.

    The descriptors a backbone produces depend on its weights, and the catalog keys them by
    ``model_id`` (name + pooling) only: never change the weights of an existing entry, add a new
    name instead.

    Attributes:
        name: Registry key, also the first part of ``model_id`` (e.g. ``"resnet50"``).
        builder: Function name in :mod:`torchvision.models` that builds the architecture.
        weights_enum: Name of the weights enum in :mod:`torchvision.models`.
        weights_member: Member of that enum: the official ImageNet-1k weights used.
        weights_file: Basename of the weights URL, i.e. the file torchvision's weights API
            caches as ``torch.hub.get_dir()/checkpoints/<weights_file>``. Hardcoded so that
            :func:`photosim.embed.weights_cached` needs no torchvision; a test keeps it equal to
            ``os.path.basename(<enum>.<member>.url)``.
        dim: Descriptor dimension D = channels C of the last feature map.
        input_size: Side S in pixels of the square input, the crop size the weights were
            evaluated at.
        trunk: How to get the feature map before global pooling.
        paper: Reference of the architecture.
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


_SPECS = (
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
