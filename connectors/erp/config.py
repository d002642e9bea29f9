"""The site config of an `erp` source (ERP tables and exports): what `sources[]` with `kind: erp` accepts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from plantlake.core.config import SLUG, ConfigModel, SourceBase, relative_glob, sql_name


class ErpCsv(ConfigModel):
    """ERP exports dropped as CSV files: the dialect they are written in."""

    path: str = Field(min_length=1, description="Drop folder, relative to the config file.")
    pattern: str = Field("*.csv", description="Glob of this table's export files.")
    delimiter: str = Field(";", min_length=1, max_length=1)
    decimal: Literal[".", ","] = ","
    thousands: Literal[".", ",", " ", "'"] | None = None
    encoding: Literal["utf-8", "utf-8-sig", "latin-1", "cp1252"] = "utf-8"
    datetime_format: str = Field("%d.%m.%Y %H:%M:%S", description="strptime format of time columns.")
    max_file_bytes: int = Field(4 * 1024**3, ge=1, description="Larger export files are quarantined unread.")

    _pattern = field_validator("pattern")(classmethod(lambda cls, v: relative_glob(v)))
    date_format: str | None = Field(None, description="strptime format of date-only values, when they occur.")


class ErpTable(ConfigModel):
    """One ERP table (SQL `table`, or `csv` exports) mapped onto a curated table.

    `columns` maps each curated column to the source column (or CSV header) that holds it;
    `codes` maps source codes to canonical values per curated column (status 40 ->
    completed, line L1 -> assembly/line1). Columns named `line_id` or `asset_id` are
    resolved against the site hierarchy.
    """

    target: Literal["production_orders", "materials", "quality_inspections"]
    name: str | None = Field(None, pattern=SLUG, description="Raw stream name (default: the target).")
    table: str | None = Field(None, min_length=1, max_length=128, description="SQL table (quoted, never spliced).")
    db_schema: str | None = Field(None, min_length=1, max_length=128, description="SQL schema of the table.")
    csv: ErpCsv | None = None
    columns: dict[str, str] = Field(min_length=1)
    updated_at: str | None = Field(None, description="Source column of the last change: the incremental cursor.")
    mode: Literal["incremental", "full"] = Field(
        "incremental", description="incremental: rows changed in the interval (minus the look-back); "
                                   "full: the whole table every run, replacing what the source had.")
    codes: dict[str, dict[str, str]] = Field(default_factory=dict)
    new_columns: Literal["ignore", "carry"] = Field(
        "ignore", description="A source column nobody mapped: reported and left out of raw, or carried into raw.")

    _names = field_validator("table", "db_schema")(classmethod(lambda cls, v: sql_name(v)))

    @field_validator("codes", mode="before")
    @classmethod
    def _text_codes(cls, v: Any) -> Any:
        """YAML reads `40: completed` with an integer key; codes compare as text."""
        if isinstance(v, dict):
            return {k: {str(a): str(b) for a, b in m.items()} if isinstance(m, dict) else m for k, m in v.items()}
        return v

    @model_validator(mode="after")
    def _shape(self) -> ErpTable:
        if (self.table is None) == (self.csv is None):
            raise ValueError("give either table (SQL) or csv (exports)")
        if self.table is not None and self.mode == "incremental" and not self.updated_at:
            raise ValueError("an incremental SQL table needs updated_at (its last-change column), or mode: full")
        unknown = set(self.codes) - set(self.columns)
        if unknown:
            raise ValueError(f"codes for {sorted(unknown)}, which columns does not map")
        return self

    @property
    def stream(self) -> str:
        return self.name or self.target


class ErpSource(SourceBase):
    """ERP tables over SQL (SQLAlchemy; Arrow batches through ADBC where a driver exists) or CSV exports."""

    kind: Literal["erp"]
    tables: list[ErpTable] = Field(min_length=1)
    lookback_minutes: float = Field(60, ge=0, description="Re-read rows changed this long before the interval.")
    batch_rows: int = Field(100_000, ge=1000, description="Rows per Arrow batch read from the database.")
    timeout_s: float = Field(30.0, gt=0, description="Connect timeout.")
    timezone: str | None = Field(None, description="Zone of the ERP's naive timestamps; default the site's.")

    def file_folders(self) -> list[tuple[str, str]]:
        return [(f"tables[{k}].csv.path", t.csv.path) for k, t in enumerate(self.tables) if t.csv]

    @model_validator(mode="after")
    def _streams(self) -> ErpSource:
        names = [t.stream for t in self.tables]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two tables land as raw stream {dupes}; give them distinct names")
        if any(t.table for t in self.tables) and not self.connection_id:
            raise ValueError("SQL tables need connection_id (the Airflow connection of the ERP database)")
        return self
