"""ERP change-time cursors as ERPs store them, not as our simulator writes them.

Every stored form of a change time — ISO 8601 text with `T` or space, with `Z`, an offset or
none (ERP-local time), epoch seconds or milliseconds, SQLAlchemy's DATETIME text, a mix of all
of them in one column; in PostgreSQL timestamptz, timestamp, date, bigint epoch and text — is
read hour by hour: each run reads exactly the rows whose change time falls in its window
(interval plus look-back, computed here in Python from the ground truth), and the lake ends
with every order at its true change instant. A window that reads nothing while rows changed in
it fails loudly; raw keeps the ERP's values as they came.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml

from connectors.erp.connector import CursorMismatch, ErpConnector
from plantlake.core.config import parse_config
from plantlake.core.connections import get_connection
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from schemas import get_table

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 11, 20, 6, tzinfo=UTC)
HOURS = 6
LOOKBACK = timedelta(minutes=60)
ORDERS = get_table("production_orders")
#: 24 orders, one changed every 15 minutes from T0 - 30 min on, some at a fraction of a second
CHANGES = [T0 - timedelta(minutes=30) + timedelta(minutes=15 * i, seconds=0.25 * (i % 3 == 1)) for i in range(24)]

# A site config a new user writes from docs/configuration.md: German ERP columns, Berlin time.
SITE = {
    "enterprise": {"id": "nord", "sites": [{"id": "werk1", "timezone": "Europe/Berlin", "areas": [
        {"id": "montage", "lines": [{"id": "linie1", "cells": [{"id": "presse1"}]}]}]}]},
    "lake": {"root": "./lake"},
    "sources": [{
        "name": "erp", "kind": "erp", "connection_id": "foreign_erp", "lookback_minutes": 60,
        "tables": [
            {"target": "materials", "table": "Material", "mode": "full",
             "columns": {"material_id": "Materialnummer", "name": "Bezeichnung", "updated_at": "Geaendert"}},
            {"target": "production_orders", "table": "Auftraege", "updated_at": "Geaendert",
             "columns": {"order_id": "Auftrag", "material_id": "Materialnummer", "line_id": "Linie",
                         "status": "Status", "quantity_planned": "Menge", "updated_at": "Geaendert"},
             "codes": {"line_id": {"L1": "montage/linie1"}, "status": {"FREI": "released", "ABGE": "completed"}}},
        ],
    }],
}


def _local(when: datetime) -> datetime:
    return when.astimezone(TZ).replace(tzinfo=None)


#: SQLite: (declared type, stored value of a change time)
SQLITE_FORMS = {
    "iso_offset": ("DATETIME", lambda w: w.astimezone(TZ).isoformat()),
    "iso_utc_offset": ("DATETIME", lambda w: w.isoformat()),
    "iso_z": ("TEXT", lambda w: w.strftime("%Y-%m-%dT%H:%M:%S") + (".250" if w.microsecond else "") + "Z"),
    "iso_t_local": ("DATETIME", lambda w: _local(w).strftime("%Y-%m-%dT%H:%M:%S.%f")),
    "iso_space_local": ("DATETIME", lambda w: _local(w).strftime("%Y-%m-%d %H:%M:%S")),
    "sqlalchemy_text": ("DATETIME", lambda w: _local(w).strftime("%Y-%m-%d %H:%M:%S.%f")),
    "epoch_s": ("INTEGER", lambda w: w.timestamp()),
    "epoch_ms": ("INTEGER", lambda w: int(w.timestamp() * 1000)),
}


def _mixed(i: int, w: datetime):
    forms = [f for k, f in SQLITE_FORMS.items() if k != "sqlalchemy_text"]
    return forms[i % len(forms)][1](w)


def write_erp(engine: sa.Engine, col_type: str, stored, *, quantities: list | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE TABLE "Material" ("Materialnummer" TEXT PRIMARY KEY, "Bezeichnung" TEXT, '
                             f'"Geaendert" {col_type})'))
        conn.execute(sa.text(f'CREATE TABLE "Auftraege" ("Auftrag" TEXT PRIMARY KEY, "Materialnummer" TEXT, '
                             f'"Linie" TEXT, "Status" TEXT, "Menge" INTEGER, "Geaendert" {col_type})'))
        conn.execute(sa.text('INSERT INTO "Material" VALUES (:m, :n, :g)'),
                     [{"m": "M-1", "n": "Zelle", "g": stored(0, CHANGES[0])}])
        conn.execute(sa.text('INSERT INTO "Auftraege" VALUES (:a, :m, :l, :s, :q, :g)'), [
            {"a": f"A{i:03d}", "m": "M-1", "l": "L1", "s": "FREI",
             "q": (quantities or [])[i] if quantities else 10 + i, "g": stored(i, w)} for i, w in enumerate(CHANGES)])


def site(tmp_path, monkeypatch, url: str):
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(SITE), encoding="utf-8")
    monkeypatch.setenv("AIRFLOW_CONN_FOREIGN_ERP", url)
    return parse_config(SITE, source=str(path), base_dir=tmp_path)


def run_hours(cfg, tmp_path, truth: list[datetime]) -> Lake:
    """Hourly runs; each reads exactly the orders whose change time is in its window."""
    lake = Lake(tmp_path / "lake")
    for h in range(HOURS):
        start, end = T0 + timedelta(hours=h), T0 + timedelta(hours=h + 1)
        s = run_source("erp", start, end, config=cfg)
        expected = sum(1 for w in truth if start - LOOKBACK <= w < end)
        assert s.stats["rows"]["production_orders"] == expected, f"hour {h}: read {s.stats['rows']}"
        assert s.quarantined == 0, s.tables["production_orders"].reasons
    return lake


def assert_every_order_at_its_instant(lake: Lake, truth: list[datetime]) -> None:
    got = {r["order_id"]: r for r in lake.read(ORDERS).to_pylist()}
    seen = [i for i, w in enumerate(truth) if w < T0 + timedelta(hours=HOURS)]
    assert sorted(got) == [f"A{i:03d}" for i in seen]
    for i in seen:
        assert got[f"A{i:03d}"]["updated_at"] == truth[i], f"A{i:03d}"
        assert got[f"A{i:03d}"]["quantity_planned"] == 10 + i


@pytest.mark.parametrize("form", [*SQLITE_FORMS, "mixed"])
def test_sqlite_cursor_reads_each_window_for_every_stored_form(form, tmp_path, monkeypatch):
    db = tmp_path / "erp.sqlite"
    engine = sa.create_engine(f"sqlite:///{db}")
    if form == "mixed":
        write_erp(engine, "DATETIME", _mixed)
    else:
        col_type, value = SQLITE_FORMS[form]
        write_erp(engine, col_type, lambda i, w: value(w))
    engine.dispose()
    cfg = site(tmp_path, monkeypatch, f"sqlite:///{db}")
    # the instant each stored value denotes: a space-separated local time here has no fraction
    names = [k for k in SQLITE_FORMS if k != "sqlalchemy_text"]
    truth = [w.replace(microsecond=0) if (names[i % len(names)] if form == "mixed" else form) == "iso_space_local"
             else w for i, w in enumerate(CHANGES)]
    lake = run_hours(cfg, tmp_path, truth)
    assert_every_order_at_its_instant(lake, truth)


@pytest.fixture
def pg_database(postgres_url):
    """A database of its own on the session's PostgreSQL server, dropped afterwards."""
    from tests.servers import database

    with database(postgres_url, "erp_cursor") as url:
        yield url


PG_FORMS = {
    "timestamptz": ("TIMESTAMPTZ", lambda i, w: w),
    "timestamp_local": ("TIMESTAMP", lambda i, w: _local(w)),
    "epoch_ms": ("BIGINT", lambda i, w: int(w.timestamp() * 1000)),
    "iso_text": ("TEXT", lambda i, w: w.astimezone(TZ).isoformat() if i % 2 else _local(w).strftime("%Y-%m-%d %H:%M:%S.%f")),
}


@pytest.mark.parametrize("form", list(PG_FORMS))
def test_postgresql_cursor_reads_each_window_for_every_stored_form(form, pg_database, tmp_path, monkeypatch):
    engine = sa.create_engine(pg_database)
    col_type, value = PG_FORMS[form]
    write_erp(engine, col_type, value)
    engine.dispose()
    cfg = site(tmp_path, monkeypatch, f"postgresql://{pg_database.username}@{pg_database.host}:{pg_database.port}/"
                                      f"{pg_database.database}")
    truth = [w.replace(microsecond=w.microsecond // 1000 * 1000) for w in CHANGES] if form == "epoch_ms" else CHANGES
    lake = run_hours(cfg, tmp_path, truth)
    assert_every_order_at_its_instant(lake, truth)


def test_postgresql_date_cursor_reads_every_day_a_window_touches(pg_database, tmp_path, monkeypatch):
    """A DATE says only the day: each window reads every order changed on the days it touches,
    and the lake holds each order at local midnight of its change day."""
    engine = sa.create_engine(pg_database)
    write_erp(engine, "DATE", lambda i, w: _local(w).date())
    engine.dispose()
    cfg = site(tmp_path, monkeypatch, f"postgresql://{pg_database.username}@{pg_database.host}:{pg_database.port}/"
                                      f"{pg_database.database}")
    s = run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
    assert s.stats["rows"]["production_orders"] == len(CHANGES)  # all on 2026-11-20 local
    got = Lake(tmp_path / "lake").read(ORDERS)
    midnight = datetime(2026, 11, 20, tzinfo=TZ).astimezone(UTC)
    assert got.num_rows == 24 and set(got["updated_at"].to_pylist()) == {midnight}


class _TextBoundConnector(ErpConnector):
    """The first version's cursor: the bound as SQLAlchemy text, compared with whatever is stored."""

    def _window(self, t, sa_type, lo, hi):
        col = sa.column(t.updated_at)
        fmt = "%Y-%m-%d %H:%M:%S.%f"
        return sa.and_(col >= sa.bindparam("lo"), col < sa.bindparam("hi")), {
            "lo": lo.astimezone(self.tz).strftime(fmt), "hi": hi.astimezone(self.tz).strftime(fmt)}


def test_a_window_that_reads_nothing_while_rows_changed_in_it_fails_loudly(tmp_path, monkeypatch):
    db = tmp_path / "erp.sqlite"
    engine = sa.create_engine(f"sqlite:///{db}")
    write_erp(engine, "DATETIME", lambda i, w: w.isoformat())  # '2026-11-20T06:15:00+00:00'
    engine.dispose()
    cfg = site(tmp_path, monkeypatch, f"sqlite:///{db}")
    src = cfg.source("erp")
    broken = _TextBoundConnector(src, cfg, get_connection("foreign_erp"))
    # text comparison: '2026-11-20T07…' > '2026-11-20 08…' — the hour from 07:00 (Berlin) reads nothing
    with pytest.raises(CursorMismatch, match=r"table 'Auftraege'.*read 0 rows, but \d+ row\(s\) have 'Geaendert' in it"):
        run_source("erp", T0, T0 + timedelta(hours=1), config=cfg, connector=broken)
    assert not (tmp_path / "lake" / "curated" / "production_orders").exists() or \
        Lake(tmp_path / "lake").read(ORDERS).num_rows == 0


def test_raw_keeps_the_erps_values_and_a_non_number_is_quarantined_by_column_and_value(tmp_path, monkeypatch):
    db = tmp_path / "erp.sqlite"
    engine = sa.create_engine(f"sqlite:///{db}")
    quantities = [10 + i for i in range(24)]
    quantities[5], quantities[6] = "viele", 16.0  # SQLite keeps text in an INTEGER column; 16.0 is a REAL
    write_erp(engine, "DATETIME", lambda i, w: w.isoformat(), quantities=quantities)
    engine.dispose()
    cfg = site(tmp_path, monkeypatch, f"sqlite:///{db}")
    s = run_source("erp", T0 - timedelta(hours=1), T0 + timedelta(hours=HOURS), config=cfg)
    lake = Lake(tmp_path / "lake")
    raw = pq.read_table(next((tmp_path / "lake" / "raw" / "erp" / "production_orders").rglob("*.parquet")))
    assert raw.filter(pc.equal(raw["Auftrag"], "A005"))["Menge"].to_pylist() == ["viele"]
    got = {r["order_id"]: r["quantity_planned"] for r in lake.read(ORDERS).to_pylist()}
    assert "A005" not in got and got["A006"] == 16 and len(got) == 23
    reasons = s.tables["production_orders"].reasons
    assert reasons == {"quantity_planned: cannot read … as int64": 1}, reasons
    assert s.tables["production_orders"].examples == {
        "quantity_planned: cannot read … as int64": "quantity_planned: cannot read 'viele' as int64"}


@pytest.mark.parametrize("policy", ["enforce", "warn", "off"])
def test_orders_without_a_materials_table_follow_the_reference_policy(policy, tmp_path, monkeypatch):
    from plantlake.pipeline.runner import NothingPublished

    db = tmp_path / "erp.sqlite"
    engine = sa.create_engine(f"sqlite:///{db}")
    write_erp(engine, "DATETIME", lambda i, w: w.isoformat())
    engine.dispose()
    monkeypatch.setenv("AIRFLOW_CONN_FOREIGN_ERP", f"sqlite:///{db}")
    data = yaml.safe_load(yaml.safe_dump(SITE))
    src = data["sources"][0]
    src["tables"] = [t for t in src["tables"] if t["target"] != "materials"]  # this plant has no materials table
    if policy != "enforce":
        src["references"] = {"production_orders.material_id": policy}
    cfg = parse_config(data, base_dir=tmp_path)
    if policy == "enforce":
        with pytest.raises(NothingPublished, match=r"24 x material_id: unknown in materials"):
            run_source("erp", T0 - timedelta(hours=1), T0 + timedelta(hours=HOURS), config=cfg)
        return
    s = run_source("erp", T0 - timedelta(hours=1), T0 + timedelta(hours=HOURS), config=cfg)
    assert s.published == 24 and s.quarantined == 0
    assert s.stats.get("references_unknown") == ({"production_orders.material_id": 24} if policy == "warn" else None)


def test_an_export_whose_times_miss_datetime_format_is_quarantined_naming_the_setting(tmp_path):
    import os

    (tmp_path / "exporte").mkdir()
    data = {**SITE, "sources": [{"name": "erp_csv", "kind": "erp", "tables": [
        {"target": "production_orders", "csv": {"path": "exporte", "pattern": "Auftraege_*.csv", "encoding": "latin-1"},
         "columns": {"order_id": "Auftrag", "material_id": "Material", "line_id": "Linie", "status": "Status",
                     "quantity_planned": "Menge", "updated_at": "Geändert am"},
         "codes": {"line_id": {"L1": "montage/linie1"}, "status": {"FREI": "released"}}}],
        "references": {"production_orders.material_id": "off"}}]}
    cfg = parse_config(data, base_dir=tmp_path)
    f = tmp_path / "exporte" / "Auftraege_1.csv"
    rows = ["Auftrag;Material;Linie;Status;Menge;Geändert am",
            "A1;M-1;L1;FREI;10;20.11.2026 07:15:00",          # the declared format
            "A2;M-1;L1;FREI;11;2026-11-20T07:20:00",          # ISO: not the declared format
            "A3;M-1;L1;FREI;1.200,0;20.11.2026 07:25:00"]     # thousands without the setting: quarantined
    f.write_bytes(("\r\n".join(rows) + "\r\n").encode("latin-1"))
    os.utime(f, (T0.timestamp(), T0.timestamp()))
    s = run_source("erp_csv", T0 - timedelta(hours=1), T0 + timedelta(hours=1), config=cfg)
    t = s.tables["production_orders"]
    assert s.published == 1 and t.quarantined == 2
    assert t.examples["updated_at: … is not a time in datetime_format …"] == (
        "updated_at: '2026-11-20T07:20:00' is not a time in datetime_format '%d.%m.%Y %H:%M:%S' "
        "(column 'Geändert am' of Auftraege_1.csv)")
    assert t.reasons["quantity_planned: cannot read … as int64"] == 1


def test_a_connection_to_a_file_that_is_not_sqlite_fails_once_naming_the_connection(tmp_path, monkeypatch):
    from connectors.erp.connector import SchemaDrift

    (tmp_path / "erp.sqlite").write_bytes(b"this is a CSV export, not a database\n" * 100)
    cfg = site(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'erp.sqlite'}")
    with pytest.raises(SchemaDrift, match="connection 'foreign_erp' points at a file that is not a SQLite database"):
        run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
