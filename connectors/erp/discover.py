"""`plantlake discover erp`: list an ERP database and draft its source block.

SQLAlchemy's inspector lists the tables, their columns, types and primary keys. Each table is
matched to the curated table it most resembles (orders, materials, inspection results) by its
column names against a vocabulary of the names ERPs use (English, German, SAP field names), and
its columns mapped where a name is in the vocabulary. The change-time candidates (a typed
timestamp or a column named like one) are read back to tell their stored form — a typed
timestamp with or without zone, ISO 8601 text with or without offset, epoch seconds /
milliseconds / microseconds, a date — the one the incremental cursor reads. Code columns (status,
line, result, station) list the values found, with a guess only where the value says it in
words; the rest is left to a person, as is every table no curated table resembles.
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from connectors.discovery import Draft
from connectors.erp.connector import sqlalchemy_url

#: curated column -> the names ERPs give it (normalised: lower case, letters and digits only)
VOCABULARY: dict[str, dict[str, tuple[str, ...]]] = {
    "production_orders": {
        "order_id": ("orderid", "orderno", "ordernr", "ordernumber", "order", "aufnr", "aufnummer", "auftrag",
                     "auftragsnummer", "auftragsnr", "workorder", "wonumber", "wo", "prodorder", "fertigungsauftrag"),
        "material_id": ("materialid", "materialno", "materialnr", "materialnumber", "material", "matnr", "item",
                        "itemno", "partno", "partnumber", "artikel", "artikelnr", "sku"),
        "line_id": ("lineid", "line", "linecode", "linie", "workcenter", "arbpl", "resource", "productionline"),
        "status": ("status", "statuscode", "state", "orderstatus", "stat"),
        "quantity_planned": ("quantityplanned", "qtyplanned", "plannedqty", "targetqty", "sollmenge", "gamng",
                             "plannedquantity", "qtyordered", "quantity"),
        "quantity_produced": ("quantityproduced", "qtygood", "goodqty", "qtyproduced", "produced", "istmenge",
                              "gutmenge", "gmnga", "yield", "qtyyield"),
        "quantity_scrap": ("quantityscrap", "qtyscrap", "scrap", "scrapqty", "ausschuss", "xmnga"),
        "planned_start": ("plannedstart", "schedstart", "startplanned", "gstrp", "startgeplant", "scheduledstart"),
        "planned_end": ("plannedend", "plannedfinish", "schedend", "endplanned", "gltrp", "endegeplant",
                        "scheduledend"),
        "actual_start": ("actualstart", "start", "startist", "gstri", "startedat", "starttime"),
        "actual_end": ("actualend", "actualfinish", "end", "finish", "endeist", "getri", "finishedat", "endtime"),
    },
    "materials": {
        "material_id": ("materialid", "materialno", "materialnr", "materialnumber", "matnr", "itemno", "partno",
                        "partnumber", "artikelnr", "sku", "material"),
        "name": ("name", "description", "kurztext", "maktx", "text", "bezeichnung", "materialname"),
        "material_type": ("materialtype", "mtart", "type", "materialart", "category"),
        "base_unit": ("baseunit", "baseuom", "uom", "meins", "unit", "basismengeneinheit", "einheit"),
    },
    "quality_inspections": {
        "inspection_id": ("inspectionid", "resultid", "inspectionno", "pruefnr", "prueflos", "prueflosnr", "id"),
        "order_id": ("orderid", "orderno", "ordernr", "aufnr", "auftrag", "auftragsnummer", "workorder"),
        "part_serial": ("partserial", "serialno", "serial", "serialnumber", "sernr", "seriennummer", "serialnr"),
        "asset_id": ("assetid", "station", "workstation", "workcenter", "arbpl", "pruefplatz", "asset"),
        "inspected_at": ("inspectedat", "checkedat", "pruefzeit", "testedat", "measuredat", "inspectiontime"),
        "characteristic": ("characteristic", "merkmal", "feature", "parameter", "check"),
        "measured_value": ("measuredvalue", "measured", "value", "messwert", "result_value", "istwert"),
        "lower_limit": ("lowerlimit", "lsl", "lowertolerance", "utg", "untergrenze", "min"),
        "upper_limit": ("upperlimit", "usl", "uppertolerance", "otg", "obergrenze", "max"),
        "unit": ("unit", "uom", "einheit", "measureunit"),
        "result": ("result", "verdict", "ergebnis", "outcome", "okflag", "decision", "bewertung"),
        "defect_code": ("defectcode", "defect", "fehlercode", "fehler", "failurecode", "errorcode"),
    },
}
CHANGE_TIME = ("updatedat", "changedat", "modifiedat", "lastchange", "lastchanged", "lastmodified", "modified",
               "changed", "geaendertam", "aenderungsdatum", "aedat", "changedon", "updated", "timestamp", "rowversion",
               "lastupdate", "changetime", "modifytime")
TABLE_HINTS = {"production_orders": ("order", "auftrag", "afko", "aufk", "workorder"),
               "materials": ("material", "mara", "makt", "artikel", "item", "part"),
               "quality_inspections": ("inspection", "pruef", "quality", "qals", "qamr", "result", "check")}
#: code values that say their canonical meaning in words (what a person would map them to anyway)
WORDS = {"status": {"planned": ("planned", "plan", "geplant", "created", "crtd", "angelegt"),
                    "released": ("released", "rel", "freigegeben", "frei"),
                    "running": ("running", "started", "inprogress", "gestartet", "laufend", "active", "pcnf"),
                    "completed": ("completed", "complete", "done", "finished", "closed", "teco", "cnf", "abgeschlossen",
                                  "fertig", "erledigt"),
                    "cancelled": ("cancelled", "canceled", "storniert", "dlfl", "deleted", "abgebrochen")},
         "result": {"pass": ("pass", "passed", "ok", "io", "good", "accepted", "gut", "a"),
                    "fail": ("fail", "failed", "nok", "nio", "bad", "rejected", "schlecht", "r")}}
CODED = ("status", "result", "line_id", "asset_id")


def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def discover(target: str, connection: Any, *, name: str, plant: Any | None, schema: str | None = None,
             **_: Any) -> list[Draft]:
    began = time.monotonic()
    engine = sa.create_engine(sqlalchemy_url(connection, f"{target}"))
    try:
        inspector = sa.inspect(engine)
        tables = sorted(inspector.get_table_names(schema=schema))
        described = {t: (inspector.get_columns(t, schema=schema), inspector.get_pk_constraint(t, schema=schema))
                     for t in tables}
        with engine.connect() as conn:
            draft = _draft(conn, described, schema, name, plant, target)
    finally:
        engine.dispose()
    draft.figures.update({"tables": len(tables), "seconds": round(time.monotonic() - began, 1)})
    return [draft]


def _draft(conn: Any, described: dict[str, tuple[list, dict]], schema: str | None, name: str, plant: Any | None,
           target: str) -> Draft:
    entries: list[dict[str, Any]] = []
    notes: dict[tuple, str] = {}
    unmatched: list[str] = []
    taken: set[str] = set()
    by_k: dict[int, str] = {}
    ranked = []
    for table, (cols, pk) in described.items():
        target_name, mapping = _best_target(table, [c["name"] for c in cols])
        if target_name:
            ranked.append((len(mapping), table, target_name, mapping, cols, pk))
        else:
            unmatched.append(table)
    for _, table, target_name, mapping, cols, pk in sorted(ranked, reverse=True):
        if target_name in taken:  # a second table that looks like orders: a person chooses
            unmatched.append(table)
            continue
        taken.add(target_name)
        k = len(entries)
        entry: dict[str, Any] = {"target": target_name, "table": table}
        if schema:
            entry["db_schema"] = schema
        types = {c["name"]: c["type"] for c in cols}
        change = _change_time(conn, table, schema, types)
        said = [f"primary key {', '.join(pk.get('constrained_columns') or []) or 'none'}"]
        if target_name == "materials":  # master data: a change window would never see what changed before
            entry["mode"] = "full"
            notes[("tables", k, "mode")] = "master data: small, read whole every run (orders refer to it)"
            if change:
                mapping["updated_at"] = change[0]
        elif change:
            col, form = change
            entry["updated_at"] = col
            mapping["updated_at"] = col
            notes[("tables", k, "updated_at")] = f"the change time, stored as {form}"
        else:
            entry["mode"] = "full"
            notes[("tables", k, "mode")] = "no change-time column found: the whole table is read every run"
        entry["columns"] = mapping
        codes, code_notes = _codes(conn, table, schema, mapping, plant)
        if codes:
            entry["codes"] = codes
        if code_notes:
            notes[("tables", k, "codes" if codes else "columns")] = "; ".join(code_notes)[:900]
        left = sorted(set(types) - set(mapping.values()))
        if left:
            said.append(f"not mapped: {', '.join(left)}")
        missing = sorted(set(VOCABULARY[target_name]) - set(mapping))
        if missing:
            said.append(f"{target_name} columns with no source column found: {', '.join(missing)}")
        shown = ", ".join(f"{c} {type(t).__name__}" for c, t in types.items())
        notes[("tables", k)] = (f"{table}: {len(types)} columns ({shown[:400]}{'…' if len(shown) > 400 else ''}); "
                                + "; ".join(said))
        entries.append(entry)
        by_k[k] = table
    order = ["materials", "production_orders", "quality_inspections"]  # a referenced table first
    entries.sort(key=lambda e: order.index(e["target"]))
    notes = {(place[0], [e["table"] for e in entries].index(by_k[place[1]]), *place[2:]) if len(place) > 1 else place: v
             for place, v in notes.items()} if entries else notes
    source: dict[str, Any] = {"name": name, "kind": "erp", "description": f"Discovered on {target}",
                              "connection_id": name, "schedule": "0 * * * *", "lookback_minutes": 60,
                              "tables": entries}
    notes[("connection_id",)] = f"set AIRFLOW_CONN_{name.upper()}=postgresql://<user>:<password>@<host>:5432/<db>"
    notes[()] = (f"{len(described)} table(s); mapped {len(entries)}"
                 + (f"; left to a person (no curated table like them): {', '.join(sorted(unmatched))}" if unmatched else ""))
    if not entries:
        raise ValueError(f"{target}: none of its {len(described)} table(s) resembles production orders, materials or "
                         "inspection results; write the tables block by hand (docs/configuration.md)")
    return Draft(source, notes, {}, {"mapped": len(entries)})


def _best_target(table: str, columns: list[str]) -> tuple[str | None, dict[str, str]]:
    best: tuple[float, str | None, dict[str, str]] = (0, None, {})
    for target_name, vocab in VOCABULARY.items():
        mapping: dict[str, str] = {}
        used: set[str] = set()
        for curated, names in vocab.items():
            hit = next((c for n in names for c in columns if norm(c) == n and c not in used), None)
            if hit:
                mapping[curated] = hit
                used.add(hit)
        score = len(mapping) + (1.5 if any(h in norm(table) for h in TABLE_HINTS[target_name]) else 0)
        key = next(iter(vocab))
        if key in mapping and len(mapping) >= 2 and score > best[0]:
            best = (score, target_name, mapping)
    return best[1], best[2]


def _change_time(conn: Any, table: str, schema: str | None, types: dict[str, Any]) -> tuple[str, str] | None:
    named = [c for c in types if norm(c) in CHANGE_TIME]
    typed = [c for c, t in types.items() if isinstance(t, (sa.DateTime, sa.Date)) and c not in named]
    for col in named + [c for c in typed if re.search(r"chang|updat|modif|aender|geaend", c, re.I)]:
        values = _sample(conn, table, schema, col, 20)
        if values:
            return col, _stored_form(types[col], values)
    return None


def _sample(conn: Any, table: str, schema: str | None, col: str, n: int) -> list[Any]:
    t = sa.table(table, sa.column(col), schema=schema)
    stmt = sa.select(t.c[col]).where(t.c[col].is_not(None)).limit(n)
    return [r[0] for r in conn.execute(stmt)]


def _stored_form(sa_type: Any, values: list[Any]) -> str:
    v = values[0]
    if isinstance(v, datetime):
        return ("a typed timestamp with zone" if v.tzinfo else
                "a typed timestamp without zone (read as the ERP's local time: the site's zone, or `timezone`)")
    if isinstance(v, date):
        return "a date (the cursor moves by whole days)"
    if isinstance(v, (int, float)):
        a = abs(v)
        unit = "microseconds" if a > 1e14 else "milliseconds" if a > 1e11 else "seconds"
        return f"a number: epoch {unit} (e.g. {v})"
    if isinstance(v, str):
        try:
            parsed = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
        except ValueError:
            return f"text that is not ISO 8601 (e.g. {v[:40]!r}): the cursor cannot read it; pick another column"
        return ("ISO 8601 text with offset" if parsed.tzinfo else
                "ISO 8601 text without offset (read as the ERP's local time: the site's zone, or `timezone`)") \
            + f" (e.g. {v[:40]})"
    return f"{type(sa_type).__name__} (e.g. {str(v)[:40]})"


def _codes(conn: Any, table: str, schema: str | None, mapping: dict[str, str],
           plant: Any | None) -> tuple[dict[str, dict[str, str]], list[str]]:
    codes: dict[str, dict[str, str]] = {}
    said: list[str] = []
    for curated in CODED:
        col = mapping.get(curated)
        if col is None:
            continue
        t = sa.table(table, sa.column(col), schema=schema)
        found = [r[0] for r in conn.execute(sa.select(t.c[col]).where(t.c[col].is_not(None)).distinct().limit(51))]
        if len(found) > 50:
            said.append(f"{col} ({curated}): more than 50 distinct values, not a code list")
            continue
        words = WORDS.get(curated, {})
        guessed = {str(v): canon for v in found for canon, spelled in words.items() if norm(str(v)) in spelled}
        if curated in ("line_id", "asset_id") and plant is not None:
            guessed |= _asset_codes(found, plant, "line" if curated == "line_id" else "cell")
        if guessed:
            codes[curated] = guessed
        rest = sorted({str(v) for v in found} - set(guessed))
        if rest:
            allowed = {"status": "planned, released, running, completed, cancelled", "result": "pass, fail"}.get(
                curated, "an asset of the site hierarchy (e.g. assembly/line1)")
            said.append(f"{col} ({curated}) values to map under codes.{curated}: {', '.join(rest[:20])} "
                        f"(to: {allowed})")
    return codes, said


def _asset_codes(values: list[Any], plant: Any, level: str) -> dict[str, str]:
    """Codes that name an asset of that level by its id or name (`line1`, `Line 1`)."""
    prefix = f"{plant.enterprise.id}/{plant.site.id}/"
    by_name = {}
    for a in plant.assets():
        if a["level"] == level:
            rel = a["asset_id"][len(prefix):]
            by_name[norm(a["asset_id"].rsplit("/", 1)[-1])] = rel
            by_name[norm(a["name"])] = rel
    return {str(v): by_name[norm(str(v))] for v in values if norm(str(v)) in by_name}
