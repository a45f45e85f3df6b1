"""Item models: qtmodeltester, and a 100,000-row library that stays cheap."""

from __future__ import annotations

import time

from helpers import make_photo_obj
from PySide6.QtCore import Qt

from photosim.core.dedup.grouping import Group, Member
from photosim.gui.models.duplicates import GROUP_ROLE, MARKED_ROLE, DuplicatesModel
from photosim.gui.models.photos import PHOTO_ROLE, SIMILARITY_ROLE, PhotoListModel


def _photos(n: int) -> list:
    return [
        make_photo_obj(id=i + 1, path=f"/lib/{i % 97:02d}/img_{i:06d}.jpg", size=1000 + (i * 7919)
                       % 100_000, content_hash=f"{i:032x}", mtime_ns=10**18 + (i * 104729) % 10**9)
        for i in range(n)
    ]


def test_library_model_passes_modeltester(qtmodeltester) -> None:
    model = PhotoListModel()
    model.set_photos(_photos(25))
    qtmodeltester.check(model, force_py=True)
    model.sort_by("name")
    qtmodeltester.check(model, force_py=True)


def test_results_model_passes_modeltester(qtmodeltester) -> None:
    model = PhotoListModel()
    photos = _photos(5)
    model.set_photos(photos, [0.9, 0.8, 0.7, 0.6, 0.5])
    qtmodeltester.check(model, force_py=True)
    assert model.index(0, 0).data(SIMILARITY_ROLE) == 0.9
    assert model.index(0, 0).data().startswith("90 %")


def test_duplicates_model_passes_modeltester(qtmodeltester) -> None:
    a, b, c = _photos(3)
    groups = [Group(1, "exact", [Member(a, "keeper", "kept"), Member(b, "exact", "same bytes")]),
              Group(2, "near", [Member(c, "keeper", "kept"), Member(a, "near", "pHash 2")])]
    model = DuplicatesModel()
    model.set_groups(groups, {b.path})
    qtmodeltester.check(model, force_py=True)
    assert model.index(0, 0).data(MARKED_ROLE) == [False, True]
    assert model.toggle(0, 1) is False
    assert model.index(1, 0).data(GROUP_ROLE).id == 2
    model.remove_group(0)
    qtmodeltester.check(model, force_py=True)


def test_100k_rows_load_sort_and_data_cheaply(qtbot) -> None:
    photos = _photos(100_000)
    model = PhotoListModel()
    started = time.perf_counter()
    model.set_photos(photos)
    model.sort_by("date")
    model.sort_by("size", descending=True)
    model.sort_by("name")
    assert time.perf_counter() - started < 5.0
    assert model.rowCount() == 100_000
    started = time.perf_counter()
    for row in range(0, 100_000, 10):  # 10,000 calls of the roles a grid paints
        index = model.index(row, 0)
        index.data(Qt.ItemDataRole.DisplayRole)
        index.data(Qt.ItemDataRole.DecorationRole)
    per_call = (time.perf_counter() - started) / 20_000
    assert per_call < 50e-6, f"data() takes {per_call * 1e6:.1f} µs"
    sizes = [model.index(r, 0).data(PHOTO_ROLE).path for r in (0, 1, 2)]
    assert sizes == sorted(sizes)


def test_100k_rows_in_a_grid_scroll_without_widgets(qtbot) -> None:
    from photosim.gui.widgets.common import PhotoGrid

    model = PhotoListModel()
    model.set_photos(_photos(100_000))
    grid = PhotoGrid(96)
    qtbot.addWidget(grid)
    grid.setModel(model)
    grid.resize(900, 700)
    grid.show()
    qtbot.waitExposed(grid)
    started = time.perf_counter()
    bar = grid.verticalScrollBar()
    for step in range(20):
        bar.setValue(bar.maximum() * step // 19)
        grid.viewport().repaint()
    assert time.perf_counter() - started < 10.0
    from PySide6.QtWidgets import QWidget

    assert len(grid.findChildren(QWidget)) < 10  # scroll bars and viewport: no per-item widgets
