"""Compaction SIGKILLed at random moments: a reader of the snapshot sees every row exactly once,
always, and the next compaction finishes the job."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.core.lake import Interval, Lake
from schemas import get_table
from tests.conftest import ROOT, both_lakes, on
from tests.unit.test_lake import readings

pytestmark = pytest.mark.faults

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOURS = 12
PER_HOUR = 20_000

COMPACT = """
import json, sys
from datetime import date
from plantlake.pipeline.compaction import compact_day
from plantlake.core.lake import Lake
from schemas import get_table
lake = Lake(sys.argv[1], storage_options=json.loads(sys.argv[2]), local_dir=sys.argv[3])
while True:
    compact_day(lake, get_table("sensor_readings"), date(2026, 3, 1))
    print("done", flush=True)
"""


def _lake(lake_kind, tmp_path) -> tuple[Lake, list[str]]:
    """The test's lake, and the arguments that open it in the compaction's own process."""
    if lake_kind.s3 is None:
        args = [str(tmp_path / "lake"), "null", str(tmp_path / "lake")]
    else:
        args = [lake_kind.s3.uri("compaction"), json.dumps(lake_kind.s3.storage_options), str(tmp_path / "local")]
    return Lake(args[0], storage_options=json.loads(args[1]), local_dir=args[2]).ensure(), args


def _keys(lake: Lake) -> list[tuple]:
    """The partition's keys in the table's current snapshot (read through the log)."""
    data = lake.dataset(get_table("sensor_readings"), ["2026-03-01"])
    t = None if data is None else data.to_table(columns=["asset_id", "tag", "ts"])
    return [] if t is None else list(zip(*(t[c].to_pylist() for c in t.column_names), strict=True))


@both_lakes
def test_a_killed_compaction_never_shows_a_reader_a_missing_or_doubled_row(tmp_path, reliability, lake_kind):
    lake, args = _lake(lake_kind, tmp_path)
    table = get_table("sensor_readings")
    for h in range(HOURS):  # twelve hourly files of one source, the way hourly runs leave them
        start = T0 + timedelta(hours=h)
        lake.publish(lake.stage(table, "src", Interval(start, start + timedelta(hours=1)),
                                readings(start, PER_HOUR, step_s=0.1)))
    expected = sorted(_keys(lake))
    assert len(expected) == len(set(expected)) == HOURS * PER_HOUR

    problems: list[str] = []
    stop = threading.Event()
    reads: list[float] = []  # when each complete read finished

    def reader() -> None:  # an analyst reading the partition the whole time
        while not stop.is_set():
            try:
                got = _keys(lake)
            except FileNotFoundError:  # never: removed files stay for the vacuum's retention
                problems.append("a file of the snapshot was gone")
                continue
            reads.append(time.monotonic())
            if len(got) != len(expected) or len(set(got)) != len(got):
                problems.append(f"saw {len(got)} rows ({len(got) - len(set(got))} doubled)")

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    rng = random.Random(11)
    cycles = []
    try:
        for _ in range(6):
            begun = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-c", COMPACT, *args], cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.5 + rng.random() * 2.5)  # imports, then somewhere inside a compaction
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            cycles.append((begun, time.monotonic()))
    finally:
        stop.set()
        thread.join(timeout=60)
    assert problems == []
    # the reader read while every one of the compactions ran and was killed
    assert all(any(a <= t <= b for t in reads) for a, b in cycles), (cycles, reads)
    # the next compaction completes: one file, every row once
    subprocess.run([sys.executable, "-c", COMPACT.replace("while True:", "for _ in range(1):"), *args],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    assert len(lake.dataset(table, ["2026-03-01"]).files) == 1
    final = _keys(lake)
    assert sorted(final) == expected
    reliability(f"compaction SIGKILLed 6 times while a reader reads{on(lake)}", data_in=len(expected), data_out=len(set(final)),
                lost=len(set(expected) - set(final)), duplicates=len(final) - len(set(final)),
                unit="sensor rows (asset, tag, ts)", note="a reader thread checked every read during the kills")
