"""ERP faults (site fixture and simulator from tests/integration/test_erp.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plantlake.core.config import with_source
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from tests.conftest import both_lakes, lake_content, on
from tests.integration.test_erp import (  # noqa: F401 - fixtures
    INSPECTIONS,
    PLANT,
    SITE_TZ,
    T0,
    assert_inspections_match,
    assert_orders_match,
    erp_database,
    postgres_erp,
    site,
)

pytestmark = pytest.mark.faults


@both_lakes
def test_a_late_commit_is_picked_up_by_the_lookback_and_lost_without_it(site, reliability, lake_kind):  # noqa: F811
    cfg, tmp, erp = site
    erp.sync(T0 + timedelta(hours=1))
    run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
    # a transaction that started at 06:50 commits after the 06:00-07:00 run: its change time is in the past
    late = {"result_id": "QR-LATE-1", "order_no": "PO1000016", "serial_no": "PO1000016-9999", "station": "L1-EOL",
            "inspected_at": (T0 + timedelta(minutes=50)).astimezone(SITE_TZ).replace(tzinfo=None),
            "characteristic": "weld_resistance", "measured": 0.5, "lsl": 0.3, "usl": 0.9, "uom": "mOhm",
            "verdict": "OK", "defect_code": None,
            "changed_at": (T0 + timedelta(minutes=50)).astimezone(SITE_TZ).replace(tzinfo=None)}
    erp.commit_late(late)
    no_lookback = with_source(cfg, "erp", lookback_minutes=0)
    blind = run_source("erp", T0 + timedelta(hours=1), T0 + timedelta(hours=2), config=no_lookback,
                       lake=Lake(tmp / "lake-blind"))
    assert blind.tables["quality_inspections"].published == 0
    s = run_source("erp", T0 + timedelta(hours=1), T0 + timedelta(hours=2), config=cfg)
    assert s.tables["quality_inspections"].published >= 1
    lake = cfg.open_lake()
    rows = {r["inspection_id"]: r for r in lake.read(INSPECTIONS).to_pylist()}
    assert rows["QR-LATE-1"]["inspected_at"] == T0 + timedelta(minutes=50)
    reliability(f"ERP row committed late with an older updated_at{on(lake)}", data_in=1, data_out=int("QR-LATE-1" in rows),
                lost=int("QR-LATE-1" not in rows), duplicates=0, unit="ERP keys (the late row)",
                note="the look-back window picks it up; without it the row is missed (asserted)")


@both_lakes
def test_the_erp_database_going_down_mid_extract_fails_the_run_and_the_retry_is_exact(
        site, erp_database, monkeypatch, reliability, lake_kind):  # noqa: F811
    """Every session of the ERP database is killed after the first table was read (what a database
    restart looks like to a client): the run fails for Airflow to retry, publishes nothing, and the
    retry holds exactly what the ERP holds."""
    import sqlalchemy as sa

    cfg, tmp, _ = site
    as_of = T0 + timedelta(hours=3)
    erp = postgres_erp(erp_database, as_of, monkeypatch)
    url = sa.engine.make_url(erp_database)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    original, calls = Lake.write_raw, {"n": 0}

    def write_then_db_restarts(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:  # the first table is landed: now the database goes down
            with admin.connect() as conn:
                conn.execute(sa.text("select pg_terminate_backend(pid) from pg_stat_activity "
                                     "where datname = :db and pid <> pg_backend_pid()"), {"db": url.database})
        return out

    monkeypatch.setattr(Lake, "write_raw", write_then_db_restarts)
    window = (PLANT.start - timedelta(days=1), as_of + timedelta(hours=1))
    with pytest.raises(Exception) as err:
        run_source("erp", *window, config=cfg)
    assert calls["n"] == 1, err.value
    lake = cfg.open_lake()
    assert lake_content(lake) == {}  # nothing published
    monkeypatch.setattr(Lake, "write_raw", original)
    erp.engine.dispose()  # the simulator's pooled sessions died with the others
    s = run_source("erp", *window, config=cfg)  # Airflow's retry
    assert_orders_match(lake, erp)
    assert_inspections_match(lake, erp)
    admin.dispose()
    expected = len(erp.order_rows(as_of)) + len(erp.inspection_rows(as_of))
    published = s.tables["production_orders"].published + s.tables["quality_inspections"].published
    reliability(f"ERP database restarted mid-extract (sessions killed after the first table){on(lake)}", data_in=expected,
                data_out=published, lost=expected - published, duplicates=0, unit="ERP keys (orders, inspections)",
                note=f"the run failed ({type(err.value).__name__}), nothing published; the retry equals the ERP")
