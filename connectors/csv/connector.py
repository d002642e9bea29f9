"""Historian and machine CSV exports in long format (timestamp, tag, value[, unit, status]).

Raw rows are landed as the strings the file held, with the file name and line
number; decoding applies the export's dialect (decimal comma, thousands separator,
timestamp format) declared in the site config.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectors.base import RAW, Connector, Decoded, Extract, Finding, Raw, State
from connectors.files import Claims, DropFile, UnsafeFile, claim, open_drop_file, printable, scan
from plantlake.core.lake import Interval
from schemas.rejects import Rejects

RAW_META = ["_file", "_line", "_error"]


class ExportUnreadable(ValueError):
    """A file that cannot be read as the declared export; the message names the file and the setting."""


BLOCK_BYTES = 1 << 22  # pyarrow's read block: a line longer than this cannot be parsed


def _not_text(fh: Any, name: str, encoding: str, setting: str) -> ExportUnreadable:
    """Why a file is not `encoding` text, and the encoding it does read as (the fix to name)."""
    fh.seek(0)
    data = fh.read(BLOCK_BYTES)
    try:
        data.decode(encoding)
        where = "invalid text"
    except UnicodeDecodeError as exc:
        where = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # a byte order mark: UTF-16, which no setting reads
        return ExportUnreadable(f"file: {name} is UTF-16 text, not {encoding}; export it as UTF-8 (plantlake reads "
                                "utf-8, utf-8-sig, latin-1 and cp1252)")
    guess = next((e for e in ("utf-8", "cp1252", "latin-1") if e != encoding and _decodes(data, e)), None)
    hint = f"it reads as {guess}: set {setting}: {guess}" if guess else f"check {setting}"
    return ExportUnreadable(f"file: {name} is not {encoding} text; {hint} ({where})")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return encoding != "cp1252" or not any(0x80 <= ord(ch) <= 0x9F for ch in text)  # C1 controls: not Windows text


def _header(fh: Any, name: str, *, delimiter: str, encoding: str, setting: str) -> list[str]:
    line = fh.readline(BLOCK_BYTES + 1)
    if len(line) > BLOCK_BYTES:
        raise ExportUnreadable(f"file: {name} has a header line longer than {BLOCK_BYTES} bytes (not an export)")
    try:
        text = line.decode(encoding)
    except UnicodeDecodeError:
        raise _not_text(fh, name, encoding, setting) from None
    header = next(csv.reader([text], delimiter=delimiter), [])
    # a UTF-8 BOM is dropped whatever the declared encoding
    return [h.strip().removeprefix("\ufeff").removeprefix("ï»¿") for h in header]


def read_header(root: Path, path: Path, *, delimiter: str, encoding: str, setting: str = "encoding",
                max_bytes: int | None = None) -> list[str]:
    """The column names of an export in a drop folder (opened without following links)."""
    with open_drop_file(root, path, max_bytes=max_bytes) as fh:
        return _header(fh, printable(Path(path).name), delimiter=delimiter, encoding=encoding, setting=setting)


def read_text_csv(root: Path, path: Path, *, delimiter: str, encoding: str, setting: str = "encoding",
                  max_bytes: int | None = None, block_size: int = BLOCK_BYTES) -> pa.Table:
    """Read an export from a drop folder with every column as a string (nothing guessed), in the
    given encoding; ExportUnreadable names the file and the setting when it is not that export,
    UnsafeFile when it is a link, outside the folder or over `max_bytes`."""
    name = printable(Path(path).name)
    with open_drop_file(root, path, max_bytes=max_bytes) as fh:
        names = _header(fh, name, delimiter=delimiter, encoding=encoding, setting=setting)
        if not names:
            return pa.table({})
        fh.seek(0)
        try:
            return pacsv.read_csv(
                fh,
                read_options=pacsv.ReadOptions(encoding=encoding, column_names=names, skip_rows=1,
                                               block_size=block_size),
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                # only an empty field is missing; 'n/a' and friends stay text for decode to judge
                convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                     strings_can_be_null=True, null_values=[""]),
            )
        except UnicodeDecodeError:
            raise _not_text(fh, name, encoding, setting) from None
        except pa.ArrowInvalid as exc:
            text = str(exc)
            if "UTF8" in text or "utf8" in text.lower():
                raise _not_text(fh, name, encoding, setting) from None
            if "straddling" in text:
                raise ExportUnreadable(f"file: {name} has a line longer than {block_size} bytes") from None
            raise ExportUnreadable(f"file: {name} is not a {delimiter!r}-separated export ({text[:160]})") from None


def unreadable(exc: BaseException, name: str) -> str:
    """The quarantine reason of an export that could not be read at all (bounded, no content)."""
    if isinstance(exc, ExportUnreadable | UnsafeFile):
        return str(exc)[:500]
    if isinstance(exc, FileNotFoundError):
        return f"file: {printable(name)} vanished before it could be read"
    return f"file: {printable(name)} cannot be read ({exc.__class__.__name__}: {str(exc)[:160]})"


#: what reading one export may raise; each is that file's quarantine reason, never the run's end
FILE_ERRORS = (ExportUnreadable, UnsafeFile, OSError, UnicodeError, csv.Error, pa.ArrowException)


def unreadable_row(schema: pa.Schema, name: str, reason: str) -> pa.Table:
    """The one raw row an unreadable export lands as: its name and why, for decode to quarantine."""
    row = {f.name: None for f in schema}
    row.update(_file=name, _error=reason)
    return pa.Table.from_pylist([row], schema=schema)


def normalize_number(text: pa.Array, *, decimal: str, thousands: str | None) -> pa.Array:
    """'1.234,5' -> '1234.5' according to the export's separators."""
    out = pc.utf8_trim_whitespace(text)
    if thousands:
        out = pc.replace_substring(out, thousands, "")
    if decimal != ".":
        out = pc.replace_substring(out, decimal, ".")
    return out


class CsvState(Claims, State):
    """The export folder's claims."""


class CsvExportConnector(Connector):
    State = CsvState

    @property
    def slice_column(self) -> str:
        """Decode is per row, and the export's tag reference column is one series."""
        return self.source.columns.ref

    def extract(self, interval: Interval, state: dict[str, Any]) -> Extract:
        folder = self.plant.path(self.source.path)
        if not folder.is_dir():
            raise FileNotFoundError(f"source {self.source.name}: drop folder {folder} does not exist")
        files, new_state, info = claim(folder, self.source.pattern, interval, state)
        schema = self._raw_schema()
        return Extract.one(schema, (self._read(f, schema) for f in files), state=new_state,
                       stats={"files": len(files), "files_waiting": len(info["waiting"]),
                              "files_before_watermark": len(info["before_watermark"])})

    def probe(self, interval: Interval, *, listen_s: float = 5.0) -> list[Finding]:
        """The files the pattern matches; per tag mapping, whether the newest export names it."""
        folder = self.plant.path(self.source.path)
        files = scan(folder, self.source.pattern) if folder.is_dir() else []
        place = f"path {self.source.path}/{self.source.pattern}"
        if not files:
            why = f"no file matches {self.source.pattern!r}" if folder.is_dir() else f"folder {folder} does not exist"
            return [Finding(place, False, why)]
        newest = max(files, key=lambda f: f.mtime_ns)
        try:
            table = read_text_csv(folder, newest.path, delimiter=self.source.delimiter, encoding=self.source.encoding,
                                  setting=f"encoding of source {self.source.name}", max_bytes=self.source.max_file_bytes)
        except FILE_ERRORS as exc:
            return [Finding(place, False, unreadable(exc, newest.name))]
        c = self.source.columns
        missing = [x for x in (c.ts, c.ref, c.value, c.unit, c.status) if x and x not in table.column_names]
        if missing:
            return [Finding(place, False, f"{newest.name} has no column {', '.join(map(repr, missing))} "
                                          f"(its columns: {', '.join(table.column_names)})")]
        refs = set(table.column(c.ref).to_pylist())
        out = [Finding(place, True, f"{len(files)} file(s); the newest, {newest.name}, holds {table.num_rows} rows "
                                    f"of {len(refs)} references")]
        mapped = {t.ref for t in self.source.tags}
        for k, t in enumerate(self.source.tags):
            out.append(Finding(f"tags[{k}] {t.ref}", t.ref in refs, f"in {newest.name}" if t.ref in refs
                               else f"not in {newest.name}"))
        unmapped = sorted(r for r in refs - mapped if r)
        if unmapped:
            out.append(Finding("references without a tag mapping", True, f"{len(unmapped)}, quarantined at run time: "
                               + ", ".join(unmapped[:10])))
        return out

    def _raw_schema(self) -> pa.Schema:
        c = self.source.columns
        cols = [c.ts, c.ref, c.value] + [x for x in (c.unit, c.status) if x]
        return pa.schema([pa.field(n, pa.string()) for n in cols] + [pa.field("_file", pa.string()),
                                                                     pa.field("_line", pa.int64()),
                                                                     pa.field("_error", pa.string())])

    def _read(self, f: DropFile, schema: pa.Schema) -> pa.Table:
        try:
            table = read_text_csv(self.plant.path(self.source.path), f.path, delimiter=self.source.delimiter,
                                  encoding=self.source.encoding, setting=f"encoding of source {self.source.name}",
                                  max_bytes=self.source.max_file_bytes)
        except FILE_ERRORS as exc:  # one poison file is quarantined; the others publish
            return unreadable_row(schema, f.name, unreadable(exc, f.name))
        n = table.num_rows
        cols = {}
        for field in schema:
            if field.name == "_file":
                cols["_file"] = pa.array([f.name] * n, pa.string())
            elif field.name == "_line":
                cols["_line"] = pa.array(range(2, n + 2), pa.int64())
            elif field.name == "_error":
                cols["_error"] = pa.nulls(n, pa.string())
            elif field.name in table.column_names:
                cols[field.name] = table[field.name]
            else:  # not this export: quarantined by name, naming the setting
                shown = ", ".join(table.column_names)[:300] or "none"
                return unreadable_row(schema, f.name, f"file: {printable(f.name)} has no column {field.name!r} "
                                                      f"(set columns of source {self.source.name}; columns: {shown})")
        return pa.table(cols, schema=schema)

    def decode(self, raw: Raw) -> Decoded:
        raw = raw[RAW]
        c = self.source.columns
        rejects = Rejects(stage="decode")
        if "_error" in raw.column_names:  # files that could not be read at all (wrong encoding, ...)
            raw = rejects.add(raw, pc.is_valid(raw["_error"]), "file", lambda r: r["_error"])
        ts = raw[c.ts]
        if self.source.timestamp_format:
            fmt = self.source.timestamp_format
            text = pc.utf8_trim_whitespace(ts)
            parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
            # strptime rolls impossible dates over (31.02. -> 03.03.); a round trip catches them
            bad = pc.and_(pc.is_valid(ts), pc.invert(pc.fill_null(pc.equal(pc.strftime(pc.cast(parsed, pa.timestamp("s"), safe=False), format=fmt), text), False)))
            raw = raw.append_column("__ts", parsed)
            raw = rejects.add(raw, bad, c.ts, lambda r: f"{c.ts}: {r[c.ts]!r} is not a time in timestamp_format "
                                                        f"{fmt!r} of source {self.source.name}")
            ts = raw["__ts"]
        # number dialect applies to numeric tags only; text tags keep what the file said
        text_refs = pa.array([t.ref for t in self.source.tags if t.type == "text"], pa.string())
        number = normalize_number(raw[c.value], decimal=self.source.decimal, thousands=self.source.thousands)
        cols = {
            "ts": ts,
            "source_ref": raw[c.ref],
            "value": pc.if_else(pc.is_in(raw[c.ref], value_set=text_refs), raw[c.value], number),
        }
        if c.unit:
            cols["unit"] = raw[c.unit]
        if c.status:
            cols["status_code"] = raw[c.status]
        cols["source"] = pa.array(["csv"] * raw.num_rows, pa.string())
        return Decoded({"sensor_readings": pa.table(cols)}, {"sensor_readings": rejects})

