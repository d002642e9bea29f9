"""A source's schedule as data intervals: Airflow's own timetable, for the DAGs and for every
tool that lists a schedule's intervals (gaps), so the two can never disagree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plantlake.core import airflow_lib
from plantlake.core.lake import Interval


def timetable(schedule: str) -> Any:
    """A real data interval (start < end) for every run, in UTC."""
    return airflow_lib.load("airflow.timetables.interval", "CronDataIntervalTimetable")(schedule, timezone="UTC")


def intervals(schedule: str, start: datetime, end: datetime) -> list[Interval]:
    """The data intervals the DAG of `schedule` runs that lie within [start, end)."""
    import pendulum
    from airflow.timetables.base import TimeRestriction

    tt = timetable(schedule)
    restriction = TimeRestriction(earliest=pendulum.instance(start), latest=None, catchup=True)
    out: list[Interval] = []
    last = None
    while True:
        info = tt.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None or info.data_interval.end > end:
            return out
        last = info.data_interval
        out.append(Interval(_plain(last.start), _plain(last.end)))


def _plain(t: datetime) -> datetime:
    return datetime.fromtimestamp(t.timestamp(), UTC)


def previous_interval(source: Any, now: datetime) -> Interval:
    """The newest data interval of the source's schedule that has ended by `now` (what the next
    scheduled run reads, or the last one did)."""
    from datetime import timedelta

    for days in (2, 40, 400):
        found = intervals(source.schedule, now - timedelta(days=days), now)
        if found:
            return found[-1]
    raise ValueError(f"source {source.name}: schedule {source.schedule!r} has no interval in the past year")
