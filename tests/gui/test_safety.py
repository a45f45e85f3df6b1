"""No sequence of marks and auto-mark rules in the duplicates view can plan the removal of a
group's last copy, or of anything in a protected folder (core's plan_cleanup enforces it; the
GUI must not be able to get around it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import write_photo_set
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photosim.config import Settings
from photosim.core.catalog import Catalog
from photosim.core.cleanup import plan_cleanup
from photosim.core.dedup.grouping import find_duplicates
from photosim.core.dedup.keeper import RULES
from photosim.core.scan.pipeline import run_scan, scan
from photosim.gui.models.duplicates import DuplicatesModel


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path, list]:
    root = tmp_path_factory.mktemp("safety")
    free, protected = root / "free", root / "protected"
    photos = write_photo_set(free)
    protected.mkdir()
    shutil.copy2(photos["original"], protected / "original.jpg")
    shutil.copy2(photos["different"], protected / "different.jpg")
    catalog_path = root / "catalog.db"
    with Catalog(catalog_path) as catalog:
        run_scan(scan(catalog, [str(free), str(protected)], Settings(model="none", workers=1)))
        catalog.set_protected(str(protected), True)
        groups = {t: find_duplicates(catalog, t).groups for t in ("exact", "near")}
    return catalog_path, protected, groups


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("toggle"), st.integers(0, 20), st.integers(0, 20)),
        st.tuples(st.just("rule"), st.sampled_from(sorted(RULES)), st.booleans()),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tier=st.sampled_from(["exact", "near"]), ops=OPS)
def test_no_marks_remove_a_last_copy_or_touch_a_protected_folder(qapp, library, tier, ops):
    catalog_path, protected, groups = library
    model = DuplicatesModel()
    model.set_groups(groups[tier])
    assert model.rowCount() > 0
    for op in ops:
        if op[0] == "toggle":
            row = op[1] % model.rowCount()
            model.toggle(row, op[2] % len(model.group(row).members))
        else:
            folder = str(protected) if op[2] else None
            rule = op[1] if (op[1] != "in_folder" or folder) else "keeper"
            from photosim.core.cleanup import auto_mark

            model.set_marked(auto_mark(model.groups(), rule, folder))
    with Catalog(catalog_path) as catalog:
        plan = plan_cleanup(catalog, model.groups(), model.marked())
    removed = {r.photo.path for r in plan.removals}
    for group in model.groups():
        assert any(m.photo.path not in removed for m in group.members)
    assert not any(p.startswith(str(protected) + "/") for p in removed)
    assert removed | {p for p, _ in plan.refused} == model.marked()
