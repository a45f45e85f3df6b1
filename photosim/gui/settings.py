"""The app's settings: declared once (key, type, default, label), persisted with QSettings.

Core never sees QSettings: :meth:`AppSettings.core` builds the frozen
:class:`photosim.config.Settings` it receives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings

from photosim.config import Settings, Thresholds
from photosim.embed.models import MODELS

ORGANISATION = "photosim"
APPLICATION = "photosim"
MODEL_CHOICES = ("none", *MODELS)
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
PRECISION_CHOICES = ("auto", "float32", "bfloat16")
DESTINATION_CHOICES = ("quarantine", "trash")
RERANK_CHOICES = ("diffusion", "qe", "none")


@dataclass(frozen=True)
class SettingSpec:
    """One setting: QSettings ``key``, Python ``type``, ``default``, user-facing ``label``,
    and for choices the allowed values; for numbers the range."""

    key: str
    type: type
    default: Any
    label: str
    choices: Sequence[str] = ()
    minimum: float = 0
    maximum: float = 0
    help: str = ""


_T = Thresholds()
SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("model", str, Settings().model, "Model", MODEL_CHOICES,
                help="'none' scans with perceptual hashes only (no CNN weights needed)"),
    SettingSpec("device", str, "auto", "Device", DEVICE_CHOICES),
    SettingSpec("precision", str, "auto", "CPU precision", PRECISION_CHOICES,
                help="auto: bfloat16 on CPUs that compute it natively, when it gives the same "
                     "descriptors as float32 (about twice as fast); else float32"),
    SettingSpec("near_hash_sum", int, _T.near_hash_sum, "Near-duplicate: max hash distance",
                minimum=0, maximum=64, help="pHash + dHash bits that may differ (of 128)"),
    SettingSpec("near_cosine", float, _T.near_cosine, "Near-duplicate: min similarity",
                minimum=0.5, maximum=1.0),
    SettingSpec("similar_cosine", float, _T.similar_cosine, "Similar: min similarity",
                minimum=0.3, maximum=1.0),
    SettingSpec("rerank", str, Settings().rerank, "Find similar: re-ranking", RERANK_CHOICES,
                help="diffusion: photos linked to the query through other photos of the "
                     "library rise (other views of a scene); qe: query expansion; none: "
                     "similarity to the query only"),
    SettingSpec("grid_thumb_size", int, 160, "Thumbnail size (pixels)", minimum=64, maximum=256),
    SettingSpec("exclude", str, "", "Exclude patterns",
                help="comma-separated globs matched against names and paths, e.g. *.gif, @eaDir"),
    SettingSpec("destination", str, "quarantine", "Cleanup destination", DESTINATION_CHOICES,
                help="quarantine: a photosim folder on the same volume, fully undoable; "
                     "trash: the system Trash"),
    SettingSpec("workers", int, 0, "Decode processes (0 = one per core)", minimum=0, maximum=64),
)
SPEC_BY_KEY = {s.key: s for s in SPECS}


class AppSettings:
    """Typed access to the persisted settings.

    Args:
        qsettings: The store; the default is the per-user native store.
    """

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.store = qsettings if qsettings is not None else QSettings(ORGANISATION, APPLICATION)

    def get(self, key: str) -> Any:
        """The value of a declared setting, converted to its type (the default if invalid)."""
        spec = SPEC_BY_KEY[key]
        raw = self.store.value(f"settings/{key}", spec.default)
        try:
            value = spec.type(raw) if spec.type is not bool else str(raw).lower() in ("1", "true")
        except (TypeError, ValueError):
            return spec.default
        if spec.choices and value not in spec.choices:
            return spec.default
        return value

    def set(self, key: str, value: Any) -> None:
        """Store a declared setting."""
        spec = SPEC_BY_KEY[key]
        self.store.setValue(f"settings/{key}", spec.type(value))

    def values(self) -> dict[str, Any]:
        """Every declared setting by key."""
        return {s.key: self.get(s.key) for s in SPECS}

    def core(self, **overrides: Any) -> Settings:
        """The frozen core :class:`Settings` these values describe (``overrides`` win)."""
        v = self.values()
        thresholds = dataclasses.replace(
            Thresholds(),
            near_hash_sum=v["near_hash_sum"],
            near_cosine=v["near_cosine"],
            similar_cosine=v["similar_cosine"],
        )
        exclude = tuple(p.strip() for p in v["exclude"].split(",") if p.strip())
        base = Settings(
            model=v["model"],
            device=None if v["device"] == "auto" else v["device"],
            precision=v["precision"],
            workers=v["workers"],
            exclude=exclude,
            thresholds=thresholds,
            rerank=v["rerank"],
        )
        return dataclasses.replace(base, **overrides) if overrides else base
