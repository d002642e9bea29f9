"""Compaction: each day's many small `sensor_readings` files become one sorted file per source.

Hourly (or more frequent) runs and at-least-once redelivery leave a date= partition with a
file per source and interval. `compact_day` rewrites a partition's files of each source into
`<source>__compacted.parquet`: sorted by (asset_id, tag, ts), one row per key, large row
groups. The new partition folder is built under `_staging/`, then it and the live one are
swapped in one atomic step
(`renameat2` RENAME_EXCHANGE): a reader sees the old partition or the new one, never a mix,
never a duplicate. A kill at any point leaves the live partition whole; the half-built folder
under `_staging/` is swept by the next compaction.

Which source a file belongs to comes from the publish manifests (a file name cannot tell
`line` from `line__b`). A compaction manifest (`Lake.compaction_manifest_path`) names the
compacted file, so a later rerun of an interval drops the keys it already holds (the table's
key scope) instead of duplicating them.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from plantlake.core.lake import Lake, exchange_dirs, write_json_atomic, write_parquet
from schemas.model import Table

log = logging.getLogger(__name__)

SUFFIX = "__compacted"


@dataclass
class Compaction:
    table: str
    day: str
    files_before: int
    files_after: int
    rows_before: int
    rows_after: int

    @property
    def duplicates(self) -> int:
        return self.rows_before - self.rows_after


def _owners(lake: Lake, table: Table) -> dict[str, str]:
    """Each published file of the table and the source whose publish (or compaction) wrote it,
    from the manifests (a file name cannot tell `line` from `line__b`)."""
    return {f: manifest["source"] for _, manifest in lake.published_manifests(table.name) for f in manifest["files"]}


def compact_day(lake: Lake, table: Table, day: date) -> Compaction | None:
    """Compact one date= partition of `table` (None when it has no files)."""
    import pyarrow.parquet as pq

    from schemas.keys import dedupe

    part = f"date={day.isoformat()}"
    live = lake.table_dir(table) / part
    work_root = lake.staging_dir / "_compaction" / table.name
    if work_root.exists():  # what a killed compaction left behind
        shutil.rmtree(work_root, ignore_errors=True)
    if not live.exists():
        return None
    schema = table.arrow_schema()
    with lake.partition_lock(table.name, [part]):
        files = sorted(live.glob("*.parquet"))
        if not files:
            return None
        work = work_root / uuid.uuid4().hex[:12] / part
        work.mkdir(parents=True)
        owners = _owners(lake, table)
        by_source: dict[str, list[Path]] = {}
        for f in files:
            source = owners.get(str(f.relative_to(lake.root)))
            if source is None:  # no publish names it: not plantlake's to rewrite, kept as it is
                log.warning("compaction of %s %s leaves %s alone: no manifest names it", table.name, part, f.name)
                shutil.copy2(f, work / f.name)
                continue
            by_source.setdefault(source, []).append(f)
        rows_before = rows_after = 0
        for source, paths in sorted(by_source.items()):
            data = pq.read_table(paths, schema=schema) if len(paths) > 1 else pq.read_table(paths[0], schema=schema)
            rows_before += data.num_rows
            data = data.sort_by([(k, "ascending") for k in table.primary_key])
            data, _ = dedupe(data, table.primary_key)  # sorted input stays sorted
            rows_after += data.num_rows
            name = f"{source}{SUFFIX}.parquet"
            write_parquet(work / name, [data], schema)
            write_json_atomic(lake.compaction_manifest_path(table.name, source, day), {
                "table": table.name, "source": source, "day": day.isoformat(),
                "files": [str((live / name).relative_to(lake.root))], "rows": data.num_rows,
                "replaced": [str(p.relative_to(lake.root)) for p in paths], "compacted_at": datetime.now(UTC)})
        exchange_dirs(work, live)  # the one step readers can observe
    shutil.rmtree(work_root, ignore_errors=True)
    result = Compaction(table.name, day.isoformat(), len(files), len(by_source), rows_before, rows_after)
    log.info("compacted %s %s: %d files -> %d, %d duplicate rows dropped", table.name, part,
             result.files_before, result.files_after, result.duplicates)
    return result


def compacted_days(lake: Lake, table: Table) -> list[str]:
    """Days whose partition holds only compacted files."""
    out = []
    for d in sorted(lake.table_dir(table).glob("date=*")):
        names = [p.name for p in d.glob("*.parquet")]
        if names and all(n.endswith(f"{SUFFIX}.parquet") for n in names):
            out.append(d.name.removeprefix("date="))
    return out


def read_manifest(lake: Lake, table: Table, source: str, day: date) -> dict | None:
    path = lake.compaction_manifest_path(table.name, source, day)
    return json.loads(path.read_text()) if path.exists() else None
