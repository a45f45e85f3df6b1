"""Global poolings of photosim.embed.pooling on synthetic feature maps."""

from __future__ import annotations

import pytest
import torch

from photosim.embed.pooling import POOLINGS, _rmac_regions, average, gem, rmac


@pytest.fixture
def fmap() -> torch.Tensor:
    # Non-negative like the post-ReLU maps of ResNet; (N, C, h, w).
    return torch.rand(3, 16, 7, 7, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", sorted(POOLINGS))
@pytest.mark.parametrize("shape", [(2, 8, 7, 7), (2, 8, 8, 8), (1, 4, 5, 9), (1, 4, 1, 1)])
def test_shape_and_dtype(name: str, shape: tuple[int, int, int, int]) -> None:
    x = torch.randn(shape)
    out = POOLINGS[name](x)
    assert out.shape == shape[:2]
    assert out.dtype == x.dtype
    assert torch.isfinite(out).all()


def test_average(fmap: torch.Tensor) -> None:
    torch.testing.assert_close(average(fmap), fmap.flatten(2).mean(-1))


def test_gem_with_p_1_is_average(fmap: torch.Tensor) -> None:
    torch.testing.assert_close(gem(fmap, p=1.0), average(fmap), rtol=1e-5, atol=1e-6)


def test_gem_between_average_and_max(fmap: torch.Tensor) -> None:
    pooled = gem(fmap)
    assert (pooled >= average(fmap) - 1e-6).all()
    assert (pooled <= fmap.amax(dim=(2, 3)) + 1e-6).all()
    torch.testing.assert_close(gem(fmap, p=200.0), fmap.amax(dim=(2, 3)), rtol=0.05, atol=0.0)


def test_gem_is_finite_on_negative_activations() -> None:
    x = torch.full((1, 2, 3, 3), -0.2)
    assert torch.isfinite(gem(x)).all()


def test_rmac_regions_square() -> None:
    regions = _rmac_regions(7, 7, 3)
    # Tolias et al.: l x l regions at scale l on a square map.
    assert len(regions) == 1 + 4 + 9
    assert regions[0] == (0, 0, 7)
    assert {side for _, _, side in regions[5:]} == {3}
    assert {(top, left) for top, left, _ in regions[5:]} == {
        (top, left) for top in (0, 2, 4) for left in (0, 2, 4)
    }


def test_rmac_regions_wide_map() -> None:
    h, w = 6, 10
    regions = _rmac_regions(h, w, 3)
    # One extra column of regions per scale keeps ~40 % overlap on the long side.
    assert len(regions) == 1 * 2 + 2 * 3 + 3 * 4
    for top, left, side in regions:
        assert 0 <= top and top + side <= h
        assert 0 <= left and left + side <= w
    assert max(left + side for _, left, side in regions) == w


def test_rmac_is_sum_of_normalised_region_maxima() -> None:
    x = torch.zeros(1, 2, 7, 7)
    x[0, 0, 0, 0] = 5.0  # only in the whole-image region and the top-left regions
    x[0, 1] = 1.0  # everywhere
    out = rmac(x)
    regions = _rmac_regions(7, 7, 3)
    with_peak = sum(1 for top, left, _ in regions if top == 0 and left == 0)
    expected_c0 = with_peak * 5.0 / (26.0**0.5)
    expected_c1 = with_peak / (26.0**0.5) + (len(regions) - with_peak)
    torch.testing.assert_close(out, torch.tensor([[expected_c0, expected_c1]]))


@pytest.mark.parametrize("scale", [1.0, 1e-13, 1e-25, 1e20])
def test_l2_normalise_gives_unit_rows_at_any_magnitude(scale: float) -> None:
    # F.normalize's eps clamp left rows of tiny activations (random-init EfficientNet) at
    # norm ~0.7; descriptors must be unit norm whatever the scale.
    from photosim.embed.backend import _l2_normalise

    torch.manual_seed(0)
    x = torch.randn(4, 64) * scale
    x[3] = 0.0
    out = _l2_normalise(x)
    norms = out.norm(dim=1)
    assert torch.allclose(norms[:3], torch.ones(3), atol=1e-5)
    assert norms[3] == 0.0
    reference = x[0].double() / x[0].double().norm()  # float64: no under/overflow here
    assert torch.allclose(out[0].double(), reference, atol=1e-5)
