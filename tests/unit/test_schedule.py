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
