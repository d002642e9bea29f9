"""conform + audit + publish of N sensor_readings rows vs a bare pyarrow.parquet.write_table.

The pipeline starts from decoded connector rows (ts, source_ref, value, unit,
status) and ends with published, audited Parquet; the baseline writes the same
published rows (all 14 columns) with a bare `pq.write_table`. Both run in this
process; the printed ratio is the pipeline's rows/s
as a share of the bare write's (machines are noisy: compare ratios, not seconds).

The audit includes the Great Expectations validation of the table's suite; the second
ratio printed is the audit's time over the conform step's on the same rows (the target:
validation adds no more than conform itself). GX's import happens once, before timing.

    python bench/conform.py --rows 5000000 --repeat 3 [--json out.json]
"""

# ruff: noqa: I001 - plantlake is imported before pyarrow on purpose
from __future__ import annotations

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

from harness import Contender, Result, arguments, measure, report

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


def main() -> None:
    args = arguments(__doc__, rows=5_000_000, repeat=3).parse_args()
    import great_expectations  # noqa: F401 - imported once, like a task that audits several tables

    raw, rules = make_raw(args.rows)
    published = curated_rows(raw, rules)
    mib = published.nbytes / 2**20
    base = Contender("bare", "baseline", "bare pyarrow.parquet.write_table of the published rows")
    ours = Contender("plantlake", "plantlake", "plantlake conform + stage + audit (GX) + publish")
    steps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:  # one untimed warm-up of each (first-call costs in GX, Arrow)
        bare(published, Path(tmp))
        pipeline(raw, rules, Path(tmp) / "warm", {})
    for run in range(args.repeat):
        for who in ((base, ours) if run % 2 == 0 else (ours, base)):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                measure(who, (lambda r=root: bare(published, r)) if who is base
                        else (lambda r=root: pipeline(raw, rules, r, steps)), raw.num_rows)
    med = {k: statistics.median(v) for k, v in steps.items()}
    audit_over_conform = statistics.median(a / c for a, c in zip(steps["audit"], steps["conform"], strict=True))
    report(Result(
        "conform", f"{raw.num_rows:,} sensor_readings rows of 200 tags (°F, W, bar; 1 % Bad), one day, "
                   f"{mib:,.0f} MiB in Arrow once published", "rows", raw.num_rows, args.repeat, [ours, base],
        target=0.25, target_text="conform + audit + publish >= 0.25x a bare write_table",
        notes=["plantlake steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items()),
               f"audit (file checks + GX suite) / conform: {audit_over_conform:.2f}x"],
        extra={"steps_s": med, "audit_over_conform": audit_over_conform, "arrow_mib": mib}), args.json)


if __name__ == "__main__":
    main()
