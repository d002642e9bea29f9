"""The conform step: casts, UTC, units, asset mapping, quality, dedupe, and rejects with reasons."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from schemas import get_table
from schemas.conform import (
    ConformContext,
    ConformError,
    TagRule,
    conform,
    quality_from_status,
    to_utc,
)
from schemas.units import UnitError, affine, canonical_unit

pytestmark = pytest.mark.unit

SENSOR = get_table("sensor_readings")
RULES = {
    "T1": TagRule("acme/s/a/l1/oven", "temperature", unit="degF", canonical_unit="degC"),
    "P1": TagRule("acme/s/a/l1/press", "power", unit="W", canonical_unit="kW"),
    "S1": TagRule("acme/s/a/l1/press", "state", type="text", canonical_unit=""),
    "B1": TagRule("acme/s/a/l1/press", "running", type="bool", canonical_unit=""),
    "X1": TagRule("acme/s/a/l1/press", "pressure"),  # unit comes with the value
}
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def ctx(tz: str = "UTC") -> ConformContext:
    return ConformContext(run_id="r1", ingested_at=NOW, source_kind="csv", tag_rules=RULES, timezone=tz)


def raw(rows: list[dict]) -> pa.Table:
    keys = list(dict.fromkeys(k for r in rows for k in r))  # from_pylist alone takes the first row's keys
    return pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows])


def test_units_convert_values_and_record_the_conversion():
    t = raw([
        {"ts": "2026-03-01T10:00:00", "source_ref": "T1", "value": "212"},
        {"ts": "2026-03-01T10:00:00", "source_ref": "P1", "value": "2500"},
        {"ts": "2026-03-01T10:00:00", "source_ref": "X1", "value": "14.5038", "unit": "psi"},
    ])
    out = conform(SENSOR, t, ctx())
    rows = {r["tag"]: r for r in out.table.to_pylist()}
    assert rows["temperature"]["value"] == pytest.approx(100.0)
    assert rows["temperature"]["unit"] == "degC"
    assert rows["power"]["value"] == pytest.approx(2.5) and rows["power"]["unit"] == "kW"
    assert rows["pressure"]["value"] == pytest.approx(1.0, rel=1e-5) and rows["pressure"]["unit"] == "bar"
    assert dict(out.conversions) == {"degF -> degC": 1, "W -> kW": 1, "psi -> bar": 1}
    assert out.table.schema == SENSOR.arrow_schema()


def test_naive_timestamps_are_in_the_site_timezone_and_become_utc_microseconds():
    t = raw([{"ts": "2026-03-01 18:00:00.1234567", "source_ref": "P1", "value": "1"},
             {"ts": "2026-03-01T18:00:00+08:00", "source_ref": "T1", "value": "32"}])
    out = conform(SENSOR, t, ctx("Asia/Shanghai"))
    assert out.table["ts"].type == pa.timestamp("us", tz="UTC")
    got = sorted(out.table["ts"].to_pylist())
    assert got[0] == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert got[1] == datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_text_and_bool_tags_land_in_their_columns():
    out = conform(SENSOR, raw([
        {"ts": "2026-03-01T10:00:00", "source_ref": "S1", "value": "WELDING"},
        {"ts": "2026-03-01T10:00:00", "source_ref": "B1", "value": "true"},
    ]), ctx())
    rows = {r["tag"]: r for r in out.table.to_pylist()}
    assert rows["state"]["value"] is None and rows["state"]["value_text"] == "WELDING" and rows["state"]["unit"] == ""
    assert rows["running"]["value"] == 1.0 and rows["running"]["value_text"] is None


def test_bad_rows_are_rejected_with_their_reason_and_the_rest_published():
    t = raw([
        {"ts": "2026-03-01T10:00:00", "source_ref": "T1", "value": "50"},
        {"ts": "2026-03-01T10:00:01", "source_ref": "T1", "value": "hot"},
        {"ts": "2026-03-01T10:00:02", "source_ref": "T1", "value": "nan"},
        {"ts": "2026-03-01T10:00:03", "source_ref": "T1", "value": "inf"},
        {"ts": "2026-03-01T10:00:04", "source_ref": "NOPE", "value": "1"},
        {"ts": "yesterday", "source_ref": "T1", "value": "1"},
        {"ts": "2026-03-01T10:00:05", "source_ref": "X1", "value": "1", "unit": "parsecs per bogon"},
        {"ts": "2026-03-01T10:00:06", "source_ref": "X1", "value": "1", "unit": "kg"},
        {"ts": None, "source_ref": "T1", "value": "1"},
    ])
    out = conform(SENSOR, t, ctx())
    assert out.table.num_rows == 2  # 50 degF and the kg reading (mass is a quantity of its own)
    reasons = [r["reason"] for r in out.rejects.rows]
    assert "value: not a number as mapped for tag temperature ('hot')" in reasons
    assert "value: not a finite number (nan)" in reasons
    assert "value: not a finite number (inf)" in reasons
    assert "source_ref: no tag mapping ('NOPE')" in reasons
    assert "ts: cannot read 'yesterday' as an ISO 8601 timestamp" in reasons
    assert "unit: unknown unit 'parsecs per bogon'" in reasons
    assert "ts: missing value (column may not be null)" in reasons
    assert len(reasons) == 7
    record = json.loads(next(r["record"] for r in out.rejects.rows if "hot" in r["reason"]))
    assert record["source_ref"] == "T1" and record["ts"].startswith("2026-03-01")
    assert out.table.num_rows + len(out.rejects) == t.num_rows  # nothing vanishes


def test_dedupe_keeps_the_last_arrival_per_key():
    t = raw([
        {"ts": "2026-03-01T10:00:00", "source_ref": "P1", "value": "1000"},
        {"ts": "2026-03-01T10:00:01", "source_ref": "P1", "value": "1500"},
        {"ts": "2026-03-01T10:00:00", "source_ref": "P1", "value": "2000"},
    ])
    out = conform(SENSOR, t, ctx())
    assert out.duplicates == 1
    assert sorted(out.table["value"].to_pylist()) == [1.5, 2.0]


def test_quality_is_derived_from_opcua_status_severity():
    codes = pa.array([0, 0x40000000, 0x408F0000, 0x80000000, 0x80350000, 0xC0000000], pa.int64())
    assert quality_from_status(codes).to_pylist() == ["good", "uncertain", "uncertain", "bad", "bad", "bad"]


def test_missing_required_column_is_a_clear_error():
    with pytest.raises(ConformError, match="sensor_readings: input has no column 'source_ref'"):
        conform(SENSOR, raw([{"ts": "2026-03-01T10:00:00", "value": 1.0}]), ctx())


def test_generic_table_casts_and_rejects_by_column():
    orders = get_table("production_orders")
    t = raw([
        {"order_id": "PO1", "material_id": "M1", "line_id": "l1", "status": "running", "quantity_planned": "100",
         "updated_at": "2026-03-01T10:00:00Z"},
        {"order_id": "PO2", "material_id": "M1", "line_id": "l1", "status": "running", "quantity_planned": "ten",
         "updated_at": "2026-03-01T10:00:00Z"},
    ])
    out = conform(orders, t, ctx())
    assert out.table["order_id"].to_pylist() == ["PO1"]
    assert out.table["quantity_planned"].to_pylist() == [100]
    assert [r["reason"] for r in out.rejects.rows] == ["quantity_planned: cannot read 'ten' as int64"]
    assert json.loads(out.rejects.rows[0]["record"])["quantity_planned"] == "ten"


def test_unit_helpers():
    assert canonical_unit("°F") == "degC"
    assert canonical_unit("psi") == "bar"
    assert canonical_unit("%") == "%"
    scale, offset = affine("degF", "degC")
    assert scale * 212 + offset == pytest.approx(100)
    with pytest.raises(UnitError, match="measure different quantities"):
        affine("kg", "m")


def test_to_utc_flags_unparseable_strings():
    arr, bad = to_utc(pa.array(["2026-03-01T10:00:00Z", "not a time", None, "2026-03-01T12:00:00+02:00"]), "UTC")
    assert bad.tolist() == [False, True, False, False]
    assert arr.to_pylist()[3] == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert math.isnan(float("nan"))


def test_units_by_quantity_kind_as_sources_send_them():
    """Readings as a packaging line sends them (units as text with the value, as an OPC UA
    server's UNECE symbols, or set by pattern for browsed nodes): each lands in its kind's
    canonical unit with the right value; a torque is never energy, an rpm never angular."""
    from schemas.conform import UnitRule

    refs = {"nsu=urn:pack;s=Filler.Torque": TagRule("acme/s/a/l1/filler", "torque"),
            "nsu=urn:pack;s=Filler.Speed": TagRule("acme/s/a/l1/filler", "speed"),
            "nsu=urn:pack;s=Filler.Flow": TagRule("acme/s/a/l1/filler", "flow"),
            "nsu=urn:pack;s=Filler.CO2": TagRule("acme/s/a/l1/filler", "co2"),
            "nsu=urn:pack;s=Capper.Torque": TagRule("acme/s/a/l1/capper", "cap_torque"),
            "nsu=urn:pack;s=Capper.Work": TagRule("acme/s/a/l1/capper", "work")}
    rules = [UnitRule(tag="cap_*", unit="ft*lbf"),  # a browsed node whose server sends no unit
             UnitRule(asset="*/capper", tag="work", unit="ft*lbf", quantity="energy")]
    c = ConformContext(run_id="r1", ingested_at=NOW, source_kind="opcua", tag_rules=refs, unit_rules=rules)
    t = raw([
        {"ts": "2026-03-01T10:00:00", "source_ref": "nsu=urn:pack;s=Filler.Torque", "value": 2.5, "unit": "N.m"},
        {"ts": "2026-03-01T10:00:01", "source_ref": "nsu=urn:pack;s=Filler.Torque", "value": 2.5, "unit": "N·m"},
        {"ts": "2026-03-01T10:00:00", "source_ref": "nsu=urn:pack;s=Filler.Speed", "value": 1200.0, "unit": "r/min"},
        {"ts": "2026-03-01T10:00:01", "source_ref": "nsu=urn:pack;s=Filler.Speed", "value": 1200.0, "unit": "rpm"},
        {"ts": "2026-03-01T10:00:00", "source_ref": "nsu=urn:pack;s=Filler.Flow", "value": 12.0, "unit": "m3/h"},
        {"ts": "2026-03-01T10:00:01", "source_ref": "nsu=urn:pack;s=Filler.Flow", "value": 200.0, "unit": "l/min"},
        {"ts": "2026-03-01T10:00:00", "source_ref": "nsu=urn:pack;s=Filler.CO2", "value": 400.0, "unit": "ppm"},
        {"ts": "2026-03-01T10:00:00", "source_ref": "nsu=urn:pack;s=Capper.Torque", "value": 10.0},
        {"ts": "2026-03-01T10:00:00", "source_ref": "nsu=urn:pack;s=Capper.Work", "value": 3600.0 / 1.3558179483314},
    ])
    out = conform(SENSOR, t, c)
    assert len(out.rejects) == 0, out.rejects.rows
    got = {(r["tag"], r["ts"].second): (pytest.approx(r["value"], rel=1e-9), r["unit"]) for r in out.table.to_pylist()}
    assert got == {("torque", 0): (2.5, "N*m"), ("torque", 1): (2.5, "N*m"),
                   ("speed", 0): (1200.0, "1/min"), ("speed", 1): (1200.0, "1/min"),
                   ("flow", 0): (12.0, "m^3/h"), ("flow", 1): (12.0, "m^3/h"),
                   ("co2", 0): (400.0, "ppm"), ("cap_torque", 0): (13.558179483314, "N*m"),
                   ("work", 0): (0.001, "kWh")}


def test_a_declared_canonical_unit_of_another_kind_is_quarantined_with_the_reason():
    refs = {"T": TagRule("acme/s/a/l1/filler", "torque", canonical_unit="kWh")}
    c = ConformContext(run_id="r1", ingested_at=NOW, source_kind="opcua", tag_rules=refs)
    out = conform(SENSOR, raw([{"ts": "2026-03-01T10:00:00", "source_ref": "T", "value": 2.5, "unit": "Nm"}]), c)
    assert out.table.num_rows == 0
    assert out.rejects.rows[0]["reason"].startswith("unit: cannot convert 'Nm' (torque) to 'kWh' (energy)")
