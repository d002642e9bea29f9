"""The data dictionary (docs/data-dictionary.md), generated from the table declarations."""

from __future__ import annotations

from pathlib import Path

from schemas.model import PARTITION_COLUMN, STORAGE_COLUMNS, Table
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
    if c.kinds:
        parts.append("a source kind that feeds this table (docs/configuration.md)")
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
    where = f"`{t.layer}/{t.name}/`" + (f", a Delta table partitioned by `date`, the UTC day of `{t.partition_column}`" if t.partition_column else ", a Delta table")
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
    storage = [
        "## How the tables are stored",
        "",
        "Every table below is a Delta Lake table under the lake root (`curated/`, `products/`, `_quality/`), and "
        "each one's rejected rows are the Delta table `quarantine/<table>/` (columns `stage`, `column`, `reason`, "
        "`record` as JSON, `source`, `run_id`, `interval_start`, `quarantined_at`). Read a table through its log "
        "(the catalog's view, `polars.scan_delta`, `deltalake.DeltaTable`), never a glob of its folder: the folder "
        "also holds files later commits replaced, until the vacuum. Besides its declared columns each table has:",
        "",
        "| column | type | description |",
        "|---|---|---|",
        *(f"| `{name}` | `{'date32' if name == PARTITION_COLUMN else 'string'}` | {text} |"
          for name, text in STORAGE_COLUMNS.items()),
        "",
        "The catalog's views show the declared columns only.",
        "",
    ]
    return "\n".join(head + storage + [table_markdown(t) + "\n" for t in TABLES.values()])


def write_data_dictionary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data_dictionary(), encoding="utf-8")
    return path


def units_reference() -> str:
    """docs/units.md: the quantity kinds with their canonical units, the plant spellings read,
    and every UNECE code of plantlake's table."""
    from schemas import units

    lines = [
        "# Units",
        "",
        "Generated from `schemas/units.py` and `schemas/data/unece_units.csv` by `plantlake schemas docs`;",
        "do not edit by hand.",
        "",
        "Every numeric reading is converted to the canonical unit of its **quantity kind**, never by",
        "dimension alone: torque (N·m) and energy (kWh) share a dimension, so do rotational speed",
        "(1/min) and frequency (Hz). The kind comes from the unit — a UNECE Recommendation 20 code",
        "(OPC UA `EngineeringUnits.UnitId`, namespace `" + units.UNECE_NAMESPACE + "`), its symbol,",
        "a plant spelling below, or pint's dimension where only one kind has it — or from the tag's",
        "`quantity` in the site config (`tags[].quantity`, or `units[]` rules by tag/asset/reference",
        "pattern). Units of different kinds never convert into each other; a reading whose unit",
        "plantlake cannot read, or cannot convert, is quarantined with the reason.",
        "",
        "A text unit that is a force times a length (`N.m`, `Nm`, `ft*lbf`, `lbf·ft`) is read as torque;",
        "the UNECE code 85 (foot pound-force) is energy, as Rec 20 says. Say `quantity: energy` for work.",
        "",
        "## Quantity kinds",
        "",
        "| kind | canonical unit |",
        "|---|---|",
    ]
    lines += [f"| `{k}` | `{v}` |" for k, v in units.CANONICAL.items()]
    lines += ["", "## Plant spellings", "", "| written | read as |", "|---|---|"]
    lines += [f"| `{a}` | `{b}` |" for a, b in units._ALIASES.items()]
    lines += ["", "Products are also read with `.` or `*` for `·` (`kW.h`), exponents as digits or `^`",
              "(`m3/h`, `m^3/h`), and `u` for `µ` (`uS/cm`).", "",
              "## UNECE codes", "",
              "Sources: the OPC Foundation's `Schema/UNECE_to_OPCUA.csv` (OPCFoundation/UA-Nodeset) for codes,",
              "UnitIds and symbols; UN/CEFACT Recommendation 20, Annex II & III (uncefact/vocab-codes) for names and",
              "conversion factors. A code a server sends that is not listed is quarantined as `unece:<code>`",
              "unless the tag's unit is declared.", "",
              "| code | UnitId | symbol | name | kind | Rec 20 factor |", "|---|---|---|---|---|---|"]
    lines += [f"| `{u.code}` | {u.unit_id} | {u.symbol} | {u.name} | {u.kind} | {u.factor} |"
              for u in units.unece_table()]
    return "\n".join(lines) + "\n"


def write_units_reference(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(units_reference(), encoding="utf-8")
    return path
