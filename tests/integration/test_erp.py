"""ERP ingestion against the ERP simulator in SQLite and a real PostgreSQL, and its CSV exports."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from connectors.erp.connector import SchemaDrift, SourceUnavailable
from plantlake.core.config import load_config
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from schemas import get_table
from simulators.erp import STATUS_CODES, ErpSimulator
from simulators.story import Plant
from tests.conftest import lake_content, quarantined

pytestmark = pytest.mark.integration

SITE_TZ = ZoneInfo("Asia/Shanghai")
PLANT = Plant(seed=42, start=datetime(2026, 1, 1, tzinfo=UTC))
T0 = datetime(2026, 1, 2, 6, tzinfo=UTC)
STATUS = {v: k for k, v in STATUS_CODES.items()}
ORDERS, INSPECTIONS, MATERIALS = (get_table(n) for n in ("production_orders", "quality_inspections", "materials"))


def utc(local: datetime | None) -> datetime | None:
    return None if local is None else local.replace(tzinfo=SITE_TZ).astimezone(UTC)


@pytest.fixture
def site(tmp_path, monkeypatch, lake_kind):
    lake_kind.write_config(tmp_path)
    url = f"sqlite:///{tmp_path / 'erp.sqlite'}"
    erp = ErpSimulator(PLANT, url)
    erp.create()
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", url)
    return load_config(tmp_path / "plant.yaml"), tmp_path, erp


def erp_rows(erp: ErpSimulator, table: str) -> dict[str, dict]:
    """The ERP table as it is now, typed by the simulator's own table definitions."""
    from simulators import erp as erp_schema

    with erp.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(getattr(erp_schema, table)))]
    key = {"orders": "order_no", "inspection_results": "result_id", "materials": "material_no"}[table]
    return {r[key]: r for r in rows}


def assert_orders_match(lake: Lake, erp: ErpSimulator) -> None:
    """Curated production_orders hold exactly the ERP's latest version of each order."""
    got = {r["order_id"]: r for r in lake.read(ORDERS).to_pylist()}
    exp = erp_rows(erp, "orders")
    assert got.keys() == exp.keys()
    for k, e in exp.items():
        g = got[k]
        assert g["status"] == STATUS[e["status_code"]]
        assert g["line_id"] == f"acme/shenzhen/assembly/line{e['line_code'][1:]}"
        assert (g["quantity_planned"], g["quantity_produced"], g["quantity_scrap"]) == \
            (e["qty_planned"], e["qty_good"], e["qty_scrap"])
        assert g["actual_start"] == utc(e["actual_start"]) and g["actual_end"] == utc(e["actual_finish"])
        assert g["updated_at"] == utc(e["changed_at"])


def assert_inspections_match(lake: Lake, erp: ErpSimulator) -> None:
    got = {r["inspection_id"]: r for r in lake.read(INSPECTIONS).to_pylist()}
    exp = erp_rows(erp, "inspection_results")
    assert got.keys() == exp.keys()
    for k, e in exp.items():
        g = got[k]
        assert g["result"] == {"OK": "pass", "NOK": "fail"}[e["verdict"]]
        assert g["measured_value"] == pytest.approx(float(e["measured"]), abs=1e-4)
        assert g["inspected_at"] == utc(e["inspected_at"])
        assert g["asset_id"] == f"acme/shenzhen/assembly/line{e['station'][1]}/camera{e['station'][1]}"
        assert g["part_serial"] == e["serial_no"] and g["defect_code"] == e["defect_code"]


def test_hourly_incremental_runs_hold_the_erps_latest_rows_and_reruns_change_nothing(site):
    cfg, tmp, erp = site
    lake = Lake(tmp / "lake")
    summaries = []
    for h in range(4):  # the ERP moves on an hour at a time; plantlake pulls each hour
        start = T0 + timedelta(hours=h)
        erp.sync(start + timedelta(hours=1), since=start - timedelta(hours=1) if h else None)
        summaries.append(run_source("erp", start, start + timedelta(hours=1), config=cfg))
    # orders changed status between runs: the curated table keeps only each order's newest version
    assert sum(s.tables["production_orders"].superseded for s in summaries) > 0
    # every order that changed since the first run's look-back is there in its newest version
    got = {r["order_id"]: r for r in lake.read(ORDERS).to_pylist()}
    exp = erp_rows(erp, "orders")
    changed = {k for k, e in exp.items()  # a change at 10:00 sharp belongs to the next interval
               if T0 - timedelta(hours=1) <= utc(e["changed_at"]) < T0 + timedelta(hours=4)}
    assert changed and changed <= got.keys()
    for k in changed:
        assert (got[k]["status"], got[k]["updated_at"]) == (STATUS[exp[k]["status_code"]], utc(exp[k]["changed_at"])), k
    insp = lake.read(INSPECTIONS)["inspection_id"].to_pylist()
    window = {k for k, e in erp_rows(erp, "inspection_results").items()
              if T0 - timedelta(hours=1) <= utc(e["changed_at"]) < T0 + timedelta(hours=4)}
    assert sorted(insp) == sorted(window) and len(window) > 400
    assert sorted(r["material_id"] for r in lake.read(MATERIALS).to_pylist()) == sorted(erp_rows(erp, "materials"))

    before = lake_content(tmp / "lake")
    again = run_source("erp", T0 + timedelta(hours=3), T0 + timedelta(hours=4), config=cfg)
    assert again.quarantined == 0
    after = lake_content(tmp / "lake")
    for name in ("production_orders", "materials", "quality_inspections"):
        assert after[name] == before[name], name


def test_a_full_pull_matches_the_erp_exactly_in_sqlite(site):
    cfg, tmp, erp = site
    as_of = T0 + timedelta(hours=3)
    erp.sync(as_of)
    s = run_source("erp", PLANT.start - timedelta(days=1), as_of + timedelta(hours=1), config=cfg)
    assert s.quarantined == 0
    assert_orders_match(Lake(tmp / "lake"), erp)
    assert_inspections_match(Lake(tmp / "lake"), erp)


@pytest.fixture
def erp_database(postgres_url):
    """A database of its own on the session's PostgreSQL server, dropped afterwards."""
    from tests.servers import database

    with database(postgres_url, "plantlake_erp") as url:
        yield url.render_as_string(hide_password=False)


def postgres_erp(url: str, as_of: datetime, monkeypatch) -> ErpSimulator:
    """The simulated ERP in the PostgreSQL database `url`, synced to `as_of`, and the ERP source's
    Airflow connection pointing at it."""
    erp = ErpSimulator(PLANT, url)
    erp.create()
    erp.sync(as_of)
    u = sa.engine.make_url(url)
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", f"postgresql://{u.username}@{u.host}:{u.port}/{u.database}")
    return erp


def test_a_full_pull_matches_the_erp_exactly_in_postgresql(site, erp_database, monkeypatch):
    cfg, tmp, _ = site
    engine = sa.create_engine(erp_database)
    as_of = T0 + timedelta(hours=3)
    erp = postgres_erp(erp_database, as_of, monkeypatch)
    s = run_source("erp", PLANT.start - timedelta(days=1), as_of + timedelta(hours=1), config=cfg)
    assert s.quarantined == 0 and s.tables["quality_inspections"].published > 2000
    assert_orders_match(Lake(tmp / "lake"), erp)
    assert_inspections_match(Lake(tmp / "lake"), erp)
    # an order changes in the ERP: the next run replaces it, nothing else moves
    with engine.begin() as conn:
        order = conn.execute(sa.text("select order_no from orders where status_code = 40 limit 1")).scalar_one()
        later = (as_of + timedelta(minutes=30)).astimezone(SITE_TZ).replace(tzinfo=None)
        conn.execute(sa.text("update orders set status_code = 90, changed_at = :t where order_no = :o"),
                     {"t": later, "o": order})
    before = Lake(tmp / "lake").read(ORDERS).num_rows
    s2 = run_source("erp", as_of, as_of + timedelta(hours=1), config=cfg)
    t = s2.tables["production_orders"]  # the look-back re-reads the hour before too: upserts, no new rows
    assert t.published == t.superseded >= 1 and Lake(tmp / "lake").read(ORDERS).num_rows == before
    assert_orders_match(Lake(tmp / "lake"), erp)
    assert {r["order_id"]: r["status"] for r in Lake(tmp / "lake").read(ORDERS).to_pylist()}[order] == "cancelled"
    engine.dispose()
    erp.engine.dispose()


def test_csv_exports_in_windows_1252_with_decimal_comma_and_bad_rows(site):
    cfg, tmp, erp = site
    as_of = T0 + timedelta(hours=2)
    erp.sync(as_of)
    files = erp.export_csv(tmp / "drop" / "erp", as_of)
    orders = next(f for f in files if f.name.startswith("Auftraege"))
    text = orders.read_text(encoding="cp1252").splitlines()
    header = text[0].split(";")
    assert "Geändert am" in header
    first = text[1].split(";")
    bad = {  # what real exports contain now and then
        "Sollmenge": "viele",            # text in a numeric column
        "Gutmenge": "-5",                # a negative quantity
        "Material": "UNBEKANNT-1",       # an unknown material
        "Status": "55",                  # a code nobody mapped
    }
    for i, (col, value) in enumerate(bad.items()):
        row = list(first)
        row[0] = f"POBAD{i}"
        row[header.index(col)] = value
        text.append(";".join(row))
    orders.write_bytes(("\r\n".join(text) + "\r\n").encode("cp1252"))
    when = (as_of - timedelta(minutes=1)).timestamp()
    for f in files:
        os.utime(f, (when, when))
    s = run_source("erp_exports", T0, as_of, config=cfg)
    t = s.tables["production_orders"]
    assert t.reasons == {
        "quantity_planned: cannot read … as int64": 1,
        "quantity_produced: below the minimum 0": 1,
        "material_id: unknown in materials": 1,
        "status: unknown code, map it under codes.status": 1,
    }
    assert t.examples["quantity_planned: cannot read … as int64"] == "quantity_planned: cannot read 'viele' as int64"
    q = quarantined(tmp / "lake", "production_orders")
    assert sorted(json.loads(r["record"])["order_id" if "order_id" in r["record"] else "Auftragsnummer"]
                  for r in q) == [f"POBAD{i}" for i in range(4)]
    # everything else is what the database holds
    assert_orders_match(Lake(tmp / "lake"), erp)
    assert_inspections_match(Lake(tmp / "lake"), erp)
    assert s.stats["files"] == 3
    again = run_source("erp_exports", as_of, as_of + timedelta(hours=1), config=cfg)
    assert again.stats["files"] == 0 and again.raw_rows == 0  # each export is read once


def test_schema_drift_new_columns_are_reported_dropped_or_retyped_ones_fail(site):
    cfg, tmp, erp = site
    erp.sync(T0 + timedelta(hours=1))
    run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
    with erp.engine.begin() as conn:
        conn.execute(sa.text("alter table orders add column priority integer"))
    s = run_source("erp", T0 + timedelta(hours=1), T0 + timedelta(hours=2), config=cfg)
    assert s.stats["new_columns"] == {"production_orders": ["priority"]}
    raw = pq.read_table(tmp / "lake" / next(f for f in s.raw_files if "/production_orders/" in f))
    assert "priority" not in raw.column_names  # ignored by default
    with erp.engine.begin() as conn:  # a mapped column changes type
        conn.execute(sa.text("alter table orders rename column qty_planned to qty_planned_old"))
        conn.execute(sa.text("alter table orders add column qty_planned varchar(10)"))
    with pytest.raises(SchemaDrift, match=r"table 'orders': mapped column\(s\) changed type: qty_planned "
                                          r"\(integer -> text\)"):
        run_source("erp", T0 + timedelta(hours=2), T0 + timedelta(hours=3), config=cfg)
    with erp.engine.begin() as conn:  # a mapped column disappears
        conn.execute(sa.text("alter table orders drop column qty_planned"))
    with pytest.raises(SchemaDrift, match=r"table 'orders': mapped column\(s\) \['qty_planned'\] are gone"):
        run_source("erp", T0 + timedelta(hours=2), T0 + timedelta(hours=3), config=cfg)
    # nothing already published was lost
    assert Lake(tmp / "lake").read(ORDERS).num_rows > 0


def test_unreachable_databases_raise_a_retriable_error(site, monkeypatch):
    cfg, tmp, _ = site
    from simulators.net import free_port

    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", f"postgresql://erp:secret-pw@127.0.0.1:{free_port()}/erp")
    with pytest.raises(SourceUnavailable, match="ERP database unreachable") as err:
        run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
    assert "secret-pw" not in str(err.value)
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", f"sqlite:///{tmp / 'missing.sqlite'}")
    with pytest.raises(SourceUnavailable, match="does not exist"):
        run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
    assert not (tmp / "missing.sqlite").exists()  # looking did not create an empty database


def test_a_full_refresh_table_drops_rows_the_erp_deleted(site):
    cfg, tmp, erp = site
    erp.sync(T0 + timedelta(hours=1))
    run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
    assert Lake(tmp / "lake").read(MATERIALS).num_rows == 4
    with erp.engine.begin() as conn:  # materials is read whole (mode: full): a deletion shows
        conn.execute(sa.text("delete from materials where material_no = 'ELEC-CATH-01'"))
    run_source("erp", T0 + timedelta(hours=1), T0 + timedelta(hours=2), config=cfg)
    assert sorted(Lake(tmp / "lake").read(MATERIALS)["material_id"].to_pylist()) == [
        "CELL-LFP-100", "CELL-LFP-280", "CELL-NMC-50"]
