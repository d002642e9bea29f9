"""Schema evolution: tables change additively only.

`schemas/lock.json` records every table's version and columns as released. A change
is additive when every locked column keeps its type and nullability and new columns
are nullable; it must come with a higher version. `check()` lists violations; a test
runs it, and `plantlake schemas lock` records an accepted change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.model import Table
from schemas.tables import TABLES

LOCK = Path(__file__).with_name("lock.json")


def snapshot(tables: dict[str, Table] | None = None) -> dict[str, Any]:
    return {
        t.name: {"version": t.version, "columns": {c.name: {"type": str(c.type), "nullable": c.nullable} for c in t.columns}}
        for t in (tables or TABLES).values()
    }


def check(current: dict[str, Any], locked: dict[str, Any]) -> list[str]:
    problems = []
    for name, old in locked.items():
        new = current.get(name)
        if new is None:
            problems.append(f"{name}: table removed")
            continue
        for col, spec in old["columns"].items():
            now = new["columns"].get(col)
            if now is None:
                problems.append(f"{name}.{col}: column removed")
            elif now["type"] != spec["type"]:
                problems.append(f"{name}.{col}: type changed from {spec['type']} to {now['type']}")
            elif now["nullable"] != spec["nullable"]:
                problems.append(f"{name}.{col}: nullability changed")
        added = [c for c in new["columns"] if c not in old["columns"]]
        for col in added:
            if not new["columns"][col]["nullable"]:
                problems.append(f"{name}.{col}: a new column must be nullable (old files do not have it)")
        if (added or new["columns"] != old["columns"]) and new["version"] <= old["version"]:
            problems.append(f"{name}: columns changed but version stayed {old['version']}")
        if new["version"] < old["version"]:
            problems.append(f"{name}: version went down")
    return problems


def write_lock(path: Path = LOCK) -> Path:
    path.write_text(json.dumps(snapshot(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
