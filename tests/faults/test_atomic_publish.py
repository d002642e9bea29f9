"""A writer SIGKILLed mid-commit never leaves a reader a partial or mixed table: the snapshot holds
the old version or the new one."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from plantlake.core.lake import Lake
from schemas import get_table
from tests.conftest import ROOT

pytestmark = pytest.mark.faults

ROWS = 400_000

WRITER = f"""
import sys
from datetime import UTC, datetime, timedelta
import pyarrow as pa
from plantlake.core.lake import Interval, Lake
from schemas import get_table
sys.path.insert(0, {str(ROOT)!r})
from tests.unit.test_lake import readings

lake = Lake(sys.argv[1]).ensure()
table = get_table("sensor_readings")
t0 = datetime(2026, 3, 1, tzinfo=UTC)
iv = Interval(t0, t0 + timedelta(hours=1))
version = int(sys.argv[2])
while True:
    data = readings(t0, {ROWS}, step_s=0, value=float(version))  # every row carries the version
    lake.publish(lake.stage(table, "src", iv, data))
    print(version, flush=True)
    version += 1
"""


def _check_visible(lake: Path) -> float:
    """The table's current snapshot is one complete write; returns its version (the value offset)."""
    from plantlake.core.lake import Lake
    from schemas import get_table

    t = Lake(lake).read(get_table("sensor_readings"), columns=["value"])
    assert t.num_rows == ROWS
    first = pc.subtract(t["value"].combine_chunks().sort(), pa_range(ROWS))
    lo, hi = pc.min_max(first).values()
    assert lo.as_py() == hi.as_py(), "rows from two different writes in one snapshot"
    return lo.as_py()


def pa_range(n: int):
    import pyarrow as pa

    return pa.array(range(n), pa.float64())


def test_sigkill_mid_commit_leaves_the_old_version_or_the_new_never_partial(tmp_path, reliability):
    lake = tmp_path / "lake"
    # a first complete publish, so there is an "old" file to protect
    subprocess.run([sys.executable, "-c", WRITER.replace("while True:", "for _ in range(1):"), str(lake), "0"],
                   check=True, cwd=ROOT, capture_output=True, timeout=120)
    assert _check_visible(lake) == 0.0
    rng = random.Random(7)
    seen = set()
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(lake), str(100 * (attempt + 1))],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait for one complete publish (however slow the imports are), time the next cycle's
        # start, then kill somewhere inside a later stage/publish cycle
        t0 = time.monotonic()
        assert proc.stdout.readline().strip() == str(100 * (attempt + 1)), proc.stderr.read()
        cycle = time.monotonic() - t0
        time.sleep(rng.random() * min(cycle, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        seen.add(_check_visible(lake))
        # files a killed commit wrote are in no version: the snapshot never lists them
        listed = {Path(f) for f in Lake(lake).files(get_table("sensor_readings"))}
        on_disk = set((lake / "curated" / "sensor_readings").rglob("*.parquet"))
        assert listed <= on_disk
    assert len(seen) >= 2, f"the writer never got a publish through: {seen}"
    # a rerun heals: the next complete publish replaces whatever the killed one left
    subprocess.run([sys.executable, "-c", WRITER.replace("while True:", "for _ in range(1):"), str(lake), "999"],
                   check=True, cwd=ROOT, capture_output=True, timeout=120)
    assert _check_visible(lake) == 999.0
    reliability("writer SIGKILLed mid-commit (6 kills)", data_in=ROWS, data_out=ROWS, lost=0, duplicates=0,
                unit="rows of the snapshot", note="readers see the old version or the new one, never a partial or mixed one; the rerun heals")
