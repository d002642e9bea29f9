"""Fused products: tables that join the silos (`order_context`, `image_training_set`).

Each product is built per UTC day from the curated tables with DuckDB, then goes through the
same stage → audit (its GX suite) → publish path as the sources, so a rebuild of a day
replaces that day's file and nothing half-written is ever visible. `build_day` is what the
products DAG, the CLI and the demo call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from plantlake.core.config import PlantConfig
from plantlake.core.lake import Interval, Lake

log = logging.getLogger(__name__)

#: the products, in build order, and the curated tables each reads
PRODUCTS = {
    "order_context": ("production_orders", "sensor_readings", "inspection_images", "quality_inspections", "events"),
    "image_training_set": ("inspection_images", "sensor_readings", "quality_inspections", "events"),
}
SOURCE = "products"

#: SQL (DuckDB, with the `events` and `lines` views): each alarm episode of a condition on a mapped
#: asset, from an activation (an event with active true after one with active false, or the first)
#: to the condition's next event with active false (null: still active as far as the lake knows)
ALARMS = """
alarm_events as (
    select e.*, l.line_id, lag(e.active) over (partition by e.condition_id order by e.time, e.event_id) as was_active
    from events e join lines l using (asset_id) where e.condition_id is not null and e.active is not null),
alarms as (
    select s.condition_id, s.condition_name, s.asset_id, s.tag, s.line_id, s.severity, s.time as active_from,
           (select min(x.time) from alarm_events x
            where x.condition_id = s.condition_id and not x.active and x.time > s.time) as active_to
    from alarm_events s where s.active and not coalesce(s.was_active, false))"""


@dataclass
class ProductRun:
    product: str
    day: str
    rows: int = 0
    quarantined: int = 0
    #: the product table's Delta version the build committed
    version: int | None = None
    #: the build's manifest (its key in the lake) and the input tables' versions it read
    manifest: str | None = None
    inputs: dict[str, int | None] | None = None


def day_interval(day: date) -> Interval:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return Interval(start, start + timedelta(days=1))


def publish(lake: Lake, table_name: str, day: date, data: Any, run_id: str, *, source: str = SOURCE,
            interval: Interval | None = None) -> ProductRun:
    """Stage, audit with the table's suite, publish; rows failing its expectations are quarantined."""
    from plantlake.pipeline.publish import WriteAuditPublish
    from schemas import get_table

    table = get_table(table_name)
    wap = WriteAuditPublish(lake, source, interval or day_interval(day), run_id, [table_name])
    wap.stage(table, data.cast(table.arrow_schema()))
    done = wap.publish()[table_name]
    return ProductRun(table_name, day.isoformat(), rows=done.rows, quarantined=done.quarantined, version=done.version)


def publish_assets(lake: Lake, cfg: PlantConfig, run_id: str) -> ProductRun:
    """The site config's ISA-95 hierarchy as the `assets` table (what analysts join lines and
    machines with), replaced whole on every build."""
    import pyarrow as pa

    from schemas import get_table
    from schemas.lineage import stamped

    table = get_table("assets")
    now = datetime.now(UTC)
    data = stamped(table, pa.Table.from_pylist(cfg.assets()), run_id, now)
    return publish(lake, "assets", now.date(), data, run_id, source="site_config",
                   interval=Interval(datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 2, tzinfo=UTC)))


def build_day(lake: Lake, cfg: PlantConfig, day: date, run_id: str,
              products: tuple[str, ...] = tuple(PRODUCTS)) -> list[ProductRun]:
    """Build the products of one UTC day (a rerun replaces them), each from its inputs pinned to
    their current Delta versions, and keep each build's manifest (`products.manifest`)."""
    from plantlake.pipeline.products import manifest

    runs = [publish_assets(lake, cfg, run_id)]
    for name in products:
        data, m = manifest.build(lake, cfg, name, day, run_id)
        run = publish(lake, name, day, data, run_id)
        m.version, m.published, m.quarantined = run.version, run.rows, run.quarantined
        run.manifest, run.inputs = manifest.save(lake, m), m.inputs
        runs.append(run)
        log.info("%s %s: %d rows, manifest %s", name, day, run.rows, run.manifest)
    return runs


def days_touched(lake: Lake, cfg: PlantConfig, intervals: list[Interval]) -> list[date]:
    """The days whose products a publish of these intervals changes: the intervals' own days, and
    the start days of orders running during them (an order's context lives on its start day)."""
    out: set[date] = set()
    for iv in intervals:
        day = iv.start.date()
        while datetime(day.year, day.month, day.day, tzinfo=UTC) < iv.end:
            out.add(day)
            day += timedelta(days=1)
    if intervals:
        from schemas import get_table

        orders = lake.read(get_table("production_orders"), columns=["actual_start", "actual_end"]).to_pylist()
        for o in orders:
            start, end = o["actual_start"], o["actual_end"]
            if start is None:
                continue
            if any(start < iv.end and (end is None or end > iv.start) for iv in intervals):
                out.add(start.date())
    return sorted(out)
