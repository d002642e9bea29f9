"""The analyst catalog: a DuckDB database file with one view per table of the lake.

`<lake>/catalog.duckdb` holds a view per curated table, product and quality table over the
data files of its current Delta snapshot (the file list of the table's newest version, read
from its log: DuckDB needs no Delta extension, which is a download a plant without internet
cannot make), with the table's and each column's description from `schemas/tables.py` as
comments, so `DESCRIBE` and `duckdb_columns()` document the lake. A table with no rows yet is
an empty view with its declared columns.

A view names the files of one snapshot, so the catalog is rebuilt after every run's commits (the
runner, the products, compaction); a view is never a glob of the table's folder, which would also
read files that later commits removed. `plantlake sql` rebuilds it before it queries.

An object-storage lake's catalog lives in its local folder (`lake.local_dir`) and its views read
local copies of the snapshot's data files (`Lake.files`; a Delta data file never changes, so a
copy never goes stale; copies no snapshot names any more are pruned at each rebuild). Workers do
not rebuild it after each run: the analysts' `plantlake sql`, the products and compaction do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plantlake.core.lake import Lake
from plantlake.core.views import ident, literal, select_sql

CATALOG = "catalog.duckdb"


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
    listed: set[str] = set()
    try:
        for table in TABLES.values():
            files = lake.files(table)
            listed.update(files)
            con.execute(f"create view {ident(table.name)} as {select_sql(table, files)}")
            con.execute(f"comment on view {ident(table.name)} is {literal(table.description)}")
            for c in table.columns:
                con.execute(f"comment on column {ident(table.name)}.{ident(c.name)} is {literal(c.description)}")
    finally:
        con.close()
    os.replace(tmp, path)
    if lake.remote:
        lake.prune_cache(listed)
    return path


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
