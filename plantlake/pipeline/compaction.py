"""Compaction: a day's many small files of a table become a few large ones (Delta `optimize`).

Hourly (or more frequent) runs leave a `date` partition with a file per source and interval;
audits leave a file per check run in `quality_results`. `compact_day` bin-packs a partition's
files with `optimize.compact()` — one commit: a reader's snapshot holds the old files or the new
ones, never a mix, and a compaction killed before its commit leaves the table as it was (its
half-written files belong to no version and are vacuumed) — then vacuums the files that commits
removed more than `lake.vacuum_retention_hours` ago, so a reader still on an older snapshot keeps
its files for that long.

Every row keeps its owner columns (`_source`, `_interval`), so a later rerun of an interval still
replaces exactly its own rows inside a compacted file. Publishing drops keys the table already
holds (its key scope); compaction counts any duplicate keys it finds in the partition and says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from plantlake.core import tables
from plantlake.core.lake import Lake
from schemas.model import Table

log = logging.getLogger(__name__)

#: how long files a commit removed stay readable for older snapshots (the site config can change it)
RETENTION_HOURS = 24


@dataclass
class Compaction:
    table: str
    day: str
    files_before: int
    files_after: int
    rows: int
    #: rows whose primary key another row of the partition also has (counted, left as they are)
    duplicates: int
    #: files of earlier versions deleted by the vacuum
    vacuumed: int


def compact_day(lake: Lake, table: Table, day: date, retention_hours: int = RETENTION_HOURS) -> Compaction | None:
    """Compact one `date` partition of `table` (its whole table when unpartitioned); None when the
    table has no rows there."""
    label = day.isoformat()
    days = [label] if table.partition_column else None
    files = lake.files(table, days)
    if not files:
        return None
    rows, duplicates = _count_keys(lake, table, files)
    metrics = tables.compact(lake.table_uri(table), lake.storage_options, label if table.partition_column else None,
                             retention_hours)
    after = len(tables.file_uris(lake.table_uri(table), lake.storage_options, days))
    done = Compaction(table.name, label, len(files), after, rows, duplicates, int((metrics or {}).get("vacuumed", 0)))
    log.info("compacted %s %s: %d files -> %d, %d rows, %d files vacuumed", table.name, label, done.files_before, after,
             done.rows, done.vacuumed)
    if done.duplicates:
        log.warning("%s %s holds %d rows whose key another row has (runs of overlapping intervals published "
                    "the same key); they are kept: rerun the intervals concerned to replace them",
                    table.name, label, done.duplicates)
    return done


#: what the duplicate-key count may hold in memory; DuckDB spills the rest to the staging folder
COUNT_MEMORY = "1GB"


def _count_keys(lake: Lake, table: Table, files: list[str]) -> tuple[int, int]:
    """(rows, rows whose key another row has) of a snapshot's `files`, counted by DuckDB in bounded
    memory: a day of 20M rows has more keys than a worker should hold at once."""
    import duckdb

    from plantlake.core.views import ident, select_sql

    scratch = lake.staging_dir / "_compaction"
    scratch.mkdir(parents=True, exist_ok=True)
    key = ", ".join(ident(k) for k in table.primary_key)
    with duckdb.connect(config={"memory_limit": COUNT_MEMORY, "temp_directory": str(scratch)}) as con:
        rows, duplicates = con.execute(
            f"select coalesce(sum(n), 0), coalesce(sum(n - 1), 0) from "  # noqa: S608 - declared names, quoted
            f"(select count(*) as n from ({select_sql(table, files)}) group by {key})").fetchone()
    return int(rows), int(duplicates)


def compact_all(lake: Lake, day: date, retention_hours: int = RETENTION_HOURS) -> list[Compaction]:
    """Compact every table's partition of `day` (unpartitioned tables whole)."""
    from schemas.tables import TABLES

    out = []
    for table in TABLES.values():
        done = compact_day(lake, table, day, retention_hours)
        if done is not None:
            out.append(done)
    return out
