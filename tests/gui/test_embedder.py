"""The GUI's embedders: scans get a shared lazy one; nothing loads until a file needs it."""

from __future__ import annotations

from photosim.config import Settings
from photosim.gui.embedder import hash_only_notice, scan_embedder


def test_scan_embedder_is_lazy_and_shared() -> None:
    settings = Settings(model="mobilenet_v3_large", device="cpu")
    first = scan_embedder(settings)
    assert first is not None and first is scan_embedder(settings)
    assert (first.model_id, first.dim, first.input_size) == ("mobilenet_v3_large-avg", 960, 224)
    assert not first.loaded  # an unchanged rescan never pays for torch and the weights
    assert scan_embedder(Settings(model="none")) is None
    assert scan_embedder(Settings(model="no-such-model")) is None


def test_hash_only_notice_says_how_to_fix() -> None:
    text = hash_only_notice("weights are missing")
    assert text.startswith("Hash-only mode: weights are missing.")
    # The way out that needs no network: the default model, whose weights are installed.
    assert "pick the model efficientnet_lite0 in Settings" in text
