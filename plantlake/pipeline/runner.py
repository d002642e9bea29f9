"""The pipeline runner: one source, one data interval, every step.

    extract -> land raw -> [per slice: decode -> conform -> stage -> audit] -> publish -> commit state

Each step reads what the previous one wrote: decode reads the landed raw files (in slices of
whole series for a large interval, `slicing`), the audit reads the staged files, and the one
write-audit-publish path (`publish`) quarantines and renames them. The CLI, the DAGs, the demo
and the tests all call `run_source`.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from plantlake.core.config import PlantConfig, load_config
from plantlake.core.errors import NothingPublished
from plantlake.core.lake import Interval, Lake
from plantlake.pipeline import slicing
from plantlake.pipeline.catalog import build_catalog
from plantlake.pipeline.publish import Published, WriteAuditPublish

log = logging.getLogger(__name__)


@dataclass
class TableSummary:
    rows_in: int = 0
    published: int = 0
    quarantined: int = 0
    duplicates: int = 0
    #: the table's Delta version this run's publish committed, and its quarantine table's (None: none)
    version: int | None = None
    quarantine_version: int | None = None
    conversions: dict[str, int] = field(default_factory=dict)
    #: quarantined rows per kind of reason (values left out), and the first full reason of each kind
    reasons: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    checks: int = 0
    #: older versions of rows this run's rows replaced (upserted tables)
    superseded: int = 0

    def count(self, rejects: Any) -> None:
        """Quarantined rows by kind of reason, and the first full reason of each kind."""
        self.reasons = dict(Counter(self.reasons) + rejects.reasons())
        for kind, example in rejects.examples().items():
            self.examples.setdefault(kind, example)

    def record(self, done: Published) -> None:
        self.published, self.quarantined, self.superseded = done.rows, done.quarantined, done.superseded
        self.version, self.quarantine_version = done.version, done.quarantine_version


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
    #: where the source reads (the system's URI, no credentials) and what there (node selectors,
    #: topics, tables, folders): the run's lineage
    origin: str = ""
    refs: list[str] = field(default_factory=list)

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
            lines.append(f"  {name}: {t.published} rows (version {t.version}), {t.quarantined} quarantined, "
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

    def reset(self) -> None:
        self.t = time.perf_counter()


def run_source(source_name: str, start: datetime, end: datetime, *, config: PlantConfig | None = None,
               lake: Lake | None = None, run_id: str | None = None, connector: Any = None) -> RunSummary:
    """Run one configured source for the data interval [start, end). `connector`: an instance
    to use instead of the one the source's kind names (benchmarks feed generated rows)."""
    cfg = config or load_config()
    src = cfg.source(source_name)
    lake = (lake or cfg.open_lake()).ensure()
    interval = Interval(start, end)
    run_id = run_id or f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    summary = RunSummary(src.name, src.kind, interval.start.isoformat(), interval.end.isoformat(), run_id)
    timer = _Timer(summary)
    log.info("run %s for %s (run_id %s)", src.name, interval, run_id)
    if connector is None:
        connector = _connector(src, cfg)
    connector.files = lake.file_stores()
    summary.origin, summary.refs = connector.lineage()
    spill = lake.staging_dir / "_raw_slices" / f"{src.name}__{interval.key}__{uuid.uuid4().hex[:12]}"
    try:
        extract = connector.extract(interval, connector.load_state(lake.read_state(src.name)))
        timer.lap("extract")
        raw = _land(lake, src.name, interval, extract, summary)
        timer.lap("land")
        wap = WriteAuditPublish(lake, src.name, interval, run_id, connector.tables)
        conform = _Conform(lake, src, connector, wap, summary, run_id, extract.full_refresh)
        parts = slicing.slices(connector, src, extract, raw, summary.raw_rows, conform.tables, spill, lake.open_raw)
        state = extract.state
        for k, (load, values, present) in enumerate(parts):
            decoded = connector.decode(load())
            add_stats(summary.stats, decoded.stats)
            state = decoded.state if decoded.state is not None else state
            timer.lap("decode")
            conform.slice(decoded, slice_label=f"__p{k:04d}" if len(parts) > 1 else "",
                          rules=slicing.slice_source(src, values, present, first=k == 0), timer=timer)
        for name, done in wap.publish().items():
            summary.tables.setdefault(name, TableSummary()).record(done)
        timer.lap("publish")
        if not lake.remote:  # its views name the files of the snapshots just committed; an object-storage
            build_catalog(lake)  # lake's catalog is the analysts' (plantlake sql, products), not each worker's
        timer.lap("catalog")
        if state is not None:
            lake.write_state(src.name, connector.dump_state(state))
        add_stats(summary.stats, {"slices": len(parts), **connector.after_publish()})
        summary.timings_s.update({k: round(v, 4) for k, v in wap.timings_s.items()})
        summary.unmatched = _unmatched(src, connector, conform.refs, conform.series, conform.ctx.unit_rules)
    finally:
        connector.close()
        shutil.rmtree(spill, ignore_errors=True)
    _report(src, summary)
    _healthy(lake, src.name, interval, summary)
    return summary


def _healthy(lake: Lake, source: str, interval: Interval, summary: RunSummary) -> None:
    """The run ended well: the source's last published interval moves on, and the incidents of its
    failed runs close (the next failure is a new incident, with a message of its own)."""
    from plantlake.pipeline.health import RUN_INCIDENTS

    lake.record_published(source, interval, summary.run_id, summary.published)
    for kind, incident in lake.open_incidents(source).items():
        if kind in RUN_INCIDENTS:
            lake.close_incident(source, kind)
            log.info("source %s published again: incident %s of %s closed", source, kind, incident.get("opened_at"))


def _land(lake: Lake, source: str, interval: Interval, extract: Any, summary: RunSummary) -> dict[str, list[str]]:
    """Land the extract; the raw files of the interval per stream (earlier runs' chunks too), as keys."""
    summary.raw_rows = land(lake, source, interval, extract)
    raw = {name: lake.raw_parts(source, interval, stream=name) for name in extract.streams}
    summary.raw_files = [key for keys in raw.values() for key in keys]
    summary.stats = dict(extract.stats)  # complete now: the streams' batches are read
    return raw


def _report(src: Any, summary: RunSummary) -> None:
    for u in summary.unmatched:
        log.warning("source %s: %s", src.name, u)
    log.info("run %s %s .. %s: %d raw rows, %d published, %d quarantined", src.name, summary.interval_start,
             summary.interval_end, summary.raw_rows, summary.published, summary.quarantined)
    _fail_when_nothing_published(src, summary)


def _connector(src: Any, cfg: PlantConfig) -> Any:
    from plantlake.core.connections import get_connection
    from plantlake.core.kinds import source_kind

    connection = get_connection(src.connection_id) if src.connection_id else None
    return source_kind(src.kind).load()(src, cfg, connection)


class _Conform:
    """Decoded rows of one slice into staged, audited batches: per table conform (casts, units,
    tags, dedupe), drop what the lake already holds, check references, then stage and audit."""

    def __init__(self, lake: Lake, src: Any, connector: Any, wap: WriteAuditPublish, summary: RunSummary,
                 run_id: str, full_refresh: frozenset[str]) -> None:
        from schemas import get_table
        from schemas.conform import ConformContext

        self.lake, self.src, self.wap, self.summary, self.full_refresh = lake, src, wap, summary, full_refresh
        self.ctx = ConformContext(run_id=run_id, ingested_at=datetime.now(UTC), source_kind=src.kind, source_name=src.name,
                                  tag_rules=connector.tag_rules(), timezone=connector.timezone,
                                  unit_rules=connector.unit_rules())
        self.tables = [get_table(name) for name in connector.tables]
        self.refs: set[str] = set()  # source references of the decoded sensor rows, and their (ref, asset, tag)
        self.series: set[tuple] = set()

    def slice(self, decoded: Any, *, slice_label: str, rules: Any, timer: _Timer) -> None:
        from schemas.rejects import Rejects

        conformed: dict[str, Any] = {}  # this slice's rows per table, for references between them
        for table in self.tables:
            ts = self.summary.tables.setdefault(table.name, TableSummary())
            rows, rejects = decoded.tables.get(table.name), decoded.rejects.get(table.name)
            if rejects is not None:
                self.wap.reject(table.name, rejects.table())
                ts.count(rejects)
            if rows is None:
                continue
            ts.rows_in += rows.num_rows + (len(rejects) if rejects else 0)
            data = self._conform(table, rows, ts, conformed)
            conformed[table.name] = data
            timer.lap("conform")
            audit = self.wap.stage(table, data, slice_label=slice_label, replace_all=table.name in self.full_refresh,
                                   rules=rules, max_bad_share=self.src.max_bad_share)
            ts.checks += len(audit.checks)
            if audit.rejects is not None:
                ts.count(Rejects(rows=[{"reason": r} for r in audit.rejects["reason"].to_pylist()]))
            timer.reset()  # the write-audit-publish path times its own stage and audit

    def _conform(self, table: Any, rows: Any, ts: TableSummary, conformed: dict[str, Any]) -> Any:
        import pyarrow.compute as pc

        from schemas.conform import check_references, conform
        from schemas.keys import drop_known
        from schemas.rejects import Rejects

        if "source_ref" in rows.column_names:
            self.refs.update(v for v in pc.unique(rows["source_ref"]).to_pylist() if v is not None)
        result = conform(table, rows, self.ctx)
        if {"source_ref", "asset_id", "tag"} <= set(result.table.column_names) and self.ctx.unit_rules:
            series = result.table.select(["source_ref", "asset_id", "tag"]).group_by(
                ["source_ref", "asset_id", "tag"]).aggregate([])
            self.series.update(zip(*(series[c].to_pylist() for c in series.column_names), strict=True))
        known = self.lake.published_keys(table, result.table, self.src.name, self.wap.interval)
        data, already = drop_known(result.table, known, table.primary_key)
        ts.duplicates += result.duplicates + already
        for col in table.columns:
            policy = self.src.references.get(f"{table.name}.{col.name}", "enforce") if col.references else "off"
            if policy == "off":
                continue
            known_values = _referenced(self.lake, col.references, conformed)
            target = col.references.split(".")[0]
            if policy == "enforce":
                data = check_references(data, col.name, known_values, target, result.rejects)
                continue
            unknown = Rejects()  # warn: published, counted and logged
            check_references(data, col.name, known_values, target, unknown)
            if len(unknown):
                key = f"{table.name}.{col.name}"
                refs = self.summary.stats.setdefault("references_unknown", {})
                refs[key] = refs.get(key, 0) + len(unknown)
                log.warning("source %s: %d row(s) of %s name a value unknown in %s (published: "
                            "references %s is warn)", self.src.name, len(unknown), table.name, target, key)
        ts.conversions = dict(Counter(ts.conversions) + Counter(result.conversions))
        self.wap.reject(table.name, result.rejects.table())
        ts.count(result.rejects)
        return data


def _unmatched(src: Any, connector: Any, refs: set[str], series: set[tuple], unit_rules: Any) -> list[str]:
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
    """Write an extract's raw rows durably (fsynced) and return how many. A stream with an
    `on_landed` hook lands each batch as its own chunk and is told after each one (MQTT
    acknowledges then); the streams of a source with several land under raw/<source>/<stream>/."""
    import pyarrow as pa

    rows = 0
    for name, stream in extract.streams.items():
        schema, batches = stream.schema, stream.batches
        if schema is None:  # known once the source answers: take it from the first batch
            it = iter(batches)
            first = next(it, None)
            schema = first.schema if first is not None else pa.schema([])
            batches = itertools.chain([first] if first is not None else [], it)
        if stream.on_landed is None:
            rows += lake.write_raw(source_name, interval, batches, schema, stream=name)[1]
            continue
        known = len(lake.raw_parts(source_name, interval, stream=name))  # chunks of earlier runs stay
        for i, batch in enumerate(batches):
            rows += lake.write_raw(source_name, interval, [batch], schema, chunk=f"p{known + i:05d}", stream=name)[1]
            stream.on_landed(i)
    return rows


def add_stats(into: dict[str, Any], counted: dict[str, Any]) -> None:
    """Counters of one more step (a slice's decode, the after-publish hook) into the summary's:
    numbers add up, nested counters merge, anything else is replaced."""
    for key, value in counted.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            add_stats(into[key], value)
        elif isinstance(value, int | float) and not isinstance(value, bool) and isinstance(into.get(key), int | float):
            into[key] += value
        else:
            into[key] = value
