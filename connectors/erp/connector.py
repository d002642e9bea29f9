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
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from connectors.base import Connector, Decoded, Extract, Finding, Raw, State, Stream
from connectors.csv.connector import (
    FILE_ERRORS,
    ExportUnreadable,
    normalize_number,
    read_header,
    read_text_csv,
    unreadable_row,
)
from connectors.csv.connector import unreadable as unreadable_reason
from connectors.files import Claims, claim, scan
from plantlake.core.errors import CursorMismatch, SchemaDrift, SourceUnavailable
from plantlake.core.lake import Interval
from schemas import get_table
from schemas.rejects import Rejects

log = logging.getLogger(__name__)

ASSET_COLUMNS = ("line_id", "asset_id")
WITNESS = "plantlake_type_witness"
META = ("_file", "_line", "_error")
#: SQLAlchemy's own SQLite storage form of DateTime: text that sorts like time, compared as bound
SQLALCHEMY_SQLITE_TS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
#: rows of the cursor column read back in Python when a window reads nothing (the silent-nothing check)
CURSOR_CHECK_ROWS = 1_000_000


def _family(sa_type: Any) -> str:
    """A coarse type family, stable across drivers: what a mapping depends on."""
    for cls, name in ((sa.Boolean, "bool"), (sa.Integer, "integer"), (sa.Numeric, "number"), (sa.Float, "number"),
                      (sa.DateTime, "datetime"), (sa.Date, "date"), (sa.String, "text"), (sa.Text, "text")):
        if isinstance(sa_type, cls):
            return name
    return type(sa_type).__name__.lower()


def sqlalchemy_url(c: Any, what: str) -> Any:
    """The SQLAlchemy URL of an ERP connection (SQLite opened read-only)."""
    if c is None:
        raise ValueError(f"{what} is not set")
    if c.conn_type == "sqlite":
        if not c.schema or not Path(c.schema).is_file():
            raise SourceUnavailable(f"{what}: SQLite database {c.schema!r} does not exist")
        return sa.engine.URL.create("sqlite", database=f"file:{c.schema}?mode=ro", query={"uri": "true"})
    driver = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}.get(c.conn_type, c.conn_type)
    return sa.engine.URL.create(driver, username=c.login, password=c.password, host=c.host, port=c.port,
                                database=c.schema)


class ErpState(State):
    #: per SQL table's stream: each column's type family when last read (drift is checked against it)
    columns: dict[str, dict[str, str]] = {}
    #: per CSV table's stream: its export folder's claims
    files: dict[str, Claims] = {}


class ErpConnector(Connector):
    State = ErpState

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = ZoneInfo(self.timezone)
        self.stats: dict[str, Any] = {}
        self._engine: Any = None
        self._adbc: Any = None
        self._windows: dict[str, tuple[datetime, datetime]] = {}  # per stream: the change-time window read

    # ---- connections ---------------------------------------------------------------------

    def sqlalchemy_url(self) -> Any:
        return sqlalchemy_url(self.connection, f"source {self.source.name}: connection {self.source.connection_id!r}")

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
        streams: dict[str, Stream] = {}
        full = set()
        for t in src.tables:
            if t.table is not None:
                schema, batches = self._sql(t, interval, new_state["columns"])
            else:
                schema, batches = self._csv(t, interval, new_state["files"])
            streams[t.stream] = Stream(batches, schema)
            if t.mode == "full":
                full.add(t.target)
        return Extract(streams, state=new_state, stats=self.stats, full_refresh=frozenset(full))

    def _reflect(self, t: Any) -> dict[str, Any]:
        try:
            cols = sa.inspect(self.engine()).get_columns(t.table, schema=t.db_schema)
        except sa.exc.NoSuchTableError:
            raise SchemaDrift(f"source {self.source.name}: table {t.table!r} does not exist in the ERP database") \
                from None
        except sa.exc.DatabaseError as exc:
            first = str(exc.orig).strip().splitlines()[0][:200]
            if "not a database" in first or "malformed" in first:  # a wrong file: no retry mends it
                raise SchemaDrift(f"source {self.source.name}: connection {self.source.connection_id!r} points at a "
                                  f"file that is not a SQLite database ({first}); fix the connection's path") from None
            raise SourceUnavailable(f"source {self.source.name}: ERP database unreachable ({first})") from None
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
        sqlite = self._dialect() == "sqlite"
        # SQLite values carry no declared type: raw keeps them as they came, as text ('viele' stays
        # 'viele' for conform to quarantine), one storage class per column (ADBC infers a column's
        # type from its first values)
        cols = [sa.cast(sa.column(c), sa.Text()).label(c) if sqlite else sa.column(c) for c in select]
        stmt = sa.select(*cols).select_from(sa.table(t.table, schema=t.db_schema))
        params: dict[str, Any] = {}
        if t.mode == "incremental":
            lo = interval.start - timedelta(minutes=self.source.lookback_minutes)
            window, params = self._window(t, found[t.updated_at], lo, interval.end)
            stmt = stmt.where(window)
            self._windows[t.stream] = (lo, interval.end)
        if sqlite:  # a first row of non-null text witnesses fixes each column's type, then is dropped
            witness = sa.select(*[sa.literal("").label(c) for c in select], sa.literal(0).label(WITNESS))
            stmt = sa.union_all(witness, stmt.add_columns(sa.literal(1).label(WITNESS)))
        return self._read(t, stmt, params)

    def lineage(self) -> tuple[str, list[str]]:
        origin, folders = super().lineage()
        tables = [".".join(x for x in (t.db_schema, t.table) if x) for t in self.source.tables if t.table]
        return origin, tables + folders

    def probe(self, interval: Interval, *, listen_s: float = 5.0) -> list[Finding]:
        """Per table: its mapped columns there, the cursor's stored form, the rows the interval's window
        reads (look-back included) against the rows the table holds."""
        from connectors.erp.discover import _sample, _stored_form

        out = []
        try:
            for k, t in enumerate(self.source.tables):
                place = f"tables[{k}] {t.target} <- {t.table or t.csv.path + '/' + t.csv.pattern}"
                if t.csv is not None:
                    found = scan(self.plant.path(t.csv.path), t.csv.pattern) if self.plant.path(t.csv.path).is_dir() else []
                    out.append(Finding(place, bool(found), f"{len(found)} export file(s)" if found else
                                       f"no file matches {t.csv.pattern!r} in {t.csv.path}"))
                    continue
                try:
                    types = self._reflect(t)
                except SchemaDrift as exc:
                    out.append(Finding(place, False, str(exc)))
                    continue
                needed = list(dict.fromkeys([*t.columns.values(), *([t.updated_at] if t.updated_at else [])]))
                missing = [c for c in needed if c not in types]
                if missing:
                    out.append(Finding(place, False, f"no column {', '.join(map(repr, missing))} (columns: "
                                                     f"{', '.join(types)})"))
                    continue
                table = sa.table(t.table, schema=t.db_schema)
                with self.engine().connect() as conn:
                    total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                    if t.mode == "full":
                        out.append(Finding(place, total > 0, f"{len(needed)} columns mapped; {total} rows, read whole"))
                        continue
                    lo = interval.start - timedelta(minutes=self.source.lookback_minutes)
                    where, params = self._window(t, types[t.updated_at], lo, interval.end)
                    rows = conn.execute(sa.select(sa.func.count()).select_from(table).where(where), params).scalar_one()
                    form = _stored_form(types[t.updated_at], _sample(conn, t.table, t.db_schema, t.updated_at, 5) or [None])
                out.append(Finding(place, total > 0,
                                   f"{len(needed)} columns mapped; cursor {t.updated_at} stored as {form}; the window "
                                   f"{lo:%Y-%m-%d %H:%M}..{interval.end:%H:%M} UTC reads {rows} of {total} rows"
                                   if total else "the table is empty"))
        finally:
            self.close()
        return out

    def _dialect(self) -> str:
        c = self.connection
        if c is not None and c.conn_type == "sqlite":
            return "sqlite"
        return "postgresql" if c is not None and c.conn_type in ("postgres", "postgresql") else "other"

    def _window(self, t: Any, sa_type: Any, lo: datetime, hi: datetime) -> tuple[Any, dict[str, Any]]:
        """The WHERE clause for rows whose change time is in [lo, hi), comparing like with like for
        the form the ERP stores: typed timestamps (with or without zone), dates, epoch seconds or
        milliseconds, or ISO 8601 text with `T` or space, with `Z`, an offset or none (ERP-local)."""
        col = sa.column(t.updated_at)
        family, dialect, bp = _family(sa_type), self._dialect(), sa.bindparam
        lo_local, hi_local = (d.astimezone(self.tz).replace(tzinfo=None) for d in (lo, hi))
        lo_utc, hi_utc = (d.astimezone(UTC) for d in (lo, hi))
        text = "%Y-%m-%d %H:%M:%S.%f"
        secs = sa.case((sa.func.abs(col) >= 1e14, col / 1e6), (sa.func.abs(col) >= 1e11, col / 1e3), else_=col)
        if dialect == "sqlite":
            if self._stored_as_sqlalchemy_text(t):  # the one text form whose order is time order: uses the index
                return sa.and_(col >= bp("lo"), col < bp("hi")), {"lo": lo_local.strftime(text),
                                                                   "hi": hi_local.strftime(text)}
            # any other form: each value normalised by its own (SQLite's julianday reads 'T' or space,
            # fractions, 'Z' and offsets; numbers are epoch s / ms / us by magnitude)
            zoned = sa.or_(col.op("GLOB")("*Z"), col.op("GLOB")("*[+-][0-9][0-9]:[0-9][0-9]"))
            jd = sa.func.julianday(col)
            where = sa.case(
                (sa.or_(sa.func.typeof(col) == "integer", sa.func.typeof(col) == "real"), sa.and_(secs >= bp("lo_epoch"), secs < bp("hi_epoch"))),
                (zoned, sa.and_(jd >= sa.func.julianday(bp("lo_utc")), jd < sa.func.julianday(bp("hi_utc")))),
                else_=sa.and_(jd >= sa.func.julianday(bp("lo_local")), jd < sa.func.julianday(bp("hi_local"))))
            return where, {"lo_epoch": lo.timestamp(), "hi_epoch": hi.timestamp(),
                           "lo_utc": lo_utc.strftime(text), "hi_utc": hi_utc.strftime(text),
                           "lo_local": lo_local.strftime(text), "hi_local": hi_local.strftime(text)}
        if family == "datetime":
            if getattr(sa_type, "timezone", False):  # timestamptz: an instant, bound as one
                return sa.and_(col >= bp("lo"), col < bp("hi")), {"lo": lo_utc, "hi": hi_utc}
            return sa.and_(col >= bp("lo"), col < bp("hi")), {"lo": lo_local, "hi": hi_local}
        if family == "date":  # a day is the finest a date says: every day the window touches (upserts dedupe)
            last = hi_local.date() + timedelta(days=0 if hi_local.time() == datetime.min.time() else 1)
            return sa.and_(col >= bp("lo"), col < bp("hi")), {"lo": lo_local.date(), "hi": last}
        if family in ("integer", "number"):  # epoch seconds, milliseconds or microseconds, by magnitude
            return sa.and_(secs >= bp("lo"), secs < bp("hi")), {"lo": lo.timestamp(), "hi": hi.timestamp()}
        if dialect == "postgresql":  # ISO text: zoned values are instants, the others ERP-local time
            zoned = col.op("~")(r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$")
            ts = sa.case((zoned, sa.cast(col, sa.DateTime(timezone=True))),
                         else_=sa.func.timezone(bp("tz"), sa.cast(col, sa.DateTime())))
            return sa.and_(ts >= bp("lo"), ts < bp("hi")), {"lo": lo_utc, "hi": hi_utc, "tz": self.timezone}
        return sa.and_(col >= bp("lo"), col < bp("hi")), {"lo": lo_local, "hi": hi_local}

    def _stored_as_sqlalchemy_text(self, t: Any) -> bool:
        """Whether a sample of the SQLite cursor column is all in SQLAlchemy's DateTime text form."""
        col = sa.column(t.updated_at)
        sample = sa.select(col).select_from(sa.table(t.table, schema=t.db_schema)).where(col.is_not(None)).limit(200)
        with self.engine().connect() as conn:
            values = [v for (v,) in conn.execute(sample)]
        return bool(values) and all(isinstance(v, str) and SQLALCHEMY_SQLITE_TS.fullmatch(v) for v in values)

    def check_nothing_missed(self, t: Any) -> None:
        """A window that read nothing: read the cursor column back and compare in Python. Rows whose
        change time falls in the window mean the query compared unlike forms: fail loudly."""
        lo, hi = self._windows[t.stream]
        col = sa.column(t.updated_at)
        query = sa.select(col).select_from(sa.table(t.table, schema=t.db_schema)).limit(CURSOR_CHECK_ROWS)
        hits: list[Any] = []
        with self.engine().connect() as conn:
            for (v,) in conn.execution_options(stream_results=True, yield_per=10_000).execute(query):
                when = self._as_instant(v)
                if when is not None and lo <= when < hi:
                    hits.append(v)
        if hits:
            raise CursorMismatch(
                f"source {self.source.name}: table {t.table!r}: the window {lo.isoformat()} .. {hi.isoformat()} read "
                f"0 rows, but {len(hits)} row(s) have {t.updated_at!r} in it (e.g. {hits[0]!r}): the cursor "
                "compared unlike forms; nothing was published — report the column's type and a sample value")

    def _as_instant(self, v: Any) -> datetime | None:
        """A change time as an aware instant, whatever its stored form (naive values are ERP-local)."""
        if v is None or isinstance(v, bool):
            return None
        if isinstance(v, int | float):
            return datetime.fromtimestamp(v / 1e6 if abs(v) >= 1e14 else v / 1e3 if abs(v) >= 1e11 else v, UTC)
        if isinstance(v, datetime):
            dt = v
        elif isinstance(v, date):
            dt = datetime(v.year, v.month, v.day)
        else:
            text = str(v).strip()
            if re.fullmatch(r"-?\d+(\.\d+)?", text):
                return self._as_instant(float(text))
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
        return dt if dt.tzinfo else dt.replace(tzinfo=self.tz)

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
            if n == 0 and t.stream in self._windows:
                self.check_nothing_missed(t)

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
            if n == 0 and t.stream in self._windows:
                self.check_nothing_missed(t)

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
        setting = f"tables[{self.source.tables.index(t)}].csv.encoding of source {self.source.name}"
        unreadable: dict[str, str] = {}
        for f in files:
            try:
                header = read_header(folder, f.path, delimiter=spec.delimiter, encoding=spec.encoding,
                                     setting=setting, max_bytes=spec.max_file_bytes)
            except FILE_ERRORS as exc:  # one poison file is quarantined; the others publish
                unreadable[f.name] = unreadable_reason(exc, f.name)
                continue
            missing = [c for c in needed if c not in header]
            if missing:
                raise SchemaDrift(f"source {self.source.name}: export {f.name} ({t.stream}) has no column(s) "
                                  f"{missing} (columns: {', '.join(header)})")
            extra += [c for c in header if c not in needed and c not in extra]
        if extra:
            self.stats["new_columns"][t.stream] = extra
        cols = needed + (extra if t.new_columns == "carry" else [])
        schema = pa.schema([(c, pa.string()) for c in cols] + [("_file", pa.string()), ("_line", pa.int64()),
                                                                ("_error", pa.string())])

        def batches() -> Iterator[pa.Table]:
            n = 0
            for f in files:
                try:
                    if f.name in unreadable:
                        raise ExportUnreadable(unreadable[f.name])
                    table = read_text_csv(folder, f.path, delimiter=spec.delimiter, encoding=spec.encoding,
                                          setting=setting, max_bytes=spec.max_file_bytes)
                except FILE_ERRORS as exc:  # one raw row says which file and why; decode quarantines it
                    n += 1
                    yield unreadable_row(schema, f.name, unreadable_reason(exc, f.name))
                    continue
                k = table.num_rows
                data = {c: table[c] if c in table.column_names else pa.nulls(k, pa.string()) for c in cols}
                data["_file"] = pa.array([f.name] * k, pa.string())
                data["_line"] = pa.array(range(2, k + 2), pa.int64())
                data["_error"] = pa.nulls(k, pa.string())
                n += k
                yield pa.table(data, schema=schema)
            self.stats["rows"][t.stream] = n

        return schema, batches()

    # ---- decode ----------------------------------------------------------------------------

    def decode(self, raw: Raw) -> Decoded:
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
        if "_error" in data.column_names:  # exports that could not be read at all
            data = rejects.add(data, pc.is_valid(data["_error"]), "file", lambda r: r["_error"])
        bad = pa.repeat(pa.scalar(False), data.num_rows)
        reasons: list[tuple[pa.Array, str, Any]] = []
        for target, source in t.columns.items():
            col = table.column(target)
            values = data[source]
            if t.csv is not None:
                values, unread = self._csv_value(values, col.type, t.csv)
                if unread is not None:
                    fmts = " or ".join(repr(f) for f in (t.csv.datetime_format, t.csv.date_format) if f)
                    setting = "datetime_format" + (" / date_format" if t.csv.date_format else "")
                    reasons.append((unread, target, lambda r, s=source, g=target, f=fmts, k=setting:
                                    f"{g}: {r[s]!r} is not a time in {k} {f} (column {s!r} of {r['_file']})"))
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

    def _csv_value(self, values: Any, typ: pa.DataType, spec: Any) -> tuple[Any, Any]:
        """Text from an export in the target's type: dialect numbers, times in the declared format;
        and the mask of times that do not fit the format (None for other columns)."""
        if pa.types.is_floating(typ) or pa.types.is_integer(typ):
            return normalize_number(values, decimal=spec.decimal, thousands=spec.thousands), None
        if pa.types.is_timestamp(typ):
            text = pc.utf8_trim_whitespace(values)
            parsed = pc.strptime(text, format=spec.datetime_format, unit="us", error_is_null=True)
            if spec.date_format:
                parsed = pc.coalesce(parsed, pc.strptime(text, format=spec.date_format, unit="us",
                                                         error_is_null=True))
            unread = pc.fill_null(pc.and_(pc.is_valid(text), pc.is_null(parsed)), False)
            return pc.cast(parsed, pa.string()), unread
        return values, None

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

