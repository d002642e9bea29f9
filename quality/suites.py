"""Great Expectations suites derived from the table declarations, plus each table's own rules.

`expectations(table)` lists a table's expectations as plain specs — GX class name and
arguments — derived from its one declaration in `schemas/tables.py` (columns exist,
types, not-null, ranges, allowed sets, key uniqueness, timestamp bounds), then the
hand-written rules in `RULES`, then the rules a source's site config implies (the physical
range of each tag, tags that must report every interval). It imports nothing heavy.
`build_suite(table)` turns the specs into a GX 1.x `ExpectationSuite` (GX is imported
there, inside tasks only: it takes seconds to import). A spec that names a column the table
lacks fails here, when the suite is built — in the tests — never halfway through a
production run.

Each expectation has a level. Row-level ones judge single rows: the audit sets the rows
that fail them aside into quarantine. Batch-level ones judge the batch as a whole
(columns exist, keys unique, required tags present): a failure blocks the publish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.model import Table

#: Timestamps outside these bounds are not plant data (clock resets, epoch zero, typos).
TS_MIN, TS_MAX = "2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00"
_COLUMN_ARGS = ("column", "column_A", "column_B")
#: expectations about the batch as a whole: a failure blocks the publish
BATCH_LEVEL = frozenset({"ExpectColumnToExist", "ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique",
                         "ExpectColumnDistinctValuesToContainSet", "ExpectTableRowCountToBeBetween"})


class SuiteError(ValueError):
    """A suite refers to something its table does not have."""


@dataclass(frozen=True)
class Spec:
    """One expectation: the GX class name and its arguments, and why it is there."""

    expectation: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    why: str = "declared"

    def columns(self) -> list[str]:
        cols = [self.kwargs[a] for a in _COLUMN_ARGS if a in self.kwargs]
        return cols + list(self.kwargs.get("column_list", []))

    @property
    def judged_column(self) -> str:
        """The column a failing row is quarantined under: the one judged (a column list names it last)."""
        return self.kwargs["column_list"][-1] if "column_list" in self.kwargs else self.columns()[0]

    @property
    def level(self) -> str:
        return "batch" if self.expectation in BATCH_LEVEL else "row"

    @property
    def name(self) -> str:
        """How results and quarantine reasons name it: GX's snake-case type and its first column."""
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in self.expectation).lstrip("_")
        kw = self.kwargs
        name = f"{snake}({', '.join(self.columns())})"
        if "min_value" in kw or "max_value" in kw:
            name += f" in [{kw.get('min_value')}, {kw.get('max_value')}]"
        if "row_condition" in kw:
            name += f" where {kw['row_condition']}"
        return name


#: Hand-written rules per table, beyond what the declaration says.
RULES: dict[str, list[Spec]] = {
    "production_orders": [
        Spec("ExpectColumnPairValuesAToBeGreaterThanB",
             {"column_A": "actual_end", "column_B": "actual_start", "or_equal": True,
              "ignore_row_if": "either_value_is_missing"}, "an order cannot end before it starts"),
        Spec("ExpectColumnPairValuesAToBeGreaterThanB",
             {"column_A": "planned_end", "column_B": "planned_start", "or_equal": True,
              "ignore_row_if": "either_value_is_missing"}, "a plan cannot end before it starts"),
        Spec("ExpectColumnValuesToNotBeNull",
             {"column": "actual_start", "row_condition": 'status=="running" | status=="completed"',
              "condition_parser": "pandas"}, "a running or completed order has started"),
        Spec("ExpectColumnValuesToNotBeNull",
             {"column": "actual_end", "row_condition": 'status=="completed"', "condition_parser": "pandas"},
             "a completed order has an actual end"),
    ],
    "quality_inspections": [
        Spec("ExpectColumnPairValuesAToBeGreaterThanB",
             {"column_A": "upper_limit", "column_B": "lower_limit", "or_equal": False,
              "ignore_row_if": "either_value_is_missing"}, "specification limits are ordered"),
        Spec("ExpectVerdictToMatchMeasurementAndLimits",
             {"column_list": ["measured_value", "lower_limit", "upper_limit", "result"]},
             "a part passes exactly when its measured value is within the limits"),
    ],
    "inspection_images": [
        Spec("ExpectColumnValueLengthsToEqual", {"column": "image_id", "value": 64}, "a sha256 in hex"),
        Spec("ExpectColumnValuesToBeBetween", {"column": "width", "min_value": 16, "max_value": 20_000},
             "a camera frame, not a thumbnail or a broken header"),
        Spec("ExpectColumnValuesToBeBetween", {"column": "height", "min_value": 16, "max_value": 20_000},
             "a camera frame, not a thumbnail or a broken header"),
    ],
}


def site_rules(table: Table, source: Any) -> list[Spec]:
    """Rules a source's site config implies for a table: each mapped tag's physical range,
    and the tags marked `required` (they must report in every interval)."""
    if table.name != "sensor_readings" or source is None:
        return []
    tags = getattr(source, "tags", [])
    specs = []
    ranges = sorted([t.asset, t.tag, t.min, t.max] for t in tags if t.min is not None or t.max is not None)
    if ranges:
        specs.append(Spec("ExpectTagValuesToBeWithinPhysicalRange",
                          {"column_list": ["asset_id", "tag", "value"], "ranges": ranges},
                          f"outside the physical range the site config gives the tag ({source.name})"))
    required = sorted({t.tag for t in tags if getattr(t, "required", False)})
    if required:
        specs.append(Spec("ExpectColumnDistinctValuesToContainSet", {"column": "tag", "value_set": required},
                          f"tags {source.name} must report every interval"))
    return specs


def expectations(table: Table, source: Any = None) -> list[Spec]:
    """The table's expectations: derived from its declaration, then its own rules, then
    those of `source`'s site config (when given)."""
    import pyarrow as pa

    specs = [Spec("ExpectColumnToExist", {"column": c.name}) for c in table.columns]
    for c in table.columns:
        if not c.nullable:
            specs.append(Spec("ExpectColumnValuesToNotBeNull", {"column": c.name}))
        if c.min is not None or c.max is not None:
            specs.append(Spec("ExpectColumnValuesToBeBetween", {"column": c.name, "min_value": c.min,
                                                               "max_value": c.max}))
        if c.allowed:
            specs.append(Spec("ExpectColumnValuesToBeInSet", {"column": c.name, "value_set": list(c.allowed)}))
        if c.kinds:
            from plantlake.core.kinds import kinds_feeding

            specs.append(Spec("ExpectColumnValuesToBeInSet", {"column": c.name,
                                                              "value_set": list(kinds_feeding(table.name))}))
        if pa.types.is_timestamp(c.type) and c.name not in table.lineage:
            specs.append(Spec("ExpectColumnValuesToBeBetween", {"column": c.name, "min_value": TS_MIN,
                                                               "max_value": TS_MAX}, "plausible time"))
    if len(table.primary_key) == 1:
        specs.append(Spec("ExpectColumnValuesToBeUnique", {"column": table.primary_key[0]}, "primary key"))
    elif table.primary_key:
        specs.append(Spec("ExpectCompoundColumnsToBeUnique", {"column_list": list(table.primary_key)},
                          "primary key"))
    specs += RULES.get(table.name, []) + site_rules(table, source)
    missing = sorted({col for s in specs for col in s.columns() if col not in table.column_names})
    if missing:
        raise SuiteError(f"suite {table.name}: expectations refer to column(s) {missing} that the table "
                         f"does not declare (columns: {', '.join(table.column_names)})")
    return specs


def suite_name(table: Table, source: Any = None) -> str:
    return f"plantlake.{table.name}.v{table.version}" + (f".{source.name}" if site_rules(table, source) else "")


def build_suite(table: Table, source: Any = None, specs: list[Spec] | None = None) -> Any:
    """The GX ExpectationSuite of a table (imports great_expectations), or of some of its specs."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from quality.expectations import CUSTOM

    built = []
    for i, spec in enumerate(expectations(table, source) if specs is None else specs):
        cls = CUSTOM.get(spec.expectation) or getattr(gxe, spec.expectation, None)
        if cls is None:
            raise SuiteError(f"suite {table.name}: GX has no expectation {spec.expectation}")
        # GX may report results in another order than the suite's: "spec" leads back to the spec
        built.append(cls(**spec.kwargs, meta={"why": spec.why, "level": spec.level, "spec": i}))
    return gx.ExpectationSuite(name=suite_name(table, source), expectations=built)
