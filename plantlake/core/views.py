"""DuckDB over the lake, for plantlake's own queries (products, cross-source checks, report).

`connect` registers each declared table as an Arrow dataset of its Parquet files — all of
them, or the date= partitions `days` names for it — so DuckDB scans only what a query needs
(projection and filters pushed down) and no file path is ever spliced into SQL. With a site
config it adds `lines`: each asset of the readings and images with its line. The analyst
catalog (`plantlake.pipeline.catalog`) is the persistent counterpart.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from plantlake.core.lake import Lake


def files(lake: Lake, table: str, first: date | None = None, last: date | None = None) -> list[str]:
    """The table's Parquet files: in the date= partitions first..last when given (all files when
    the table is unpartitioned or no range is given)."""
    from schemas import get_table

    t = get_table(table)
    paths = lake.files(t)
    if t.partition_column is None or first is None or last is None:
        return [str(p) for p in paths]
    days = {f"date={first + timedelta(days=i)}" for i in range((last - first).days + 1)}
    return [str(p) for p in paths if p.parent.name in days]


def connect(lake: Lake, cfg: Any = None, days: dict[str, tuple[date, date]] | None = None) -> Any:
    """A DuckDB connection with a view per declared table (see the module docstring)."""
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as ds

    from schemas.tables import TABLES

    con = duckdb.connect()
    for name, table in TABLES.items():
        first, last = (days or {}).get(name, (None, None))
        con.register(name, ds.dataset(files(lake, name, first, last), format="parquet",
                                      schema=table.arrow_schema()))
    if cfg is not None:
        assets = [r[0] for r in con.execute("select distinct asset_id from sensor_readings union "
                                            "select distinct asset_id from inspection_images").fetchall()]
        con.register("lines", pa.table({"asset_id": pa.array(assets, pa.string()),
                                        "line_id": pa.array([cfg.line_of(a) for a in assets], pa.string())}))
    return con
