"""DuckDB over the lake: a view per declared table over the data files of its current Delta
snapshot, for plantlake's own queries (products, cross-source checks, report) and the analyst
catalog (`plantlake.pipeline.catalog`, the persistent counterpart).

A view reads the snapshot's file list (from the table's log) with DuckDB's own Parquet reader —
no Delta extension, which is a download a plant without internet cannot make — and selects the
declared columns (the owner and partition columns are plantlake's). File paths are SQL string
literals, quoted; `connect` can narrow a table to the date partitions a query needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from plantlake.core.lake import Lake


def literal(text: str) -> str:
    """A SQL string literal (DDL takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duck_type(arrow_type: Any) -> str:
    import duckdb
    import pyarrow as pa

    rel = duckdb.from_arrow(pa.schema([pa.field("x", arrow_type)]).empty_table())
    return str(rel.types[0])


def select_sql(table: Any, files: Sequence[str]) -> str:
    """A query of `table`'s declared columns over `files` (an empty typed query when there are none)."""
    if not files:
        typed = ", ".join(f"cast(null as {duck_type(c.type)}) as {ident(c.name)}" for c in table.columns)
        return f"select {typed} where false"
    cols = ", ".join(ident(c.name) for c in table.columns)
    listed = ", ".join(literal(f) for f in files)
    return f"select {cols} from read_parquet([{listed}], union_by_name = true)"  # noqa: S608 - quoted


def days(first: date, last: date) -> list[str]:
    """The `date` partition values first..last."""
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def connect(lake: Lake, cfg: Any = None, ranges: dict[str, tuple[date, date]] | None = None,
            versions: dict[str, int | None] | None = None) -> Any:
    """A DuckDB connection with a view per declared table (see the module docstring), of the
    date partitions `ranges` names for a table; a table `versions` names is read at that Delta
    version (None: as it was before it existed, empty) instead of its current snapshot."""
    import duckdb
    import pyarrow as pa

    from schemas.tables import TABLES

    con = duckdb.connect()
    for name, table in TABLES.items():
        first, last = (ranges or {}).get(name, (None, None))
        wanted = days(first, last) if table.partition_column and first is not None and last is not None else None
        if versions is not None and name in versions:
            files = [] if versions[name] is None else lake.files(table, wanted, versions[name])
        else:
            files = lake.files(table, wanted)
        con.execute(f"create view {ident(name)} as {select_sql(table, files)}")
    if cfg is not None:
        assets = [r[0] for r in con.execute("select distinct asset_id from sensor_readings union "
                                            "select distinct asset_id from inspection_images union "
                                            "select distinct asset_id from events where asset_id is not null").fetchall()]
        con.register("lines", pa.table({"asset_id": pa.array(assets, pa.string()),
                                        "line_id": pa.array([cfg.line_of(a) for a in assets], pa.string())}))
    return con
