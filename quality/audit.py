"""The audit step of write-audit-publish.

Reads the staged files of a batch (not the in-memory frame that produced them), checks each
file against the table declaration (schema, version metadata), then validates the rows with
the table's Great Expectations suite (`quality/suites.py`).

- Rows failing a row-level expectation are taken out of the staged files and returned as
  quarantine rows, each with the expectation and why it exists.
- A failing batch-level expectation (columns, key uniqueness, required tags), an expectation
  GX could not evaluate, or more than `max_bad_share` of the rows failing blocks the publish:
  `AuditResult.raise_for_failures` names each failed check with its statistics.

Speed: GX runs on pandas. String columns are read from Parquet as dictionaries and handed to
pandas as categoricals (GX then works on small integer codes); the suite first runs with
result format BOOLEAN_ONLY, and only expectations that failed run again with COMPLETE to get
their exact rows. Key uniqueness is counted with Arrow (GX's pandas implementation of
`expect_compound_columns_to_be_unique` takes half a second per million rows) and recorded
in the validation result as that expectation's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from plantlake.core.errors import AuditFailed
from plantlake.core.lake import Staged, write_parquet
from plantlake.core.tables import OWNER, file_schema
from schemas.keys import count_duplicate_keys
from schemas.model import META_TABLE, META_VERSION, Table
from schemas.rejects import REJECT_SCHEMA, record_json


@dataclass
class Check:
    """One check or expectation and its outcome."""

    name: str
    success: bool
    observed: Any = None
    unexpected: int = 0
    level: str = "batch"

    def describe(self) -> str:
        return f"{self.name} (observed {self.observed}, unexpected {self.unexpected})"


@dataclass
class AuditResult:
    table: str
    rows: int
    suite: str = ""
    #: file-level checks, GX expectations and the bad-row policy, in that order
    checks: list[Check] = field(default_factory=list)
    #: rows set aside by row-level expectations, as quarantine rows
    rejects: pa.Table | None = None
    #: the GX validation result (JSON-able), None when the files failed their checks
    validation: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        """Whether the batch may be published: every batch-level check held (row-level
        failures were set aside)."""
        return all(c.success for c in self.checks if c.level == "batch")

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.success and c.level == "batch"]

    @property
    def set_aside(self) -> int:
        return 0 if self.rejects is None else self.rejects.num_rows

    def raise_for_failures(self) -> None:
        if not self.passed:
            raise AuditFailed(
                f"{self.table}: publish blocked, {len(self.failures)} failed check(s): "
                + "; ".join(c.describe() for c in self.failures)
            )


_CONTEXT: Any = None
#: per-row lists in a COMPLETE result: the rows go to quarantine, not into a check's description
_ROW_LISTS = ("unexpected_index_list", "unexpected_list", "unexpected_rows", "unexpected_index_query",
              "partial_unexpected_list", "partial_unexpected_index_list", "partial_unexpected_counts")
#: expectations the audit answers without GX, recorded in the validation as their outcome:
#: a column exists when the file-level schema check passed; keys are counted with Arrow
_NATIVE = ("ExpectColumnToExist", "ExpectCompoundColumnsToBeUnique")


def gx_batch(df: Any) -> Any:
    """A GX batch over a pandas frame, in one ephemeral context per process (GX imports here)."""
    global _CONTEXT
    import great_expectations as gx

    if _CONTEXT is None:
        from great_expectations.execution_engine import pandas_execution_engine

        # GX fingerprints frames under this size with an md5 over every cell, twice per
        # validation (0.4 s per million rows each time). A staged batch is already named by
        # its table, source, interval and staging token, which the results record.
        pandas_execution_engine.HASH_THRESHOLD = 0
        _CONTEXT = gx.get_context(mode="ephemeral")
        _CONTEXT.variables.progress_bars = {"globally": False}
        _CONTEXT.data_sources.add_pandas("plantlake").add_dataframe_asset("staged") \
            .add_batch_definition_whole_dataframe("batch")
    definition = _CONTEXT.data_sources.get("plantlake").get_asset("staged").get_batch_definition("batch")
    return definition.get_batch(batch_parameters={"dataframe": df})


def _file_checks(table: Table, staged: Staged) -> list[Check]:
    # staged data files carry the owner columns (committed as they are); a merge's rows get them in the MERGE
    expected = table.arrow_schema() if staged.merge else file_schema(table.arrow_schema())
    checks = []
    for f in staged.files:
        schema = pq.read_schema(f.path)
        meta = schema.metadata or {}
        same = schema.remove_metadata().equals(expected.remove_metadata(), check_metadata=False) and all(
            a.nullable == b.nullable for a, b in zip(schema, expected, strict=True))
        checks.append(Check(f"schema matches {table.name} v{table.version} in {f.label}", same,
                            observed=None if same else str(schema)))
        version_ok = meta.get(META_TABLE) == table.name.encode() and meta.get(META_VERSION) == str(table.version).encode()
        checks.append(Check(f"file metadata names table and schema version in {f.label}", version_ok,
                            observed={k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"plantlake")}))
    return checks


def _read(table: Table, staged: Staged, columns: list[str]) -> pa.Table:
    """Columns of the staged rows, strings as dictionaries, with the index of the file each came from."""
    strings = [f.name for f in table.arrow_schema() if pa.types.is_string(f.type) and f.name in columns]
    parts = []
    for n, f in enumerate(staged.files):
        data = pq.read_table(f.path, columns=columns, read_dictionary=strings)
        parts.append(data.append_column("__file", pa.array(np.full(data.num_rows, n, dtype=np.int32))))
    return pa.concat_tables(parts)


def audit_staged(table: Table, staged: Staged, *, source: Any = None, max_bad_share: float = 0.5) -> AuditResult:
    """Audit a staged batch; see the module docstring. `source` (the site config of the
    source) adds its site rules to the suite."""
    from quality.suites import build_suite, expectations, suite_name

    result = AuditResult(table.name, staged.rows, suite=suite_name(table, source))
    result.checks = _file_checks(table, staged)
    if not staged.files or not result.passed:
        return result
    specs = expectations(table, source)
    native = [s for s in specs if s.expectation in _NATIVE]
    judged = [s for s in specs if s not in native]
    # GX sees the columns its expectations name (row conditions may name any column)
    wanted = {c for s in judged for c in s.columns()} | ({c.name for c in table.columns}
                                                         if any("row_condition" in s.kwargs for s in judged) else set())
    wanted = [c for c in table.column_names if c in wanted]
    data = _read(table, staged, [c for c in table.column_names if c in {*wanted, *table.primary_key}])
    # one dictionary and one chunk per column make cheap categoricals; a block per column, no consolidating copy
    df = _ids_as_strings(data.select(wanted).unify_dictionaries().combine_chunks()).to_pandas(split_blocks=True)
    batch = gx_batch(df)
    validation = batch.validate(build_suite(table, source, judged), result_format={"result_format": "BOOLEAN_ONLY"})
    results = {r.expectation_config.meta["spec"]: r for r in validation.results}
    failed = [i for i, r in results.items() if not r.success]
    if failed:  # again, for exactly these, with the rows that broke them
        detail = batch.validate(build_suite(table, source, [judged[i] for i in failed]),
                                result_format={"result_format": "COMPLETE", "partial_unexpected_count": 20})
        results.update({failed[r.expectation_config.meta["spec"]]: r for r in detail.results})
    validation.results = [results[i] for i in range(len(judged))]
    present = set(pq.read_schema(staged.files[0].path).names)  # every file passed the schema check
    _add_native(validation, build_suite(table, source, native), data, present)

    bad: dict[int, tuple[str, str]] = {}
    for spec, r in zip(judged + native, validation.results, strict=True):
        unexpected = int(r.result.get("unexpected_count") or 0)
        raised = (r.exception_info or {}).get("raised_exception")
        if raised:
            result.checks.append(Check(spec.name, False, observed=f"GX raised: {r.exception_info['exception_message']}"))
            continue
        observed = r.result.get("observed_value")
        if observed is None:  # e.g. a set expectation reports what is missing instead
            observed = {k: v for k, v in r.result.items() if k not in _ROW_LISTS and v is not None} or \
                f"{unexpected} unexpected of {data.num_rows}"
        result.checks.append(Check(spec.name, bool(r.success), observed=observed, unexpected=unexpected,
                                   level=spec.level))
        if spec.level == "row":
            for i in r.result.get("unexpected_index_list") or []:
                bad.setdefault(int(i), (spec.judged_column, f"{spec.name}: {spec.why}"))
    share = len(bad) / data.num_rows if data.num_rows else 0.0
    result.checks.append(Check(f"share of rows failing row-level expectations <= {max_bad_share:g}",
                               share <= max_bad_share, observed=f"{len(bad)} of {data.num_rows} rows",
                               unexpected=len(bad)))
    validation.success = result.passed
    result.validation = validation.to_json_dict()
    if bad and result.passed:
        result.rejects = _set_aside(data, bad, staged)
    return result


def _ids_as_strings(data: pa.Table) -> pa.Table:
    """Categoricals pay off for the few values of assets, tags, units and verdicts; a column of
    (nearly) unique ids would make a category per row, and pandas checks every category for
    uniqueness (8 s for a million inspection ids, against 0.01 s as Arrow-backed strings)."""
    for i, f in enumerate(data.schema):
        column = data.column(i)
        if pa.types.is_dictionary(f.type) and column.num_chunks and \
                len(column.chunk(0).dictionary) > max(1000, data.num_rows // 10):
            data = data.set_column(i, f.name, column.cast(f.type.value_type))
    return data


def _add_native(validation: Any, suite: Any, data: pa.Table, present: set[str]) -> None:
    """Answer column existence (from the checked file schema) and key uniqueness (with Arrow)
    and add them to `validation` as GX results."""
    from great_expectations.core import ExpectationValidationResult

    for exp in suite.expectations:
        if exp.expectation_type == "expect_column_to_exist":
            result, ok = {"observed_value": exp.column in present}, exp.column in present
        else:
            dupes = count_duplicate_keys(data, tuple(exp.column_list))
            result, ok = {"element_count": data.num_rows, "unexpected_count": dupes,
                          "observed_value": f"{dupes} duplicate keys"}, dupes == 0
        validation.results.append(ExpectationValidationResult(success=ok, expectation_config=exp.configuration,
                                                              result=result))
    stats = validation.statistics
    stats["evaluated_expectations"] = len(validation.results)
    stats["successful_expectations"] = sum(bool(r.success) for r in validation.results)
    stats["unsuccessful_expectations"] = stats["evaluated_expectations"] - stats["successful_expectations"]
    stats["success_percent"] = 100.0 * stats["successful_expectations"] / max(stats["evaluated_expectations"], 1)


def _set_aside(data: pa.Table, bad: dict[int, tuple[str, str]], staged: Staged) -> pa.Table:
    """Rewrite the staged files without the failing rows; return those rows as quarantine rows."""
    keep = np.ones(data.num_rows, dtype=bool)
    keep[list(bad)] = False
    files = data["__file"].to_numpy()
    offsets = np.concatenate([[0], np.cumsum(np.bincount(files, minlength=len(staged.files)))])
    records: dict[int, dict] = {}
    for n, f in enumerate(staged.files):
        mine = keep[offsets[n]:offsets[n + 1]]
        if mine.all():
            continue
        whole = pq.read_table(f.path)  # every column, as written
        declared = whole.drop_columns([c for c in OWNER if c in whole.column_names])  # the record, not its owner
        for i, rec in zip(np.flatnonzero(~mine), declared.filter(pa.array(~mine)).to_pylist(), strict=True):
            records[int(offsets[n] + i)] = rec
        f.rows = write_parquet(f.path, [whole.filter(pa.array(mine))], whole.schema)
    return pa.Table.from_pylist([
        {"stage": "audit", "column": bad[i][0], "reason": bad[i][1],
         "record": record_json(records[i])} for i in sorted(bad)
    ], schema=REJECT_SCHEMA)
