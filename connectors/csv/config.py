"""The site config of a `csv` source (Historian CSV exports): what `sources[]` with `kind: csv` accepts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from plantlake.core.config import ConfigModel, SourceBase, relative_glob


class CsvColumns(ConfigModel):
    ts: str = "timestamp"
    ref: str = "tag"
    value: str = "value"
    unit: str | None = None
    status: str | None = None


class CsvSource(SourceBase):
    """Historian or machine exports in long format (timestamp, tag, value[, unit, status])."""

    kind: Literal["csv"]
    path: str = Field(min_length=1, description="Drop folder, relative to the config file.")
    pattern: str = "*.csv"
    delimiter: str = Field(",", min_length=1, max_length=1)
    decimal: Literal[".", ","] = "."
    thousands: Literal[".", ",", " ", "'"] | None = None
    encoding: Literal["utf-8", "utf-8-sig", "latin-1", "cp1252"] = "utf-8"
    timestamp_format: str | None = None
    timezone: str | None = None
    columns: CsvColumns = Field(default_factory=CsvColumns)
    max_file_bytes: int = Field(4 * 1024**3, ge=1, description="Larger export files are quarantined unread.")

    _pattern = field_validator("pattern")(classmethod(lambda cls, v: relative_glob(v)))

    def file_folders(self) -> list[tuple[str, str]]:
        return [("path", self.path)]
