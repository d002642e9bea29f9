"""Shared schemas: one declaration gives the Arrow schema, the data dictionary and the lock;
changes must be additive."""

from __future__ import annotations

import copy
import json

import pyarrow as pa
import pytest

from schemas import TABLES, get_table
from schemas.docs import data_dictionary
from schemas.evolution import LOCK, check, snapshot
from schemas.model import META_TABLE, META_VERSION
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

DESIGN_TABLES = {"sensor_readings", "production_orders", "materials", "quality_inspections",
                 "inspection_images", "assets", "order_context", "image_training_set",
                 "quality_results", "cross_source_checks", "events", "source_freshness"}  # + the audit's results, checks across sources, OPC UA events, freshness


def test_every_design_table_is_declared_with_key_and_lineage():
    assert set(TABLES) == DESIGN_TABLES
    for t in TABLES.values():
        assert t.primary_key, t.name
        assert {"ingested_at", "run_id"} <= set(t.column_names), t.name


def test_arrow_schema_carries_types_nullability_and_version():
    s = get_table("sensor_readings").arrow_schema()
    assert s.field("ts").type == pa.timestamp("us", tz="UTC")
    assert not s.field("ts").nullable
    assert s.field("value").type == pa.float64() and s.field("value").nullable
    assert s.metadata[META_TABLE] == b"sensor_readings"
    assert s.metadata[META_VERSION] == str(get_table("sensor_readings").version).encode()
    assert s.field("quality").metadata[b"description"].startswith(b"Data quality")


def test_declarations_match_the_lock_or_changed_additively():
    locked = json.loads(LOCK.read_text())
    assert check(snapshot(), locked) == []


def test_lock_is_current():
    """An accepted additive change also updates the lock (plantlake schemas lock)."""
    assert json.loads(LOCK.read_text()) == snapshot()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s["sensor_readings"]["columns"].pop("unit"), "sensor_readings.unit: column removed"),
        (lambda s: s["sensor_readings"]["columns"]["value"].update(type="string"), "sensor_readings.value: type changed from double to string"),
        (lambda s: s["materials"]["columns"]["name"].update(nullable=True), "materials.name: nullability changed"),
        (lambda s: (s["assets"]["columns"].__setitem__("site", {"type": "string", "nullable": False}), s["assets"].update(version=2)),
         "assets.site: a new column must be nullable"),
        (lambda s: s["assets"]["columns"].__setitem__("site", {"type": "string", "nullable": True}),
         "assets: columns changed but version stayed 1"),
        (lambda s: s.pop("materials"), "materials: table removed"),
    ],
)
def test_non_additive_changes_are_caught(change, problem):
    current = copy.deepcopy(snapshot())
    change(current)
    assert any(problem in p for p in check(current, snapshot())), check(current, snapshot())


def test_additive_change_with_version_bump_passes():
    current = copy.deepcopy(snapshot())
    current["assets"]["columns"]["site"] = {"type": "string", "nullable": True}
    current["assets"]["version"] = 2
    assert check(current, snapshot()) == []


def test_data_dictionary_is_generated_from_the_declarations():
    committed = (ROOT / "docs" / "data-dictionary.md").read_text()
    assert committed == data_dictionary(), "run: plantlake schemas docs"
    assert "| `quality` | `string` | no | one of `good`, `uncertain`, `bad` |" in committed


def test_lineage_is_stamped_in_one_place_replacing_what_rows_carried():
    from datetime import UTC, datetime

    from schemas.lineage import stamped

    table = get_table("assets")
    at = datetime(2026, 1, 2, 3, tzinfo=UTC)
    rows = pa.Table.from_pylist([{"run_id": "stale", "asset_id": "acme", "parent_id": None, "level": "enterprise",
                                  "name": "Acme", "description": None}])
    out = stamped(table, rows, "run-7", at)
    assert out.schema == table.arrow_schema()
    assert out.select(["asset_id", "run_id", "ingested_at"]).to_pylist() == [
        {"asset_id": "acme", "run_id": "run-7", "ingested_at": at}]
