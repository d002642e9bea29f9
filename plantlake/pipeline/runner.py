"""The pipeline runner: one source, one data interval, every step.

    extract -> land raw -> decode + conform -> stage -> audit -> publish -> commit state

Each step reads what the previous one wrote: conform reads the landed raw file, the
audit reads the staged files, publish renames them. The CLI, the DAGs, the demo and
the tests all call `run_source`.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plantlake.core.config import PlantConfig, load_config
from plantlake.core.errors import NothingPublished
from plantlake.core.lake import STALE_STAGING_S, Interval, Lake, Staged

log = logging.getLogger(__name__)


@dataclass
class TableSummary:
    rows_in: int = 0
    published: int = 0
    quarantined: int = 0
    duplicates: int = 0
    files: list[str] = field(default_factory=list)
    quarantine_file: str | None = None
    conversions: dict[str, int] = field(default_factory=dict)
    #: quarantined rows per kind of reason (values left out), and the first full reason of each kind
    reasons: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    checks: int = 0
    #: older versions of rows this run's rows replaced (upserted tables)
    superseded: int = 0


@dataclass
class RunSummary:
    """What one run did; JSON-serialisable (it is the DAG task's return value)."""

    source: str
    kind: str
    interval_start: str
    interval_end: str
    run_id: str
    raw_rows: int = 0
    raw_files: list[str] = field(default_factory=list)
    tables: dict[str, TableSummary] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    #: mappings of the site config that matched nothing this run (also logged as warnings)
    unmatched: list[str] = field(default_factory=list)

    @property
    def published(self) -> int:
        return sum(t.published for t in self.tables.values())

    @property
    def quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables.values())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSummary:
        """Back from `as_dict` (e.g. the DAG task's return value read from XCom)."""
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        fields["tables"] = {k: TableSummary(**v) for k, v in d.get("tables", {}).items()}
        return cls(**fields)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["published"], d["quarantined"] = self.published, self.quarantined
        return d

    def describe(self) -> str:
        lines = [f"{self.source} ({self.kind}) {self.interval_start} .. {self.interval_end}: "
                 f"{self.raw_rows} raw rows, {self.published} published, {self.quarantined} quarantined"]
        for name, t in self.tables.items():
            lines.append(f"  {name}: {t.published} rows in {len(t.files)} file(s), {t.quarantined} quarantined, "
                         f"{t.duplicates} duplicates dropped")
            for conv, n in t.conversions.items():
                lines.append(f"    converted {n} values {conv}")
            for reason, n in sorted(t.reasons.items(), key=lambda kv: -kv[1]):
                example = t.examples.get(reason)
                lines.append(f"    quarantined {n}: {reason}" + (f"  (e.g. {example})" if example and example != reason
                                                                   else ""))
        lines += [f"  matched nothing: {u}" for u in self.unmatched]
        return "\n".join(lines)


class _Timer:
    def __init__(self, summary: RunSummary) -> None:
        self.summary, self.t = summary, time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.summary.timings_s[step] = round(self.summary.timings_s.get(step, 0.0) + now - self.t, 4)
        self.t = now


def run_source(source_name: str, start: datetime, end: datetime, *, config: PlantConfig | None = None,
               lake: Lake | None = None, run_id: str | None = None, connector: Any = None) -> RunSummary:
    """Run one configured source for the data interval [start, end). `connector`: an instance
    to use instead of the one the source's kind names (benchmarks feed generated rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    import connectors
    from plantlake.core.connections import get_connection
    from quality.audit import audit_staged
    from quality.results import keep_audit
    from schemas import get_table
    from schemas.conform import ConformContext, Rejects, check_references, conform, drop_known

    cfg = config or load_config()
    src = cfg.source(source_name)
    lake = (lake or Lake(cfg.lake_root())).ensure()
    interval = Interval(start, end)
    run_id = run_id or f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    summary = RunSummary(src.name, src.kind, interval.start.isoformat(), interval.end.isoformat(), run_id)
    timer = _Timer(summary)
    log.info("run %s for %s (run_id %s)", src.name, interval, run_id)

    if connector is None:
        connection = get_connection(src.connection_id) if src.connection_id else None
        connector = connectors.load(src.kind)(src, cfg, connection)
    connector.lake = lake
    spill = None  # where a sliced run keeps its raw slices until each is decoded
    try:
        state = lake.read_state(src.name)
        extract = connector.extract(interval, state)
        summary.stats.update(extract.stats)
        timer.lap("extract")

        summary.raw_rows = land(lake, src.name, interval, extract)
        streams = extract.streams or {"": (extract.schema, ())}
        raw_paths = {name: lake.raw_parts(src.name, interval, stream=name) for name in streams}
        summary.raw_files = [str(p.relative_to(lake.root)) for paths in raw_paths.values() for p in paths]
        timer.lap("land")

        ctx = ConformContext(run_id=run_id, ingested_at=datetime.now(UTC), source_kind=src.kind,
                             tag_rules=connector.tag_rules(), timezone=connector.timezone,
                             unit_rules=connector.unit_rules())
        tables = [get_table(name) for name in connector.tables]
        spill = lake.staging_dir / "_raw_slices" / f"{src.name}__{interval.key}__{uuid.uuid4().hex[:12]}"
        slices = raw_slices(connector, src, extract, streams, raw_paths, summary.raw_rows, tables, spill)
        summary.stats["slices"] = len(slices)
        staged_all: dict[str, Staged] = {}  # per table: every slice's staged files, published together
        reject_tables: dict[str, list[pa.Table]] = {t.name: [] for t in tables}
        set_aside: dict[str, int] = {}  # rows the audit's row-level expectations took out
        rows_in: dict[str, int] = {}
        seen_refs: set[str] = set()  # source references of the decoded sensor rows, and their (asset, tag)
        seen_series: set[tuple] = set()
        for k, (load, values, present) in enumerate(slices):
            part = f"__p{k:04d}" if len(slices) > 1 else ""
            rules = _slice_source(src, values, present, first=k == 0)
            decoded = connector.decode(load())
            summary.stats.update(extract.stats)  # counters the drain and decode filled in
            timer.lap("decode")
            conformed: dict[str, pa.Table] = {}
            for table in tables:
                ts = summary.tables.setdefault(table.name, TableSummary())
                rows = decoded.tables.get(table.name)
                rejects = decoded.rejects.get(table.name)
                if rejects is not None:
                    reject_tables[table.name].append(rejects.table())
                    _count_reasons(ts, rejects)
                if rows is None:
                    continue
                ts.rows_in += rows.num_rows + (len(rejects) if rejects else 0)
                if "source_ref" in rows.column_names:
                    seen_refs.update(v for v in pc.unique(rows["source_ref"]).to_pylist() if v is not None)
                result = conform(table, rows, ctx)
                if {"source_ref", "asset_id", "tag"} <= set(result.table.column_names) and ctx.unit_rules:
                    series = result.table.select(["source_ref", "asset_id", "tag"]).group_by(
                        ["source_ref", "asset_id", "tag"]).aggregate([])
                    seen_series.update(zip(*(series[c].to_pylist() for c in series.column_names), strict=True))
                known = lake.published_keys(table, result.table, src.name, interval)
                result.table, already = drop_known(result.table, known, table.primary_key)
                ts.duplicates += result.duplicates + already
                for col in table.columns:
                    policy = src.references.get(f"{table.name}.{col.name}", "enforce") if col.references else "off"
                    if policy == "off":
                        continue
                    known_values = _referenced(lake, col.references, conformed)
                    target = col.references.split(".")[0]
                    if policy == "enforce":
                        result.table = check_references(result.table, col.name, known_values, target, result.rejects)
                    else:  # warn: published, counted and logged
                        unknown = Rejects()
                        check_references(result.table, col.name, known_values, target, unknown)
                        if len(unknown):
                            key = f"{table.name}.{col.name}"
                            refs = summary.stats.setdefault("references_unknown", {})
                            refs[key] = refs.get(key, 0) + len(unknown)
                            log.warning("source %s: %d row(s) of %s name a value unknown in %s (published: "
                                        "references %s is warn)", src.name, len(unknown), table.name, target, key)
                conformed[table.name] = result.table
                rows_in[table.name] = rows_in.get(table.name, 0) + result.table.num_rows
                ts.conversions = dict(Counter(ts.conversions) + Counter(result.conversions))
                reject_tables[table.name].append(result.rejects.table())
                _count_reasons(ts, result.rejects)
                timer.lap("conform")
                if table.key_scope == "latest":  # never sliced (see raw_slices)
                    staged = lake.stage_merge(table, src.name, interval, result.table,
                                              replace_all=table.name in extract.full_refresh)
                    ts.superseded = staged.superseded
                else:
                    before = staged_all.get(table.name)
                    staged = lake.stage(table, src.name, interval, result.table, part=part,
                                        token=before.token if before else None)
                timer.lap("stage")
                audit = audit_staged(table, staged, source=rules, max_bad_share=src.max_bad_share)
                ts.checks += len(audit.checks)
                keep_audit(lake, src.name, interval, run_id, audit, part=part)
                if audit.rejects is not None:
                    reject_tables[table.name].append(audit.rejects)
                    set_aside[table.name] = set_aside.get(table.name, 0) + audit.set_aside
                    _count_reasons(ts, Rejects(rows=[{"reason": r} for r in audit.rejects["reason"].to_pylist()]))
                timer.lap("audit")
                if not audit.passed:
                    lake.discard(staged)
                    for s in staged_all.values():
                        lake.discard(s)
                    audit.raise_for_failures()
                if table.name in staged_all:
                    staged_all[table.name].files.extend(staged.files)
                else:
                    staged_all[table.name] = staged
        for table in tables:
            ts = summary.tables.setdefault(table.name, TableSummary())
            ts.quarantined = sum(t.num_rows for t in reject_tables[table.name])
            qpath = lake.write_quarantine(table.name, src.name, interval,
                                          with_lineage(reject_tables[table.name], src.name, interval, run_id))
            ts.quarantine_file = str(qpath.relative_to(lake.root)) if qpath else None

        for staged in staged_all.values():
            ts = summary.tables[staged.table]
            ts.published = (rows_in[staged.table] - set_aside.get(staged.table, 0) if staged.merge
                            else staged.rows)
            ts.files = [str(p.relative_to(lake.root)) for p in lake.publish(staged)]
        timer.lap("publish")
        if extract.state is not None:
            lake.write_state(src.name, extract.state)
        connector.after_publish()
        summary.stats.update(extract.stats)  # what the after-publish hook counted
        summary.unmatched = _unmatched(src, connector, seen_refs, seen_series, ctx.unit_rules, summary)
    finally:
        connector.close()
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)
    for u in summary.unmatched:
        log.warning("source %s: %s", src.name, u)
    log.info("run %s %s: %d raw rows, %d published, %d quarantined", src.name, interval, summary.raw_rows,
             summary.published, summary.quarantined)
    _fail_when_nothing_published(src, summary)
    return summary


def _count_reasons(ts: TableSummary, rejects: Any) -> None:
    ts.reasons = dict(Counter(ts.reasons) + rejects.reasons())
    for kind, example in rejects.examples().items():
        ts.examples.setdefault(kind, example)


def _unmatched(src: Any, connector: Any, refs: set[str], series: set[tuple], unit_rules: Any,
               summary: RunSummary) -> list[str]:
    """The site config's mappings that matched nothing this run: the connector's own selectors,
    tag mappings whose reference no input carried, unit rules no reading matched."""
    out = list(connector.unmatched())
    if refs:  # only where the source sent readings at all: a quiet hour is not a mapping problem
        out += [f"tags[{j}].ref {t.ref!r} matched no input" for j, t in enumerate(src.tags) if t.ref not in refs]
    if series:
        out += [f"units[{j}] (tag {u.tag!r}, asset {u.asset!r}, ref {u.ref!r}) matched no reading"
                for j, u in enumerate(unit_rules) if not any(u.matches(*s) for s in series)]
    return out


def _fail_when_nothing_published(src: Any, summary: RunSummary) -> None:
    """Input in, nothing out, nothing of it already in the lake: never a green run (unless the
    source says `on_nothing_published: warn`). What was quarantined stays quarantined."""
    rows_in = sum(t.rows_in for t in summary.tables.values())
    if rows_in == 0 or summary.published or any(t.duplicates for t in summary.tables.values()):
        return
    reasons = Counter()
    for t in summary.tables.values():
        reasons.update(t.reasons)
    examples = {k: v for t in summary.tables.values() for k, v in t.examples.items()}
    top = "; ".join(f"{n} x {r}" + (f" (e.g. {examples[r]})" if examples.get(r, r) != r else "")
                    for r, n in reasons.most_common(5)) or "no reason recorded"
    unmatched = f"; matched nothing: {', '.join(summary.unmatched)}" if summary.unmatched else ""
    msg = (f"source {src.name}: {rows_in} input row(s) for {summary.interval_start} .. {summary.interval_end} and "
           f"none published — {summary.quarantined} quarantined ({top}){unmatched}. Fix the mapping in the site "
           f"config (the reasons say where), or set on_nothing_published: warn for source {src.name}")
    if src.on_nothing_published == "warn":
        log.warning("%s", msg)
        return
    raise NothingPublished(msg)


def raw_slices(connector: Any, src: Any, extract: Any, streams: dict, raw_paths: dict, raw_rows: int,
               tables: list, spill: Path) -> list[tuple[Callable[[], Any], set | None, set | None]]:
    """How the landed raw rows are read for decode: (loader, the slice's `slice_column`
    values, every value of the interval) per slice; the values are None for one pass.

    One slice (everything) unless the interval holds more than the source's `slice_rows` raw
    rows and the connector names a `slice_column` (its decode treats rows on their own, and the
    column decides the key's series, e.g. the node or tag reference). Then the column's values
    are packed, in sorted order, into slices of at most `slice_rows` rows (a value with more
    rows is a slice of its own), and one pass over the raw files, a batch at a time, writes each
    row to its slice's file under `spill`: every row of a series, and so every possible
    duplicate key, is in one slice, rows keep their arrival order, and memory is bounded by the
    slice, not by the interval. Upserted tables (key_scope 'latest') are never sliced.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def whole() -> Any:
        raw = {name: pa.concat_tables([pq.read_table(p, schema=schema) for p in raw_paths[name]])
               if raw_paths[name] else (schema or pa.schema([])).empty_table() for name, (schema, _) in streams.items()}
        return raw if extract.streams else raw[""]

    column = getattr(connector, "slice_column", None)
    if (extract.streams or column is None or raw_rows <= src.slice_rows
            or any(t.key_scope == "latest" for t in tables)):
        return [(whole, None, None)]
    paths, schema = raw_paths[""], streams[""][0]
    counts: Counter[Any] = Counter()
    for p in paths:
        values = pq.read_table(p, columns=[column])[column]
        for entry in pc.value_counts(values):
            counts[entry["values"].as_py()] += entry["counts"].as_py()
    slice_of: dict[Any, int] = {}
    current = filled = 0
    for value in sorted(counts, key=lambda v: (v is None, v or "")):
        if filled and filled + counts[value] > src.slice_rows:
            current, filled = current + 1, 0
        slice_of[value] = current
        filled += counts[value]
    n = current + 1
    prefix = spill.name.rsplit("__", 1)[0]  # a killed run of this interval may have left its scratch files
    for old in spill.parent.glob(f"{prefix}__*") if spill.parent.exists() else ():
        if time.time() - old.stat().st_mtime > STALE_STAGING_S:
            shutil.rmtree(old, ignore_errors=True)
    spill.mkdir(parents=True, exist_ok=True)
    # scratch files, read once: Arrow IPC (no encoding, no compression), never fsynced
    writers = [pa.ipc.new_file(spill / f"{i:04d}.arrow", schema) for i in range(n)]
    try:
        for p in paths:
            for batch in pq.ParquetFile(p).iter_batches(batch_size=256 * 1024):
                batch = pa.Table.from_batches([batch]).cast(schema)
                enc = pc.dictionary_encode(batch[column]).combine_chunks()
                ids = np.array([slice_of[v] for v in enc.dictionary.to_pylist()], dtype=np.int32)
                target = ids[enc.indices.fill_null(0).to_numpy()] if len(ids) else np.zeros(batch.num_rows, np.int32)
                if enc.null_count:
                    target[enc.is_null().to_numpy(zero_copy_only=False)] = slice_of[None]
                if n == 1:
                    writers[0].write_table(batch)
                    continue
                # one stable reorder by slice, then a zero-copy range per slice (not a filter per slice)
                grouped = batch.take(pa.array(np.argsort(target, kind="stable")))
                ends = np.cumsum(np.bincount(target, minlength=n))
                for i in np.flatnonzero(np.bincount(target, minlength=n)):
                    start = ends[i - 1] if i else 0
                    writers[i].write_table(grouped.slice(start, ends[i] - start))
    finally:
        for w in writers:
            w.close()

    def load(i: int) -> Any:
        path = spill / f"{i:04d}.arrow"
        with pa.OSFile(str(path)) as fh:
            data = pa.ipc.open_file(fh).read_all()
        path.unlink()
        return data

    present = set(counts)
    return [(lambda i=i: load(i), {v for v, k in slice_of.items() if k == i}, present) for i in range(n)]


def _slice_source(src: Any, values: set | None, present: set | None, first: bool) -> Any:
    """The source config a slice's audit sees: a required tag is required of the slice that
    holds its reference, and of the first slice when no slice does (so its absence fails)."""
    if values is None or not any(t.required for t in src.tags):
        return src
    keep = [t for t in src.tags if not t.required or t.ref in values or (first and t.ref not in present)]
    return src.model_copy(update={"tags": keep})


def _referenced(lake: Lake, reference: str, conformed: dict[str, Any]) -> Any:
    """The values a `table.column` reference may take: what the lake holds plus this run's rows."""
    import pyarrow as pa

    from schemas import get_table

    name, column = reference.split(".")
    parts = [lake.read(get_table(name), columns=[column])[column]]
    if name in conformed:
        parts.append(conformed[name][column])
    return pa.chunked_array([c for p in parts for c in p.chunks], pa.string()).combine_chunks()


def land(lake: Lake, source_name: str, interval: Interval, extract: Any) -> int:
    """Write an extract's raw rows durably (fsynced) and return how many. A chunked extract
    lands each batch as its own part and is told after each one (MQTT acknowledges then);
    an extract with streams lands each stream under raw/<source>/<stream>/."""
    import pyarrow as pa

    rows = 0
    if extract.streams:
        for name, (schema, batches) in extract.streams.items():
            if schema is None:  # known once the source answers: take it from the first batch
                it = iter(batches)
                first = next(it, None)
                schema = first.schema if first is not None else pa.schema([])
                batches = itertools.chain([first] if first is not None else [], it)
            rows += lake.write_raw(source_name, interval, batches, schema, stream=name)[1]
        return rows
    if extract.chunked:
        first = len(lake.raw_parts(source_name, interval))
        for i, batch in enumerate(extract.batches):
            rows += lake.write_raw(source_name, interval, [batch], extract.schema, part=f"p{first + i:05d}")[1]
            if extract.on_landed:
                extract.on_landed(i)
    else:
        rows = lake.write_raw(source_name, interval, extract.batches, extract.schema)[1]
        if extract.on_landed:
            extract.on_landed(0)
    return rows


def with_lineage(parts: list, source: str, interval: Interval, run_id: str):
    import pyarrow as pa

    from schemas.conform import REJECT_SCHEMA, constant

    data = pa.concat_tables([p.cast(REJECT_SCHEMA) for p in parts]) if parts else REJECT_SCHEMA.empty_table()
    n = data.num_rows
    ts = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    return (data.append_column("source", constant(source, n))
                .append_column("run_id", constant(run_id, n))
                .append_column("interval_start", pa.array([interval.start] * n, pa.timestamp("us", tz="UTC")))
                .append_column("quarantined_at", pa.array([ts.as_py()] * n, pa.timestamp("us", tz="UTC"))))
