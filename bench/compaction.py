"""Compaction of a day of small files: plantlake's `compact_day` (Delta `optimize.compact()` in one
commit, then a vacuum) vs the physical ceiling, a bare read of the same files with
`pq.read_table` and one `pq.write_table` of them.

The day is what hourly runs leave: `--files` publishes of `--rows` rows in total into one date
partition of `sensor_readings` (one Parquet file each, committed one by one through the lake's
write path, untimed). Each run compacts a fresh copy of that table; the baseline reads the
snapshot's files (the same list) and writes one file.

    python bench/compaction.py --rows 5000000 --files 240 --repeat 3 [--json out.json]
"""

# ruff: noqa: I001 - plantlake is imported before pyarrow on purpose
from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import plantlake  # noqa: F401 - first: it sets the allocator option Arrow reads when it loads

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from plantlake.core.lake import Interval, Lake
from plantlake.pipeline.compaction import compact_day
from schemas import get_table

from harness import Contender, Result, arguments, measure, report

SENSOR = get_table("sensor_readings")
DAY = datetime(2026, 3, 1, tzinfo=UTC)


def readings(start: datetime, n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    tags = 200
    ts = np.int64(start.timestamp() * 1e6) + (np.arange(n, dtype=np.int64) // tags) * 10_000
    idx = pa.array(np.arange(n, dtype=np.int32) % tags)
    return pa.table({
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")), "server_ts": pa.nulls(n, pa.timestamp("us", tz="UTC")),
        "asset_id": pa.DictionaryArray.from_arrays(idx, [f"acme/s/a/line{t % 4}/m{t % 8}" for t in range(tags)]).cast(pa.string()),
        "tag": pa.DictionaryArray.from_arrays(idx, [f"tag{t}" for t in range(tags)]).cast(pa.string()),
        "value": rng.normal(100, 10, n), "value_text": pa.nulls(n, pa.string()),
        "unit": pa.array(["bar"] * 1).take(pa.array(np.zeros(n, np.int32))),
        "quality": pa.array(["good"] * 1).take(pa.array(np.zeros(n, np.int32))),
        "status_code": pa.array(np.zeros(n, np.int64)), "source": pa.array(["opcua"] * 1).take(pa.array(np.zeros(n, np.int32))),
        "source_ref": pa.DictionaryArray.from_arrays(idx, [f"ns=2;s=T{t}" for t in range(tags)]).cast(pa.string()),
        "ingested_at": pa.array(ts, pa.timestamp("us", tz="UTC")), "run_id": pa.array(["r"] * 1).take(pa.array(np.zeros(n, np.int32))),
        "message_id": pa.nulls(n, pa.string()), "source_name": pa.array(["plc"] * 1).take(pa.array(np.zeros(n, np.int32))),
        "value_exact": pa.nulls(n, pa.string()),
    }, schema=SENSOR.arrow_schema())


def build_day(root: Path, rows: int, files: int) -> Lake:
    lake = Lake(root).ensure()
    per = rows // files
    step = timedelta(seconds=86_400 // files)
    for k in range(files):
        iv = Interval(DAY + k * step, DAY + (k + 1) * step)
        lake.publish(lake.stage(SENSOR, "plc", iv, readings(iv.start, per, k)))
    return lake


def main() -> None:
    ap = arguments(__doc__, rows=5_000_000, repeat=3)
    ap.add_argument("--files", type=int, default=240, help="small files (publishes) in the day")
    args = ap.parse_args()
    rows = args.rows // args.files * args.files
    ours = Contender("plantlake", "plantlake", "plantlake compact_day: Delta optimize.compact (one commit) + vacuum")
    bare = Contender("bare", "baseline", "bare pq.read_table of the day's files + one pq.write_table")
    with tempfile.TemporaryDirectory() as tmp:
        master = Path(tmp) / "master"
        build_day(master, rows, args.files)
        files = Lake(master).files(SENSOR)
        assert len(files) == args.files
        for run in range(args.repeat):
            for who in ((ours, bare) if run % 2 == 0 else (bare, ours)):
                work = Path(tmp) / f"run{run}"
                shutil.rmtree(work, ignore_errors=True)
                shutil.copytree(master, work)
                lake = Lake(work)
                if who is ours:
                    measure(ours, lambda lake=lake: compact_day(lake, SENSOR, DAY.date(), retention_hours=0).rows, rows)
                    assert len(lake.files(SENSOR)) < args.files
                else:
                    listed = lake.files(SENSOR)
                    measure(bare, lambda listed=listed, work=work: pq.write_table(
                        t := pq.read_table(listed), work / "one.parquet") or t.num_rows, rows)
                shutil.rmtree(work, ignore_errors=True)
    report(Result("compaction", f"a day of {rows:,} sensor_readings rows in {args.files} small files "
                                f"(one per publish), one date partition", "rows", rows, args.repeat, [ours, bare],
                  target=0.5, target_text="compaction >= 0.5x a bare read + write of the same files",
                  notes=["plantlake's time includes the vacuum of the replaced files (retention 0 here) and "
                         "counting duplicate keys in the partition"]), args.json)


if __name__ == "__main__":
    main()
