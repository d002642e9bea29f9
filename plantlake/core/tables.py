"""The lake's tables are Delta Lake tables (`deltalake`): one commit makes a run's rows visible.

Every declared table (curated, products, `_quality`) and every quarantine table is a Delta table
in its folder of the lake. Its physical schema is the declaration plus three columns plantlake
keeps for itself:

    _source    who wrote the row: the configured source, `products`, `site_config`, an audit
    _interval  the data interval of the run that wrote it (`Interval.key`)
    date       the partition (date32): the UTC day of the table's partition column; partitioned
               tables only

The commit protocol (write-audit-publish's last step):

- `replace`: a run owns exactly the rows carrying its (`_source`, `_interval`). Its publish is one
  `write_deltalake(mode="overwrite", predicate=…)` of those rows: the rows an earlier run of the
  same source and interval committed are removed and the new ones added in one transaction, so a
  rerun replaces and never duplicates, a crash before the commit leaves the table as it was, and
  delta-rs checks that every new row satisfies the predicate. A full refresh owns `_source` alone.
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
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from plantlake.core.errors import Transient
from schemas.model import INTERVAL_COLUMN as INTERVAL
from schemas.model import PARTITION_COLUMN as PARTITION
from schemas.model import SOURCE_COLUMN as SOURCE

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
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
    from deltalake import CommitProperties, write_deltalake

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
                        commit_properties=CommitProperties(custom_metadata=metadata))
        return load(uri, options).version()

    return commit(write, f"publish of {source} {interval_key or '(all)'} to {uri}")


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


def file_uris(uri: str, options: dict[str, str] | None = None, days: Iterable[str] | None = None) -> list[str]:
    """The data files of the table's newest snapshot, of the `date` partitions `days` names when
    given ([] when there is no table)."""
    table = load(uri, options)
    if table is None:
        return []
    if days is None or PARTITION not in table.metadata().partition_columns:
        return table.file_uris()
    days = sorted(set(days))
    return table.file_uris(partition_filters=[(PARTITION, "in", days)]) if days else []


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
