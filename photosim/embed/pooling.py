"""Global pooling of a convolutional feature map into one descriptor per image.

Every function takes a float feature map ``(N, C, h, w)`` and returns ``(N, C)`` in the same
dtype and device, *not* normalised: the caller L2-normalises the final descriptor.
torch is imported inside the functions because only :mod:`photosim.embed.backend` may import it
at module level (ruff TID253), and the backend calls these functions only after importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

GEM_P = 3.0
RMAC_LEVELS = 3
_RMAC_OVERLAP = 0.4
_EPS = 1e-6


def average(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling (the pooling each backbone was trained with).

    Args:
        x: Feature map ``(N, C, h, w)``, float.

    Returns:
        ``(N, C)`` mean of each channel over all positions.
    """
    return x.mean(dim=(-2, -1))


def gem(x: torch.Tensor, p: float = GEM_P) -> torch.Tensor:
    """Generalised-mean (GeM) pooling, Radenović, Tolias & Chum, TPAMI 2018.

    ``(mean(x ** p)) ** (1 / p)`` per channel: p = 1 is average pooling, p -> inf max pooling;
    the paper's fixed p = 3 weights strong activations more than the average does.

    Activations are clamped to a small positive epsilon first, as in the paper's code: a
    fractional power of a negative value is undefined, and the SiLU / hard-swish outputs of
    EfficientNet and MobileNetV3 dip slightly below zero.

    Args:
        x: Feature map ``(N, C, h, w)``, float.
        p: Power, > 0.

    Returns:
        ``(N, C)`` GeM of each channel.
    """
    return x.clamp(min=_EPS).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)


def rmac(x: torch.Tensor, levels: int = RMAC_LEVELS) -> torch.Tensor:
    """Regional maximum activations of convolutions (R-MAC), Tolias, Sicre & Jégou, ICLR 2016.

    At scale ``l = 1 .. levels`` square regions of side ``2 * min(h, w) / (l + 1)`` tile the
    map with about 40 % overlap (``l`` regions along the short side, as many along the long side
    as keep that overlap). Each region is max-pooled and L2-normalised, and the regional vectors
    are summed. The paper's PCA-whitening of each region is left out: it needs a projection
    learned on a collection, which is the job of photosim's whitening step, not of pooling.

    Args:
        x: Feature map ``(N, C, h, w)``, float.
        levels: Number of scales L.

    Returns:
        ``(N, C)`` sum of the L2-normalised regional max-pooled vectors.
    """
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    out = x.new_zeros(x.shape[:2])
    for top, left, side in _rmac_regions(h, w, levels):
        region = x[..., top : top + side, left : left + side].amax(dim=(-2, -1))
        out = out + F.normalize(region, dim=1, eps=_EPS)
    return out


def _rmac_regions(h: int, w: int, levels: int) -> list[tuple[int, int, int]]:
    """Regions ``(top, left, side)`` in feature-map cells of R-MAC on an ``h`` x ``w`` map."""
    short, long_ = min(h, w), max(h, w)
    # Extra regions along the long side: the count whose step between regions of the largest
    # scale (side = short) gives the overlap closest to 40 %, as in Tolias et al.
    extra = 0
    if long_ > short:
        overlaps = [
            abs((short - (long_ - short) / steps) / short - _RMAC_OVERLAP) for steps in range(1, 7)
        ]
        extra = 1 + overlaps.index(min(overlaps))
    regions: list[tuple[int, int, int]] = []
    for level in range(1, levels + 1):
        side = max(1, int(2 * short / (level + 1)))
        n_short, n_long = level, level + extra
        n_h, n_w = (n_short, n_long) if h <= w else (n_long, n_short)
        for top in _starts(h, side, n_h):
            for left in _starts(w, side, n_w):
                regions.append((top, left, side))
    return regions


def _starts(length: int, side: int, count: int) -> list[int]:
    """``count`` start offsets of windows of ``side`` spread evenly over ``length`` cells."""
    if count == 1:
        return [(length - side) // 2]
    step = (length - side) / (count - 1)
    return [round(i * step) for i in range(count)]


POOLINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "avg": average,
    "gem": gem,
    "rmac": rmac,
}
"""Pooling name (the second part of ``model_id``) -> function."""
