"""The lake's tables are Delta Lake tables (`deltalake`): one commit makes a run's rows visible.

Every declared table (curated, products, `_quality`) and every quarantine table is a Delta table
in its folder of the lake. Its physical schema is the declaration plus three columns plantlake
keeps for itself:

    _source    who wrote the row: the configured source, `products`, `site_config`, an audit
    _interval  the data interval of the run that wrote it (`Interval.key`)
    date       the partition (date32): the UTC day of the table's partition column; partitioned
               tables only

The commit protocol (write-audit-publish's last step):

- `replace`: a run owns exactly the rows carrying its (`_source`, `_interval`). The run's staged
  files are already the table's data files (declared columns plus the owner columns, one file per
  `date` partition, zstd; `Lake.stage`), so its publish commits them as they are, audited:
  `publish_files` places them in the table's folder and commits, in one transaction, an AddAction
  per file (statistics from its Parquet footer) and a RemoveAction per file of the snapshot that
  holds this owner's rows alone — the rows an earlier run of the same source and interval
  committed. A rerun replaces and never duplicates; a crash before the commit leaves the table as
  it was (placed files no version names are what vacuum deletes). When the snapshot has a file
  that holds the owner's rows beside other rows (compaction bin-packs owners together), or no
  statistics say, or the table's schema grows, the publish is one
  `write_deltalake(mode="overwrite", predicate=…)` of the same rows instead (`replace`), which
  rewrites such files without the owner's rows. A full refresh owns `_source` alone.
- `upsert` (tables with key_scope 'latest'): one MERGE on the primary key, the owner and the
  partition column; a key's row is replaced only by a version at least as new (`version_column`).
- A commit that conflicts with another writer's (two workers, two hosts) is tried again after a
  bounded, jittered backoff (`COMMIT_TRIES`); delta-rs retries the commits that do not conflict.
- Readers read a snapshot (a version's file list from the log), never a glob of the folder:
  files a later commit removed stay on disk until `vacuum` deletes them after the retention.

The table's name and schema version are written into every commit's metadata (`plantlake.table`,
`plantlake.schema_version`) beside the run that made it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from plantlake.core.errors import Transient
from schemas.model import INTERVAL_COLUMN as INTERVAL
from schemas.model import PARTITION_COLUMN as PARTITION
from schemas.model import SOURCE_COLUMN as SOURCE

if TYPE_CHECKING:
    from datetime import datetime

    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

log = logging.getLogger(__name__)

#: the columns plantlake adds to every table's declared ones
OWNER = (SOURCE, INTERVAL)
#: a conflicting commit is tried this many times in all, waiting BACKOFF_S * 2**n (jittered, capped)
COMMIT_TRIES = 8
BACKOFF_S = 0.05
BACKOFF_MAX_S = 2.0
ROW_GROUP_ROWS = 512 * 1024

T = TypeVar("T")


class CommitConflict(Transient):
    """Another writer kept committing to the same rows of a table; the task's retry tries again."""


def literal(value: str) -> str:
    """A SQL string literal for a delta-rs predicate (the value never ends the string)."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def owner_predicate(source: str, interval_key: str | None = None, alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    pred = f"{a}{SOURCE} = {literal(source)}"
    return pred if interval_key is None else f"{pred} AND {a}{INTERVAL} = {literal(interval_key)}"


def owner_commit(metadata: dict[str, str], source: str, interval_key: str | None) -> Any:
    """Commit properties naming the owner as a Delta application transaction (`txn` action): two
    writers replacing the same owner's rows at once conflict — the later one is tried again on
    the newer snapshot, so it removes what the first added — where two appends would not."""
    from deltalake import CommitProperties, Transaction

    return CommitProperties(custom_metadata=metadata, app_transactions=[
        Transaction(f"plantlake:{source}:{interval_key if interval_key is not None else '*'}",
                    int(time.time() * 1000))])


def writer_properties() -> Any:
    from deltalake import WriterProperties

    return WriterProperties(compression="ZSTD", compression_level=3, max_row_group_size=ROW_GROUP_ROWS)


def physical_schema(schema: pa.Schema, partitioned: bool) -> pa.Schema:
    """A declared Arrow schema plus the owner columns and, when partitioned, `date`."""
    import pyarrow as pa

    fields = [*schema, pa.field(SOURCE, pa.string(), nullable=False), pa.field(INTERVAL, pa.string(), nullable=False)]
    if partitioned:
        fields.append(pa.field(PARTITION, pa.date32(), nullable=False))
    return pa.schema(fields)


def with_owner(data: pa.Table | pa.RecordBatch, source: str, interval_key: str,
               partition_column: str | None) -> pa.Table:
    """`data` with the owner columns and the partition column appended."""
    import pyarrow as pa

    from schemas.lineage import constant

    table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
    n = table.num_rows
    table = table.append_column(pa.field(SOURCE, pa.string(), nullable=False), constant(source, n))
    table = table.append_column(pa.field(INTERVAL, pa.string(), nullable=False), constant(interval_key, n))
    if partition_column is not None:
        table = table.append_column(pa.field(PARTITION, pa.date32(), nullable=False), utc_days(table[partition_column]))
    return table


def file_schema(schema: pa.Schema) -> pa.Schema:
    """The columns of a data file: the declared ones and the owner's (`date` lives in the path)."""
    return physical_schema(schema, partitioned=False).with_metadata(schema.metadata)


def split_days(rows: pa.Table, partition_column: str | None) -> Iterator[tuple[str | None, pa.Table]]:
    """(`date` value, rows) per UTC day of `partition_column`, in day order, rows in their order
    within a day; (None, rows) for an unpartitioned table."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if partition_column is None:
        yield None, rows
        return
    days = utc_days(rows[partition_column])
    if days.null_count:
        raise ValueError(f"{partition_column}: {days.null_count} rows have no time to partition by")
    ordered = len(days) < 2 or pc.all(pc.less_equal(days[:-1], days[1:])).as_py()
    if not ordered:
        order = pc.sort_indices(days)  # stable
        rows, days = rows.take(order), days.take(order)
    values = days.combine_chunks() if isinstance(days, pa.ChunkedArray) else days
    runs = pc.run_end_encode(values.cast(pa.int32()))
    start = 0
    for end, day in zip(runs.run_ends.to_pylist(), runs.values.cast(pa.date32()).to_pylist(), strict=True):
        yield day.isoformat(), rows.slice(start, end - start)
        start = end


def utc_days(timestamps: Any) -> Any:
    """The `date` partition values of a timestamp column: each value's UTC day (date32)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(pc.cast(timestamps, pa.timestamp("us", tz="UTC")), pa.date32())


def commit(action: Callable[[], T], what: str) -> T:
    """Run a commit, again after a jittered backoff while it conflicts with another writer's."""
    from deltalake.exceptions import CommitFailedError

    for attempt in range(COMMIT_TRIES):
        try:
            return action()
        except CommitFailedError as e:
            if attempt == COMMIT_TRIES - 1:
                raise CommitConflict(f"{what}: the commit conflicted with other writers {COMMIT_TRIES} times "
                                     f"({e}); nothing of this run was committed") from e
            delay = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** attempt) * (0.5 + random.random())
            log.info("%s: commit conflict (%s), trying again in %.2f s", what, e, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def load(uri: str, options: dict[str, str] | None = None, version: int | None = None) -> DeltaTable | None:
    """The table at `uri` (its newest version, or `version`), or None when there is none yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(uri, version=version, storage_options=options)
    except TableNotFoundError:
        return None


def replace(uri: str, options: dict[str, str] | None, batches: Callable[[], Iterable[pa.Table]],
            schema: pa.Schema, *, source: str, interval_key: str | None, partition_column: str | None,
            metadata: dict[str, str]) -> int:
    """Replace the rows owned by (`source`, `interval_key`) — by `source` alone when the key is
    None — with `batches` (a factory: a retried commit reads them again), in one commit; returns
    the table's new version. No batches: the owner's rows are removed."""
    import pyarrow as pa
    from deltalake import write_deltalake

    target = physical_schema(schema, partition_column is not None)
    key = interval_key or ""

    def reader() -> pa.RecordBatchReader:
        def gen() -> Iterable[pa.RecordBatch]:
            for t in batches():
                yield from with_owner(t.cast(schema), source, key, partition_column).cast(target).to_batches()
        return pa.RecordBatchReader.from_batches(target, gen())

    def write() -> int:
        data: Any = reader()
        if load(uri, options) is None:  # nothing to write creates no table; the first rows create it
            data = data.read_all()
            if data.num_rows == 0:
                return -1
        write_deltalake(uri, data, mode="overwrite", predicate=owner_predicate(source, interval_key),
                        partition_by=[PARTITION] if partition_column else None, schema_mode="merge",
                        writer_properties=writer_properties(), storage_options=options,
                        commit_properties=owner_commit(metadata, source, interval_key))
        return load(uri, options).version()

    return commit(write, f"publish of {source} {interval_key or '(all)'} to {uri}")


@dataclass(frozen=True)
class DataFile:
    """A staged data file, to be committed as it is."""

    #: relative to the table's folder: `date=2026-03-01/<name>.parquet`, or `<name>.parquet`
    path: str
    size: int
    #: the `date` partition value, None in an unpartitioned table
    day: str | None
    #: the AddAction's statistics (numRecords, minValues, maxValues, nullCount) as JSON
    stats: str


def footer_stats(metadata: pq.FileMetaData) -> str:
    """Delta statistics of a Parquet file from its footer (no data is read): row count and, per
    top-level column whose every row group has statistics, min, max and null count. Timestamps are
    widened to whole milliseconds (Delta's precision); a column without usable statistics is
    left out, which makes readers read the file instead of skipping it."""
    import json
    import math
    from datetime import UTC, date, datetime, timedelta

    def ms(value: datetime, up: bool) -> str:
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        floor = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if up and floor != value:
            floor += timedelta(milliseconds=1)
        return floor.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def plain(value: Any, up: bool) -> Any:
        if isinstance(value, datetime):
            return ms(value, up)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bytes | bytearray) or (isinstance(value, float) and not math.isfinite(value)):
            return None
        return value

    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    arrow = metadata.schema.to_arrow_schema()
    for i in range(metadata.num_columns):
        name = metadata.schema.column(i).path
        if "." in name or name not in arrow.names:
            continue  # nested: no statistics
        low = high = None
        count, usable = 0, metadata.num_row_groups > 0
        for g in range(metadata.num_row_groups):
            st = metadata.row_group(g).column(i).statistics
            if st is None or not st.has_null_count:
                usable = False
                break
            count += st.null_count
            if st.has_min_max:
                lo, hi = plain(st.min, False), plain(st.max, True)
                if lo is None or hi is None:
                    usable = False
                    break
                low = lo if low is None or lo < low else low
                high = hi if high is None or hi > high else high
            elif st.null_count != metadata.row_group(g).num_rows:
                usable = False
                break
        if not usable:
            continue
        nulls[name] = count
        if low is not None:
            lows[name], highs[name] = low, high
    return json.dumps({"numRecords": metadata.num_rows, "minValues": lows, "maxValues": highs, "nullCount": nulls},
                      separators=(",", ":"))


def owner_files(table: DeltaTable, source: str, interval_key: str | None) -> list[Any] | None:
    """RemoveActions for the snapshot's files that hold rows of this owner alone; None when a
    file may hold the owner's rows beside others' (or has no owner statistics to tell)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake.transaction import RemoveAction

    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return []
    columns = [(SOURCE, source)] + ([(INTERVAL, interval_key)] if interval_key is not None else [])
    may, alone = pa.scalar(True), pa.scalar(True)
    for column, value in columns:
        if f"min.{column}" not in actions.column_names:
            return None
        low, high = actions[f"min.{column}"], actions[f"max.{column}"]
        # a file without statistics for the column may hold anything
        may = pc.and_kleene(may, pc.fill_null(pc.and_(pc.less_equal(low, value), pc.greater_equal(high, value)), True))
        alone = pc.and_kleene(alone, pc.fill_null(pc.and_(pc.equal(low, value), pc.equal(high, value)), False))
    if pc.any(pc.and_(may, pc.invert(alone))).as_py():
        return None
    mine = actions.filter(alone)
    now = int(time.time() * 1000)
    days = mine[f"partition.{PARTITION}"].to_pylist() if f"partition.{PARTITION}" in mine.column_names else None
    return [RemoveAction(path, data_change=True, deletion_timestamp=now, size=size,
                         partition_values={PARTITION: str(days[i])} if days is not None else {})
            for i, (path, size) in enumerate(zip(mine["path"].to_pylist(), mine["size_bytes"].to_pylist(), strict=True))]


def publish_files(uri: str, options: dict[str, str] | None, files: list[DataFile], schema: pa.Schema, *,
                  source: str, interval_key: str, partition_column: str | None, metadata: dict[str, str],
                  place: Callable[[], None], unplace: Callable[[], None],
                  batches: Callable[[], Iterable[pa.Table]]) -> int:
    """Commit staged data files (`files`, written by `Lake.stage`) as the rows of (`source`,
    `interval_key`), replacing that owner's earlier rows, in one transaction; returns the table's
    new version (-1: no table and nothing to write). `place` puts the files into the table's
    folder before the commit; when the commit cannot take them as they are (see the module
    docstring), `unplace` takes them out again and `replace` writes `batches` (the declared
    columns) instead."""
    from deltalake import Schema
    from deltalake.exceptions import CommitFailedError, DeltaError
    from deltalake.transaction import AddAction, create_table_with_add_actions

    partition_by = [PARTITION] if partition_column else None
    names = {*file_schema(schema).names, *(partition_by or [])}
    placed = False

    def attempt() -> int | None:
        nonlocal placed
        table = load(uri, options)
        if table is None and not files:
            return -1
        if table is not None and set(table.schema().to_arrow().names) != names:
            return None  # the schema grows (or shrank): delta-rs merges it
        removes = owner_files(table, source, interval_key) if table is not None else []
        if removes is None:
            return None
        if table is not None and not files and not removes:
            return table.version()
        if not placed:
            place()
            placed = True
        now = int(time.time() * 1000)
        adds = [AddAction(f.path, f.size, {PARTITION: f.day} if f.day is not None else {}, now, True, f.stats)
                for f in files]
        properties = owner_commit(metadata, source, interval_key)
        if table is None:
            try:
                create_table_with_add_actions(uri, Schema.from_arrow(physical_schema(schema, partition_column is not None)),
                                              adds, mode="error", partition_by=partition_by,
                                              storage_options=options, commit_properties=properties)
            except DeltaError as e:
                if "already exists" not in str(e):
                    raise
                raise CommitFailedError(f"another writer created {uri} first") from e
            return load(uri, options).version()
        table.create_write_transaction([*adds, *removes], mode="append", schema=table.schema(),
                                       partition_by=partition_by, commit_properties=properties)
        table.update_incremental()  # the version this commit made (or a later writer's)
        return table.version()

    try:
        version = commit(attempt, f"publish of {source} {interval_key} to {uri}")
    except CommitConflict:
        if placed:
            unplace()
        raise
    if version is not None:
        return version
    if placed:
        unplace()
    return replace(uri, options, batches, schema, source=source, interval_key=interval_key,
                   partition_column=partition_column, metadata=metadata)


def upsert(uri: str, options: dict[str, str] | None, data: pa.Table, schema: pa.Schema, *, key: tuple[str, ...],
           version_column: str, source: str, interval_key: str, partition_column: str | None,
           metadata: dict[str, str]) -> tuple[int, int]:
    """MERGE `data` (one row per key) into the source's rows: a key's row is replaced by a version
    at least as new, new keys are inserted. Returns (the new version, rows replaced)."""
    from deltalake import CommitProperties, write_deltalake

    rows = with_owner(data.cast(schema), source, interval_key, partition_column).cast(
        physical_schema(schema, partition_column is not None))
    on = [*key, SOURCE, *([PARTITION] if partition_column else [])]
    predicate = " AND ".join(f"t.{ident(c)} = s.{ident(c)}" for c in on)

    def merge() -> tuple[int, int]:
        table = load(uri, options)
        if table is None:
            write_deltalake(uri, rows, mode="append", partition_by=[PARTITION] if partition_column else None,
                            writer_properties=writer_properties(), storage_options=options,
                            commit_properties=CommitProperties(custom_metadata=metadata))
            return load(uri, options).version(), 0
        metrics = (table.merge(rows, predicate, source_alias="s", target_alias="t", merge_schema=True,
                               writer_properties=writer_properties(),
                               commit_properties=CommitProperties(custom_metadata=metadata))
                   .when_matched_update_all(predicate=f"s.{ident(version_column)} >= t.{ident(version_column)}")
                   .when_not_matched_insert_all()
                   .execute())
        return table.version(), int(metrics.get("num_target_rows_updated", 0))

    return commit(merge, f"upsert of {source} into {uri}")


def dataset(uri: str, options: dict[str, str] | None = None, days: Iterable[str] | None = None,
            version: int | None = None) -> ds.Dataset | None:
    """An Arrow dataset of a snapshot (the newest, or `version`), of the `date` partitions `days`
    names when given; None when the table does not exist."""
    table = load(uri, options, version)
    if table is None:
        return None
    partitions = None
    if days is not None:
        days = sorted(set(days))
        if not days:
            return table.to_pyarrow_dataset(partitions=[(PARTITION, "in", ["1970-01-01"])])
        if PARTITION in table.metadata().partition_columns:
            partitions = [(PARTITION, "in", days)]
    return table.to_pyarrow_dataset(partitions=partitions)


def owns_rows(uri: str, options: dict[str, str] | None, source: str, interval_key: str) -> bool:
    """Whether the table holds rows of this owner (file statistics skip most files unread)."""
    import pyarrow.dataset as ds

    data = dataset(uri, options)
    return data is not None and data.count_rows(
        filter=(ds.field(SOURCE) == source) & (ds.field(INTERVAL) == interval_key)) > 0


def file_uris(uri: str, options: dict[str, str] | None = None, days: Iterable[str] | None = None,
              version: int | None = None) -> list[str]:
    """The data files of the table's newest snapshot (or `version`), of the `date` partitions `days`
    names when given ([] when there is no table)."""
    table = load(uri, options, version)
    if table is None:
        return []
    if days is None or PARTITION not in table.metadata().partition_columns:
        return table.file_uris()
    days = sorted(set(days))
    return table.file_uris(partition_filters=[(PARTITION, "in", days)]) if days else []


def version_at(uri: str, options: dict[str, str] | None, when: datetime) -> int | None:
    """The table's version that was current at `when` (None: the table did not exist yet)."""
    table = load(uri, options)
    if table is None:
        return None
    versions = [(h["version"], h["timestamp"]) for h in table.history()]
    at = int(when.timestamp() * 1000)
    current = [v for v, ms in versions if ms <= at]
    return max(current) if current else None


def compact(uri: str, options: dict[str, str] | None, day: str | None, retention_hours: int) -> dict[str, Any] | None:
    """Bin-pack the small files of one `date` partition (or the whole table) into large ones with
    `optimize.compact()` — one commit, readers see the old files or the new ones — then vacuum
    files removed more than `retention_hours` ago. None when the table does not exist."""
    from deltalake import CommitProperties

    table = load(uri, options)
    if table is None:
        return None
    partitioned = PARTITION in table.metadata().partition_columns
    filters = [(PARTITION, "=", day)] if day and partitioned else None
    metrics = commit(lambda: load(uri, options).optimize.compact(
        partition_filters=filters, writer_properties=writer_properties(),
        commit_properties=CommitProperties(custom_metadata={"plantlake.operation": "compaction"})),
        f"compaction of {uri}")
    removed = load(uri, options).vacuum(retention_hours=retention_hours, dry_run=False,
                                        enforce_retention_duration=False)
    return {**metrics, "vacuumed": len(removed)}
