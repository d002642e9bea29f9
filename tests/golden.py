"""A golden snapshot of what a lake holds: per curated, product and quarantine table its row count
and a digest of its rows and of each column, with what differs between two identical runs left
out (run ids, wall-clock stamps, also inside quarantined records), floats to 12 digits (DuckDB
sums in parallel, in no fixed order) and the site folder's path written as `<site>`.

A refactor that must not change the output compares the demo's lake with the stored snapshot
(`tests/data/golden/demo.json`); `PLANTLAKE_GOLDEN=update` rewrites it after an intended change,
which the commit then names."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

#: columns two runs of the same input never share: the run, and when it ran
VOLATILE = {"run_id", "ingested_at", "quarantined_at", "built_at", "checked_at", "published_at"}
LAYERS = ("curated", "products", "quarantine")


def _canonical(value: Any, root: str) -> Any:
    if isinstance(value, str):
        if value.startswith("{"):  # a quarantined record: its run's lineage is inside
            try:
                return _canonical(json.loads(value), root)
            except ValueError:
                pass
        return value.replace(root, "<site>")
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _canonical(v, root) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_canonical(v, root) for v in value]
    return value if isinstance(value, int | float | bool | type(None)) else str(value)


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:16]


def snapshot(lake: Any, site: str | None = None) -> dict[str, Any]:
    """Each Delta table's current snapshot, its declared columns and `date` (the owner columns are
    plantlake's bookkeeping, left out); `lake` is a local lake's root or a `Lake` (also on S3)."""
    from plantlake.core import tables
    from plantlake.core.lake import Lake
    from plantlake.core.tables import OWNER
    from schemas.tables import TABLES

    lake = lake if isinstance(lake, Lake) else Lake(lake)
    root = site or str(lake.root.parent)  # the site folder, whose path some rows hold
    uris = {**{lake.table_key(t): lake.table_uri(t) for t in TABLES.values()},
            **{f"quarantine/{t}": lake.quarantine_uri(t) for t in TABLES}}
    out: dict[str, Any] = {}
    for name, uri in sorted(uris.items()):
        if name.split("/")[0] not in LAYERS:
            continue
        found = tables.dataset(uri, lake.storage_options)
        data = found.to_table() if found is not None else None
        if data is None or not data.num_rows:
            continue
        columns = sorted(c for c in data.column_names if c not in VOLATILE and c not in OWNER)
        rows = [{c: _canonical(r[c], root) for c in columns} for r in data.select(columns).to_pylist()]
        out[name] = {
            "rows": len(rows),
            "digest": _digest([json.dumps(r, sort_keys=True, default=str) for r in rows]),
            "columns": {c: _digest([json.dumps(r[c], default=str) for r in rows]) for c in columns},
        }
    return out


def check(lake: Any, golden: Path, *, site: str | None = None,
          predates: dict[str, set[str] | None] | None = None) -> None:
    """Assert the lake matches the stored snapshot, naming each table and column that differs.
    `site`: the local site folder whose path rows hold (an object-storage lake has none of its own).
    `predates`: per table, columns added after the code that wrote this lake (a migrated old lake):
    each must be null in every row, and is not compared with the golden file; None: a table added
    after that code, which this lake does not have."""
    got = snapshot(lake, site)
    if os.environ.get("PLANTLAKE_GOLDEN") == "update" or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        if os.environ.get("PLANTLAKE_GOLDEN") != "update":
            raise AssertionError(f"no golden snapshot at {golden}: written now, commit it")
        return
    want = json.loads(golden.read_text())
    newer = {t for t, cols in (predates or {}).items() if cols is None and t not in got}
    problems = [f"{t}: only in {'the golden file' if t in want else 'this lake'}"
                for t in sorted((set(want) ^ set(got)) - newer)]
    for t in sorted(set(want) & set(got)):
        w, g = want[t], got[t]
        if w["rows"] != g["rows"]:
            problems.append(f"{t}: {g['rows']} rows, golden {w['rows']}")
        later = (predates or {}).get(t) or set()
        for c in sorted(later):
            if g["columns"].get(c) != _digest([json.dumps(None)] * g["rows"]):
                problems.append(f"{t}.{c}: a column this lake predates holds values")
        for c in sorted((set(w["columns"]) | set(g["columns"])) - later):
            if w["columns"].get(c) != g["columns"].get(c):
                problems.append(f"{t}.{c}: differs" if c in w["columns"] and c in g["columns"]
                                else f"{t}.{c}: only in {'the golden file' if c in w['columns'] else 'this lake'}")
    assert not problems, "the lake differs from " + str(golden) + ":\n  " + "\n  ".join(problems)
