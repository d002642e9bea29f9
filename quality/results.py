"""Where validation results are kept, and in which shapes.

- `_quality/results/<table>/<name>.json` (through the lake's storage): one GX validation result with plantlake's context
  (suite, source, run, interval, when); Data Docs are built from these files.
- `quality_results` (a Delta table under `_quality/`): one row per check of every audit, for trends;
  a rerun of an interval replaces its audit's rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from plantlake.core.lake import Interval, Lake, safe_name

RESULTS = "_quality/results"


def keep_validation(lake: Lake, table: str, source: str, interval: Interval, run_id: str, suite: str,
                    validation: dict[str, Any] | None, *, name: str, **context: Any) -> str:
    """One validation result as JSON (a rerun of the same interval replaces it); returns its key."""
    key = f"{RESULTS}/{safe_name(table)}/{safe_name(name)}.json"
    lake.storage.put(key, json.dumps({
        "table": table, "suite": suite, "source": source, "run_id": run_id,
        "interval": [interval.start, interval.end], "validated_at": datetime.now(UTC),
        "validation": validation, **context}, indent=2, sort_keys=True, default=str).encode())
    return key


def kept_results(lake: Lake) -> list[tuple[str, dict[str, Any]]]:
    """Every kept validation result: (its name, what it holds)."""
    return [(key.rsplit("/", 1)[-1].removesuffix(".json"), json.loads(lake.storage.get(key)))
            for key in lake.storage.list(RESULTS) if key.endswith(".json")]


def keep_audit(lake: Lake, source: str, interval: Interval, run_id: str, audit: Any, *, slice_label: str = "") -> None:
    """An audit's results: its validation as JSON, and one `quality_results` row per check
    (per slice, `slice_label`, when the run conformed its interval in slices)."""
    import pyarrow as pa

    from schemas import get_table
    from schemas.lineage import STAMPED, stamped

    name = lake.file_name(source, interval, slice_label).removesuffix(".parquet")
    keep_validation(lake, audit.table, source, interval, run_id, audit.suite, audit.validation, name=name,
                    passed=audit.passed, rows=audit.rows, set_aside=audit.set_aside,
                    checks=[asdict(c) for c in audit.checks])
    now = datetime.now(UTC)
    table = get_table("quality_results")
    checks = pa.Table.from_pylist([{
        "validated_at": now, "source": source, "table_name": audit.table, "interval_start": interval.start,
        "expectation": c.name, "level": c.level, "success": c.success, "unexpected_count": c.unexpected,
        "element_count": audit.rows} for c in audit.checks],
        schema=pa.schema([f for f in table.arrow_schema() if f.name not in STAMPED]))
    data = stamped(table, checks, run_id, now)
    lake.write_quality_results(table, f"{source}/{audit.table}{slice_label}", interval, data, run_id)
