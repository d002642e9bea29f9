"""The table declaration model: one declaration per curated table.

Everything about a table (its Arrow schema, the conform step's casts, the quality
suite, the data dictionary and the analyst catalog) is derived from a `Table`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

#: Columns every table of the lake has besides its declared ones (each table is a Delta table,
#: plantlake/core/tables.py): who wrote the row (the configured source, `products`, `site_config`,
#: an audit) and the data interval of that run (the owner a rerun replaces), and the partition.
SOURCE_COLUMN, INTERVAL_COLUMN, PARTITION_COLUMN = "_source", "_interval", "date"
STORAGE_COLUMNS = {
    PARTITION_COLUMN: "The partition: the UTC day (date) of the table's partition column; partitioned tables only.",
    SOURCE_COLUMN: "Who wrote the row: the configured source (`sources[].name`), `products`, `site_config`, or an "
                   "audit (`<source>/<table>`).",
    INTERVAL_COLUMN: "The data interval of the run that wrote the row (`<start>_<end>`, UTC); a rerun of that "
                     "source and interval replaces exactly these rows.",
}

#: Key-value metadata keys stamped on every Parquet file plantlake writes.
META_TABLE = b"plantlake.table"
META_VERSION = b"plantlake.schema_version"


@dataclass(frozen=True)
class Column:
    """One column: its Arrow type, nullability and the rules its values obey."""

    name: str
    type: pa.DataType
    description: str
    nullable: bool = True
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    #: the values are source kinds: those whose sources feed this table (the kind registry,
    #: plantlake.core.kinds, knows which; the audit expects exactly those)
    kinds: bool = False
    #: "table.column" this column's values must exist in (e.g. an order's material)
    references: str | None = None

    def field(self) -> pa.Field:
        meta = {b"description": self.description.encode()}
        if self.unit:
            meta[b"unit"] = self.unit.encode()
        return pa.field(self.name, self.type, nullable=self.nullable, metadata=meta)


@dataclass(frozen=True)
class Table:
    """A curated table or product: columns, key, partitioning and version."""

    name: str
    version: int
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    partition_column: str | None = None
    layer: str = "curated"
    #: Columns that say where a row came from and when; excluded from content comparisons.
    lineage: tuple[str, ...] = field(default=("ingested_at", "run_id"))
    #: Where a primary key is unique: within one run's output ("interval"), across every
    #: interval a source published ("source": an MQTT redelivery landing in a later run), or
    #: across the whole table ("table": the same image from any folder or source). Beyond the
    #: run, the first publish keeps the key; a rerun of the same interval replaces its own rows.
    #: "latest": upsert — one file per source and partition holds the newest version of each
    #: key by `version_column` (ERP tables whose rows change).
    key_scope: str = "interval"
    version_column: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: duplicate column names")
        for key in (*self.primary_key, *( [self.partition_column] if self.partition_column else [])):
            if key not in names:
                raise ValueError(f"table {self.name}: key/partition column {key!r} is not declared")
        if self.key_scope not in ("interval", "source", "table", "latest"):
            raise ValueError(f"table {self.name}: key_scope must be interval, source, table or latest")
        if (self.key_scope == "latest") != (self.version_column is not None) or (
                self.version_column and self.version_column not in names):
            raise ValueError(f"table {self.name}: key_scope 'latest' goes with a declared version_column")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema, with the table name and version in its metadata."""
        return pa.schema(
            [c.field() for c in self.columns],
            metadata={META_TABLE: self.name.encode(), META_VERSION: str(self.version).encode()},
        )

    @property
    def data_columns(self) -> list[str]:
        return [c for c in self.column_names if c not in self.lineage]
