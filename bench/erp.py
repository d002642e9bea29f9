"""ERP: a million-row SQLite table to Parquet — the connector vs the fastest readers, dlt and pandas, same run.

One `inspection_results` table of `--rows` rows (the ERP simulator's schema: text keys,
naive local times, NUMERIC measurements, OK/NOK verdicts) in SQLite. Each contender turns
it into Parquet on local disk, in this process, one after the other, `--repeat` times:

- plantlake: `run_source` for an interval covering the table — ADBC read in Arrow batches,
  raw landing, decode (codes, stations to assets), conform (UTC, casts, ranges), upsert
  into date partitions, audit, atomic publish;
- bare ADBC (the target's reference): the SQLite ADBC driver's `fetch_arrow_table` of the
  whole table and one `pq.write_table` — the reader plantlake itself uses, with nothing else;
- ConnectorX: `read_sql(return_type="arrow")` and one `pq.write_table` — the fastest
  SQL-to-Arrow reader there is, the ceiling;
- dlt: `sql_table(backend="pyarrow")` into the filesystem destination as Parquet (the peer);
- pandas: `read_sql` of the whole table and `to_parquet`.

plantlake does strictly more work per row (it also lands raw, validates and converts); the
ratios are rows/s of plantlake over each of the others.

    python bench/erp.py --rows 1000000 --repeat 3 [--json out.json]
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Contender, Result, arguments, measure, report

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 1, 1)  # site-local, naive, as the ERP stores it


def make_table(path: Path, rows: int) -> None:
    import sqlalchemy as sa

    from simulators.erp import inspection_results, metadata

    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.create_all(engine, tables=[inspection_results])
    engine.dispose()
    con = sqlite3.connect(path)
    fmt = "%Y-%m-%d %H:%M:%S.%f"

    def gen():  # a NOK verdict has its measurement outside the limits, as the audit's verdict rule wants
        for i in range(rows):
            at = (START + timedelta(seconds=2.5 * i)).strftime(fmt)
            line = 1 + i % 2
            ok = i % 23 != 0
            yield (f"QR-{i:08d}", f"PO{line}{i // 100:06d}", f"PO{line}{i // 100:06d}-{i % 100:04d}", f"L{line}-EOL",
                   at, "weld_resistance", 0.45 + (i % 1000) / 5000 if ok else 0.95, 0.3, 0.9, "mOhm",
                   "OK" if ok else "NOK",
                   None if ok else "WELD_CRACK", at)

    con.executemany("insert into inspection_results values (?,?,?,?,?,?,?,?,?,?,?,?,?)", gen())
    con.commit()
    con.close()


def plantlake(db: Path, out: Path, rows: int) -> int:
    from plantlake.core.config import load_config, parse_config
    from plantlake.core.lake import Lake
    from plantlake.pipeline.runner import run_source

    cfg = load_config(ROOT / "plant.yaml")
    data = cfg.model_dump(exclude={"base_dir"}, by_alias=True, exclude_none=True)
    erp = next(s for s in data["sources"] if s["name"] == "erp")
    erp["tables"] = [t for t in erp["tables"] if t["target"] == "quality_inspections"]
    data["sources"] = [erp]
    cfg = parse_config(data, base_dir=out)
    os.environ["AIRFLOW_CONN_PLANT_ERP"] = f"sqlite:///{db}"
    end = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=2.5 * rows + 86400)
    s = run_source("erp", datetime(2025, 12, 1, tzinfo=UTC), end, config=cfg, lake=Lake(out))
    assert s.quarantined == 0, s.describe()
    return s.tables["quality_inspections"].published


def adbc_load(db: Path, out: Path) -> int:
    import adbc_driver_sqlite.dbapi as sqlite_adbc
    import pyarrow.parquet as pq

    with sqlite_adbc.connect(str(db)) as con, con.cursor() as cur:
        cur.execute("select * from inspection_results")
        table = cur.fetch_arrow_table()
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "inspection_results.parquet")
    return table.num_rows


def connectorx_load(db: Path, out: Path) -> int:
    import connectorx as cx
    import pyarrow.parquet as pq

    table = cx.read_sql(f"sqlite://{db}", "select * from inspection_results", return_type="arrow")
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "inspection_results.parquet")
    return table.num_rows


def dlt_load(db: Path, out: Path) -> int:
    import dlt
    from dlt.sources.sql_database import sql_table

    pipeline = dlt.pipeline(pipeline_name="bench_erp", destination=dlt.destinations.filesystem(bucket_url=str(out)),
                            dataset_name="erp", pipelines_dir=str(out / "_dlt"), progress=None)
    info = pipeline.run(sql_table(credentials=f"sqlite:///{db}", table="inspection_results", backend="pyarrow",
                                  chunk_size=100_000), loader_file_format="parquet")
    info.raise_on_failed_jobs()
    return pipeline.last_trace.last_normalize_info.row_counts["inspection_results"]


def pandas_load(db: Path, out: Path) -> int:
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{db}")
    df = pd.read_sql("select * from inspection_results", engine)
    out.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out / "inspection_results.parquet")
    engine.dispose()
    return len(df)


def main() -> None:
    args = arguments(__doc__, rows=1_000_000, repeat=3).parse_args()
    import dlt  # noqa: F401 - imported before timing, like great_expectations is by plantlake's first run
    import great_expectations  # noqa: F401

    from plantlake.core import airflow_lib

    airflow_lib.load("airflow.sdk", "Connection")  # a task process has Airflow loaded: its import (1 s) is not the run's

    work = Path(tempfile.mkdtemp(prefix="plantlake-bench-erp-"))
    try:
        t = time.perf_counter()
        make_table(work / "erp.sqlite", args.rows)
        built_s = time.perf_counter() - t
        ours = Contender("plantlake", "plantlake", "plantlake ERP connector (ADBC, land, conform, upsert, audit)")
        peer = Contender("dlt", "peer", "dlt sql_table(backend=pyarrow) -> filesystem Parquet")
        pandas = Contender("pandas", "baseline", "bare pandas read_sql + to_parquet")
        adbc = Contender("adbc", "baseline", "bare ADBC (SQLite driver) fetch_arrow_table + pq.write_table")
        cx = Contender("connectorx", "baseline", "bare ConnectorX read_sql(arrow) + pq.write_table")
        db = work / "erp.sqlite"
        runs = {"plantlake": lambda o: plantlake(db, o, args.rows), "dlt": lambda o: dlt_load(db, o),
                "pandas": lambda o: pandas_load(db, o), "adbc": lambda o: adbc_load(db, o),
                "connectorx": lambda o: connectorx_load(db, o)}
        order = (ours, adbc, cx, peer, pandas)
        for i in range(args.repeat):
            for who in (order if i % 2 == 0 else order[::-1]):
                out = work / f"{who.name}-{i}"
                measure(who, lambda o=out, f=runs[who.name]: f(o), args.rows)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(Result(
        "erp", f"one {args.rows:,}-row inspection_results table in SQLite (the ERP simulator's schema) to Parquet",
        "rows", args.rows, args.repeat, [ours, adbc, cx, pandas, peer], target=0.5, target_vs="adbc",
        target_text="ERP table >= 0.5x the bare ADBC read + write_table, doing all plantlake does",
        notes=[f"table built in {built_s:.1f} s (not timed)"]), args.json)


if __name__ == "__main__":
    main()
