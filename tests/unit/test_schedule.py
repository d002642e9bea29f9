"""A schedule's data intervals, as the DAG runs them: the same timetable object serves the DAGs and
`plantlake gaps` (gaps.py had its own croniter loop and preset table)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plantlake.pipeline.schedule import intervals

pytestmark = pytest.mark.unit


def _spans(schedule, start, end):
    return [(iv.start.strftime("%a %d %H:%M"), iv.end.strftime("%a %d %H:%M")) for iv in intervals(schedule, start, end)]


def test_intervals_are_the_timetables_whole_intervals_inside_the_window():
    # from 00:30: the first whole hour starts at 01:00; the last ends at the window's end
    assert _spans("@hourly", datetime(2026, 1, 1, 0, 30, tzinfo=UTC), datetime(2026, 1, 1, 4, tzinfo=UTC)) == [
        ("Thu 01 01:00", "Thu 01 02:00"), ("Thu 01 02:00", "Thu 01 03:00"), ("Thu 01 03:00", "Thu 01 04:00")]
    # weekdays at 06:00: an interval runs from one tick to the next, across the weekend
    assert _spans("0 6 * * 1-5", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 7, tzinfo=UTC)) == [
        ("Thu 01 06:00", "Fri 02 06:00"), ("Fri 02 06:00", "Mon 05 06:00"), ("Mon 05 06:00", "Tue 06 06:00")]
    assert len(intervals("*/15 * * * *", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, 10, tzinfo=UTC))) == 4


def test_the_dags_use_the_same_timetable():
    from plantlake.app import orchestration
    from plantlake.pipeline import schedule

    assert orchestration.timetable is schedule.timetable


def test_the_gaps_of_two_sources_of_one_kind_are_their_own(tmp_path):
    """Two historian exports (both kind csv) each fill a different hour: each one's gaps are the
    hours it has no rows of its own (`source_name`), not the hours neither source has."""
    from datetime import timedelta

    import pyarrow as pa
    import yaml

    from plantlake.core.config import parse_config
    from plantlake.core.lake import Interval, Lake
    from plantlake.pipeline.gaps import find_gaps
    from schemas import get_table
    from tests.conftest import ROOT

    data = yaml.safe_load((ROOT / "plant.yaml").read_text())
    csv = next(s for s in data["sources"] if s["kind"] == "csv")
    data["sources"].append({**csv, "name": "historian_b"})
    cfg = parse_config(data, base_dir=ROOT)
    table = get_table("sensor_readings")
    lake = Lake(tmp_path / "lake").ensure()
    t0 = datetime(2026, 1, 2, 6, tzinfo=UTC)
    for hour, name in ((0, csv["name"]), (1, "historian_b")):
        start = t0 + timedelta(hours=hour)
        rows = pa.Table.from_pylist([{"ts": start + timedelta(minutes=5), "asset_id": "acme/l1/press", "tag": "force",
                                      "value": 1.0, "quality": "good", "status_code": 0, "source": "csv",
                                      "source_ref": "F", "source_name": name, "ingested_at": start, "run_id": "r"}],
                                    schema=table.arrow_schema())
        lake.publish(lake.stage(table, name, Interval(start, start + timedelta(hours=1)), rows))
    window = (t0, t0 + timedelta(hours=3))
    assert [iv.start.hour for iv in find_gaps(cfg, csv["name"], *window, lake=lake)] == [7, 8]
    assert [iv.start.hour for iv in find_gaps(cfg, "historian_b", *window, lake=lake)] == [6, 8]
