"""GX suites derived from the table declarations: built for every table, checked at build time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from quality import suites
from quality.suites import Spec, SuiteError, build_suite, expectations
from schemas import get_table
from schemas.tables import TABLES

pytestmark = pytest.mark.unit


def test_every_table_gets_a_suite_from_its_declaration():
    for table in TABLES.values():
        specs = expectations(table)
        declared = specs[:len(specs) - len(suites.RULES.get(table.name, []))]
        kinds = {(s.expectation, tuple(s.columns())) for s in declared}
        for c in table.columns:
            assert ("ExpectColumnToExist", (c.name,)) in kinds
            assert (("ExpectColumnValuesToNotBeNull", (c.name,)) in kinds) == (not c.nullable), (table.name, c.name)
            if c.allowed:
                assert ("ExpectColumnValuesToBeInSet", (c.name,)) in kinds
        suite = build_suite(table)
        assert suite.name == f"plantlake.{table.name}.v{table.version}"
        assert len(suite.expectations) == len(specs)


def test_a_rule_naming_a_column_the_table_lacks_fails_when_the_suite_is_built(monkeypatch):
    bad = [Spec("ExpectColumnPairValuesAToBeGreaterThanB", {"column_A": "finished_at", "column_B": "actual_start"})]
    monkeypatch.setitem(suites.RULES, "production_orders", bad)
    with pytest.raises(SuiteError, match=r"suite production_orders: expectations refer to column\(s\) \['finished_at'\]"):
        expectations(get_table("production_orders"))


def test_the_suite_finds_exactly_the_offending_rows():
    import great_expectations as gx
    import pandas as pd

    table = get_table("production_orders")
    t = datetime(2026, 1, 1, 6, tzinfo=UTC)
    rows = [dict(order_id=f"PO{i}", material_id="M", line_id="acme/shenzhen/assembly/line1", status="running",
                 quantity_planned=10, quantity_produced=1, quantity_scrap=0, planned_start=t, planned_end=t,
                 actual_start=t, actual_end=None, updated_at=t, ingested_at=t, run_id="r") for i in range(6)]
    rows[2]["actual_end"] = datetime(2026, 1, 1, 5, tzinfo=UTC)  # ends before it starts
    rows[4]["status"] = "paused"                                  # not an order status
    rows[5]["order_id"] = "PO1"                                    # a duplicate key
    ctx = gx.get_context(mode="ephemeral")
    batch = (ctx.data_sources.add_pandas("t").add_dataframe_asset("orders").add_batch_definition_whole_dataframe("b")
             .get_batch(batch_parameters={"dataframe": pd.DataFrame(rows)}))
    result = batch.validate(build_suite(table), result_format={"result_format": "COMPLETE"})
    failed = {(r.expectation_config.type, r.expectation_config.kwargs.get("column") or r.expectation_config.kwargs.get("column_A")):
              sorted(r.result.get("unexpected_index_list") or []) for r in result.results if not r.success}
    assert failed == {
        ("expect_column_pair_values_a_to_be_greater_than_b", "actual_end"): [2],
        ("expect_column_values_to_be_in_set", "status"): [4],
        ("expect_column_values_to_be_unique", "order_id"): [1, 5],
    }


def _validate(table, rows, source=None):
    import great_expectations as gx
    import pandas as pd

    ctx = gx.get_context(mode="ephemeral")
    batch = (ctx.data_sources.add_pandas("t").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")
             .get_batch(batch_parameters={"dataframe": pd.DataFrame(rows)}))
    result = batch.validate(build_suite(table, source), result_format={"result_format": "COMPLETE"})
    return {(r.expectation_config.type, r.expectation_config.kwargs.get("column")
             or r.expectation_config.kwargs.get("column_A") or tuple(r.expectation_config.kwargs.get("column_list", ()))):
            sorted(r.result.get("unexpected_index_list") or []) for r in result.results if not r.success}


def test_site_rules_bound_each_tag_to_its_physical_range_and_require_tags():
    from plantlake.core.config import TagMapping

    src = type("Src", (), {"name": "line1", "tags": [
        TagMapping(ref="a", asset="acme/s/l1/press", tag="force", min=0, max=50),
        TagMapping(ref="b", asset="acme/s/l1/press", tag="temp", max=300, required=True),
        TagMapping(ref="c", asset="acme/s/l1/oven", tag="temp")]})()
    table = get_table("sensor_readings")
    specs = expectations(table, src)
    assert [(s.expectation, s.level) for s in specs[-2:]] == [
        ("ExpectTagValuesToBeWithinPhysicalRange", "row"), ("ExpectColumnDistinctValuesToContainSet", "batch")]
    assert specs[-2].kwargs["ranges"] == [["acme/s/l1/press", "force", 0, 50], ["acme/s/l1/press", "temp", None, 300]]
    t = datetime(2026, 1, 1, 6, tzinfo=UTC)
    base = dict(ts=t, server_ts=None, value_text=None, unit="", quality="good", status_code=0, source="opcua",
                source_ref="x", ingested_at=t, run_id="r", message_id=None, source_name="line1",
                value_exact=None)
    rows = [dict(base, asset_id="acme/s/l1/press", tag="force", value=v) for v in (10.0, 51.0, -1.0, None)]
    rows += [dict(base, asset_id="acme/s/l1/oven", tag="temp", value=900.0),   # no range for the oven
             dict(base, asset_id="acme/s/l1/press", tag="temp", value=301.0)]
    for i, r in enumerate(rows):
        r["ts"] = datetime(2026, 1, 1, 6, i, tzinfo=UTC)
    assert _validate(table, rows, src) == {
        ("expect_tag_values_to_be_within_physical_range", ("asset_id", "tag", "value")): [1, 2, 5]}
    # without any row of a required tag the batch-level expectation fails
    failed = _validate(table, rows[:4], src)
    assert failed[("expect_column_distinct_values_to_contain_set", "tag")] == []


def test_an_inspection_verdict_must_agree_with_its_measurement_and_limits():
    table = get_table("quality_inspections")
    t = datetime(2026, 1, 1, 6, tzinfo=UTC)
    rows = [dict(inspection_id=f"I{i}", order_id="PO1", part_serial=f"S{i}", asset_id=None, inspected_at=t,
                 characteristic="bore", measured_value=v, lower_limit=9.9, upper_limit=10.1, unit="mm", result=res,
                 defect_code=None, updated_at=t, ingested_at=t, run_id="r")
            for i, (v, res) in enumerate([(10.0, "pass"), (10.2, "fail"), (10.2, "pass"), (10.0, "fail"),
                                          (None, "fail")])]
    assert _validate(table, rows) == {
        ("expect_verdict_to_match_measurement_and_limits", ("measured_value", "lower_limit", "upper_limit", "result")):
            [2, 3]}
