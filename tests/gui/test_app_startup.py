"""Start-up of the app when Qt's X11 plugin would not load: a message, not a core dump."""

from __future__ import annotations

import pytest

from photosim.desktop import qtlibs
from photosim.gui import app


def test_missing_xcb_libraries_stop_the_start_with_the_packages_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = [qtlibs.XCB_LIBRARIES[0]]  # libxcb-cursor0: what Qt >= 6.5 most often lacks
    monkeypatch.setattr(app.qtlibs, "missing_libraries", lambda: missing)
    created = []
    monkeypatch.setattr(app, "create_app", lambda *a: created.append(a))
    assert app.main(["photosim"]) == 1
    err = capsys.readouterr().err
    assert "photosim cannot open its window" in err
    assert "sudo apt install libxcb-cursor0" in err and "sudo dnf install xcb-util-cursor" in err
    assert created == []  # no QApplication was attempted
