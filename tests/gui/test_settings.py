"""Settings: declared once, persisted with QSettings, handed to core as a frozen dataclass."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import QSettings

from photosim.config import Settings, Thresholds
from photosim.gui.dialogs.settings_dialog import SettingsDialog
from photosim.gui.settings import SPECS, AppSettings


def _store(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def test_defaults_describe_the_core_defaults(tmp_path: Path) -> None:
    core = AppSettings(_store(tmp_path)).core()
    assert core == Settings()  # nothing stored: exactly core's own defaults


def test_dialog_ok_persists_and_core_sees_it(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = AppSettings(_store(tmp_path))
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert set(dialog.editors) == {s.key for s in SPECS}
    dialog.editors["model"].setCurrentText("none")
    dialog.editors["device"].setCurrentText("cpu")
    dialog.editors["near_hash_sum"].setValue(18)
    dialog.editors["similar_cosine"].setValue(0.75)
    dialog.editors["exclude"].setText(" *.gif, @eaDir ,,")
    dialog.editors["destination"].setCurrentText("trash")
    dialog.editors["rerank"].setCurrentText("qe")
    dialog.accept()

    store = _store(tmp_path)
    store.sync()
    reread = AppSettings(store)  # a new process would see the same
    core = reread.core()
    assert core.model == "none" and core.model_id is None and core.device == "cpu"
    assert core.exclude == ("*.gif", "@eaDir")
    assert core.rerank == "qe"  # find similar re-ranks as chosen
    assert core.thresholds == dataclasses.replace(
        Thresholds(), near_hash_sum=18, similar_cosine=0.75
    )
    assert reread.get("destination") == "trash"
    assert reread.core(workers=1).workers == 1  # overrides win, the rest is kept
    assert dataclasses.is_dataclass(core) and isinstance(core, Settings)


def test_cancel_changes_nothing(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = AppSettings(_store(tmp_path))
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.editors["model"].setCurrentText("none")
    dialog.reject()
    assert AppSettings(_store(tmp_path)).get("model") == Settings().model


def test_invalid_stored_values_fall_back_to_defaults(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.setValue("settings/model", "a-model-that-does-not-exist")
    store.setValue("settings/workers", "many")
    store.setValue("settings/destination", "/dev/null")
    settings = AppSettings(store)
    assert settings.get("model") == Settings().model
    assert settings.get("workers") == 0
    assert settings.get("destination") == "quarantine"
