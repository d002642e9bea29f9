"""Gap backfill: find the source's schedule intervals with no curated rows, replay them.

A gap is a data interval of the source's schedule in [start, end) (the intervals its DAG runs:
`schedule.intervals`, Airflow's timetable) for which
`sensor_readings` holds no row of that source (`source_name`) with a timestamp inside it
(for instance the hours an earlier outage left empty). Replaying runs the normal
pipeline for exactly those intervals, so history-backed sources fill them.
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np

from plantlake.core.config import PlantConfig
from plantlake.core.lake import Interval, Lake
from plantlake.pipeline import schedule

log = logging.getLogger(__name__)


def find_gaps(cfg: PlantConfig, source: str, start: datetime, end: datetime, lake: Lake | None = None) -> list[Interval]:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from schemas import get_table

    src = cfg.source(source)
    lake = lake or cfg.open_lake()
    intervals = schedule.intervals(src.schedule, start, end)
    if not intervals:
        return []
    table = get_table("sensor_readings")
    counts = np.zeros(len(intervals), dtype=np.int64)
    data = lake.dataset(table)
    if data is not None:
        lo, hi = intervals[0].start, intervals[-1].end
        # the source's own rows; rows from before sensor_readings v3 name only the kind
        mine = (ds.field("source_name") == src.name) | (ds.field("source_name").is_null() & (ds.field("source") == src.kind))
        rows = data.to_table(columns=["ts"], filter=mine & (ds.field("ts") >= lo) & (ds.field("ts") < hi))
        us = pc.cast(rows["ts"], "int64").to_numpy()
        edges = np.array([int(iv.start.timestamp() * 1e6) for iv in intervals] + [int(hi.timestamp() * 1e6)])
        counts = np.bincount(np.searchsorted(edges, us, side="right") - 1, minlength=len(intervals))[:len(intervals)]
    return [iv for iv, n in zip(intervals, counts, strict=True) if n == 0]


def fill_gaps(cfg: PlantConfig, source: str, start: datetime, end: datetime, lake: Lake | None = None) -> list:
    from plantlake.pipeline.runner import run_source

    out = []
    for iv in find_gaps(cfg, source, start, end, lake):
        log.info("filling gap %s of %s", iv, source)
        out.append(run_source(source, iv.start, iv.end, config=cfg, lake=lake, run_id=f"gapfill__{iv.key}"))
    return out
