"""`order_context`: one row per production order that started on the day.

Per order: its line, window, material and quantities from the ERP; per asset and tag on the
order's line, the readings during the order's actual window (to its end, or to now while it
runs): count, mean, min, max, standard deviation and the share of Bad/Uncertain readings;
the images of its parts; its inspections and their pass rate; the alarm episodes on its line
while it ran (`alarms`: which condition, on which asset and tag, how severe, from when to when).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from plantlake.core.config import PlantConfig
from plantlake.core.lake import Lake
from plantlake.core.views import connect
from plantlake.pipeline.products import ALARMS, day_interval

SQL = """
with """ + ALARMS + """,
o as (
    select * from production_orders
    where actual_start >= $start and actual_start < $end),
w as (select order_id, line_id, actual_start as ws, coalesce(actual_end, $now) as we from o),
r as (select r.*, l.line_id from sensor_readings r join lines l using (asset_id)),
agg as (
    select w.order_id, r.asset_id, r.tag, any_value(r.unit) as unit, count(*) as n,
           avg(r.value) as mean, min(r.value) as min, max(r.value) as max, stddev_samp(r.value) as std,
           avg(case when r.quality = 'good' then 0.0 else 1.0 end) as bad_share
    from w join r on r.line_id = w.line_id and r.ts >= w.ws and r.ts < w.we
    group by all),
sensor as (
    select order_id, list({'asset_id': asset_id, 'tag': tag, 'unit': unit, 'n': n, 'mean': mean, 'min': min,
                           'max': max, 'std': std, 'bad_share': bad_share} order by asset_id, tag) as sensor
    from agg group by order_id),
order_alarms as (
    select w.order_id, list({'condition_id': a.condition_id, 'condition_name': a.condition_name, 'asset_id': a.asset_id,
                             'tag': a.tag, 'severity': a.severity, 'active_from': a.active_from,
                             'active_to': a.active_to} order by a.active_from, a.condition_id) as alarms
    from w join alarms a on a.line_id = w.line_id and a.active_from < w.we and coalesce(a.active_to, w.we) > w.ws
    group by w.order_id),
images as (select order_id, count(*) as image_count from inspection_images group by order_id),
insp as (
    select order_id, count(*) as inspections, avg(case when result = 'pass' then 1.0 else 0.0 end) as pass_rate
    from quality_inspections group by order_id)
select o.order_id, o.line_id, o.material_id, o.status, o.quantity_planned, o.quantity_produced,
       o.planned_start, o.planned_end, o.actual_start, o.actual_end,
       coalesce(sensor.sensor, []) as sensor, coalesce(images.image_count, 0) as image_count,
       coalesce(insp.inspections, 0) as inspections, insp.pass_rate as inspection_pass_rate,
       coalesce(order_alarms.alarms, []) as alarms
from o left join sensor using (order_id) left join images using (order_id) left join insp using (order_id)
     left join order_alarms using (order_id)
order by o.order_id
"""  # noqa: S608 - constant SQL (ALARMS too); values are parameters


def build(lake: Lake, cfg: PlantConfig, day: date, run_id: str, *, versions: dict[str, int | None] | None = None,
          now: datetime | None = None) -> Any:
    """The day's orders from the inputs at `versions` (default: current); `now` ends open orders' windows."""
    from schemas import get_table
    from schemas.lineage import stamped

    iv = day_interval(day)
    now = now or datetime.now(UTC)
    # an order that starts today may run (and have its parts photographed and inspected) into
    # the following days: read up to a week of them
    later = (day, max(day, min(now.date(), day + timedelta(days=7))))
    events = (day - timedelta(days=1), later[1] + timedelta(days=1))
    con = connect(lake, cfg, {"sensor_readings": later, "inspection_images": later, "quality_inspections": later,
                              "events": events},
                  versions)
    rows = con.sql(SQL, params={"start": iv.start, "end": iv.end, "now": now}).to_arrow_table()
    return stamped(get_table("order_context"), rows, run_id, now)
