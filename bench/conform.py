"""conform + audit + publish of N sensor_readings rows vs a bare pyarrow.parquet.write_table.

The pipeline starts from decoded connector rows (ts, source_ref, value, unit,
status) and ends with published, audited Parquet; the baseline writes the same
published rows (all 14 columns) with a bare `pq.write_table`. Both run in this
process; the printed ratio is the pipeline's rows/s
as a share of the bare write's (machines are noisy: compare ratios, not seconds).

The audit includes the Great Expectations validation of the table's suite; the second
ratio printed is the audit's time over the conform step's on the same rows (the target:
validation adds no more than conform itself). GX's import happens once, before timing.

    python bench/conform.py --rows 5000000 --repeat 3
"""

# ruff: noqa: I001 - plantlake is imported before pyarrow on purpose
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import plantlake  # noqa: F401 - first: it sets the allocator option Arrow reads when it loads

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


def pipeline(raw: pa.Table, rules: dict[str, TagRule], root: Path, steps: dict[str, list[float]]) -> int:
    table = get_table("sensor_readings")
    lake = Lake(root).ensure()
    iv = Interval(START, datetime(2026, 3, 2, tzinfo=UTC))
    ctx = ConformContext(run_id="bench", ingested_at=datetime.now(UTC), source_kind="opcua", tag_rules=rules)
    t0 = time.perf_counter()
    out = conform(table, raw, ctx)
    t1 = time.perf_counter()
    staged = lake.stage(table, "bench", iv, out.table)
    t2 = time.perf_counter()
    audit_staged(table, staged).raise_for_failures()
    t3 = time.perf_counter()
    lake.publish(staged)
    for step, took in (("conform", t1 - t0), ("stage", t2 - t1), ("audit", t3 - t2)):
        steps.setdefault(step, []).append(took)
    return out.table.num_rows


def bare(rows: pa.Table, root: Path) -> int:
    pq.write_table(rows, root / "bare.parquet")
    return rows.num_rows


def curated_rows(raw: pa.Table, rules: dict[str, TagRule]) -> pa.Table:
    """The rows the pipeline publishes, for the baseline to write with bare pyarrow."""
    ctx = ConformContext(run_id="bench", ingested_at=datetime.now(UTC), source_kind="opcua", tag_rules=rules)
    return conform(get_table("sensor_readings"), raw, ctx).table


def measure(rows: int, repeat: int) -> dict:
    import great_expectations  # noqa: F401 - imported once, like a task that audits several tables

    raw, rules = make_raw(rows)
    published = curated_rows(raw, rules)
    times: dict[str, list[float]] = {"bare": [], "pipeline": []}
    steps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:  # one untimed warm-up of each (first-call costs in GX, Arrow)
        bare(published, Path(tmp))
        pipeline(raw, rules, Path(tmp) / "warm", {})
    for _ in range(repeat):
        for name in ("bare", "pipeline"):
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                n = bare(published, Path(tmp)) if name == "bare" else pipeline(raw, rules, Path(tmp), steps)
                times[name].append(time.perf_counter() - t)
                assert n == raw.num_rows
    b, p = statistics.median(times["bare"]), statistics.median(times["pipeline"])
    med = {k: statistics.median(v) for k, v in steps.items()}
    return {"rows": raw.num_rows, "bare_s": b, "pipeline_s": p, "bare_rows_s": raw.num_rows / b,
            "pipeline_rows_s": raw.num_rows / p, "ratio": b / p, "steps_s": med,
            "audit_over_conform": statistics.median(a / c for a, c in zip(steps["audit"], steps["conform"], strict=True))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    r = measure(args.rows, args.repeat)
    print(f"conform+audit+publish of {r['rows']:,} sensor_readings rows (median of {args.repeat})")
    print(f"  bare pyarrow write_table : {r['bare_s']:.2f} s  {r['bare_rows_s']:,.0f} rows/s")
    print(f"  plantlake pipeline       : {r['pipeline_s']:.2f} s  {r['pipeline_rows_s']:,.0f} rows/s")
    print(f"  ratio (pipeline / bare rows/s): {r['ratio']:.2f}x   target >= 0.25x")
    print("  steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["steps_s"].items()))
    print(f"  audit (file checks + GX suite) / conform: {r['audit_over_conform']:.2f}x   target <= 1.00x")


if __name__ == "__main__":
    main()
