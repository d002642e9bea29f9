"""The audit step of write-audit-publish.

Reads the staged files of a batch (not the in-memory frame that produced them) and
checks them against the table declaration. Batch-level failures block the publish
and name the failed check with its statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from plantlake.lake import Staged
from schemas.model import META_TABLE, META_VERSION, Table


class AuditFailed(RuntimeError):
    """A staged batch failed a batch-level check; nothing was published."""


@dataclass
class Check:
    name: str
    success: bool
    observed: Any = None
    unexpected: int = 0

    def describe(self) -> str:
        return f"{self.name} (observed {self.observed}, unexpected {self.unexpected})"


@dataclass
class AuditResult:
    table: str
    rows: int
    #: batch-level checks: any failure blocks the publish
    checks: list[Check] = field(default_factory=list)
    #: row-level expectations: (name, success, unexpected rows) — their rows were set aside
    expectations: list[tuple[str, bool, int]] = field(default_factory=list)
    #: rows set aside by row-level expectations, as quarantine rejects
    rejects: pa.Table | None = None
    #: the GX validation result (JSON-able)
    validation: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return all(c.success for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.success]

    def raise_for_failures(self) -> None:
        if not self.passed:
            raise AuditFailed(
                f"{self.table}: publish blocked, {len(self.failures)} failed check(s): "
                + "; ".join(c.describe() for c in self.failures)
            )


#: expectations about the batch as a whole: a failure blocks the publish
BATCH_LEVEL = ("expect_column_to_exist", "expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")
_CONTEXT: Any = None


def _gx_batch(df: Any) -> Any:
    """A GX batch over a pandas frame, in one ephemeral context per process (GX imports here)."""
    global _CONTEXT
    import great_expectations as gx

    if _CONTEXT is None:
        _CONTEXT = gx.get_context(mode="ephemeral")
        _CONTEXT.variables.progress_bars = {"globally": False}
        _CONTEXT.data_sources.add_pandas("plantlake").add_dataframe_asset("staged") \
            .add_batch_definition_whole_dataframe("batch")
    definition = _CONTEXT.data_sources.get("plantlake").get_asset("staged").get_batch_definition("batch")
    return definition.get_batch(batch_parameters={"dataframe": df})


def audit_staged(table: Table, staged: Staged, *, max_bad_share: float = 0.5) -> AuditResult:
    """Audit a staged batch: file-level checks (schema, metadata), then the table's GX suite on
    what was written. Rows failing a row-level expectation leave the staged files for quarantine
    (with the expectation and why); a failing batch-level expectation, or more than
    `max_bad_share` of rows failing, blocks the publish."""
    from quality.suites import build_suite, expectations

    expected = table.arrow_schema()
    result = AuditResult(table.name, staged.rows)
    parts: list[pa.Table] = []
    for n, f in enumerate(staged.files):
        schema = pq.read_schema(f.staged)
        meta = schema.metadata or {}
        same = schema.remove_metadata().equals(expected.remove_metadata(), check_metadata=False) and all(
            a.nullable == b.nullable for a, b in zip(schema, expected, strict=True)
        )
        result.checks.append(Check(f"schema matches {table.name} v{table.version} in {f.staged.name}", same,
                                   observed=None if same else str(schema)))
        version_ok = meta.get(META_TABLE) == table.name.encode() and meta.get(META_VERSION) == str(table.version).encode()
        result.checks.append(Check(f"file metadata names table and schema version in {f.staged.name}", version_ok,
                                   observed={k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"plantlake")}))
        data = pq.read_table(f.staged)
        parts.append(data.append_column("__file", pa.array([n] * data.num_rows, pa.int32())))
    if not parts or not all(c.success for c in result.checks):
        return result
    data = pa.concat_tables(parts)
    if data.num_rows == 0:
        return result
    why = {(s.expectation, tuple(s.columns())): s.why for s in expectations(table)}
    validation = _gx_batch(data.drop_columns(["__file"]).to_pandas()).validate(
        build_suite(table), result_format={"result_format": "COMPLETE", "partial_unexpected_count": 0})
    result.validation = validation.to_json_dict()
    bad: dict[int, tuple[str, str]] = {}
    for r in validation.results:
        cfg = r.expectation_config
        kwargs = cfg.kwargs
        column = kwargs.get("column") or kwargs.get("column_A") or ",".join(kwargs.get("column_list", []))
        name = f"{cfg.type}({column})"
        unexpected = int(r.result.get("unexpected_count") or 0)
        if cfg.type in BATCH_LEVEL or r.result.get("unexpected_index_list") is None:
            result.checks.append(Check(name, bool(r.success), observed=r.result.get("observed_value", unexpected),
                                       unexpected=unexpected))
            continue
        result.expectations.append((name, bool(r.success), unexpected))
        cols = tuple(c for c in (kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")) if c)
        reason = f"{name}: {why.get((_camel(cfg.type), cols), 'declared')}"
        for i in r.result.get("unexpected_index_list") or []:
            bad.setdefault(int(i), (column, reason))
    share = len(bad) / data.num_rows
    result.checks.append(Check(f"share of rows failing row-level expectations <= {max_bad_share:g}",
                               share <= max_bad_share, observed=f"{len(bad)} of {data.num_rows} rows",
                               unexpected=len(bad)))
    if bad and result.passed:
        result.rejects = _set_aside(data, bad, staged)
    return result


def _camel(snake: str) -> str:
    return "".join(p.capitalize() for p in snake.split("_"))


def _set_aside(data: pa.Table, bad: dict[int, tuple[str, str]], staged: Staged) -> pa.Table:
    """Rewrite the staged files without the failing rows; return those rows as rejects."""
    import json

    import numpy as np

    from plantlake.lake import write_parquet
    from schemas.conform import REJECT_SCHEMA

    keep = np.ones(data.num_rows, dtype=bool)
    keep[list(bad)] = False
    files = data["__file"].to_numpy()
    for n, f in enumerate(staged.files):
        mask = files == n
        if (~keep[mask]).any():
            kept = data.filter(pa.array(mask & keep)).drop_columns(["__file"])
            f.rows = write_parquet(f.staged, [kept], pq.read_schema(f.staged))
    rows = data.take(pa.array(sorted(bad))).drop_columns(["__file"]).to_pylist()
    return pa.Table.from_pylist([
        {"stage": "audit", "column": bad[i][0], "reason": bad[i][1],
         "record": json.dumps(rec, default=str, sort_keys=True)} for i, rec in zip(sorted(bad), rows, strict=True)
    ], schema=REJECT_SCHEMA)
