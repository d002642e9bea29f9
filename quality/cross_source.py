"""Checks across sources, run after an interval is published.

Each silo can pass its own suite and still disagree with the others. For one data interval:

- `image_has_inspection`: every inspection image with a part serial maps to an ERP inspection
  of that part (value 1 or 0, per image);
- `order_sensor_coverage`: every order running on a line during the interval has sensor
  readings on that line in at least `min_sensor_coverage` of its running minutes (per order);
- `image_bytes_unique`: the bytes of an image belong to one part; the same frame for several parts
  is what a frozen camera produces (per image, listed only when repeated);
- `line_bad_share`: the share of Bad or Uncertain readings per line stays at or below
  `max_line_bad_share` (per line).

The rows go to the `cross_source_checks` table under `_quality/`, and a GX suite over them
(one expectation per check, its threshold from the site config) is validated so the result
appears in Data Docs next to the audits, failing subjects listed as unexpected values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from plantlake.core.config import PlantConfig
from plantlake.core.lake import Interval, Lake
from quality.suites import Spec
from schemas import get_table
from schemas.lineage import stamped

TABLE = "cross_source_checks"


@dataclass
class CrossSourceResult:
    interval: Interval
    rows: pa.Table
    validation: dict[str, Any]
    #: the cross_source_checks table's version holding the rows
    version: int

    def failures(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for check, ok in zip(self.rows["check"].to_pylist(), self.rows["success"].to_pylist(), strict=True):
            out[check] = out.get(check, 0) + (not ok)
        return out


def specs(cfg: PlantConfig) -> list[Spec]:
    """The suite over `cross_source_checks`: each check's values held to its threshold."""
    q = cfg.quality
    return [
        Spec("ExpectColumnValuesToBeBetween", {"column": "value", "min_value": 1, "max_value": 1,
                                               "row_condition": 'check=="image_has_inspection"',
                                               "condition_parser": "pandas"},
             "every inspection image maps to an ERP inspection of its part"),
        Spec("ExpectColumnValuesToBeBetween", {"column": "value", "min_value": q.min_sensor_coverage,
                                               "row_condition": 'check=="order_sensor_coverage"',
                                               "condition_parser": "pandas"},
             "an order running on a line has sensor readings on the line during its window"),
        Spec("ExpectColumnValuesToBeBetween", {"column": "value", "max_value": 1,
                                               "row_condition": 'check=="image_bytes_unique"',
                                               "condition_parser": "pandas"},
             "the bytes of an image belong to one part (the same frame for several parts: a frozen camera)"),
        Spec("ExpectColumnValuesToBeBetween", {"column": "value", "max_value": q.max_line_bad_share,
                                               "row_condition": 'check=="line_bad_share"',
                                               "condition_parser": "pandas"},
             "the share of Bad/Uncertain readings per line"),
    ]


def compute(lake: Lake, cfg: PlantConfig, interval: Interval, run_id: str) -> pa.Table:
    """The check rows for one interval (DuckDB over the curated tables)."""
    from plantlake.core.views import connect

    last_day = (interval.end - timedelta(microseconds=1)).date()
    span = (interval.start.date(), last_day)
    con = connect(lake, cfg, {"sensor_readings": span, "inspection_images": span})
    q = cfg.quality
    params = {"start": interval.start, "end": interval.end, "coverage": q.min_sensor_coverage,
              "bad": q.max_line_bad_share}
    rows = con.sql("""
        with r as (select r.ts, r.quality, l.line_id from sensor_readings r join lines l using (asset_id)
                   where r.ts >= $start and r.ts < $end),
        img as (
            select 'image_has_inspection' as "check", i.image_id as subject, l.line_id,
                   case when exists (select 1 from quality_inspections x where x.part_serial = i.part_serial)
                        then 1.0 else 0.0 end as value, 1.0 as threshold,
                   'part ' || i.part_serial as detail
            from inspection_images i left join lines l using (asset_id)
            where i.captured_at >= $start and i.captured_at < $end and i.part_serial is not null),
        frames as (
            select 'image_bytes_unique' as "check", i.image_id as subject, any_value(l.line_id) as line_id,
                   count(distinct coalesce(i.part_serial, i.capture_id))::double as value, 1.0 as threshold,
                   'the same bytes for ' || count(distinct coalesce(i.part_serial, i.capture_id)) || ' parts: '
                       || string_agg(distinct coalesce(i.part_serial, '?'), ', ' order by coalesce(i.part_serial, '?'))
                       as detail
            from inspection_images i left join lines l using (asset_id)
            where i.captured_at >= $start and i.captured_at < $end
            group by i.image_id having count(distinct coalesce(i.part_serial, i.capture_id)) > 1),
        o as (
            select order_id, line_id, greatest(actual_start, $start) as ws,
                   least(coalesce(actual_end, $end), $end) as we
            from production_orders where actual_start < $end and coalesce(actual_end, $end) > $start),
        minutes as (select distinct line_id, date_trunc('minute', ts) as m from r),
        cov as (
            select 'order_sensor_coverage' as "check", o.order_id as subject, o.line_id,
                   least(1.0, count(m.m) / greatest(1, ceil(epoch(o.we - o.ws) / 60))) as value,
                   $coverage as threshold,
                   count(m.m) || ' of ' || greatest(1, ceil(epoch(o.we - o.ws) / 60))::bigint
                       || ' running minutes with readings' as detail
            from o left join minutes m on m.line_id = o.line_id and m.m >= date_trunc('minute', o.ws) and m.m < o.we
            group by o.order_id, o.line_id, o.ws, o.we),
        bad as (
            select 'line_bad_share' as "check", line_id as subject, line_id,
                   avg(case when quality = 'good' then 0.0 else 1.0 end) as value, $bad as threshold,
                   count(*) filter (where quality <> 'good') || ' of ' || count(*) || ' readings bad or uncertain'
                       as detail
            from r where line_id is not null group by line_id)
        select * from img union all select * from frames union all select * from cov union all select * from bad
        order by 1, 2""", params=params).to_arrow_table()
    n = rows.num_rows
    now = datetime.now(UTC)
    value = rows["value"].to_numpy(zero_copy_only=False)
    threshold = rows["threshold"].to_numpy(zero_copy_only=False)
    upper = [c in ("line_bad_share", "image_bytes_unique") for c in rows["check"].to_pylist()]
    success = [bool(v <= t) if u else bool(v >= t) for v, t, u in zip(value, threshold, upper, strict=True)]
    table = get_table(TABLE)
    return stamped(table, pa.table({
        "interval_start": pa.array([interval.start] * n, pa.timestamp("us", tz="UTC")),
        "interval_end": pa.array([interval.end] * n, pa.timestamp("us", tz="UTC")),
        "check": rows["check"], "subject": rows["subject"], "line_id": rows["line_id"],
        "value": pa.array(value, pa.float64()), "threshold": pa.array(threshold, pa.float64()),
        "success": pa.array(success), "detail": rows["detail"],
    }), run_id, now)


def run_checks(lake: Lake, cfg: PlantConfig, interval: Interval, run_id: str) -> CrossSourceResult:
    """Compute, keep and validate the cross-source checks of one interval (replaced by a rerun)."""
    from quality.audit import gx_batch
    from quality.results import keep_validation
    from quality.suites import build_suite

    table = get_table(TABLE)
    rows = compute(lake, cfg, interval, run_id)
    version = lake.write_quality_results(table, "cross_source", interval, rows, run_id)
    suite = build_suite(table, None, specs(cfg))
    validation = gx_batch(rows.to_pandas()).validate(suite, result_format={"result_format": "SUMMARY"})
    result = validation.to_json_dict()
    keep_validation(lake, TABLE, "cross_source", interval, run_id, suite.name, result,
                    name=interval.key, passed=bool(validation.success), rows=rows.num_rows)
    return CrossSourceResult(interval, rows, result, version)
