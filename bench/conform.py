"""conform + audit + publish of N sensor_readings rows vs a bare pyarrow.parquet.write_table.

The pipeline starts from decoded connector rows (ts, source_ref, value, unit,
status) and ends with published, audited Parquet; the baseline writes the same
published rows (all 13 columns) with a bare `pq.write_table`. Both run in this
process; the printed ratio is the pipeline's rows/s
as a share of the bare write's (machines are noisy: compare ratios, not seconds).

    python bench/conform.py --rows 5000000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from plantlake.lake import Interval, Lake
from quality.audit import audit_staged
from schemas import get_table
from schemas.conform import ConformContext, TagRule, conform

TAGS = 200
START = datetime(2026, 3, 1, tzinfo=UTC)


def make_raw(rows: int, seed: int = 1) -> tuple[pa.Table, dict[str, TagRule]]:
    """Rows as a connector decodes them: 200 tags, some in °F and W, one day of data."""
    rng = np.random.default_rng(seed)
    per_tag = rows // TAGS
    ref_idx = np.tile(np.arange(TAGS, dtype=np.int32), per_tag)
    step_us = int(86_400e6 // per_tag)
    ts = np.repeat(np.arange(per_tag, dtype=np.int64) * step_us, TAGS) + int(START.timestamp() * 1e6)
    refs = [f"ns=2;s=Line{i % 3}.Machine{i // 10}.Tag{i}" for i in range(TAGS)]
    units = ["degF" if i % 4 == 0 else "W" if i % 4 == 1 else "bar" for i in range(TAGS)]
    raw = pa.table({
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "source_ref": pa.DictionaryArray.from_arrays(ref_idx, refs).cast(pa.string()),
        "value": rng.normal(100, 10, len(ts)),
        "unit": pa.DictionaryArray.from_arrays(ref_idx, units).cast(pa.string()),
        "status_code": pa.array(np.where(rng.random(len(ts)) < 0.01, 0x40000000, 0).astype(np.int64)),
    })
    rules = {r: TagRule(f"acme/shenzhen/assembly/line{i % 3 + 1}/m{i // 10}", f"tag{i}") for i, r in enumerate(refs)}
    return raw, rules


def pipeline(raw: pa.Table, rules: dict[str, TagRule], root: Path) -> int:
    table = get_table("sensor_readings")
    lake = Lake(root).ensure()
    iv = Interval(START, datetime(2026, 3, 2, tzinfo=UTC))
    ctx = ConformContext(run_id="bench", ingested_at=datetime.now(UTC), source_kind="opcua", tag_rules=rules)
    out = conform(table, raw, ctx)
    staged = lake.stage(table, "bench", iv, out.table)
    audit_staged(table, staged).raise_for_failures()
    lake.publish(staged)
    return out.table.num_rows


def bare(rows: pa.Table, root: Path) -> int:
    pq.write_table(rows, root / "bare.parquet")
    return rows.num_rows


def curated_rows(raw: pa.Table, rules: dict[str, TagRule]) -> pa.Table:
    """The rows the pipeline publishes, for the baseline to write with bare pyarrow."""
    ctx = ConformContext(run_id="bench", ingested_at=datetime.now(UTC), source_kind="opcua", tag_rules=rules)
    return conform(get_table("sensor_readings"), raw, ctx).table


def measure(rows: int, repeat: int) -> dict:
    raw, rules = make_raw(rows)
    published = curated_rows(raw, rules)
    times: dict[str, list[float]] = {"bare": [], "pipeline": []}
    for _ in range(repeat):
        for name in ("bare", "pipeline"):
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                n = bare(published, Path(tmp)) if name == "bare" else pipeline(raw, rules, Path(tmp))
                times[name].append(time.perf_counter() - t)
                assert n == raw.num_rows
    b, p = statistics.median(times["bare"]), statistics.median(times["pipeline"])
    return {"rows": raw.num_rows, "bare_s": b, "pipeline_s": p, "bare_rows_s": raw.num_rows / b,
            "pipeline_rows_s": raw.num_rows / p, "ratio": b / p}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    r = measure(args.rows, args.repeat)
    print(f"conform+audit+publish of {r['rows']:,} sensor_readings rows (median of {args.repeat})")
    print(f"  bare pyarrow write_table : {r['bare_s']:.2f} s  {r['bare_rows_s']:,.0f} rows/s")
    print(f"  plantlake pipeline       : {r['pipeline_s']:.2f} s  {r['pipeline_rows_s']:,.0f} rows/s")
    print(f"  ratio (pipeline / bare rows/s): {r['ratio']:.2f}x   target >= 0.20x")


if __name__ == "__main__":
    main()
