"""Great Expectations suites derived from the table declarations, plus each table's own rules.

`expectations(table)` lists a table's expectations as plain specs — GX class name and
arguments — derived from its one declaration in `schemas/tables.py` (columns exist,
types, not-null, ranges, allowed sets, key uniqueness, timestamp bounds) followed by the
hand-written rules in `RULES`. It imports nothing heavy. `build_suite(table)` turns the
specs into a GX 1.x `ExpectationSuite` (GX is imported there, inside tasks only: it takes
seconds to import). A spec that names a column the table lacks fails here, when the suite
is built — in the tests — never halfway through a production run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.model import Table

#: Timestamps outside these bounds are not plant data (clock resets, epoch zero, typos).
TS_MIN, TS_MAX = "2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00"
_COLUMN_ARGS = ("column", "column_A", "column_B")


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


#: Hand-written rules per table, beyond what the declaration says.
RULES: dict[str, list[Spec]] = {
    "production_orders": [
        Spec("ExpectColumnPairValuesAToBeGreaterThanB",
             {"column_A": "actual_end", "column_B": "actual_start", "or_equal": True,
              "ignore_row_if": "either_value_is_missing"}, "an order cannot end before it starts"),
        Spec("ExpectColumnPairValuesAToBeGreaterThanB",
             {"column_A": "planned_end", "column_B": "planned_start", "or_equal": True,
              "ignore_row_if": "either_value_is_missing"}, "a plan cannot end before it starts"),
    ],
    "quality_inspections": [
        Spec("ExpectColumnPairValuesAToBeGreaterThanB",
             {"column_A": "upper_limit", "column_B": "lower_limit", "or_equal": False,
              "ignore_row_if": "either_value_is_missing"}, "specification limits are ordered"),
    ],
    "inspection_images": [
        Spec("ExpectColumnValueLengthsToEqual", {"column": "image_id", "value": 64}, "a sha256 in hex"),
    ],
}


def expectations(table: Table) -> list[Spec]:
    """The table's expectations: derived from its declaration, then its own rules."""
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
        if pa.types.is_timestamp(c.type) and c.name not in table.lineage:
            specs.append(Spec("ExpectColumnValuesToBeBetween", {"column": c.name, "min_value": TS_MIN,
                                                               "max_value": TS_MAX}, "plausible time"))
    if len(table.primary_key) == 1:
        specs.append(Spec("ExpectColumnValuesToBeUnique", {"column": table.primary_key[0]}, "primary key"))
    elif table.primary_key:
        specs.append(Spec("ExpectCompoundColumnsToBeUnique", {"column_list": list(table.primary_key)},
                          "primary key"))
    specs += RULES.get(table.name, [])
    missing = sorted({col for s in specs for col in s.columns() if col not in table.column_names})
    if missing:
        raise SuiteError(f"suite {table.name}: expectations refer to column(s) {missing} that the table "
                         f"does not declare (columns: {', '.join(table.column_names)})")
    return specs


def build_suite(table: Table) -> Any:
    """The GX ExpectationSuite of a table (imports great_expectations)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    built = []
    for spec in expectations(table):
        try:
            cls = getattr(gxe, spec.expectation)
        except AttributeError:
            raise SuiteError(f"suite {table.name}: GX has no expectation {spec.expectation}") from None
        built.append(cls(**spec.kwargs, meta={"why": spec.why}))
    return gx.ExpectationSuite(name=f"plantlake.{table.name}.v{table.version}", expectations=built)
