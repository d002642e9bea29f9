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
        kinds = {(s.expectation, tuple(s.columns())) for s in specs}
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
