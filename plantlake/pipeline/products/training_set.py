"""`image_training_set`: one row per capture (inspection image row) of the day.

Per image: its URI in the lake and its features, the part and order, the label (the ERP's
latest inspection verdict for the part, with its defect code) and, as of the capture time,
the readings on the image's line in the `products.image_sensor_window_s` seconds before it:
per asset and tag the mean, min, max and last value. A vision model trains on the URIs, a
tabular model on the features, both on the label.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from plantlake.core.config import PlantConfig
from plantlake.core.lake import Lake
from plantlake.core.views import connect
from plantlake.pipeline.products import day_interval

SQL = """
with i as (
    select i.*, l.line_id from inspection_images i left join lines l using (asset_id)
    where i.captured_at >= $start and i.captured_at < $end),
r as (select r.*, l.line_id from sensor_readings r join lines l using (asset_id)),
agg as (
    select i.capture_id, r.asset_id, r.tag, any_value(r.unit) as unit, avg(r.value) as mean, min(r.value) as min,
           max(r.value) as max, arg_max(r.value, r.ts) as last
    from i join r on r.line_id = i.line_id
                 and r.ts > i.captured_at - to_microseconds($window_us) and r.ts <= i.captured_at
    group by all),
features as (
    select capture_id, list({'asset_id': asset_id, 'tag': tag, 'unit': unit, 'mean': mean, 'min': min, 'max': max,
                           'last': last} order by asset_id, tag) as sensor_features
    from agg group by capture_id),
verdict as (
    select part_serial, arg_max(result, updated_at) as label, arg_max(defect_code, updated_at) as defect_code
    from quality_inspections group by part_serial)
select i.image_id, i.capture_id, i.uri, i.captured_at, i.asset_id, i.line_id, i.part_serial, i.order_id, i.width, i.height,
       i.brightness, i.contrast, i.sharpness, coalesce(f.sensor_features, []) as sensor_features,
       v.label, v.defect_code
from i left join features f using (capture_id) left join verdict v using (part_serial)
order by i.captured_at, i.capture_id
"""


def build(lake: Lake, cfg: PlantConfig, day: date, run_id: str) -> Any:

    from schemas import get_table
    from schemas.lineage import stamped

    iv = day_interval(day)
    window = timedelta(seconds=cfg.products.image_sensor_window_s)
    # the window before a capture just after midnight reaches into the day before; a part is
    # inspected after its image was taken, up to a week later
    con = connect(lake, cfg, {"sensor_readings": ((iv.start - window).date(), day),
                              "inspection_images": (day, day),
                              "quality_inspections": (day, day + timedelta(days=7))})
    rows = con.sql(SQL, params={"start": iv.start, "end": iv.end,
                                "window_us": int(window.total_seconds() * 1_000_000)}).to_arrow_table()
    return stamped(get_table("image_training_set"), rows, run_id)
