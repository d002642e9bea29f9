"""Two writer processes committing to one Delta table at once — two workers, or two hosts sharing a
lake — lose nothing and double nothing: every interval each published is in the final snapshot
exactly once, with its last write's rows, and the table's log has a version per commit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from plantlake.core.lake import Lake
from schemas import get_table
from tests.conftest import ROOT

pytestmark = pytest.mark.faults

ROUNDS = 12
ROWS = 2_000

WRITER = f"""
import sys
from datetime import UTC, datetime, timedelta
import pyarrow as pa
from plantlake.core.lake import Interval, Lake
from schemas import get_table
sys.path.insert(0, {str(ROOT)!r})
from tests.unit.test_lake import readings

lake, me = Lake(sys.argv[1]).ensure(), int(sys.argv[2])
table = get_table("sensor_readings")
t0 = datetime(2026, 3, 1, tzinfo=UTC)
for k in range({ROUNDS}):
    iv = Interval(t0 + timedelta(hours=k), t0 + timedelta(hours=k + 1))
    data = readings(iv.start, {ROWS}, step_s=1, value=1000.0 * me + k)
    data = data.set_column(data.column_names.index("asset_id"), data.schema.field("asset_id"), pa.array([f"acme/s/a/l1/press{{me}}"] * {ROWS}))
    # each interval twice: the first write, then a rerun that must replace it
    lake.publish(lake.stage(table, f"writer{{me}}", iv, data.slice(0, {ROWS} // 2)), f"w{{me}}-{{k}}a")
    lake.publish(lake.stage(table, f"writer{{me}}", iv, data), f"w{{me}}-{{k}}b")
print("done", flush=True)
"""


def test_two_processes_commit_to_one_table_and_lose_nothing(tmp_path, reliability):
    from deltalake import DeltaTable

    lake = Lake(tmp_path / "lake").ensure()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(lake.root), str(me)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for me in (1, 2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0 and out.strip() == "done", err[-3000:]
    table = get_table("sensor_readings")
    data = lake.read(table)
    expected = 2 * ROUNDS * ROWS
    keys = set(zip(data["asset_id"].to_pylist(), data["tag"].to_pylist(), data["ts"].to_pylist(), strict=True))
    assert data.num_rows == len(keys) == expected
    # every interval holds its rerun's rows (the value names the writer and the round): none of a first write
    by_owner = lake.dataset(table).to_table(columns=["_source", "_interval", "value"]).group_by(
        ["_source", "_interval"]).aggregate([("value", "count"), ("value", "min")])
    assert by_owner.num_rows == 2 * ROUNDS
    assert set(by_owner["value_count"].to_pylist()) == {ROWS}
    # a version per commit of either writer, and the commits of both interleaved
    history = DeltaTable(lake.table_uri(table)).history()
    runs = [h.get("plantlake.run_id") for h in history if h.get("plantlake.run_id")]
    assert len(runs) == 2 * 2 * ROUNDS
    order = [r.split("-")[0] for r in reversed(runs)]
    switches = sum(a != b for a, b in zip(order, order[1:], strict=False))
    assert switches >= 2, f"the writers never overlapped: {order}"
    reliability("two writer processes commit to one table (12 intervals each, each rerun once)", data_in=expected,
                data_out=len(keys), lost=expected - len(keys), duplicates=data.num_rows - len(keys),
                unit="sensor rows (asset, tag, ts)", note=f"{len(runs)} commits, the writers interleaved {switches} times")
