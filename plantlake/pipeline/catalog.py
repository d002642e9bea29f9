"""The analyst catalog: a DuckDB database file with one view per table of the lake.

`<lake>/catalog.duckdb` holds a view per curated table, product and quality table over its
Parquet files (Hive partitions), with the table's and each column's description from
`schemas/tables.py` as comments, so `DESCRIBE` and `duckdb_columns()` document the lake.
A table with no files yet is an empty view with its declared columns. The views read the
files at query time, so a publish only needs the catalog rebuilt when a table appears;
`build_catalog` is cheap and is run after publishes anyway (products DAG, demo, `plantlake sql`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plantlake.core.lake import Lake

CATALOG = "catalog.duckdb"


def _literal(text: str) -> str:
    """A SQL string literal (DDL takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_catalog(lake: Lake) -> Path:
    """(Re)write the catalog; return its path. Written beside and renamed into place, so a
    reader never opens a half-built catalog."""
    import os

    import duckdb

    from schemas.tables import TABLES

    path = lake.root / CATALOG
    tmp = path.with_name(f".{CATALOG}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for table in TABLES.values():
            base = lake.table_dir(table)
            files = sorted(base.rglob("*.parquet")) if base.exists() else []
            cols = ", ".join(_ident(c.name) for c in table.columns)
            if files:
                glob = base / ("*/*.parquet" if table.partition_column else "*.parquet")
                source = f"read_parquet({_literal(str(glob))}, hive_partitioning = true, union_by_name = true)"
                con.execute(f"create view {_ident(table.name)} as select {cols} from {source}")  # noqa: S608 - quoted
            else:
                typed = ", ".join(f"cast(null as {_duck_type(c.type)}) as {_ident(c.name)}" for c in table.columns)
                con.execute(f"create view {_ident(table.name)} as select {typed} where false")  # noqa: S608 - quoted
            con.execute(f"comment on view {_ident(table.name)} is {_literal(table.description)}")
            for c in table.columns:
                con.execute(f"comment on column {_ident(table.name)}.{_ident(c.name)} is {_literal(c.description)}")
    finally:
        con.close()
    os.replace(tmp, path)
    return path


def _duck_type(arrow_type: Any) -> str:
    import duckdb
    import pyarrow as pa

    schema = pa.schema([pa.field("x", arrow_type)])
    rel = duckdb.from_arrow(schema.empty_table())
    return str(rel.types[0])


def query(lake: Lake, sql: str) -> Any:
    """Run `sql` against the catalog (read only); return a DuckDB relation's Arrow table."""
    import duckdb

    path = lake.root / CATALOG
    if not path.exists():
        build_catalog(lake)
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()
