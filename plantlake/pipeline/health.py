"""Is every source delivering? Each source's last published interval against its `freshness`
setting, and its open incidents, into the `source_freshness` table.

A run that ends well records the newest interval it published (`Lake.record_published`); a run
that fails for good opens an incident (`Lake.open_incident`, the ingest task's failure callback in
`plantlake.app.alerts`); the freshness check opens a `stale` incident for a source whose last
interval ended longer ago than its freshness allows, and closes it when the source is back. The
quality DAG runs the check on its own schedule (`quality.freshness_schedule`) as well as after
publishes, so a source that stops publishing is noticed although it triggers nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from plantlake.core.config import PlantConfig
from plantlake.core.lake import Interval, Lake
from schemas import get_table
from schemas.lineage import stamped

TABLE = "source_freshness"
#: the incident kinds: a run that failed for good, a run whose audit held the batch back, a stale source
FAILED, AUDIT_BLOCKED, STALE = "failed", "audit_blocked", "stale"
RUN_INCIDENTS = (FAILED, AUDIT_BLOCKED)


@dataclass
class SourceHealth:
    source: str
    kind: str
    state: str
    freshness: timedelta | None
    last: dict[str, Any] | None
    lag: timedelta | None
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def problem(self) -> str | None:
        """What is wrong, in a sentence for plant IT (None when nothing is)."""
        if self.state == "failed":
            return "; ".join(f"{kind}: {i.get('message', '')}" for kind, i in sorted(self.incidents.items())
                             if kind in RUN_INCIDENTS)
        if self.state == "stale":
            if self.last is None:
                return f"no interval published yet (freshness {_span(self.freshness)})"
            return (f"last published interval ended {self.last['interval_end']}, {_span(self.lag)} ago "
                    f"(freshness {_span(self.freshness)})")
        return None


@dataclass
class FreshnessResult:
    checked_at: datetime
    sources: list[SourceHealth]
    version: int

    @property
    def failing(self) -> list[SourceHealth]:
        return [s for s in self.sources if s.state in ("stale", "failed")]


def _span(d: timedelta | None) -> str:
    if d is None:
        return "-"
    s = int(d.total_seconds())
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else f"{s // 60} min {s % 60:02d} s"


def health(lake: Lake, src: Any, now: datetime) -> SourceHealth:
    """One source's state at `now`."""
    last = lake.last_published(src.name)
    incidents = lake.open_incidents(src.name)
    lag = now - datetime.fromisoformat(last["interval_end"]) if last else None
    if any(k in incidents for k in RUN_INCIDENTS):
        state = "failed"
    elif src.freshness is not None and (lag is None or lag > src.freshness):
        state = "stale"
    else:
        state = "unchecked" if src.freshness is None else "fresh"
    return SourceHealth(src.name, src.kind, state, src.freshness, last, lag, incidents)


def check_freshness(lake: Lake, cfg: PlantConfig, run_id: str, now: datetime | None = None,
                    raise_incident: Callable[[str, str, dict[str, Any]], Any] | None = None) -> FreshnessResult:
    """Every enabled source's health at `now`, appended to `source_freshness` (a retry of the
    same run replaces its rows). A stale source's incident is raised through `raise_incident`
    (source, kind, record; default: opened in the lake without a message), which opens it once; a
    source fresh again has it closed."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    raise_incident = raise_incident or (lambda source, kind, record: lake.open_incident(source, kind, record))
    out = []
    for src in cfg.sources:
        if not src.enabled:
            continue
        h = health(lake, src, now)
        if h.state == "stale":
            record = {"message": h.problem, "last_interval_end": h.last and h.last["interval_end"]}
            raise_incident(src.name, STALE, record)
            h.incidents[STALE] = record
        elif STALE in h.incidents and h.state in ("fresh", "unchecked"):
            lake.close_incident(src.name, STALE)
            h.incidents.pop(STALE)
        out.append(h)
    version = _write(lake, out, now, run_id)
    return FreshnessResult(now, out, version)


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _write(lake: Lake, sources: list[SourceHealth], now: datetime, run_id: str) -> int:
    table = get_table(TABLE)
    second = now.replace(microsecond=0)
    rows = [{
        "checked_at": now, "source": h.source, "kind": h.kind, "state": h.state,
        "freshness_s": h.freshness.total_seconds() if h.freshness is not None else None,
        "last_interval_start": _ts(h.last and h.last["interval_start"]),
        "last_interval_end": _ts(h.last and h.last["interval_end"]),
        "last_published_at": _ts(h.last and h.last["published_at"]),
        "lag_s": h.lag.total_seconds() if h.lag is not None else None,
        "incident": h.problem, "run_id": run_id,
    } for h in sources]
    schema = table.arrow_schema()
    data = stamped(table, pa.Table.from_pylist(rows, schema=schema.remove(schema.get_field_index("ingested_at"))),
                   run_id)
    # owned by the run: its retry replaces its rows, two runs in the same second keep theirs
    owner = "freshness__" + re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return lake.write_quality_results(table, owner, Interval(second, second + timedelta(seconds=1)), data, run_id)
