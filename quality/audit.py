"""The audit step of write-audit-publish.

Reads the staged files of a batch (not the in-memory frame that produced them) and
checks them against the table declaration. Batch-level failures block the publish
and name the failed check with its statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from plantlake.lake import Staged
from schemas.conform import count_duplicate_keys
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
    checks: list[Check] = field(default_factory=list)

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


def audit_staged(table: Table, staged: Staged) -> AuditResult:
    """Schema conformance, not-null columns and primary-key uniqueness of a staged batch."""
    expected = table.arrow_schema()
    result = AuditResult(table.name, staged.rows)
    parts: list[pa.Table] = []
    nulls = dict.fromkeys((c.name for c in table.columns if not c.nullable), 0)
    checked = list(dict.fromkeys([*table.primary_key, *(c.name for c in table.columns if c.allowed)]))
    for f in staged.files:
        pf = pq.ParquetFile(f.staged, read_dictionary=checked)
        schema = pq.read_schema(f.staged)
        meta = schema.metadata or {}
        same = schema.remove_metadata().equals(expected.remove_metadata(), check_metadata=False) and all(
            a.nullable == b.nullable for a, b in zip(schema, expected, strict=True)
        )
        result.checks.append(Check(f"schema matches {table.name} v{table.version} in {f.staged.name}", same,
                                   observed=None if same else str(schema)))
        version_ok = meta.get(META_TABLE) == table.name.encode() and meta.get(META_VERSION) == str(table.version).encode()
        result.checks.append(Check("file metadata names table and schema version", version_ok,
                                   observed={k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"plantlake")}))
        # null counts come from the file's own column statistics: no need to read the data
        md = pf.metadata
        index = {md.schema.column(i).name: i for i in range(md.num_columns)}
        for name in nulls:
            for rg in range(md.num_row_groups):
                stats = md.row_group(rg).column(index[name]).statistics
                nulls[name] += stats.null_count if stats is not None and stats.has_null_count else \
                    pf.read_row_group(rg, columns=[name])[name].null_count
        parts.append(pf.read(columns=checked))
    for name, count in nulls.items():
        result.checks.append(Check(f"expect_column_values_to_not_be_null({name})", count == 0,
                                   observed=f"{count} nulls", unexpected=count))
    if not parts:
        return result
    data = pa.concat_tables(parts).unify_dictionaries()
    if table.primary_key and data.num_rows:
        dupes = count_duplicate_keys(data, table.primary_key)
        result.checks.append(Check(f"expect_compound_columns_to_be_unique({', '.join(table.primary_key)})",
                                   dupes == 0, observed=f"{dupes} duplicate keys", unexpected=dupes))
    for col in table.columns:
        if col.allowed:
            values = data[col.name]
            ok = pc.or_(pc.is_null(values), pc.is_in(values, value_set=pa.array(col.allowed)))  # null is not a value
            bad = int(pc.sum(pc.invert(ok)).as_py() or 0)
            result.checks.append(Check(f"expect_column_values_to_be_in_set({col.name})", bad == 0,
                                       observed=f"{bad} values outside {list(col.allowed)}", unexpected=bad))
    return result
