"""The lake store: paths, atomic file writes, the tables (Delta Lake) and state.

Layout under one root (LAKE_ROOT):

    raw/<source>/date=YYYY-MM-DD/<interval>.parquet     exactly what came in (plain Parquet)
    images/ab/<sha256>.<ext>                             content-addressed image copies
    quarantine/_files/ab/<sha256>.<ext>                  bytes of rejected files (e.g. corrupt images)
    curated/<table>/                                     a Delta table per curated table
    quarantine/<table>/                                  a Delta table of each table's rejected rows
    products/<product>/                                  a Delta table per product
    _quality/<table>/, _quality/results/, _quality/docs/ quality tables (Delta), GX results, Data Docs
    _state/<source>/<version>.json                       cursors, versioned (create-only writes)
    _health/<source>/published.json, incident__<kind>.json  last published interval, open incidents
    _staging/                                            written, not yet audited

Files are written to a temporary name, fsynced and renamed into place, so readers see the old
file or the new one, never a partial one. Tables change only by Delta commits
(`plantlake.core.tables`): a run stages its rows under `_staging/`, the audit reads them there,
and one commit publishes them, replacing what an earlier run of the same source and interval
committed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from schemas.model import Table

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 512 * 1024
#: how many versions of a source's state are kept (the newest is the one runs read)
STATE_VERSIONS = 20
#: staging folders older than this belong to runs that died: the next run of the interval removes them
STALE_STAGING_S = 6 * 3600


@dataclass(frozen=True)
class Interval:
    """A half-open data interval [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise ValueError(f"interval {name} must be timezone-aware, got {value!r}")
            v = value.astimezone(UTC)  # plain datetimes: Airflow hands in pendulum objects
            object.__setattr__(self, name, datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=UTC))
        if self.end <= self.start:
            raise ValueError(f"interval end {self.end.isoformat()} is not after start {self.start.isoformat()}")

    @property
    def key(self) -> str:
        """File-name-safe, sortable, unique per interval: 20260102T040000Z_20260102T050000Z."""
        return f"{_stamp(self.start)}_{_stamp(self.end)}"

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"

    @classmethod
    def from_key(cls, key: str) -> Interval:
        start, end = (datetime.strptime(k, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) for k in key.split("_"))
        return cls(start, end)


def _stamp(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%SZ")


# --------------------------------------------------------------------------- atomic files


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(path: Path) -> Path:
    # Hidden and without a .parquet suffix: DuckDB, Polars and pyarrow globs never match it.
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_replace(tmp: Path, final: Path) -> None:
    """Rename an fsynced file into place and make the rename durable."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    fsync_dir(final.parent)


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """zstd everywhere, dictionary encoding for string columns only."""
    import pyarrow as pa

    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return {"compression": "zstd", "compression_level": 3, "use_dictionary": strings or False,
            "write_statistics": True}


def write_parquet(path: Path, tables: Iterable[pa.Table | pa.RecordBatch], schema: pa.Schema,
                  *, atomic: bool = True, compression: str = "zstd") -> int:
    """Stream tables/batches into one Parquet file (fsynced, renamed into place); return rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = _tmp_name(path) if atomic else path
    try:
        with open(target, "wb") as fh:
            rows = write_parquet_stream(fh, tables, schema, compression)
            fh.flush()
            os.fsync(fh.fileno())
        if atomic:
            atomic_replace(target, path)
    except BaseException:
        if atomic:
            target.unlink(missing_ok=True)
        raise
    return rows


def write_parquet_stream(sink: Any, tables: Iterable[pa.Table | pa.RecordBatch], schema: pa.Schema,
                         compression: str = "zstd") -> int:
    """Stream tables/batches as one Parquet file into an open binary sink; return rows."""
    import pyarrow.parquet as pq

    rows = 0
    options = parquet_options(schema)
    if compression != options["compression"]:
        options = {k: v for k, v in options.items() if k != "compression_level"} | {"compression": compression}
    with pq.ParquetWriter(sink, schema, **options) as writer:
        for t in tables:
            if t.num_rows:
                writer.write(t, row_group_size=ROW_GROUP_ROWS)
                rows += t.num_rows
    return rows


def sync_filesystem(path: Path) -> None:
    """Flush everything written to the filesystem holding `path` (Linux syncfs; os.sync elsewhere)."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        fd = os.open(path, os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


@dataclass(frozen=True)
class BlobStore:
    """Content-addressed files under one folder of the lake: `<prefix>/ab/<sha256><suffix>`.

    Picklable, so worker processes write their copies themselves. On local disk a blob is
    renamed into place from a temp file, so its name never shows partial content while the
    writer lives; it is *not* fsynced one by one (two fsyncs a file cost more than the rest of
    the work): whoever lands rows that reference blobs calls `flush()` first, which syncs the
    filesystem once. A blob left short by a crash before that flush is rewritten the next time
    the same content arrives (the size check in `put`). On object storage a blob is one PUT.
    """

    storage: Any  # plantlake.core.storage.LocalStorage | ObjectStorage
    prefix: str

    @property
    def _local(self) -> Path | None:
        return getattr(self.storage, "root", None)

    def key(self, digest: str, suffix: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", digest) or not re.fullmatch(r"(\.[a-z0-9]{1,10})?", suffix):
            raise ValueError(f"not a content address: {digest!r}{suffix!r}")
        return f"{self.prefix}/{digest[:2]}/{digest}{suffix}"

    def put(self, data: bytes, digest: str, suffix: str, *, link_from: Path | None = None) -> str:
        """Store `data` (whose sha256 is `digest`) and return its lake-relative key.

        With `link_from` (the file the bytes were read from) on a local lake, the blob is a hard
        link to it when both are on one filesystem: no copy at all, atomic, but it shares the
        file's inode, so it is only for drop folders whose files are never rewritten in place.
        """
        key = self.key(digest, suffix)
        if self.storage.size(key) == len(data):
            return key
        if self._local is None:
            self.storage.put(key, data)
            return key
        path = self._local / key
        if link_from is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp_name(path)
            try:
                os.link(link_from, tmp)
                if os.stat(tmp).st_size == len(data):  # still the bytes we hashed
                    os.replace(tmp, path)
                    return key
            except OSError:  # another filesystem, or links not allowed: copy
                pass
            finally:
                tmp.unlink(missing_ok=True)
        tmp = _tmp_name(path)
        try:
            try:
                fh = open(tmp, "wb")
            except FileNotFoundError:
                path.parent.mkdir(parents=True, exist_ok=True)
                fh = open(tmp, "wb")
            with fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return key

    def flush(self) -> None:
        """Make every blob written so far durable (one filesystem sync; object storage: nothing to do)."""
        if self._local is not None and (self._local / self.prefix).exists():
            sync_filesystem(self._local / self.prefix)

    def holds(self, key: str) -> bool:
        return key.startswith(f"{self.prefix}/")

    def read(self, key: str) -> bytes:
        """A blob's bytes (FileNotFoundError when it is gone)."""
        if not self.holds(key):
            raise ValueError(f"{key!r} is not a key of the {self.prefix} store")
        return self.storage.get(key)

    def remove(self, key: str) -> None:
        if self.holds(key):
            self.storage.delete(key)


@dataclass(frozen=True)
class FileStores:
    """What a connector that keeps copies of files may touch of the lake, and nothing else (no
    paths): the content-addressed stores for images and for rejected files, and the ids of the
    images the lake already publishes."""

    images: BlobStore
    quarantined: BlobStore
    published_image_ids: Callable[[], set[str]]


# --------------------------------------------------------------------------- staging


@dataclass
class StagedFile:
    path: Path
    rows: int
    #: the `date` partition the file's rows are in (None: merge staging, unpartitioned tables)
    day: str | None = None

    @property
    def label(self) -> str:
        """The file as checks name it: the same for a rerun of the same slice (`date=<day>/<name>`)."""
        return f"date={self.day}/{self.path.name}" if self.day else self.path.name


@dataclass
class Staged:
    """A batch written under _staging/, waiting for audit and publish."""

    table: str
    source: str
    interval: Interval
    files: list[StagedFile] = field(default_factory=list)
    #: an upsert (MERGE) of the source's rows (key_scope 'latest') rather than the interval's own rows
    merge: bool = False
    #: with merge: the staged rows are all the source has (a full refresh drops the rest)
    replace_all: bool = False
    #: with merge: older versions of keys the new rows replaced (within the batch, then in the table)
    superseded: int = 0
    #: unique per staged batch: names its staging folder
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


class Lake:
    """Paths, tables and atomic operations under one lake root: a local folder, or
    `s3://bucket/prefix` on S3-compatible object storage (with `storage_options`, the AWS_* keys
    deltalake and obstore take). Everything the lake holds — tables, raw landings, blobs, state,
    validation results — goes through `storage` and `tables`; `root` is a local folder for what
    is local by nature (staging, the catalog's DuckDB file, Data Docs, the report, the cache of
    an object-storage lake's immutable data files): the lake itself, or `local_dir`."""

    def __init__(self, root: str | Path, storage_options: dict[str, str] | None = None,
                 local_dir: str | Path | None = None) -> None:
        from plantlake.core.storage import LocalStorage, open_storage

        self.storage = open_storage(root, storage_options)
        self.remote = not isinstance(self.storage, LocalStorage)
        self.uri = self.storage.uri()
        if self.remote:
            import hashlib
            import tempfile

            default = Path(tempfile.gettempdir()) / "plantlake" / hashlib.sha256(self.uri.encode()).hexdigest()[:12]
            self.root = Path(local_dir or default).resolve()
        else:
            self.root = Path(root).resolve()
        #: the state version each source's state was read at (read_state), which write_state succeeds
        self._state_read: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    # ---- paths -----------------------------------------------------------------------

    def _within(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"path {'/'.join(parts)!r} escapes the lake root")
        return path

    def curated(self, table: str) -> Path:
        return self._within("curated", safe_name(table))

    def products(self, table: str) -> Path:
        return self._within("products", safe_name(table))

    def table_dir(self, table: Table) -> Path:
        if table.layer == "_quality":
            return self.quality_dir / safe_name(table.name)
        return self.products(table.name) if table.layer == "products" else self.curated(table.name)

    def raw(self, source: str) -> Path:
        return self._within("raw", safe_name(source))

    def quarantine(self, table: str) -> Path:
        return self._within("quarantine", safe_name(table))

    @property
    def images(self) -> BlobStore:
        """Content-addressed copies of source images."""
        return BlobStore(self.storage, "images")

    @property
    def quarantined_files(self) -> BlobStore:
        """Content-addressed copies of files that were rejected whole (corrupt images, ...)."""
        return BlobStore(self.storage, "quarantine/_files")

    def file_stores(self) -> FileStores:
        def published_image_ids() -> set[str]:
            from schemas import get_table

            return set(self.read(get_table("inspection_images"), columns=["image_id"])["image_id"].to_pylist())

        return FileStores(self.images, self.quarantined_files, published_image_ids)

    @property
    def quality_dir(self) -> Path:
        return self._within("_quality")

    @property
    def lineage_file(self) -> Path:
        """The lake's file of the tasks' OpenLineage events (one JSON a line): `_lineage/events.jsonl`
        under its local folder (also for a lake on object storage). A deployment names the file its
        workers append to with `PLANTLAKE_LINEAGE_FILE` (`LINEAGE_FILE_ENV`), which `plantlake
        trace` then reads."""
        return self._within("_lineage", "events.jsonl")

    @property
    def state_dir(self) -> Path:
        return self._within("_state")

    @property
    def staging_dir(self) -> Path:
        return self._within("_staging")

    def ensure(self) -> Lake:
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"lake root {self.root} is a file, not a folder: set lake.root in the site "
                                     "config (or LAKE_ROOT) to a folder")
        local = ("_staging",) if self.remote else (
            "raw", "curated", "quarantine", "products", "images", "_quality", "_state", "_staging")
        for d in local:
            (self.root / d).mkdir(parents=True, exist_ok=True)
        return self

    # ---- raw -------------------------------------------------------------------------

    def raw_key(self, source: str, interval: Interval, chunk: str = "", stream: str = "") -> str:
        """raw/<source>[/<stream>]/date=…/<interval>[__<chunk>].parquet; a chunk is one landing of a
        chunked extract (MQTT), a stream one of several raw tables a source lands (an ERP's tables)."""
        name = f"{interval.key}{'__' + safe_name(chunk) if chunk else ''}.parquet"
        base = f"raw/{safe_name(source)}" + (f"/{safe_name(stream)}" if stream else "")
        return f"{base}/date={interval.start:%Y-%m-%d}/{name}"

    def raw_parts(self, source: str, interval: Interval, stream: str = "") -> list[str]:
        """Every raw file landed for the interval (one, or the parts of chunked landings), as keys."""
        folder = self.raw_key(source, interval, stream=stream).rsplit("/", 1)[0]
        names = (k.rsplit("/", 1)[-1] for k in self.storage.list(folder))
        return sorted(f"{folder}/{n}" for n in names
                      if n == f"{interval.key}.parquet" or (n.startswith(f"{interval.key}__") and n.endswith(".parquet")))

    def write_raw(self, source: str, interval: Interval, batches: Iterable[pa.Table | pa.RecordBatch],
                  schema: pa.Schema, chunk: str = "", stream: str = "") -> tuple[str, int]:
        """Land raw rows durably (local: fsynced and renamed into place; object storage: one PUT);
        returns the file's key and its row count."""
        key = self.raw_key(source, interval, chunk, stream)
        if not self.remote:
            return key, write_parquet(self.root / key, batches, schema)
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        rows = write_parquet_stream(sink, batches, schema)
        self.storage.put(key, sink.getvalue().to_pybytes())
        return key, rows

    def open_raw(self, key: str) -> Any:
        """A landed raw file as pyarrow.parquet reads it: a local path, or the object's bytes."""
        if not self.remote:
            return str(self.root / key)
        import pyarrow as pa

        return pa.BufferReader(self.storage.get(key))

    # ---- tables (Delta Lake, plantlake.core.tables) -------------------------------------------

    @property
    def storage_options(self) -> dict[str, str] | None:
        return dict(self.storage.options) if self.remote else None

    def table_key(self, table: Table) -> str:
        layer = {"_quality": "_quality", "products": "products"}.get(table.layer, "curated")
        return f"{layer}/{safe_name(table.name)}"

    def table_uri(self, table: Table) -> str:
        return self.storage.uri(self.table_key(table))

    def quarantine_uri(self, table: str) -> str:
        return self.storage.uri(f"quarantine/{safe_name(table)}")

    def dataset(self, table: Table, days: Iterable[str] | None = None, version: int | None = None) -> Any:
        """The table's current snapshot (or `version`) as an Arrow dataset, of the `date` partitions
        `days` names when given; None when it has no table yet."""
        from plantlake.core import tables

        return tables.dataset(self.table_uri(table), self.storage_options, days, version)

    def version(self, table: Table) -> int | None:
        from plantlake.core import tables

        t = tables.load(self.table_uri(table), self.storage_options)
        return t.version() if t is not None else None

    def version_at(self, table: Table, when: datetime) -> int | None:
        """The table's version that was current at `when` (None: it had no table yet)."""
        from plantlake.core import tables

        return tables.version_at(self.table_uri(table), self.storage_options, when)

    def files(self, table: Table, days: Iterable[str] | None = None, version: int | None = None) -> list[str]:
        """The data files of the table's current snapshot (or `version`), of the `date` partitions `days` names
        when given (a glob of the table's folder is not a snapshot: it also holds removed files) —
        local paths: an object-storage lake's files are copied into `<root>/_cache/` first (a Delta
        data file never changes once written, so a copy never goes stale)."""
        from plantlake.core import tables

        uris = tables.file_uris(self.table_uri(table), self.storage_options, days, version)
        return [self._cached(u) for u in uris] if self.remote else uris

    def missing_files(self, table: Table, version: int) -> list[str]:
        """The data files of the table's `version` that are no longer in the lake (vacuumed)."""
        from urllib.parse import unquote

        from plantlake.core import tables

        keys = [unquote(u.removeprefix(self.uri + "/"))
                for u in tables.file_uris(self.table_uri(table), self.storage_options, version=version)]
        return [k for k in keys if self.storage.size(k) is None]

    def prune_cache(self, keep: set[str]) -> int:
        """Delete cached copies of an object-storage lake's data files that `keep` (the local paths
        of the snapshots in use) no longer names; returns how many."""
        cache = self.root / "_cache"
        gone = [p for p in cache.rglob("*.parquet") if str(p) not in keep] if cache.exists() else []
        for p in gone:
            p.unlink(missing_ok=True)
        return len(gone)

    def _cached(self, uri: str) -> str:
        from urllib.parse import unquote

        from plantlake.core.storage import LocalStorage

        key = unquote(uri.removeprefix(self.uri + "/"))
        path = self._within("_cache", *key.split("/"))
        if not path.exists():
            LocalStorage(self.root / "_cache").put(key, self.storage.get(key))
        return str(path)

    def read(self, table: Table, date: str | None = None, columns: list[str] | None = None) -> pa.Table:
        """Read a table's current snapshot (or one date partition, or some columns) with the declared schema."""
        import pyarrow as pa

        schema = table.arrow_schema()
        if columns:
            schema = pa.schema([schema.field(c) for c in columns])
        data = self.dataset(table, [date] if date else None)
        if data is None:
            return schema.empty_table()
        return data.to_table(columns=schema.names).cast(schema)

    def read_quarantine(self, table: str) -> pa.Table:
        """Every quarantined row of a table (its current snapshot), with the run that set it aside."""
        from plantlake.core import tables
        from schemas.rejects import QUARANTINE_SCHEMA

        data = tables.dataset(self.quarantine_uri(table), self.storage_options)
        if data is None:
            return QUARANTINE_SCHEMA.empty_table()
        return data.to_table(columns=QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA)

    # ---- write-audit-publish ---------------------------------------------------------------

    def file_name(self, source: str, interval: Interval, slice_label: str = "") -> str:
        if slice_label and not re.fullmatch(r"__p\d{4}", slice_label):
            raise ValueError(f"not a slice label: {slice_label!r}")
        return f"{safe_name(source)}__{interval.key}{slice_label}.parquet"

    def stage(self, table: Table, source: str, interval: Interval, data: pa.Table, *, slice_label: str = "",
              token: str | None = None) -> Staged:
        """Write `data` under _staging/ as the table's data files, to be audited and then committed
        as they are: the declared columns and the owner's, one file per `date` partition
        (`date=<day>/<source>__<interval><slice>.parquet`; in the table the staging token is added
        to the name, which makes it unique among the runs of the interval).

        A run that conforms its interval in slices stages each with its `slice_label`
        (`__p0000`, ...) and the first slice's `token`, so all land in one staging folder
        and are published together."""
        from plantlake.core import tables

        staged = Staged(table.name, source, interval, **({"token": token} if token else {}))
        if data.num_rows:  # no rows, no file: the publish still removes what an earlier run of the interval had
            area = self._staging_area(staged)
            name = self.file_name(source, interval, slice_label)
            rows = tables.with_owner(data.cast(table.arrow_schema()), source, interval.key, None)
            schema = tables.file_schema(table.arrow_schema())
            for day, part in tables.split_days(rows, table.partition_column):
                path = (area / f"{tables.PARTITION}={day}" if day else area) / name
                staged.files.append(StagedFile(path, write_parquet(path, [part], schema), day))
        return staged

    def stage_merge(self, table: Table, source: str, interval: Interval, data: pa.Table,
                    *, replace_all: bool = False) -> Staged:
        """Stage rows to upsert into the source's rows of a key_scope='latest' table: the newest
        version of each key in `data`. With `replace_all` (a full refresh) they are all the source
        will have."""
        from schemas.keys import keep_latest

        assert table.version_column is not None
        staged = Staged(table.name, source, interval, merge=True, replace_all=replace_all)
        if data.num_rows == 0 and not replace_all:
            return staged  # nothing to upsert; a full refresh with no rows empties the source's rows
        latest, staged.superseded = keep_latest(data.cast(table.arrow_schema()), table.primary_key,
                                                table.version_column)
        path = self._staging_area(staged) / f"{safe_name(source)}.parquet"
        staged.files.append(StagedFile(path, write_parquet(path, [latest], table.arrow_schema())))
        return staged

    def publish(self, staged: Staged, run_id: str = "") -> int:
        """Commit the staged rows to the table in one Delta transaction (plantlake.core.tables):
        they replace what an earlier publish of the same source and interval committed (an upsert
        merges them into the source's rows; a full refresh replaces all of the source's rows).
        Returns the table's new version; the staged files are removed."""
        import pyarrow.parquet as pq

        from plantlake.core import tables
        from schemas import get_table

        table = get_table(staged.table)
        meta = self._commit_metadata(table.name, table.version, staged.source, staged.interval, run_id)
        uri, schema = self.table_uri(table), table.arrow_schema()

        def batches() -> Iterator[pa.Table]:
            for f in staged.files:
                yield pq.read_table(f.path, schema=schema)

        if staged.merge and not staged.replace_all:
            if not staged.files:
                version = self.version(table)
                return -1 if version is None else version
            data = next(batches())
            version, replaced = tables.upsert(uri, self.storage_options, data, schema, key=table.primary_key,
                                              version_column=table.version_column or "", source=staged.source,
                                              interval_key=staged.interval.key, partition_column=table.partition_column,
                                              metadata=meta)
            staged.superseded += replaced
        elif staged.merge:  # a full refresh of an upserted table: the source's rows are the staged ones
            version = tables.replace(uri, self.storage_options, batches, schema, source=staged.source,
                                     interval_key=None, partition_column=table.partition_column, metadata=meta)
        else:
            version = self._commit_staged(table, staged, meta)
        self.discard(staged)
        return version

    def _commit_staged(self, table: Table, staged: Staged, meta: dict[str, str]) -> int:
        """Commit staged data files as they are (`tables.publish_files`)."""
        import pyarrow.parquet as pq

        from plantlake.core import tables

        key, schema = self.table_key(table), table.arrow_schema()
        kept = [f for f in staged.files if f.rows]  # a file whose rows the audit all set aside adds nothing
        files = []
        for f in kept:
            name = f"{f.path.stem}__{staged.token}{f.path.suffix}"
            relative = f"{tables.PARTITION}={f.day}/{name}" if f.day else name
            files.append(tables.DataFile(relative, f.path.stat().st_size, f.day,
                                         tables.footer_stats(pq.read_metadata(f.path))))

        def place() -> None:
            for f, d in zip(kept, files, strict=True):
                self.storage.put_file(f"{key}/{d.path}", f.path)

        def unplace() -> None:
            for d in files:
                self.storage.delete(f"{key}/{d.path}")

        def batches() -> Iterator[pa.Table]:
            for f in kept:
                yield pq.read_table(f.path, columns=schema.names, schema=tables.file_schema(schema))

        return tables.publish_files(self.table_uri(table), self.storage_options, files, schema,
                                    source=staged.source, interval_key=staged.interval.key,
                                    partition_column=table.partition_column, metadata=meta,
                                    place=place, unplace=unplace, batches=batches)

    def _commit_metadata(self, table: str, version: int | str, source: str, interval: Interval,
                         run_id: str) -> dict[str, str]:
        return {"plantlake.table": table, "plantlake.schema_version": str(version), "plantlake.source": source,
                "plantlake.interval": interval.key, "plantlake.run_id": run_id}

    def _staging_area(self, staged: Staged) -> Path:
        """A staging folder of this batch alone: two runs of one interval (a backfill overlapping a
        scheduled run) never write into, or clean up, each other's staged files. Folders a crashed
        run of the same interval left behind more than STALE_STAGING_S ago are swept."""
        prefix = f"{safe_name(staged.source)}__{staged.interval.key}__"
        folder = self.staging_dir / staged.table
        if folder.exists():
            for old in folder.glob(prefix + "*"):
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - old.stat().st_mtime > STALE_STAGING_S:
                        shutil.rmtree(old, ignore_errors=True)
        return folder / f"{prefix}{staged.token}"

    def discard(self, staged: Staged) -> None:
        shutil.rmtree(self._staging_area(staged), ignore_errors=True)

    def published_keys(self, table: Table, data: pa.Table, source: str, interval: Interval) -> pa.Table:
        """Primary keys other publishes already hold, within the table's `key_scope`: the same
        source's other intervals, or every other publish. Only partitions `data` touches are read
        when the partition column is part of the key, and only the series `data` holds (the first
        key column's values): a run conformed in slices reads, per slice, its own series' keys."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        from plantlake.core.tables import INTERVAL, SOURCE

        key = list(table.primary_key)
        schema = pa.schema([table.arrow_schema().field(k) for k in key])
        if table.key_scope in ("interval", "latest") or data.num_rows == 0:
            return schema.empty_table()
        days = None
        if table.partition_column in key:
            from plantlake.core.tables import utc_days

            days = [d.isoformat() for d in pc.unique(utc_days(data[table.partition_column])).to_pylist()]
        found = self.dataset(table, days)
        if found is None:
            return schema.empty_table()
        mine = (ds.field(SOURCE) == source) & (ds.field(INTERVAL) == interval.key)
        where = (ds.field(SOURCE) == source) & ~mine if table.key_scope == "source" else ~mine
        if len(key) > 1:
            where &= ds.field(key[0]).isin(pc.unique(data[key[0]]).drop_null())
        return found.to_table(columns=key, filter=where).cast(schema)

    def write_quality_results(self, table: Table, name: str, interval: Interval, data: pa.Table, run_id: str) -> int:
        """One run's rows of a `_quality` table (audit results, cross-source checks), owned by
        `name`; a rerun replaces them. Returns the table's version."""
        from plantlake.core import tables

        meta = self._commit_metadata(table.name, table.version, name, interval, run_id)
        return tables.replace(self.table_uri(table), self.storage_options, lambda: [data], table.arrow_schema(),
                              source=name, interval_key=interval.key, partition_column=table.partition_column,
                              metadata=meta)

    # ---- quarantine --------------------------------------------------------------------

    def write_quarantine(self, table: str, source: str, interval: Interval, rejects: pa.Table,
                         run_id: str) -> int | None:
        """Replace the interval's quarantined rows of a table (removed when a rerun has none);
        the quarantine table's new version, None when it has no table and nothing to add."""
        from plantlake.core import tables
        from schemas.rejects import QUARANTINE_SCHEMA

        meta = self._commit_metadata(f"quarantine/{table}", 1, source, interval, run_id)
        uri = self.quarantine_uri(table)
        if rejects.num_rows == 0 and not tables.owns_rows(uri, self.storage_options, source, interval.key):
            return None  # nothing to add, nothing of an earlier run to remove: no commit
        version = tables.replace(uri, self.storage_options, lambda: [rejects], QUARANTINE_SCHEMA, source=source,
                                 interval_key=interval.key, partition_column="interval_start", metadata=meta)
        return None if version < 0 else version

    # ---- state ---------------------------------------------------------------------------

    def state_path(self, source: str) -> Path:
        """The state file of the first lake layout (one file, replaced by each run); read once."""
        return self.state_dir / f"{safe_name(source)}.json"

    def _state_versions(self, source: str) -> list[int]:
        names = (k.rsplit("/", 1)[-1] for k in self.storage.list(f"_state/{safe_name(source)}"))
        return sorted(int(n.removesuffix(".json")) for n in names if re.fullmatch(r"\d{10}\.json", n))

    def read_state(self, source: str) -> dict[str, Any]:
        """A source's newest state (cursors, claims, Sparkplug births); remembers its version."""
        versions = self._state_versions(source)
        if versions:
            self._state_read[source] = versions[-1]
            return json.loads(self.storage.get(f"_state/{safe_name(source)}/{versions[-1]:010d}.json"))
        self._state_read[source] = 0
        legacy = self.state_path(source)
        return json.loads(legacy.read_text()) if legacy.exists() else {}

    def write_state(self, source: str, state: dict[str, Any]) -> None:
        """Commit a source's state as the version after the one `read_state` returned, only if no
        other run committed that version first (a create-only write: local `link(2)`, S3
        If-None-Match), so two workers on two hosts never overwrite each other's cursor. Raises
        `StateConflict` when one did; keeps the last STATE_VERSIONS versions."""
        from plantlake.core.errors import StateConflict

        read = self._state_read.get(source)
        if read is None:
            versions = self._state_versions(source)
            read = versions[-1] if versions else 0
        new = read + 1
        body = json.dumps(state, indent=2, sort_keys=True, default=str).encode()
        key = f"_state/{safe_name(source)}/{new:010d}.json"
        if not self.storage.create(key, body):
            if json.loads(self.storage.get(key)) == json.loads(body):
                self._state_read[source] = new  # the other run (the same interval, the same input) wrote the same
                return
            raise StateConflict(f"source {source}: another run committed state version {new} after this run read "
                                f"version {read}; this run's rows are published, its state is not — the retry reads "
                                "the newer state")
        self._state_read[source] = new
        for old in self._state_versions(source):
            if old <= new - STATE_VERSIONS:
                self.storage.delete(f"_state/{safe_name(source)}/{old:010d}.json")
        self.state_path(source).unlink(missing_ok=True)  # the first layout's file, now superseded


    # ---- health: each source's last published interval and open incidents -----------------

    @staticmethod
    def _health_key(source: str, name: str = "") -> str:
        """`_health/<source>[/<name>]`: a source's health records."""
        return f"_health/{safe_name(source)}" + (f"/{safe_name(name)}" if name else "")

    def record_published(self, source: str, interval: Interval, run_id: str, rows: int) -> None:
        """A run of `source` ended well for `interval` (with or without rows: an ERP with nothing
        changed has published its interval too). Kept: the newest interval's end a run published,
        so a backfill of an older interval does not make the source look behind."""
        last = self.last_published(source)
        if last is not None and datetime.fromisoformat(last["interval_end"]) > interval.end:
            return
        self.storage.put(self._health_key(source, "published.json"), json.dumps({
            "interval_start": interval.start.isoformat(), "interval_end": interval.end.isoformat(),
            "published_at": datetime.now(UTC).isoformat(), "run_id": run_id, "rows": rows}).encode())

    def last_published(self, source: str) -> dict[str, Any] | None:
        """What `record_published` kept for the source, or None when no run of it has ended well."""
        try:  # one read, not a look and a read (two requests on object storage)
            return json.loads(self.storage.get(self._health_key(source, "published.json")))
        except FileNotFoundError:
            return None

    def open_incident(self, source: str, kind: str, record: dict[str, Any]) -> bool:
        """Open the source's incident of `kind` (a create-only write): True when this call opened it,
        False when it was already open, so whoever gets True sends the one message of the incident."""
        return self.storage.create(self._health_key(source, f"incident__{kind}.json"),
                                   json.dumps(record, sort_keys=True, default=str).encode())

    def open_incidents(self, source: str) -> dict[str, dict[str, Any]]:
        """The source's open incidents by kind."""
        out = {}
        for key in self.storage.list(self._health_key(source)):
            name = key.rsplit("/", 1)[-1]
            if name.startswith("incident__") and name.endswith(".json"):
                with contextlib.suppress(FileNotFoundError):  # closed meanwhile
                    out[name.removeprefix("incident__").removesuffix(".json")] = json.loads(self.storage.get(key))
        return out

    def close_incident(self, source: str, kind: str) -> None:
        self.storage.delete(self._health_key(source, f"incident__{kind}.json"))


#: the environment variable naming the file the tasks' lineage events are appended to
LINEAGE_FILE_ENV = "PLANTLAKE_LINEAGE_FILE"


def safe_name(part: str) -> str:
    """One path segment from config or source data: no separators, no dot-dot, no hidden names."""
    if not part or part in {".", ".."} or "/" in part or "\\" in part or "\x00" in part or part.startswith("."):
        raise ValueError(f"{part!r} is not a safe file or folder name")
    return part
