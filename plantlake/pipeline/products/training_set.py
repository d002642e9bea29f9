"""`image_training_set`: one row per capture (inspection image row) of the day.

Per image: its URI in the lake and its features, the part and order, the label (the ERP's
latest inspection verdict for the part, with its defect code) and, as of the capture time,
the readings on the image's line in the `products.image_sensor_window_s` seconds before it:
per asset and tag the mean, min, max and last value (`sensor_features`), and the same
readings resampled to a fixed grid (`sensor_traces`): one value every
`products.image_trace_step_s` seconds, the last point at the capture, each the last Good
reading at or before that point within the window (null before the first), with the share
of the window's readings that were Bad or Uncertain — a sequence a model takes as it is — and
the alarm episodes on the line that overlapped the window (`alarms`; an episode still active at
the capture has no end: the row holds what was known at the capture). A vision model trains on
the URIs, a tabular model on the features, both on the label.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from plantlake.core.config import PlantConfig
from plantlake.core.lake import Lake
from plantlake.core.views import connect
from plantlake.pipeline.products import ALARMS, day_interval

SQL = """
with """ + ALARMS + """,
i as (
    select i.*, l.line_id from inspection_images i left join lines l using (asset_id)
    where i.captured_at >= $start and i.captured_at < $end),
r as (select r.*, l.line_id from sensor_readings r join lines l using (asset_id)),
agg as (
    select i.capture_id, r.asset_id, r.tag, any_value(r.unit) as unit, avg(r.value) as mean, min(r.value) as min,
           max(r.value) as max, arg_max(r.value, r.ts) as last,
           avg(case when r.quality = 'good' then 0.0 else 1.0 end) as bad_share
    from i join r on r.line_id = i.line_id
                 and r.ts > i.captured_at - to_microseconds($window_us) and r.ts <= i.captured_at
    group by all),
features as (
    select capture_id, list({'asset_id': asset_id, 'tag': tag, 'unit': unit, 'mean': mean, 'min': min, 'max': max,
                           'last': last} order by asset_id, tag) as sensor_features
    from agg group by capture_id),
grid as (  -- per capture and tag seen in its window: the trace's points, the last one at the capture
    select a.capture_id, a.asset_id, a.tag, i.captured_at, k,
           i.captured_at - to_microseconds(($points - 1 - k) * $step_us) as at
    from agg a join i using (capture_id) cross join range($points) as g(k)),
good as (select asset_id, tag, ts, value from r where quality = 'good'),
held as (
    select g.capture_id, g.asset_id, g.tag, g.k,
           case when good.ts > g.captured_at - to_microseconds($window_us) then good.value end as value
    from grid g asof left join good on g.asset_id = good.asset_id and g.tag = good.tag and g.at >= good.ts),
traces as (
    select h.capture_id, list({'asset_id': h.asset_id, 'tag': h.tag, 'unit': a.unit, 'step_s': $step_s,
                               'bad_share': a.bad_share, 'values': h.vals} order by h.asset_id, h.tag) as sensor_traces
    from (select capture_id, asset_id, tag, list(value order by k) as vals from held group by all) h
    join agg a using (capture_id, asset_id, tag)
    group by h.capture_id),
alarms_seen as (  -- episodes on the line overlapping the window; an end after the capture was not known then
    select i.capture_id, list({'condition_id': a.condition_id, 'condition_name': a.condition_name, 'asset_id': a.asset_id,
                               'tag': a.tag, 'severity': a.severity, 'active_from': a.active_from,
                               'active_to': case when a.active_to <= i.captured_at then a.active_to end}
                              order by a.active_from, a.condition_id) as alarms
    from i join alarms a on a.line_id = i.line_id and a.active_from <= i.captured_at
                         and coalesce(a.active_to, i.captured_at) > i.captured_at - to_microseconds($window_us)
    group by i.capture_id),
verdict as (
    select part_serial, arg_max(result, updated_at) as label, arg_max(defect_code, updated_at) as defect_code
    from quality_inspections group by part_serial)
select i.image_id, i.capture_id, i.uri, i.captured_at, i.asset_id, i.line_id, i.part_serial, i.order_id, i.width, i.height,
       i.brightness, i.contrast, i.sharpness, coalesce(f.sensor_features, []) as sensor_features,
       coalesce(t.sensor_traces, []) as sensor_traces, coalesce(al.alarms, []) as alarms, v.label, v.defect_code
from i left join features f using (capture_id) left join traces t using (capture_id)
     left join alarms_seen al using (capture_id) left join verdict v using (part_serial)
order by i.captured_at, i.capture_id
"""  # noqa: S608 - constant SQL (ALARMS too); values are parameters


def build(lake: Lake, cfg: PlantConfig, day: date, run_id: str, *, versions: dict[str, int | None] | None = None,
          now: datetime | None = None) -> Any:
    """The day's set from the inputs at `versions` (default: current), stamped `now`."""
    from schemas import get_table
    from schemas.lineage import stamped

    iv = day_interval(day)
    window = timedelta(seconds=cfg.products.image_sensor_window_s)
    # the window before a capture just after midnight reaches into the day before; a part is
    # inspected after its image was taken, up to a week later
    con = connect(lake, cfg, {"sensor_readings": ((iv.start - window).date(), day),
                              "inspection_images": (day, day),
                              "quality_inspections": (day, day + timedelta(days=7)),
                              "events": (day - timedelta(days=1), day + timedelta(days=1))}, versions)
    step = cfg.products.image_trace_step_s
    rows = con.sql(SQL, params={"start": iv.start, "end": iv.end, "window_us": int(window.total_seconds() * 1_000_000),
                                "step_s": step, "step_us": step * 1_000_000,
                                "points": cfg.products.image_sensor_window_s // step}).to_arrow_table()
    return stamped(get_table("image_training_set"), rows, run_id, now)
