"""`plantlake lake migrate`: an existing plain-Parquet lake (the first layout: a folder of Parquet
files per table, JSON publish manifests under `_state/published/`, flock files under
`_state/locks/`) becomes a lake of Delta tables, in place.

For each table folder that has Parquet files and no `_delta_log`:

1. every file is read with the table's declared schema (columns a file predates come back null)
   and given its owner — the source and interval whose publish wrote it, from the manifest that
   names it, else from its name (`<source>__<interval>[__pNNNN].parquet`, `<source>.parquet` for
   upserts, `<source>__compacted.parquet`); a later rerun of a migrated interval then replaces
   exactly the rows that interval published, as on a lake that was Delta from the start. The rows
   of a day the old compaction merged belong to no one interval any more: they are the source's
   (`_interval` 'compacted'), and a rerun of one of those intervals drops the keys they hold (the
   table's key scope), as the old lake did;
2. the rows are written as a Delta table beside the folder, in one commit;
3. the check: the old files and the new snapshot hold the same rows — the same count and the same
   order-independent digest of every declared column (DuckDB `sum(hash(…))`);
4. only then the old folder moves to `_pre_delta/<layer>/<table>` (delete it once satisfied) and
   the new one takes its name. A failed check leaves the old folder where it was.

Raw files, image blobs and state stay as they are; the manifests and lock files go last.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantlake.core import tables
from plantlake.core.lake import Interval, Lake

log = logging.getLogger(__name__)

KEY = r"\d{8}T\d{6}Z_\d{8}T\d{6}Z"
BACKUP = "_pre_delta"


class MigrationFailed(RuntimeError):
    """The new table does not hold the rows the old files held; the old folder was left in place."""


@dataclass
class Migrated:
    folder: str
    files: int
    rows_before: int
    rows_after: int
    digest_matches: bool


def _interval_key(value: Any) -> str:
    if isinstance(value, list) and len(value) == 2:
        from datetime import datetime

        return Interval(*(datetime.fromisoformat(str(v)) for v in value)).key
    return ""


def _manifest_owners(lake: Lake) -> dict[str, tuple[str, str]]:
    """lake-relative file path -> (source, interval key), from every publish and compaction manifest."""
    owners: dict[str, tuple[str, str]] = {}
    folder = lake.state_dir / "published"
    for path in sorted(folder.rglob("*.json")) if folder.exists() else ():
        manifest = json.loads(path.read_text())
        key = _interval_key(manifest.get("interval")) or ("compacted" if "day" in manifest else "")
        for f in manifest.get("files", []):
            owners[f] = (manifest["source"], key)
    return owners


def _owner_from_name(name: str, table: str, layer: str) -> tuple[str, str]:
    stem = name.removesuffix(".parquet")
    if layer == "_quality":  # audit results: <table>__<source>__<interval>[__pNNNN]; checks: <interval>
        if re.fullmatch(KEY, stem):
            return "cross_source", stem
        m = re.fullmatch(rf"(?P<table>[a-z_]+?)__(?P<source>.+)__(?P<key>{KEY})(?P<slice>__p\d{{4}})?", stem)
        from schemas.tables import TABLES

        if m and m["table"] in TABLES:
            return f"{m['source']}/{m['table']}{m['slice'] or ''}", m["key"]
    m = re.fullmatch(rf"(?P<source>.+)__(?P<key>{KEY})(__p\d{{4}})?", stem)
    if m:
        return m["source"], m["key"]
    if stem.endswith("__compacted"):
        return stem.removesuffix("__compacted"), "compacted"
    return stem, ""


def _digest(con: Any, relation: str, columns: list[str]) -> tuple[int, int]:
    cols = ", ".join(f'"{c}"' for c in columns)
    n, digest = con.execute(f"select count(*), coalesce(sum(hash({cols})::hugeint), 0) from {relation}").fetchone()  # noqa: S608 - declared names
    return int(n), int(digest)


def _read(path: Path, schema: Any) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pq.read_table(path)
    for f in schema:
        if f.name not in data.column_names:
            data = data.append_column(f.name, pa.nulls(data.num_rows, f.type))
    return data.select(schema.names).cast(schema)


def migrate_folder(lake: Lake, folder: Path, layer: str, table_name: str, schema: Any, partition_column: str | None,
                   owners: dict[str, tuple[str, str]]) -> Migrated | None:
    """Convert one table folder; None when it has nothing to convert (no files, or Delta already)."""
    import duckdb
    import pyarrow as pa
    from deltalake import CommitProperties, write_deltalake

    from plantlake.core.views import literal

    if not folder.is_dir() or (folder / "_delta_log").exists():
        return None
    files = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        return None
    parts = []
    for f in files:
        source, key = owners.get(str(f.relative_to(lake.root))) or _owner_from_name(f.name, table_name, layer)
        parts.append(tables.with_owner(_read(f, schema), source, key, partition_column))
    target = tables.physical_schema(schema, partition_column is not None)
    data = pa.concat_tables([p.cast(target) for p in parts])
    new = folder.with_name(f".{folder.name}.delta-migration")
    shutil.rmtree(new, ignore_errors=True)
    write_deltalake(str(new), data, mode="overwrite", partition_by=[tables.PARTITION] if partition_column else None,
                    writer_properties=tables.writer_properties(),
                    commit_properties=CommitProperties(custom_metadata={"plantlake.table": table_name,
                                                                        "plantlake.operation": "migration"}))
    con = duckdb.connect()
    common = set.intersection(*(_read_names(f) for f in files))  # a column some files predate is null there
    columns = [c for c in schema.names if c in common]
    old_list = ", ".join(literal(str(f)) for f in files)
    before = _digest(con, f"read_parquet([{old_list}], union_by_name = true, hive_partitioning = false)", columns)
    new_list = ", ".join(literal(f) for f in tables.file_uris(str(new)))
    after = _digest(con, f"read_parquet([{new_list}], union_by_name = true, hive_partitioning = false)", columns)
    done = Migrated(str(folder.relative_to(lake.root)), len(files), before[0], after[0], before == after)
    if not done.digest_matches:
        shutil.rmtree(new, ignore_errors=True)
        raise MigrationFailed(f"{done.folder}: {before[0]} rows before, {after[0]} in the Delta table, or their "
                              "digests differ; the old folder is untouched")
    backup = lake.root / BACKUP / layer / folder.name
    backup.parent.mkdir(parents=True, exist_ok=True)
    if backup.exists():
        shutil.rmtree(backup)
    folder.rename(backup)
    new.rename(folder)
    log.info("migrated %s: %d files, %d rows; the old files are in %s", done.folder, len(files), done.rows_after,
             backup.relative_to(lake.root))
    return done


def _read_names(path: Path) -> set[str]:
    import pyarrow.parquet as pq

    return set(pq.read_schema(path).names)


def migrate(lake: Lake) -> list[Migrated]:
    """Convert every table folder of the lake (curated, products, `_quality`, quarantine)."""
    from schemas.rejects import QUARANTINE_SCHEMA
    from schemas.tables import TABLES

    if lake.remote:
        raise ValueError(f"{lake.uri}: plantlake lake migrate converts a local plain-Parquet lake in place; migrate it "
                         "where it was written, then copy the Delta tables to object storage")
    owners = _manifest_owners(lake)
    done: list[Migrated] = []
    for table in TABLES.values():
        layer = "_quality" if table.layer == "_quality" else table.layer
        m = migrate_folder(lake, lake.table_dir(table), layer, table.name, table.arrow_schema(),
                           table.partition_column, owners)
        done += [m] if m else []
        q = migrate_folder(lake, lake.quarantine(table.name), "quarantine", table.name, QUARANTINE_SCHEMA,
                           "interval_start", owners)
        done += [q] if q else []
    for leftover in ("published", "locks"):
        shutil.rmtree(lake.state_dir / leftover, ignore_errors=True)
    return done
