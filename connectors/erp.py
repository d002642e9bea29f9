"""ERP tables: SQL through SQLAlchemy (Arrow batches via ADBC where a driver exists) and CSV exports.

Each configured table is one raw stream. SQL tables are read incrementally: the rows whose
last-change column falls in the data interval widened by the look-back window (a row
committed late with an older timestamp is still seen), or whole (`mode: full`). The
statement is built with SQLAlchemy Core, so table and column names from the config are
quoted identifiers and the interval travels as bound parameters, never as SQL text.
SQLite and PostgreSQL are read with ADBC (`fetch_record_batch`: Arrow straight from the
driver, in batches); any other database SQLAlchemy knows is streamed through it.

Before reading, the table is reflected: a mapped column that is gone, or whose type family
changed since the last run, fails the run naming table and column (`SchemaDrift`); a new
column is reported and, with `new_columns: carry`, landed in raw too. CSV exports are
claimed per interval like every drop folder and read as text in their declared dialect.

Decode renames source columns to the curated ones, maps codes (status 40 -> completed),
resolves line and station codes to ISA-95 assets and parses the dialect's numbers and
times; conform then casts, checks ranges and references, and the runner upserts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from connectors.base import Connector, Decoded, Extract
from connectors.csv_export import normalize_number, read_header, read_text_csv
from connectors.files import claim
from plantlake.lake import Interval
from schemas import get_table
from schemas.conform import Rejects

log = logging.getLogger(__name__)

ASSET_COLUMNS = ("line_id", "asset_id")
WITNESS = "plantlake_type_witness"
#: SQLite: the storage class each type family is read as (anything else as TEXT), and a witness value
SQLITE_CAST = {"integer": sa.Integer(), "bool": sa.Integer(), "number": sa.Float()}
SQLITE_WITNESS = {"integer": 0, "bool": 0, "number": 0.0}
META = ("_file", "_line")


class SourceUnavailable(ConnectionError):
    """The ERP database cannot be reached: retriable."""


class SchemaDrift(ValueError):
    """A mapped source column is gone or changed type: the mapping needs a person."""


def _family(sa_type: Any) -> str:
    """A coarse type family, stable across drivers: what a mapping depends on."""
    for cls, name in ((sa.Boolean, "bool"), (sa.Integer, "integer"), (sa.Numeric, "number"), (sa.Float, "number"),
                      (sa.DateTime, "datetime"), (sa.Date, "date"), (sa.String, "text"), (sa.Text, "text")):
        if isinstance(sa_type, cls):
            return name
    return type(sa_type).__name__.lower()


class ErpConnector(Connector):
    kind = "erp"
    tables = ("materials", "production_orders", "quality_inspections")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = ZoneInfo(self.timezone)
        self.stats: dict[str, Any] = {}
        self._engine: Any = None
        self._adbc: Any = None

    # ---- connections ---------------------------------------------------------------------

    def sqlalchemy_url(self) -> Any:
        c = self.connection
        if c is None:
            raise ValueError(f"source {self.source.name}: connection {self.source.connection_id!r} is not set")
        if c.conn_type == "sqlite":
            if not c.schema or not Path(c.schema).is_file():
                raise SourceUnavailable(f"source {self.source.name}: SQLite database {c.schema!r} does not exist")
            return sa.engine.URL.create("sqlite", database=f"file:{c.schema}?mode=ro", query={"uri": "true"})
        driver = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}.get(c.conn_type, c.conn_type)
        return sa.engine.URL.create(driver, username=c.login, password=c.password, host=c.host, port=c.port,
                                    database=c.schema)

    def engine(self) -> Any:
        if self._engine is None:
            url = self.sqlalchemy_url()
            args = {"connect_timeout": int(self.source.timeout_s)} if url.drivername.startswith("postgresql") else {}
            self._engine = sa.create_engine(url, connect_args=args, pool_pre_ping=True)
        return self._engine

    def _adbc_connection(self) -> Any:
        """An ADBC DB-API connection for SQLite and PostgreSQL; None for other databases."""
        if self._adbc is not None:
            return self._adbc
        c = self.connection
        assert c is not None
        if c.conn_type == "sqlite":
            import adbc_driver_sqlite.dbapi as driver

            self._adbc = driver.connect(f"file:{c.schema}?mode=ro")
        elif c.conn_type in ("postgres", "postgresql"):
            import adbc_driver_postgresql.dbapi as driver

            url = self.sqlalchemy_url().set(drivername="postgresql")
            self._adbc = driver.connect(url.render_as_string(hide_password=False))
        return self._adbc

    def close(self) -> None:
        if self._adbc is not None:
            self._adbc.close()
            self._adbc = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # ---- extract ---------------------------------------------------------------------------

    def extract(self, interval: Interval, state: dict[str, Any]) -> Extract:
        src = self.source
        self.stats = {"rows": {}, "new_columns": {}, "files": 0}
        new_state: dict[str, Any] = {"columns": dict(state.get("columns", {})), "files": dict(state.get("files", {}))}
        streams: dict[str, tuple[pa.Schema, Any]] = {}
        full = set()
        for t in src.tables:
            if t.table is not None:
                schema, batches = self._sql(t, interval, new_state["columns"])
            else:
                schema, batches = self._csv(t, interval, new_state["files"])
            streams[t.stream] = (schema, batches)
            if t.mode == "full":
                full.add(t.target)
        return Extract(schema=pa.schema([]), batches=(), streams=streams, state=new_state, stats=self.stats,
                       full_refresh=frozenset(full))

    def _reflect(self, t: Any) -> dict[str, Any]:
        try:
            cols = sa.inspect(self.engine()).get_columns(t.table, schema=t.db_schema)
        except sa.exc.NoSuchTableError:
            raise SchemaDrift(f"source {self.source.name}: table {t.table!r} does not exist in the ERP database") \
                from None
        except sa.exc.OperationalError as exc:
            raise SourceUnavailable(f"source {self.source.name}: ERP database unreachable "
                                    f"({str(exc.orig).strip().splitlines()[0]})") from None
        return {c["name"]: c["type"] for c in cols}

    def _sql(self, t: Any, interval: Interval, fingerprints: dict[str, Any]) -> tuple[pa.Schema, Iterator]:
        found = self._reflect(t)
        where = f"table {t.table!r}"
        needed = list(dict.fromkeys([*t.columns.values(), *([t.updated_at] if t.updated_at else [])]))
        missing = [c for c in needed if c not in found]
        if missing:
            raise SchemaDrift(f"source {self.source.name}: {where}: mapped column(s) {missing} are gone "
                              f"(columns now: {', '.join(found)})")
        families = {c: _family(found[c]) for c in found}
        before = fingerprints.get(t.stream, {})
        changed = [f"{c} ({before[c]} -> {families[c]})" for c in needed if c in before and before[c] != families[c]]
        if changed:
            raise SchemaDrift(f"source {self.source.name}: {where}: mapped column(s) changed type: "
                              f"{', '.join(changed)}; fix the mapping, then reset the source state")
        new = [c for c in found if c not in needed and (before and c not in before)]
        if new:
            self.stats["new_columns"][t.stream] = new
            log.warning("source %s: %s has new column(s) %s (%s)", self.source.name, where, new,
                        "carried into raw" if t.new_columns == "carry" else "ignored")
        fingerprints[t.stream] = families
        select = list(found) if t.new_columns == "carry" else needed
        sqlite = self.connection is not None and self.connection.conn_type == "sqlite"
        # SQLite values carry no declared type: cast each column to its declared family so every value
        # of a column has one storage class (ADBC infers a column's type from its first values)
        cols = [sa.cast(sa.column(c), SQLITE_CAST.get(families[c], sa.Text())).label(c) if sqlite
                else sa.column(c) for c in select]
        stmt = sa.select(*cols).select_from(sa.table(t.table, schema=t.db_schema))
        params: dict[str, Any] = {}
        if t.mode == "incremental":
            lo = interval.start - timedelta(minutes=self.source.lookback_minutes)
            col = sa.column(t.updated_at)
            stmt = stmt.where(col >= sa.bindparam("lo"), col < sa.bindparam("hi"))
            params = {"lo": self._local(lo), "hi": self._local(interval.end)}
        if sqlite:  # a first row of typed, non-null witnesses fixes each column's type, then is dropped
            witness = sa.select(*[sa.cast(sa.literal(SQLITE_WITNESS.get(families[c], "")),
                                          SQLITE_CAST.get(families[c], sa.Text())).label(c) for c in select],
                                sa.literal(0).label(WITNESS))
            stmt = sa.union_all(witness, stmt.add_columns(sa.literal(1).label(WITNESS)))
        return self._read(t, stmt, params)

    def _local(self, dt: datetime) -> Any:
        """An interval bound as the ERP stores it: naive local time (text in SQLite)."""
        local = dt.astimezone(self.tz).replace(tzinfo=None)
        if self.connection is not None and self.connection.conn_type == "sqlite":
            return local.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite storage format
        return local

    def _read(self, t: Any, stmt: Any, params: dict[str, Any]) -> tuple[pa.Schema, Iterator]:
        from sqlalchemy.dialects import postgresql, sqlite

        adbc = self._adbc_connection()
        if adbc is None:
            return self._read_sqlalchemy(t, stmt, params)
        dialect = sqlite.dialect() if self.connection.conn_type == "sqlite" \
            else postgresql.psycopg.dialect(paramstyle="numeric_dollar")
        compiled = stmt.compile(dialect=dialect)
        values = {**compiled.params, **params}

        def batches() -> Iterator[pa.RecordBatch]:
            """The query runs when the runner lands this stream: one result set open at a time."""
            n = 0
            cur = adbc.cursor()
            try:
                if self.connection.conn_type == "sqlite":
                    cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(self.source.batch_rows)})
                cur.execute(str(compiled), [values[p] for p in (compiled.positiontup or [])] or None)
                reader = cur.fetch_record_batch()
                schema = reader.schema
                if WITNESS in schema.names:
                    schema = schema.remove(schema.get_field_index(WITNESS))
                yield pa.RecordBatch.from_pylist([], schema=schema)  # the schema, even with no rows
                for b in reader:
                    if WITNESS in b.schema.names:
                        b = b.filter(pc.equal(b.column(WITNESS), 1)).drop_columns([WITNESS])
                    n += b.num_rows
                    yield b
            finally:
                cur.close()
                self.stats["rows"][t.stream] = n

        return None, batches()

    def _read_sqlalchemy(self, t: Any, stmt: Any, params: dict[str, Any]) -> tuple[pa.Schema, Iterator]:
        """Any other database: stream rows through SQLAlchemy into Arrow batches (types inferred per batch,
        unified as text where they disagree)."""
        names = [c.name for c in stmt.selected_columns]
        schema = pa.schema([(n, pa.string()) for n in names])

        def batches() -> Iterator[pa.Table]:
            n = 0
            with self.engine().connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=self.source.batch_rows).execute(
                    stmt, params)
                for part in result.partitions():
                    cols = list(zip(*part, strict=True))
                    n += len(part)
                    yield pa.table({name: pa.array([None if v is None else str(v) for v in col], pa.string())
                                    for name, col in zip(names, cols, strict=True)}, schema=schema)
            self.stats["rows"][t.stream] = n

        return schema, batches()

    def _csv(self, t: Any, interval: Interval, claims: dict[str, Any]) -> tuple[pa.Schema, Iterator]:
        spec = t.csv
        folder = self.plant.path(spec.path)
        if not folder.is_dir():
            raise FileNotFoundError(f"source {self.source.name}: export folder {folder} ({t.stream}) does not exist")
        files, claims[t.stream], info = claim(folder, spec.pattern, interval, claims.get(t.stream, {}))
        self.stats["files"] += len(files)
        self.stats["files_waiting"] = self.stats.get("files_waiting", 0) + len(info["waiting"])
        needed = list(dict.fromkeys(t.columns.values()))
        extra: list[str] = []
        for f in files:
            header = read_header(f.path, delimiter=spec.delimiter, encoding=spec.encoding)
            missing = [c for c in needed if c not in header]
            if missing:
                raise SchemaDrift(f"source {self.source.name}: export {f.name} ({t.stream}) has no column(s) "
                                  f"{missing} (columns: {', '.join(header)})")
            extra += [c for c in header if c not in needed and c not in extra]
        if extra:
            self.stats["new_columns"][t.stream] = extra
        cols = needed + (extra if t.new_columns == "carry" else [])
        schema = pa.schema([(c, pa.string()) for c in cols] + [("_file", pa.string()), ("_line", pa.int64())])

        def batches() -> Iterator[pa.Table]:
            n = 0
            for f in files:
                table = read_text_csv(f.path, delimiter=spec.delimiter, encoding=spec.encoding)
                k = table.num_rows
                data = {c: table[c] if c in table.column_names else pa.nulls(k, pa.string()) for c in cols}
                data["_file"] = pa.array([f.name] * k, pa.string())
                data["_line"] = pa.array(range(2, k + 2), pa.int64())
                n += k
                yield pa.table(data, schema=schema)
            self.stats["rows"][t.stream] = n

        return schema, batches()

    # ---- decode ----------------------------------------------------------------------------

    def decode(self, raw: pa.Table | dict[str, pa.Table]) -> Decoded:
        assert isinstance(raw, dict)
        parts: dict[str, list[pa.Table]] = {}
        rejects: dict[str, Rejects] = {}
        for t in self.source.tables:
            rj = rejects.setdefault(t.target, Rejects(stage="decode"))
            data = raw.get(t.stream)
            if data is None or data.num_rows == 0:
                continue
            parts.setdefault(t.target, []).append(self._decode_table(t, data, rj))
        tables = {target: pa.concat_tables(ps, promote_options="permissive") for target, ps in parts.items()}
        return Decoded(tables, rejects)

    def _decode_table(self, t: Any, data: pa.Table, rejects: Rejects) -> pa.Table:
        table = get_table(t.target)
        out: dict[str, Any] = {}
        bad = pa.repeat(pa.scalar(False), data.num_rows)
        reasons: list[tuple[pa.Array, str, Any]] = []
        for target, source in t.columns.items():
            col = table.column(target)
            values = data[source]
            if t.csv is not None:
                values = self._csv_value(values, col.type, t.csv)
            if target in t.codes:
                values, unknown = self._codes(values, t.codes[target])
                reasons.append((unknown, target, lambda r, s=source, g=target: f"{g}: unknown code, map it under "
                                f"codes.{g} ({r[s]!r})"))
            if target in ASSET_COLUMNS:
                values, unknown = self._assets(values)
                reasons.append((unknown, target, lambda r, s=source, g=target: f"{g}: not an asset of the site "
                                f"hierarchy ({r[s]!r})"))
            out[target] = values
        for mask, column, reason in reasons:
            fresh = pc.and_(mask, pc.invert(bad))
            rejects.record(data, fresh, column, reason)
            bad = pc.or_(bad, mask)
        if t.csv is not None:  # rejects conform finds still say which file and line
            out.update({m: data[m] for m in META})
        return pa.table(out).filter(pc.invert(bad))

    def _csv_value(self, values: Any, typ: pa.DataType, spec: Any) -> Any:
        """Text from an export in the target's type: dialect numbers, times in the declared format."""
        if pa.types.is_floating(typ) or pa.types.is_integer(typ):
            return normalize_number(values, decimal=spec.decimal, thousands=spec.thousands)
        if pa.types.is_timestamp(typ):
            text = pc.utf8_trim_whitespace(values)
            parsed = pc.strptime(text, format=spec.datetime_format, unit="us", error_is_null=True)
            if spec.date_format:
                parsed = pc.coalesce(parsed, pc.strptime(text, format=spec.date_format, unit="us",
                                                         error_is_null=True))
            # unparseable text stays text, so conform rejects it with the value in the reason
            return pc.if_else(pc.and_(pc.is_valid(text), pc.is_null(parsed)), text, pc.cast(parsed, pa.string()))
        return values

    @staticmethod
    def _codes(values: Any, mapping: dict[str, str]) -> tuple[pa.Array, pa.Array]:
        text = pc.cast(values, pa.string())
        keys = pa.array(list(mapping), pa.string())
        idx = pc.index_in(text, value_set=keys)
        mapped = pc.take(pa.array(list(mapping.values()), pa.string()), idx)
        return mapped, pc.and_(pc.is_valid(text), pc.is_null(idx))

    def _assets(self, values: Any) -> tuple[pa.Array, pa.Array]:
        text = pc.cast(values, pa.string())
        distinct = [v for v in pc.unique(text).to_pylist() if v is not None]
        resolved = {v: self.plant.resolve_asset(v) for v in distinct}
        keys = pa.array(list(resolved), pa.string())
        mapped = pc.take(pa.array(list(resolved.values()), pa.string()), pc.index_in(text, value_set=keys))
        return mapped, pc.and_(pc.is_valid(text), pc.is_null(mapped))


CONNECTOR = ErpConnector
