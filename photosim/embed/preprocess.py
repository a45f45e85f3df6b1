"""Turn decoded uint8 RGB images into the normalised input tensor of a backbone.

The decode workers already resized every photo to ``(S, S, 3)``; what is left is tensor work,
done on the inference device so that only uint8 pixels (a quarter of float32) cross to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# ImageNet statistics, in units of pixel / 255: the torchvision backbones were trained with them
# (torchvision weights meta). The TF EfficientNet-Lite weights use their own (see models.py).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_batch(
    images: Sequence[np.ndarray],
    size: int,
    device: torch.device,
    dtype: torch.dtype,
    memory_format: torch.memory_format,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> torch.Tensor:
    """Stack, move and normalise images into one backbone input.

    ``(pixel / 255 - mean) / std`` per channel, computed in float32 and then cast to ``dtype``.

    Args:
        images: N >= 1 arrays ``(size, size, 3)``, uint8, RGB.
        size: Expected side S in pixels.
        device: Where the tensor goes.
        dtype: Floating dtype of the result (float16 on CUDA, float32 elsewhere).
        memory_format: Layout of the result, that of the model's weights.
        mean: Per-channel mean, RGB, in units of pixel / 255 (default: ImageNet's).
        std: Per-channel standard deviation, RGB, in units of pixel / 255.

    Returns:
        ``(N, 3, S, S)`` tensor of ``dtype`` on ``device`` in ``memory_format``.

    Raises:
        ValueError: An image has another shape or dtype.
    """
    import torch

    for i, image in enumerate(images):
        if image.shape != (size, size, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"image {i}: expected a ({size}, {size}, 3) uint8 RGB array, "
                f"got {image.shape} {image.dtype}"
            )
    pixels = torch.from_numpy(np.stack(images)).to(device)
    # NHWC memory seen as NCHW is channels_last: the layout costs nothing unless contiguous.
    x = pixels.permute(0, 3, 1, 2).float()
    shift = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255.0
    scale = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255.0
    x = (x - shift) / scale
    return x.to(dtype).contiguous(memory_format=memory_format)
