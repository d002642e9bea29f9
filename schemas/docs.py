"""The data dictionary (docs/data-dictionary.md), generated from the table declarations."""

from __future__ import annotations

from pathlib import Path

from schemas.model import Table
from schemas.tables import TABLES

_SCOPE = {
    "interval": "unique within each run's output",
    "source": "unique across every interval a source published (the first publish keeps a key)",
    "table": "unique across the whole table (the first publish keeps a key)",
    "latest": "one row per key per source: the newest version by `{version}` (upsert)",
}


def _rule(c) -> str:
    parts = []
    if c.allowed:
        parts.append("one of " + ", ".join(f"`{a}`" for a in c.allowed))
    if c.min is not None:
        parts.append(f"≥ {c.min:g}")
    if c.max is not None:
        parts.append(f"≤ {c.max:g}")
    if c.unit:
        parts.append(f"unit `{c.unit}`")
    if c.references:
        parts.append(f"in `{c.references}`")
    return "; ".join(parts)


def table_markdown(t: Table) -> str:
    where = f"`{t.layer}/{t.name}/`" + (f", partitioned by `date=` of `{t.partition_column}` (UTC)" if t.partition_column else "")
    lines = [
        f"## `{t.name}` (version {t.version})",
        "",
        t.description,
        "",
        f"Location: {where}. Primary key: {', '.join(f'`{k}`' for k in t.primary_key)}, "
        f"{_SCOPE[t.key_scope].format(version=t.version_column)}.",
        "",
        "| column | type | null | rules | description |",
        "|---|---|---|---|---|",
    ]
    for c in t.columns:
        typ = str(c.type).replace("|", "\\|")
        lines.append(f"| `{c.name}` | `{typ}` | {'yes' if c.nullable else 'no'} | {_rule(c)} | {c.description} |")
    return "\n".join(lines)


def data_dictionary() -> str:
    head = [
        "# Data dictionary",
        "",
        "Generated from `schemas/tables.py` by `plantlake schemas docs`; do not edit by hand.",
        "Timestamps are UTC microseconds; units are canonical and pint-parseable.",
        "",
    ]
    return "\n".join(head + [table_markdown(t) + "\n" for t in TABLES.values()])


def write_data_dictionary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data_dictionary(), encoding="utf-8")
    return path
