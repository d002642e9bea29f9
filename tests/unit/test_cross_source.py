"""Cross-source checks of one interval against values computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from plantlake.core.config import load_config
from plantlake.core.lake import Interval, Lake
from quality.cross_source import run_checks
from schemas import get_table
from tests.conftest import ROOT
from tests.unit.test_audit_tables import _image, _inspection, _order, _sensor

pytestmark = pytest.mark.unit

T = datetime(2026, 2, 3, 8, tzinfo=UTC)
IV = Interval(T, T + timedelta(hours=1))
L1, L2 = "acme/shenzhen/assembly/line1", "acme/shenzhen/assembly/line2"


def _publish(lake: Lake, name: str, rows: list[dict]) -> None:
    table = get_table(name)
    data = pa.Table.from_pylist(rows, schema=table.arrow_schema())
    staged = (lake.stage_merge(table, "t", IV, data) if table.key_scope == "latest" else lake.stage(table, "t", IV, data))
    lake.publish(staged)


def _minute(m: int) -> datetime:
    return T + timedelta(minutes=m)


def test_images_orders_and_lines_are_checked_across_sources(tmp_path):
    cfg = load_config(ROOT / "plant.yaml")
    lake = Lake(tmp_path / "lake").ensure()
    readings = [dict(_sensor(0), ts=_minute(m), quality="bad" if m < 4 else "good") for m in range(30)]  # line 1
    readings += [dict(_sensor(0), ts=_minute(m), asset_id=f"{L2}/press2") for m in range(60)]            # line 2
    _publish(lake, "sensor_readings", readings)
    _publish(lake, "production_orders", [
        dict(_order(1), actual_start=_minute(-30), actual_end=_minute(40)),                   # line 1, 40 min here
        dict(_order(2), line_id=L2, status="running", actual_start=_minute(10), actual_end=None),  # 50 min here
        dict(_order(3), actual_start=_minute(-120), actual_end=_minute(-60)),                 # before the interval
    ])
    _publish(lake, "quality_inspections", [_inspection(1)])                                  # part S1
    _publish(lake, "inspection_images", [
        _image(1), _image(2),                                    # S1 has an inspection, S2 has none
        dict(_image(3), part_serial=None),                       # no part: nothing to map
        dict(_image(4), captured_at=_minute(70)),                # the next interval's
    ])
    result = run_checks(lake, cfg, IV, "check-run")
    got = [(r["check"], r["subject"], r["line_id"], round(r["value"], 4), r["success"], r["detail"])
           for r in result.rows.to_pylist()]
    assert got == [
        ("image_has_inspection", _image(1)["image_id"], L1, 1.0, True, "part S1"),
        ("image_has_inspection", _image(2)["image_id"], L1, 0.0, False, "part S2"),
        ("line_bad_share", L1, L1, round(4 / 30, 4), False, "4 of 30 readings bad or uncertain"),
        ("line_bad_share", L2, L2, 0.0, True, "0 of 60 readings bad or uncertain"),
        ("order_sensor_coverage", "PO0001", L1, 0.75, False, "30 of 40 running minutes with readings"),
        ("order_sensor_coverage", "PO0002", L2, 1.0, True, "50 of 50 running minutes with readings"),
    ]
    assert result.failures() == {"image_has_inspection": 1, "line_bad_share": 1, "order_sensor_coverage": 1}
    # kept as a table in the lake, and as a GX validation whose failures name the subjects' values
    assert lake.read(get_table("cross_source_checks")).num_rows == 6
    stats = result.validation["statistics"]
    assert (stats["evaluated_expectations"], stats["unsuccessful_expectations"]) == (4, 3)
    unexpected = sorted(v for r in result.validation["results"] for v in r["result"]["partial_unexpected_list"])
    assert unexpected == pytest.approx([0.0, 4 / 30, 0.75])
    # a rerun of the interval replaces its rows
    run_checks(lake, cfg, IV, "check-run-2")
    assert set(lake.read(get_table("cross_source_checks"))["run_id"].to_pylist()) == {"check-run-2"}


def test_the_same_bytes_for_different_parts_is_reported_as_a_frozen_camera(tmp_path):
    """150 distinct parts whose frames were byte-identical stay 150 rows, and the check lists them."""
    cfg = load_config(ROOT / "plant.yaml")
    lake = Lake(tmp_path / "lake").ensure()
    frozen = _image(7)["image_id"]
    _publish(lake, "inspection_images", [
        dict(_image(i), image_id=frozen, capture_id=f"{i:064x}", part_serial=f"P{i:03d}", captured_at=_minute(i % 60))
        for i in range(150)] + [_image(200)])
    assert lake.read(get_table("inspection_images")).num_rows == 151
    result = run_checks(lake, cfg, IV, "check-run")
    rows = [r for r in result.rows.to_pylist() if r["check"] == "image_bytes_unique"]
    assert [(r["subject"], r["value"], r["success"]) for r in rows] == [(frozen, 150.0, False)]
    assert rows[0]["detail"].startswith("the same bytes for 150 parts: P000, P001, P002")
    assert result.failures()["image_bytes_unique"] == 1
