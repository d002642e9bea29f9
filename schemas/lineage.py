"""Lineage: where a row came from and when. The one place it is filled in — curated rows
(conform), products and checks (`stamped`), quarantined rows (`quarantined`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.model import Table

UTC_US = pa.timestamp("us", tz="UTC")
#: the lineage every written row gets: when plantlake wrote it, and which run
STAMPED = ("ingested_at", "run_id")


def constant(value: str, n: int) -> pa.Array:
    """A string column of one repeated value, built without a Python list of n items."""
    return pc.cast(pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value])), pa.string())


def lineage_columns(table: Table, n: int, run_id: str, at: datetime) -> dict[str, pa.Array]:
    """The table's STAMPED lineage columns for n rows written `at` (ingested_at) by run `run_id`
    (a table's other lineage columns, such as an audit's validated_at, come with its rows)."""
    values = {"ingested_at": lambda: pa.repeat(pa.scalar(at, UTC_US), n), "run_id": lambda: constant(run_id, n)}
    return {name: values[name]() for name in table.lineage if name in STAMPED}


def stamped(table: Table, data: pa.Table, run_id: str, at: datetime | None = None) -> pa.Table:
    """`data` in the table's schema with its lineage set (added, or replacing what it had)."""
    for name, column in lineage_columns(table, data.num_rows, run_id, at or datetime.now(UTC)).items():
        data = (data.set_column(data.column_names.index(name), name, column) if name in data.column_names
                else data.append_column(name, column))
    return data.select(table.column_names).cast(table.arrow_schema())


def quarantined(parts: list[Any], source: str, interval_start: datetime, run_id: str) -> pa.Table:
    """Rejected rows (REJECT_SCHEMA tables) with the run that set them aside: source, run id,
    the interval's start and when."""
    from schemas.rejects import QUARANTINE_SCHEMA, REJECT_SCHEMA

    data = pa.concat_tables([p.cast(REJECT_SCHEMA) for p in parts]) if parts else REJECT_SCHEMA.empty_table()
    n = data.num_rows
    return (data.append_column("source", constant(source, n))
                .append_column("run_id", constant(run_id, n))
                .append_column("interval_start", pa.repeat(pa.scalar(interval_start, UTC_US), n))
                .append_column("quarantined_at", pa.repeat(pa.scalar(datetime.now(UTC), UTC_US), n))
                .cast(QUARANTINE_SCHEMA))
