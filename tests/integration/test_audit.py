"""The audit step with the tables' GX suites: row-level failures are set aside, batch-level ones block."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from plantlake.core.config import load_config
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from schemas import get_table
from simulators.erp import ErpSimulator
from simulators.story import Plant
from tests.conftest import ROOT, quarantined

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 2, 6, tzinfo=UTC)
ORDERS = get_table("production_orders")


def _local(dt: datetime) -> datetime:
    return dt.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)


@pytest.fixture
def site(tmp_path, monkeypatch, lake_kind):
    lake_kind.write_config(tmp_path)
    url = f"sqlite:///{tmp_path / 'erp.sqlite'}"
    erp = ErpSimulator(Plant(seed=42, start=datetime(2026, 1, 1, tzinfo=UTC)), url)
    erp.sync(T0 + timedelta(hours=1))
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", url)
    return load_config(tmp_path / "plant.yaml"), tmp_path, erp


def _break_order(erp: ErpSimulator, at: datetime) -> str:
    """An ERP user books an order's finish before its start."""
    with erp.engine.begin() as conn:
        order = conn.execute(sa.text("select order_no from orders where actual_start is not null "
                                     "order by order_no limit 1")).scalar_one()
        conn.execute(sa.text("update orders set actual_finish = :f, changed_at = :c where order_no = :o"),
                     {"f": _local(T0 - timedelta(days=3)), "c": _local(at), "o": order})
    return order


def test_rows_failing_a_rule_are_set_aside_and_the_results_are_kept(site):
    cfg, tmp, erp = site
    order = _break_order(erp, T0 + timedelta(minutes=30))
    s = run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
    t = s.tables["production_orders"]
    reason = "expect_column_pair_values_a_to_be_greater_than_b(actual_end, actual_start): an order cannot end before it starts"
    assert t.reasons == {reason: 1} and t.quarantined == 1
    q = quarantined(tmp / "lake", "production_orders", s)
    assert [(r["stage"], r["column"], json.loads(r["record"])["order_id"]) for r in q] == [
        ("audit", "actual_end", order)]
    published = Lake(tmp / "lake").read(ORDERS)
    assert order not in published["order_id"].to_pylist() and published.num_rows == t.published > 0
    # the validation is kept as JSON, and every check as a row of quality_results
    result = json.loads((tmp / "lake" / "_quality" / "results" / "production_orders" /
                         "erp__20260102T060000Z_20260102T070000Z.json").read_text())
    assert result["passed"] is True and result["validation"]["statistics"]["unsuccessful_expectations"] == 1
    qr = Lake(tmp / "lake").read(get_table("quality_results"))
    mine = [r for r in qr.to_pylist() if r["table_name"] == "production_orders" and not r["success"]]
    assert [(r["expectation"], r["level"], r["unexpected_count"]) for r in mine] == [
        ("expect_column_pair_values_a_to_be_greater_than_b(actual_end, actual_start)", "row", 1)]
    assert {r["table_name"] for r in qr.to_pylist()} == {"materials", "production_orders", "quality_inspections"}


def test_the_erps_mistaken_bookings_are_quarantined_exactly_and_the_rest_publish(tmp_path, monkeypatch):
    """The ERP simulator books a share of verdicts against their own measurement and of finishes
    before starts; over a backfill and two hourly runs exactly those rows are quarantined, each with its
    expectation, and every other row the runs saw is published."""
    shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
    url = f"sqlite:///{tmp_path / 'erp.sqlite'}"
    erp = ErpSimulator(Plant(seed=7, start=datetime(2026, 1, 1, tzinfo=UTC)), url, mistake_rate=0.25)
    erp.sync(T0 + timedelta(hours=3))
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", url)
    cfg = load_config(tmp_path / "plant.yaml")
    # a backfill of the ERP's first day and a half, then two scheduled hours
    run_source("erp", datetime(2026, 1, 1, tzinfo=UTC), T0 + timedelta(hours=1), config=cfg)
    for h in range(1, 3):
        run_source("erp", T0 + timedelta(hours=h), T0 + timedelta(hours=h + 1), config=cfg)
    lake = Lake(tmp_path / "lake")
    for table, key, reason in (
            ("quality_inspections", "part_serial",
             "expect_verdict_to_match_measurement_and_limits(measured_value, lower_limit, upper_limit, result): "
             "a part passes exactly when its measured value is within the limits"),
            ("production_orders", "order_id",
             "expect_column_pair_values_a_to_be_greater_than_b(actual_end, actual_start): "
             "an order cannot end before it starts")):
        published = lake.read(get_table(table))[key].to_pylist()
        quarantined = lake.read_quarantine(table).to_pylist()
        q_keys = {json.loads(r["record"])[key] for r in quarantined}
        seen = set(published) | q_keys
        mistaken = {k for k in seen if erp.mistaken(k)}
        if table == "production_orders":  # only a booked finish can be mistyped
            finished = {r["order_no"] for r in erp.order_rows(T0 + timedelta(hours=3)) if r["actual_finish"]}
            mistaken &= finished
        assert mistaken and q_keys == mistaken, table
        assert {r["reason"] for r in quarantined} == {reason}
        assert not q_keys & set(published) and len(published) == len(set(published)) > len(mistaken)
