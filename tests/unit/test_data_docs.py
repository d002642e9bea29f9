"""GX Data Docs built from the kept validation results."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from plantlake.core.config import load_config
from plantlake.core.lake import Interval, Lake
from quality.audit import audit_staged
from quality.cross_source import run_checks
from quality.docs import build_data_docs
from quality.results import keep_audit
from schemas import get_table
from tests.conftest import ROOT
from tests.unit.test_audit_tables import IV, _sensor

pytestmark = pytest.mark.unit


def _audit(lake: Lake, interval: Interval, bad_quality: bool) -> None:
    table = get_table("sensor_readings")
    rows = [dict(_sensor(i), ts=interval.start + timedelta(seconds=i)) for i in range(10)]
    if bad_quality:
        rows[3]["quality"] = "excellent"
    staged = lake.stage(table, "line1_plc", interval, pa.Table.from_pylist(rows, schema=table.arrow_schema()))
    keep_audit(lake, "line1_plc", interval, "run-1", audit_staged(table, staged))


def test_data_docs_name_the_suites_and_show_each_validation(tmp_path):
    cfg = load_config(ROOT / "plant.yaml")
    lake = Lake(tmp_path / "lake").ensure()
    _audit(lake, IV, bad_quality=True)
    run_checks(lake, cfg, IV, "run-1")
    index = build_data_docs(lake, cfg)
    html = index.read_text()
    v = get_table("sensor_readings").version
    for suite in (f"plantlake.sensor_readings.v{v}", "plantlake.production_orders.v1", "plantlake.inspection_images.v2",
                  "plantlake.cross_source_checks.v1", f"plantlake.sensor_readings.v{v}.historian_export"):
        assert suite.replace(".", "/") in html or suite in html, suite
    docs = lake.root / "_quality" / "docs"
    pages = {p.relative_to(docs).as_posix(): p for p in (docs / "validations").rglob("*.html")}
    audit_page = next(p for name, p in pages.items() if "sensor_readings" in name)
    assert audit_page.name == "line1_plc__20260203T080000Z_20260203T090000Z.html"
    text = audit_page.read_text()
    assert "quality" in text and "excellent" in text  # the failed set expectation and its unexpected value
    assert any("cross_source_checks" in name for name in pages)

    # a later build renders only what is new: earlier pages stay as they were
    first = {name: p.stat().st_mtime_ns for name, p in pages.items()}
    later = Interval(IV.end, IV.end + timedelta(hours=1))
    _audit(lake, later, bad_quality=False)
    build_data_docs(lake, cfg)
    now = {p.relative_to(docs).as_posix(): p.stat().st_mtime_ns for p in (docs / "validations").rglob("*.html")}
    assert {n: t for n, t in now.items() if n in first} == first
    assert len(now) == len(first) + 1
