"""The audit per table: a clean staged batch passes; each kind of violation sets aside exactly
the offending rows with its expectation and why; batch-level failures block the publish.

The batches are staged directly (not through conform), so the audit is tested as the last
gate before curated/, whatever the steps before it let through."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plantlake.core.config import TagMapping
from plantlake.core.lake import Interval, Lake
from quality.audit import AuditFailed, audit_staged
from schemas import get_table

pytestmark = pytest.mark.unit

T = datetime(2026, 2, 3, 8, tzinfo=UTC)
IV = Interval(T, T + timedelta(hours=1))
LINE = "acme/shenzhen/assembly/line1"


def _sensor(i: int) -> dict:
    return dict(ts=T + timedelta(seconds=i), server_ts=None, asset_id=f"{LINE}/press1", tag="nip_force",
                value=100.0 + i, value_text=None, unit="kN", quality="good", status_code=0, source="opcua",
                source_ref="ns=2;s=L1.PRESS.FORCE", ingested_at=T, run_id="r", message_id=None)


def _order(i: int) -> dict:
    return dict(order_id=f"PO{i:04d}", material_id="M1", line_id=LINE, status="completed", quantity_planned=100,
                quantity_produced=98, quantity_scrap=2, planned_start=T, planned_end=T + timedelta(hours=2),
                actual_start=T + timedelta(minutes=5), actual_end=T + timedelta(hours=2), updated_at=T,
                ingested_at=T, run_id="r")


def _material(i: int) -> dict:
    return dict(material_id=f"M{i}", name=f"Cell {i}", material_type="finished", base_unit="pc", updated_at=T,
                ingested_at=T, run_id="r")


def _inspection(i: int) -> dict:
    return dict(inspection_id=f"I{i}", order_id="PO0001", part_serial=f"S{i}", asset_id=f"{LINE}/aoi1",
                inspected_at=T + timedelta(minutes=i), characteristic="thickness", measured_value=10.0,
                lower_limit=9.9, upper_limit=10.1, unit="mm", result="pass", defect_code=None, updated_at=T,
                ingested_at=T, run_id="r")


def _image(i: int) -> dict:
    return dict(image_id=f"{i:064x}", capture_id=f"c{i:063x}", captured_at=T + timedelta(minutes=i), asset_id=f"{LINE}/cam1",
                part_serial=f"S{i}", order_id="PO0001", uri=f"images/{i:02x}/{i:064x}.png", source_file=f"{i}.png",
                width=640, height=480, format="PNG", mode="L", bytes=1000, camera_model=None, exposure_time_s=None,
                exif_datetime=None, brightness=120.0, contrast=30.0, sharpness=50.0, label="pass",
                ingested_at=T, run_id="r")


CLEAN = {"sensor_readings": _sensor, "production_orders": _order, "materials": _material,
         "quality_inspections": _inspection, "inspection_images": _image}

#: table -> [(changes to one row, the expectation that must catch it)]
VIOLATIONS = {
    "sensor_readings": [
        ({"quality": "excellent"}, "expect_column_values_to_be_in_set(quality)"),
        ({"status_code": -5}, "expect_column_values_to_be_between(status_code) in [0, None]"),
        ({"ts": datetime(1999, 12, 31, tzinfo=UTC)},
         "expect_column_values_to_be_between(ts) in [2000-01-01T00:00:00+00:00, 2100-01-01T00:00:00+00:00]"),
        ({"value": 5001.0}, "expect_tag_values_to_be_within_physical_range(asset_id, tag, value)"),
        ({"source": "modbus"}, "expect_column_values_to_be_in_set(source)"),
    ],
    "production_orders": [
        ({"actual_end": T}, "expect_column_pair_values_a_to_be_greater_than_b(actual_end, actual_start)"),
        ({"planned_end": T - timedelta(hours=1)},
         "expect_column_pair_values_a_to_be_greater_than_b(planned_end, planned_start)"),
        ({"actual_end": None}, 'expect_column_values_to_not_be_null(actual_end) where status=="completed"'),
        ({"status": "paused"}, "expect_column_values_to_be_in_set(status)"),
        ({"quantity_scrap": -1}, "expect_column_values_to_be_between(quantity_scrap) in [0, None]"),
    ],
    "materials": [],  # declared not-null and key only: staged files cannot hold a null in a required column
    "quality_inspections": [
        ({"result": "fail"}, "expect_verdict_to_match_measurement_and_limits(measured_value, lower_limit, "
                             "upper_limit, result)"),
        ({"measured_value": 10.5}, "expect_verdict_to_match_measurement_and_limits(measured_value, lower_limit, "
                                   "upper_limit, result)"),
        ({"lower_limit": 10.2, "upper_limit": 10.1, "measured_value": None},
         "expect_column_pair_values_a_to_be_greater_than_b(upper_limit, lower_limit)"),
        ({"result": "maybe", "measured_value": None}, "expect_column_values_to_be_in_set(result)"),
    ],
    "inspection_images": [
        ({"width": 8}, "expect_column_values_to_be_between(width) in [16, 20000]"),
        ({"image_id": "abc"}, "expect_column_value_lengths_to_equal(image_id)"),
        ({"brightness": 300.0}, "expect_column_values_to_be_between(brightness) in [0, 255]"),
        ({"label": "ok"}, "expect_column_values_to_be_in_set(label)"),
    ],
}

SOURCE = type("Source", (), {"name": "line1_plc", "tags": [
    TagMapping(ref="ns=2;s=L1.PRESS.FORCE", asset=f"{LINE}/press1", tag="nip_force", unit="kN", min=0, max=5000)]})()


def _stage(tmp_path, name: str, rows: list[dict]):
    table = get_table(name)
    lake = Lake(tmp_path / "lake").ensure()
    return table, lake, lake.stage(table, "src", IV, pa.Table.from_pylist(rows, schema=table.arrow_schema()))


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_a_clean_batch_passes_and_each_violation_sets_aside_exactly_its_rows(tmp_path, name):
    clean = [CLEAN[name](i) for i in range(20)]
    table, lake, staged = _stage(tmp_path / "clean", name, clean)
    audit = audit_staged(table, staged, source=SOURCE)
    assert audit.passed and audit.rejects is None, audit.failures
    assert audit.validation["success"] is True
    assert {c.name: c.success for c in audit.checks if not c.success} == {}

    rows = [CLEAN[name](i) for i in range(20)]
    expected = {}
    for k, (changes, expectation) in enumerate(VIOLATIONS[name]):
        row = 2 * k + 1
        rows[row].update(changes)
        expected[json.dumps(rows[row], default=str, sort_keys=True)] = expectation
    table, lake, staged = _stage(tmp_path / "bad", name, rows)
    audit = audit_staged(table, staged, source=SOURCE, max_bad_share=0.5)
    assert audit.passed
    got = {} if audit.rejects is None else {
        json.dumps(json.loads(r["record"]), sort_keys=True): r["reason"].split(": ")[0] for r in audit.rejects.to_pylist()}
    # the quarantined records are the offending rows as written, each with its expectation
    assert sorted(got.values()) == sorted(expected.values())
    assert len(got) == len(VIOLATIONS[name])
    kept = pa.concat_tables([pq.read_table(f.path) for f in staged.files])
    assert kept.num_rows == staged.rows == 20 - len(VIOLATIONS[name])
    failed = {c.name: c.unexpected for c in audit.checks if not c.success}
    for expectation in set(expected.values()):
        assert failed[expectation] == list(expected.values()).count(expectation)


def test_duplicate_keys_block_the_publish_with_the_expectation_and_its_count(tmp_path):
    rows = [_sensor(i) for i in range(10)] + [_sensor(3), _sensor(4)]
    table, lake, staged = _stage(tmp_path, "sensor_readings", rows)
    audit = audit_staged(table, staged)
    with pytest.raises(AuditFailed, match=r"sensor_readings: publish blocked, 1 failed check\(s\): "
                                          r"expect_compound_columns_to_be_unique\(asset_id, tag, ts\) "
                                          r"\(observed 2 duplicate keys, unexpected 2\)"):
        audit.raise_for_failures()


def test_a_missing_required_tag_blocks_the_publish(tmp_path):
    required = type("Source", (), {"name": "line1_plc", "tags": [
        *SOURCE.tags, TagMapping(ref="T", asset=f"{LINE}/coater1", tag="dryer_temperature", required=True)]})()
    table, lake, staged = _stage(tmp_path, "sensor_readings", [_sensor(i) for i in range(10)])
    audit = audit_staged(table, staged, source=required)
    assert [c.name for c in audit.failures] == ["expect_column_distinct_values_to_contain_set(tag)"]
    assert audit.failures[0].observed == {"missing_count": 1, "partial_missing_list": ["dryer_temperature"]}
    with pytest.raises(AuditFailed, match=r"expect_column_distinct_values_to_contain_set\(tag\) \(observed "
                                          r"\{'missing_count': 1, 'partial_missing_list': \['dryer_temperature'\]\}"):
        audit.raise_for_failures()


def test_more_bad_rows_than_the_policy_allows_block_the_publish(tmp_path):
    rows = [_order(i) for i in range(10)]
    for r in rows[:4]:
        r["status"] = "paused"
    table, lake, staged = _stage(tmp_path, "production_orders", rows)
    audit = audit_staged(table, staged, max_bad_share=0.3)
    assert [c.describe() for c in audit.failures] == [
        "share of rows failing row-level expectations <= 0.3 (observed 4 of 10 rows, unexpected 4)"]
    assert audit.rejects is None and staged.rows == 10  # nothing was taken out of a blocked batch
