"""`plantlake trace <table> <key…>`: where one row came from.

For a curated row: the row's own references (a node id with its namespace URI, a topic, an
event's source node and condition, a drop-folder file name), the configured source and data
interval that wrote it (the owner columns), the run (`run_id`, when), the raw files that run
landed for the interval, and — from the tasks' OpenLineage events under the lake — the task and
the source system and references it read. For a product row: the build (its manifest: every
input table's version, the settings, the content hash) and the rows it was made of, each traced
the same way (an image row: its capture, its part's inspections, the sensor series of its
window; an order's context: the order).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from plantlake.core.errors import ConfigError
from plantlake.core.lake import LINEAGE_FILE_ENV, Interval, Lake, safe_name

#: columns that name where in the source a row came from
REFERENCES = ("source_ref", "message_id", "source_node", "condition_id", "source_file")
MAX_SERIES = 200


def _value(table: Any, column: str, text: str) -> Any:
    import pyarrow as pa

    typ = table.arrow_schema().field(column).type
    try:
        if pa.types.is_timestamp(typ):
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        if pa.types.is_integer(typ):
            return int(text)
    except ValueError:
        raise ConfigError(f"trace {table.name}: key column {column} is {typ}, not {text!r}") from None
    return text


def _table(name: str) -> Any:
    from schemas import get_table

    try:
        return get_table(name)
    except KeyError as e:
        raise ConfigError(f"trace: {e.args[0]}") from None


def find(lake: Lake, table_name: str, key: list[str]) -> dict[str, Any]:
    """The row of `table_name` whose primary key is `key` (values in key order), with its owner."""
    from plantlake.core.tables import OWNER

    table = _table(table_name)
    if len(key) != len(table.primary_key):
        raise ConfigError(f"trace {table_name}: its key is ({', '.join(table.primary_key)}); got {len(key)} "
                          f"value(s): {key}")
    import duckdb

    from plantlake.core.views import ident, literal

    files = lake.files(table)
    if not files:
        raise ConfigError(f"trace {table_name}: the lake has no {table_name} rows yet")
    where = " and ".join(f"{ident(c)} = ${i + 1}" for i, c in enumerate(table.primary_key))
    cols = ", ".join(ident(c) for c in (*table.column_names, *OWNER))
    sql = (f"select {cols} from read_parquet([{', '.join(literal(f) for f in files)}], union_by_name = true) "  # noqa: S608
           f"where {where}")
    con = duckdb.connect()
    rel = con.execute(sql, [_value(table, c, v) for c, v in zip(table.primary_key, key, strict=True)])
    names = [d[0] for d in rel.description]
    rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    if not rows:
        raise ConfigError(f"trace {table_name}: no row with {dict(zip(table.primary_key, key, strict=True))}")
    return rows[-1]


def lineage_events(lake: Lake, run_id: str, table_key: str) -> list[dict[str, Any]]:
    """The COMPLETE events of tasks that ran as `run_id` and wrote the table at `table_key`."""
    path = Path(os.environ.get(LINEAGE_FILE_ENV) or lake.lineage_file)
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if f'"{run_id}"' not in line:
                continue
            event = json.loads(line)
            facet = event.get("run", {}).get("facets", {}).get("plantlake_run", {})
            if event.get("eventType") != "COMPLETE" or facet.get("run_id") != run_id:
                continue
            if any(o["name"].endswith(table_key) for o in event.get("outputs", [])):
                out.append({
                    "job": f"{event['job']['namespace']}/{event['job']['name']}", "time": event["eventTime"],
                    "openlineage_run": event["run"]["runId"],
                    "read": [{"namespace": i["namespace"], "name": i["name"],
                              **({"version": i["facets"]["version"]["datasetVersion"]}
                                 if "version" in i.get("facets", {}) else {})} for i in event.get("inputs", [])],
                    "source": next((o["facets"]["plantlake_sourceRefs"] for o in event["outputs"]
                                    if "plantlake_sourceRefs" in o.get("facets", {})), None)})
    for e in out:
        if e["source"]:
            e["source"] = {k: v for k, v in e["source"].items() if not k.startswith("_")}
    return out


def trace(lake: Lake, table_name: str, key: list[str], *, window_s: int = 120, depth: int = 1) -> dict[str, Any]:
    """Where the row came from (see the module docstring), as a JSON-able dict."""
    from plantlake.core.tables import INTERVAL, SOURCE

    row = find(lake, table_name, key)
    table = _table(table_name)
    owner, interval_key = row[SOURCE], row[INTERVAL]
    out: dict[str, Any] = {
        "table": table_name, "key": dict(zip(table.primary_key, key, strict=True)),
        "written_by": {"source": owner, "interval": interval_key, "run_id": row.get("run_id"),
                       "ingested_at": str(row.get("ingested_at"))},
        "references": {c: row[c] for c in REFERENCES if row.get(c) is not None},
    }
    if table.layer == "products":
        out["build"] = _build(lake, table_name, row)
        if depth > 0:
            out["made_of"] = _made_of(lake, table_name, row, window_s, depth - 1)
        return out
    if owner not in ("products", "site_config") and interval_key:
        iv = Interval.from_key(interval_key)
        prefix = f"raw/{safe_name(owner)}"
        day = f"date={iv.start:%Y-%m-%d}"
        out["raw_files"] = [k for k in lake.storage.list(prefix)
                            if f"/{day}/" in k and k.rsplit("/", 1)[-1].startswith(iv.key)]
    out["lineage"] = lineage_events(lake, row.get("run_id") or "", lake.table_key(table))
    return out


def _build(lake: Lake, product: str, row: dict[str, Any]) -> dict[str, Any] | None:
    from plantlake.pipeline.products import manifest

    day = Interval.from_key(row["_interval"]).start.date() if row.get("_interval") else None
    found = [m for m in manifest.manifests(lake, product, day) if m.run_id == row.get("run_id")]
    if not found:
        return None
    m = found[-1]
    return {"manifest": m.key, "built_at": m.built_at, "inputs": m.inputs, "settings": m.settings,
            "content_hash": m.content_hash, "version": m.version}


def _made_of(lake: Lake, product: str, row: dict[str, Any], window_s: int, depth: int) -> dict[str, Any]:
    from plantlake.core.views import connect

    if product == "order_context":
        return {"order": trace(lake, "production_orders", [row["order_id"]], depth=depth)}
    con = connect(lake)
    at = row["captured_at"]
    inspections = [r[0] for r in con.execute(
        "select inspection_id from quality_inspections where part_serial = $p order by updated_at",
        {"p": row["part_serial"]}).fetchall()] if row.get("part_serial") else []
    series = con.execute(
        "select asset_id, tag, source_ref, any_value(source_name), count(*) from sensor_readings "
        "where starts_with(asset_id, $line) and ts > $from and ts <= $at group by all order by 1, 2, 3 limit $n",
        {"line": (row.get("line_id") or "\0") + "/", "from": at - timedelta(seconds=window_s), "at": at,
         "n": MAX_SERIES}).fetchall()
    return {
        "capture": trace(lake, "inspection_images", [row["capture_id"]], depth=depth),
        "inspections": [trace(lake, "quality_inspections", [i], depth=depth) for i in inspections],
        "sensor_series": [{"asset_id": a, "tag": t, "source_ref": ref, "source": s, "readings": n}
                          for a, t, ref, s, n in series],
    }
