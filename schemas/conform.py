"""The conform step: raw rows -> a table's curated schema.

Casts every column to its declared Arrow type, makes timestamps UTC microseconds,
maps source references to ISA-95 assets and canonical tags, converts units with
pint, derives quality from status codes, and dedupes on the primary key (the last
arrival wins). Rows that cannot be conformed are returned as rejects with the
column and the reason; they never fail the run.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import units
from schemas.keys import dedupe
from schemas.lineage import constant, lineage_columns
from schemas.model import Table
from schemas.rejects import Rejects

UTC_US = pa.timestamp("us", tz="UTC")
_EPOCH_TEXT = re.compile(r"-?\d{9,}(\.\d+)?")
TS_MIN = datetime(2000, 1, 1, tzinfo=UTC)


class ConformError(ValueError):
    """The input cannot be conformed at all (a connector or configuration bug), naming the column."""


@dataclass(frozen=True)
class TagRule:
    """How one source reference becomes a canonical tag on an asset."""

    asset_id: str
    tag: str
    unit: str | None = None
    canonical_unit: str | None = None
    type: str = "number"  # number | text | bool
    quantity: str | None = None  # the quantity kind, when the unit alone cannot tell


@dataclass(frozen=True)
class UnitRule:
    """Units for the readings whose tag, asset and source reference match these globs."""

    tag: str = "*"
    asset: str = "*"
    ref: str = "*"
    unit: str | None = None
    quantity: str | None = None
    canonical_unit: str | None = None

    def matches(self, ref: str, asset: str | None, tag: str | None) -> bool:
        return (fnmatch.fnmatchcase(tag or "", self.tag) and fnmatch.fnmatchcase(asset or "", self.asset)
                and fnmatch.fnmatchcase(ref, self.ref))


@dataclass
class ConformContext:
    """What conform needs to know beyond the rows themselves."""

    run_id: str
    ingested_at: datetime
    source_kind: str = ""
    #: the configured source's name (sources[].name), for tables that record it
    source_name: str = ""
    tag_rules: Mapping[str, TagRule] = field(default_factory=dict)
    timezone: str = "UTC"
    unit_rules: Sequence[UnitRule] = ()


@dataclass
class Conformed:
    """The conform step's result."""

    table: pa.Table
    rejects: Rejects
    duplicates: int = 0
    conversions: Counter = field(default_factory=Counter)


# --------------------------------------------------------------------------- casts


def to_utc(arr: pa.Array | pa.ChunkedArray, tz: str) -> tuple[pa.Array, np.ndarray]:
    """Cast timestamps (typed or ISO strings) to UTC microseconds; naive ones are in `tz`.

    Returns the cast array and a mask of values that could not be parsed.
    """
    bad = np.zeros(len(arr), dtype=bool)
    t = arr.type
    if t == UTC_US:
        return arr, bad
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if pa.types.is_timestamp(t):
        if t.tz is None:
            arr = pc.assume_timezone(arr, tz, ambiguous="earliest", nonexistent="earliest")
        return pc.cast(arr, UTC_US, safe=False), bad
    if pa.types.is_date(t):
        return to_utc(pc.cast(arr, pa.timestamp("us")), tz)
    if pa.types.is_integer(t) or pa.types.is_floating(t):  # epoch numbers: s, ms or us by magnitude
        v = pc.cast(pc.fill_null(arr, 0), pa.float64()).to_numpy()
        a = np.abs(v)
        with np.errstate(invalid="ignore", over="ignore"):
            us = np.where(a >= 1e14, v, np.where(a >= 1e11, v * 1e3, v * 1e6))
        valid = pc.is_valid(arr).to_numpy(zero_copy_only=False)
        bad = valid & ~(np.isfinite(us) & (np.abs(us) < 2**62))
        ints = np.where(valid & ~bad, np.nan_to_num(us), 0).astype(np.int64)
        return pc.cast(pa.array(ints, pa.int64(), mask=~valid | bad), UTC_US), bad
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        for target in (pa.timestamp("us"), UTC_US):
            try:
                return to_utc(pc.cast(arr, target), tz)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        values: list[datetime | None] = []
        for i, text in enumerate(arr.to_pylist()):
            parsed = None
            if text is not None:
                try:
                    if _EPOCH_TEXT.fullmatch(text.strip()):  # an epoch number written as text
                        epoch, unreadable = to_utc(pa.array([float(text)]), tz)
                        if unreadable[0]:
                            raise ValueError(text)
                        parsed = epoch[0].as_py()
                    else:
                        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
                    if parsed.tzinfo is None:
                        parsed = pc.assume_timezone(pa.array([parsed], pa.timestamp("us")), tz)[0].as_py()
                except (ValueError, OverflowError, pa.ArrowInvalid):
                    bad[i] = True
            values.append(parsed)
        return pa.array(values, UTC_US), bad
    raise ConformError(f"cannot read timestamps from a column of type {t}")


def cast_column(arr: pa.Array | pa.ChunkedArray, target: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Cast to `target`; values that do not fit become null and are flagged in the mask."""
    if arr.type == target:
        return arr, np.zeros(len(arr), dtype=bool)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    src = arr
    if (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) and not pa.types.is_string(target):
        src = pc.utf8_trim_whitespace(arr)
    try:
        return pc.cast(src, target), np.zeros(len(arr), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    out, bad = [], np.zeros(len(arr), dtype=bool)
    for i, scalar in enumerate(src):
        if not scalar.is_valid:
            out.append(None)
            continue
        try:
            out.append(scalar.cast(target).as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OverflowError):
            whole = _integral(scalar) if pa.types.is_integer(target) else None
            out.append(whole)
            bad[i] = whole is None
    return pa.array(out, target), bad


def _integral(scalar: pa.Scalar) -> int | None:
    """A whole number written as a decimal ('3.0', as SQLite renders a REAL 3), else None."""
    try:
        f = float(scalar.as_py())
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) and f == int(f) and abs(f) < 2**63 else None


# --------------------------------------------------------------------------- the step


def conform(table: Table, raw: pa.Table, ctx: ConformContext) -> Conformed:
    """Conform `raw` rows to `table`'s curated schema."""
    rejects = Rejects()
    conversions: Counter = Counter()
    prepare = PREPARE.get(table.name)
    if prepare is not None:
        raw = prepare(raw, ctx, rejects, conversions)
    data = _cast_to_schema(table, raw, ctx, rejects)
    data, duplicates = dedupe(data, table.primary_key)
    return Conformed(data, rejects, duplicates, conversions)


def _cast_to_schema(table: Table, raw: pa.Table, ctx: ConformContext, rejects: Rejects) -> pa.Table:
    n = raw.num_rows
    arrays: list[pa.Array] = []
    first_failure: dict[int, tuple[str, str]] = {}
    lineage = lineage_columns(table, n, ctx.run_id, ctx.ingested_at)
    for col in table.columns:
        if col.name not in raw.column_names:
            if col.name in lineage:
                arrays.append(lineage[col.name])
            elif col.nullable:
                arrays.append(pa.nulls(n, col.type))
            else:
                raise ConformError(f"{table.name}: input has no column {col.name!r}, which may not be null")
            continue
        if pa.types.is_timestamp(col.type):
            arr, bad = to_utc(raw[col.name], ctx.timezone)
            what = "an ISO 8601 timestamp"
        else:
            arr, bad = cast_column(raw[col.name], col.type)
            what = str(col.type)
        arrays.append(arr)
        for i in np.flatnonzero(bad):
            first_failure.setdefault(int(i), (col.name, f"{col.name}: cannot read {raw[col.name][int(i)].as_py()!r} as {what}"))
    data = pa.Table.from_arrays(arrays, schema=pa.schema([pa.field(c.name, c.type) for c in table.columns]))
    if first_failure:
        mask = np.zeros(n, dtype=bool)
        mask[list(first_failure)] = True
        for name in {c for c, _ in first_failure.values()}:
            rows = np.zeros(n, dtype=bool)
            rows[[i for i, (c, _) in first_failure.items() if c == name]] = True
            marked = raw.append_column("__row", pa.array(np.arange(n)))
            rejects.record(marked, rows, name, lambda r: first_failure[r.pop("__row")][1])
        data = data.filter(pa.array(~mask))
    for col in table.columns:
        if not col.nullable:
            data = rejects.add(data, pc.is_null(data[col.name]), col.name, f"{col.name}: missing value (column may not be null)")
        data = _check_rules(data, col, rejects)
    return data.cast(table.arrow_schema())


def _check_rules(data: pa.Table, col: Any, rejects: Rejects) -> pa.Table:
    """Reject values outside the column's declared range or set (nulls are the null rule's business)."""
    name = col.name
    if col.min is not None:
        data = rejects.add(data, pc.less(data[name], col.min), name,
                           lambda r: f"{name}: below the minimum {col.min:g} ({r[name]!r})")
    if col.max is not None:
        data = rejects.add(data, pc.greater(data[name], col.max), name,
                           lambda r: f"{name}: above the maximum {col.max:g} ({r[name]!r})")
    if col.allowed:
        outside = pc.invert(pc.is_in(data[name], value_set=pa.array(col.allowed)))
        data = rejects.add(data, pc.and_(pc.is_valid(data[name]), outside), name,
                           lambda r: f"{name}: not one of {', '.join(col.allowed)} ({r[name]!r})")
    return data


def check_references(data: pa.Table, column: str, known: pa.Array, target: str, rejects: Rejects) -> pa.Table:
    """Reject rows whose `column` names something `known` does not hold (e.g. an unknown material)."""
    unknown = pc.and_(pc.is_valid(data[column]), pc.invert(pc.is_in(data[column], value_set=known)))
    return rejects.add(data, unknown, column, lambda r: f"{column}: unknown in {target} ({r[column]!r})")


def _nullable_schema(table: Table) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.type, nullable=True) for c in table.columns])


def _us(dt: datetime) -> int:
    return int(pa.scalar(dt, UTC_US).value)


# --------------------------------------------------------------------------- sensor readings

_GOOD, _UNCERTAIN, _BAD = "good", "uncertain", "bad"


def quality_from_status(codes: pa.Array) -> pa.Array:
    """OPC UA StatusCode severity bits (30-31): 00 good, 01 uncertain, 1x bad."""
    severity = pc.shift_right(pc.cast(codes, pa.int64()), 30)  # 0..3 for codes in 0..2^32
    return pc.take(pa.array([_GOOD, _UNCERTAIN, _BAD, _BAD]), pc.min_element_wise(pc.max_element_wise(severity, 0), 3))


def _prepare_sensor_readings(raw: pa.Table, ctx: ConformContext, rejects: Rejects, conversions: Counter) -> pa.Table:
    n = raw.num_rows
    cols = set(raw.column_names)
    if "source_ref" not in cols:
        raise ConformError("sensor_readings: input has no column 'source_ref'")
    data = raw
    for name, typ in (("asset_id", pa.string()), ("tag", pa.string()), ("unit", pa.string()),
                      ("value_text", pa.string()), ("status_code", pa.int64()), ("quality", pa.string()),
                      ("canonical_unit", pa.string()), ("type", pa.string()), ("quantity", pa.string()),
                      ("value_exact", pa.string())):
        if name not in cols:
            data = data.append_column(name, pa.nulls(n, typ))
    if "source" not in cols:
        data = data.append_column("source", constant(ctx.source_kind, n))
    if "source_name" not in cols and ctx.source_name:
        data = data.append_column("source_name", constant(ctx.source_name, n))
    if "value" not in cols:
        data = data.append_column("value", pa.nulls(n, pa.float64()))

    # 1. tag mapping by source_ref, where the connector did not resolve asset and tag itself
    refs = pc.dictionary_encode(pc.cast(data["source_ref"], pa.string())).combine_chunks()
    rules = [ctx.tag_rules.get(r) for r in refs.dictionary.to_pylist()]

    def fill(name: str, attr: str, *, source_first: bool = False) -> None:
        """The site config's mapping wins over what the connector resolved, except for the
        unit, which the source states when it knows it (the mapping's unit is the fallback)."""
        nonlocal data
        mapped = pc.take(pa.array([getattr(r, attr) if r else None for r in rules], pa.string()), refs.indices)
        given = data[name]
        if given.null_count == len(given):
            data = _set(data, name, mapped)
        elif mapped.null_count < len(mapped):
            data = _set(data, name, pc.coalesce(given, mapped) if source_first else pc.coalesce(mapped, given))

    fill("asset_id", "asset_id")
    fill("tag", "tag")
    if ctx.unit_rules:  # pattern rules fill in what no tag mapping of the reference says
        rules = _with_unit_rules(rules, refs, data, ctx.unit_rules)
    fill("unit", "unit", source_first=True)
    fill("canonical_unit", "canonical_unit")
    fill("quantity", "quantity")
    fill("type", "type")
    data = _set(data, "type", pc.fill_null(data["type"], "number"))
    unmapped = pc.or_(pc.is_null(data["asset_id"]), pc.is_null(data["tag"]))
    data = rejects.add(data, unmapped, "source_ref", lambda r: f"source_ref: no tag mapping ({r['source_ref']!r})")

    # 2. timestamps a sensor cannot have: before 2000, or more than a day after ingestion
    ts, unreadable = to_utc(data["ts"], ctx.timezone)
    data = data.append_column("__ts", ts)
    data = rejects.add(data, unreadable, "ts", lambda r: f"ts: cannot read {r['ts']!r} as an ISO 8601 timestamp")
    data = _set(data, "ts", data["__ts"]).drop_columns(["__ts"])
    ts = data["ts"]
    too_old = pc.less(ts, pa.scalar(TS_MIN, UTC_US))
    data = rejects.add(data, too_old, "ts", lambda r: f"ts: before 2000 ({r['ts']})")
    future = pc.greater(data["ts"], pa.scalar(ctx.ingested_at + timedelta(days=1), UTC_US))
    data = rejects.add(data, future, "ts", lambda r: f"ts: in the future ({r['ts']})")

    # 3. status code and quality (a source without status codes reports Good)
    status, unreadable = cast_column(data["status_code"], pa.int64())
    data = data.append_column("__status", pc.fill_null(status, 0))
    data = rejects.add(data, unreadable, "status_code", lambda r: f"status_code: not an integer ({r['status_code']!r})")
    data = _set(data, "status_code", data["__status"]).drop_columns(["__status"])
    data = _set(data, "quality", pc.coalesce(data["quality"], quality_from_status(data["status_code"])))

    # 4. values: numbers, text and booleans by the tag's declared type
    data = _split_values(data, rejects)

    # 5. units: affine conversion per distinct (source unit, canonical unit, quantity kind)
    data = _convert_units(data, rejects, conversions)
    return data.drop_columns([c for c in ("canonical_unit", "type", "quantity", "null_sent") if c in data.column_names])


def _with_unit_rules(rules: list, refs: pa.DictionaryArray, data: pa.Table, unit_rules: Sequence[UnitRule]) -> list:
    """Each distinct reference's tag rule completed by the first unit rule its (reference, asset, tag)
    matches: unit, quantity and canonical unit where the tag mapping leaves them open."""
    _, first = np.unique(refs.indices.to_numpy(zero_copy_only=False), return_index=True)
    assets, tags = data["asset_id"].take(pa.array(first)).to_pylist(), data["tag"].take(pa.array(first)).to_pylist()
    out = []
    for ref, rule, asset, tag in zip(refs.dictionary.to_pylist(), rules, assets, tags, strict=True):
        hit = next((u for u in unit_rules if u.matches(ref, asset, tag)), None)
        if hit is not None:
            base = rule or TagRule(asset_id=None, tag=None)  # type: ignore[arg-type]
            rule = replace(base, unit=base.unit or hit.unit, quantity=base.quantity or hit.quantity,
                           canonical_unit=base.canonical_unit or hit.canonical_unit)
        out.append(rule)
    return out


def _set(data: pa.Table, name: str, arr: pa.Array | pa.ChunkedArray) -> pa.Table:
    return data.set_column(data.column_names.index(name), name, arr)


def _split_values(data: pa.Table, rejects: Rejects) -> pa.Table:
    """Put each value where its tag's declared type says: `value` (number, bool) or `value_text`."""
    value = data["value"]
    is_text = pc.fill_null(pc.equal(data["type"], "text"), False)
    is_bool = pc.fill_null(pc.equal(data["type"], "bool"), False)
    if pa.types.is_string(value.type) or pa.types.is_large_string(value.type):
        text_in = pc.coalesce(value, data["value_text"])
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(text_in))
        as_bool = pc.if_else(pc.is_in(lowered, pa.array(["true", "on", "1"])), 1.0,
                             pc.if_else(pc.is_in(lowered, pa.array(["false", "off", "0"])), 0.0, None))
        numeric = pc.if_else(is_bool, as_bool, cast_column(text_in, pa.float64())[0])
    else:
        numeric = value if value.type == pa.float64() else pc.cast(value, pa.float64())
        # numbers keep their own column; only text sent for a numeric tag needs a second look
        text_in = pc.if_else(pc.is_null(numeric), data["value_text"], pa.scalar(None, pa.string()))
    data = data.append_column("__sent", pc.cast(text_in, pa.string()))
    data = _set(data, "value", pc.if_else(is_text, pa.scalar(None, pa.float64()), numeric))
    text_value = pc.coalesce(data["__sent"], pc.cast(numeric, pa.string())) if pc.any(is_text).as_py() else data["__sent"]
    data = _set(data, "value_text", pc.if_else(is_text, text_value, pa.scalar(None, pa.string())))
    wrong_type = pc.and_(pc.invert(is_text), pc.and_(pc.is_null(data["value"]), pc.is_valid(data["__sent"])))
    data = rejects.add(data, wrong_type, "value",
                       lambda r: f"value: not a {r['type']} as mapped for tag {r['tag']} ({r['__sent']!r})")
    nonfinite = pc.and_(pc.is_valid(data["value"]), pc.invert(pc.is_finite(data["value"])))
    data = rejects.add(data, nonfinite, "value", lambda r: f"value: not a finite number ({r['value']})")
    # a Bad or Uncertain reading without a value is still a fact (the sensor failed then); a Good one is not
    missing = pc.and_(pc.and_(pc.is_null(data["value"]), pc.is_null(data["value_text"])), pc.equal(data["quality"], "good"))
    if "null_sent" in data.column_names:  # the source said "null" (a Sparkplug is_null metric): a fact, kept
        missing = pc.and_(missing, pc.invert(pc.fill_null(data["null_sent"], False)))
    data = rejects.add(data, missing, "value", "value: missing value")
    return data.drop_columns(["__sent"])


def _convert_units(data: pa.Table, rejects: Rejects, conversions: Counter) -> pa.Table:
    """Affine conversion resolved once per distinct (source unit, canonical unit, quantity kind)."""
    is_text = pc.fill_null(pc.equal(data["type"], "text"), False)
    src = pc.dictionary_encode(pc.if_else(is_text, "", pc.fill_null(data["unit"], ""))).combine_chunks()
    canon = pc.dictionary_encode(data["canonical_unit"], null_encoding="encode").combine_chunks()
    kind = pc.dictionary_encode(data["quantity"], null_encoding="encode").combine_chunks()
    wc, wk = max(len(canon.dictionary), 1), max(len(kind.dictionary), 1)
    # dictionaries are small: int64 holds every triple; count them in one pass instead of sorting rows
    code = src.indices.to_numpy().astype(np.int64) * (wc * wk)
    code += pc.fill_null(canon.indices, 0).to_numpy().astype(np.int64) * wk
    code += pc.fill_null(kind.indices, 0).to_numpy()
    counts = np.bincount(code, minlength=len(src.dictionary) * wc * wk)
    codes = np.flatnonzero(counts)
    lookup = np.zeros(len(counts), dtype=np.int64)
    lookup[codes] = np.arange(len(codes))
    inverse, counts = lookup[code], counts[codes]
    scale, offset = np.ones(len(codes)), np.zeros(len(codes))
    target: list[str | None] = []
    problems: dict[int, str] = {}
    for k, c in enumerate(codes):
        s_unit = src.dictionary[int(c // (wc * wk))].as_py()
        c_unit = canon.dictionary[int(c // wk % wc)].as_py() if len(canon.dictionary) else None
        quantity = kind.dictionary[int(c % wk)].as_py() if len(kind.dictionary) else None
        try:
            tgt = c_unit if c_unit is not None else units.canonical_unit(s_unit, quantity)
            scale[k], offset[k] = units.affine(s_unit, tgt, quantity)
        except units.UnitError as exc:
            problems[k] = f"unit: {exc}"
            tgt = None
        target.append(tgt)
        if k not in problems and (scale[k], offset[k]) != (1.0, 0.0):
            conversions[f"{s_unit} -> {tgt}"] += int(counts[k])
    value = pc.add(pc.multiply(data["value"], pa.array(scale[inverse])), pa.array(offset[inverse]))
    data = _set(data, "value", value)
    data = _set(data, "unit", pc.take(pa.array(target, pa.string()), pa.array(inverse)))
    if problems:
        bad = np.isin(inverse, list(problems))
        data = data.append_column("__pair", pa.array(inverse))
        data = rejects.add(data, bad, "unit", lambda r: problems[r["__pair"]]).drop_columns(["__pair"])
    return data


PREPARE: dict[str, Callable[[pa.Table, ConformContext, Rejects, Counter], pa.Table]] = {
    "sensor_readings": _prepare_sensor_readings,
}
