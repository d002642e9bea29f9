"""The site config (`plant.yaml`): ISA-95 hierarchy, lake location and sources.

Loaded with pydantic; a bad file fails fast with the field path, the value found and
what was expected. Secrets never live here: sources name Airflow connection ids.
This module stays light (pydantic and yaml only) because DAG files import it at
parse time.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from plantlake.core.errors import ConfigError

SLUG = r"^[a-z0-9][a-z0-9_-]*$"
Slug = Annotated[str, Field(pattern=SLUG, max_length=64)]
SECRET_KEYS = re.compile(r"pass(word|wd)?$|secret|token|api_?key|private_key", re.I)

CONFIG_ENV = "PLANTLAKE_CONFIG"
LAKE_ENV = "LAKE_ROOT"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- hierarchy


class Cell(_Model):
    id: Slug
    name: str | None = None
    description: str | None = None


class Line(_Model):
    id: Slug
    name: str | None = None
    description: str | None = None
    cells: list[Cell] = Field(default_factory=list)


class Area(_Model):
    id: Slug
    name: str | None = None
    description: str | None = None
    lines: list[Line] = Field(default_factory=list)


class Site(_Model):
    id: Slug
    name: str | None = None
    description: str | None = None
    timezone: str = "UTC"
    areas: list[Area] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone such as 'Europe/Berlin' or 'UTC'") from None
        return v


class Enterprise(_Model):
    id: Slug
    name: str | None = None
    description: str | None = None
    sites: list[Site] = Field(min_length=1)


# --------------------------------------------------------------------------- sources


class TagMapping(_Model):
    """One source reference (node, topic field, export column value) -> canonical tag on an asset."""

    ref: str = Field(min_length=1, description="Source reference: OPC UA node (`nsu=<namespace uri>;s=<id>`), "
                     "MQTT `<topic>#<field>` (Sparkplug `spBv1.0/<group>/<edge>/<device>#<metric>`) or the export's tag name.")
    asset: str = Field(min_length=1, description="ISA-95 path, absolute (`acme/shenzhen/assembly/line1/press1`) or "
                       "relative to the first site (`assembly/line1/press1`).")
    tag: Slug
    unit: str | None = Field(None, description="Unit the source sends (when the source does not say): a UNECE "
                             "symbol (`N·m`, `m³/h`), a plant spelling (`Nm`, `m3/h`, `rpm`) or anything pint reads.")
    quantity: str | None = Field(None, description="Quantity kind of the values (torque, energy, rotational_speed, "
                                 "volume_flow, …), when the unit alone cannot tell; it chooses the canonical unit.")
    canonical_unit: str | None = Field(None, description="Canonical unit, when not the default of the quantity kind.")
    type: Literal["number", "text", "bool"] = "number"
    min: float | None = Field(None, description="Lowest physically possible value, in the canonical unit.")
    max: float | None = Field(None, description="Highest physically possible value, in the canonical unit.")
    required: bool = Field(False, description="The tag must report in every interval: a batch without it "
                           "is not published.")

    _unit = field_validator("unit", "canonical_unit")(classmethod(lambda cls, v: _check_unit(v)))
    _quantity = field_validator("quantity")(classmethod(lambda cls, v: _check_quantity(v)))

    @model_validator(mode="after")
    def _range(self) -> TagMapping:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


def _relative_glob(v: str) -> str:
    """A file pattern stays inside its folder: relative, no '..' segment, no NUL."""
    if v.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", v) or ".." in re.split(r"[\\/]", v) or "\0" in v:
        raise ValueError("expected a pattern relative to the folder, without '..' (e.g. '*.csv', 'line1/*.jpg')")
    return v


def _sql_name(v: str | None) -> str | None:
    if v is not None and any(ord(ch) < 32 for ch in v):
        raise ValueError("expected a table or schema name without control characters (NUL, line breaks)")
    return v


def _check_unit(v: str | None) -> str | None:
    if v is None:
        return v
    from schemas.units import UnitError, parse  # pint only when units are declared

    try:
        parse(v)
    except UnitError:
        raise ValueError("expected a unit plantlake reads, e.g. 'degC', 'bar', 'kW', 'N*m', 'm3/h', 'rpm' "
                         "(UNECE symbols and codes: docs/units.md)") from None
    return v


def _check_quantity(v: str | None) -> str | None:
    if v is None:
        return v
    from schemas.units import KINDS

    if v not in KINDS:
        raise ValueError(f"expected a quantity kind, one of: {', '.join(KINDS)}")
    return v


class UnitRule(_Model):
    """Units for every reading whose tag, asset and source reference match these globs, so a
    browsed node or a topic field is set without knowing its node id (a `tags` mapping of the
    same reference wins). E.g. `{tag: "*torque*", quantity: torque}` or
    `{asset: "*/filler*", tag: "flow", unit: "m3/h"}`."""

    tag: str = Field("*", min_length=1, description="Glob on the canonical tag name (e.g. 'spindle_*').")
    asset: str = Field("*", min_length=1, description="Glob on the ISA-95 asset id (absolute, e.g. '*/line1/*').")
    ref: str = Field("*", min_length=1, description="Glob on the source reference (node id, topic#field, tag).")
    unit: str | None = Field(None, description="Unit the source sends, when it does not say.")
    quantity: str | None = Field(None, description="Quantity kind of the values.")
    canonical_unit: str | None = Field(None, description="Canonical unit instead of the kind's default.")

    _unit = field_validator("unit", "canonical_unit")(classmethod(lambda cls, v: _check_unit(v)))
    _quantity = field_validator("quantity")(classmethod(lambda cls, v: _check_quantity(v)))

    @model_validator(mode="after")
    def _something(self) -> UnitRule:
        if not (self.unit or self.quantity or self.canonical_unit):
            raise ValueError("set unit, quantity or canonical_unit")
        return self


class SourceBase(_Model):
    name: Slug
    description: str | None = None
    connection_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    schedule: str = "@hourly"
    start_date: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    catchup: bool = False
    retries: int = Field(3, ge=2, le=20)
    retry_delay_s: int = Field(60, ge=1)
    enabled: bool = True
    max_bad_share: float = Field(0.5, ge=0, le=1, description="Audit: the publish is blocked when more than "
                                 "this share of a batch's rows fail row-level expectations.")
    slice_rows: int = Field(2_000_000, ge=1000, description="Raw rows decoded, conformed, audited and staged "
                            "together: an interval with more is done in slices of whole series (tag or node "
                            "references) of at most this many rows, so a run's memory is bounded by the slice, "
                            "not by the interval (OPC UA and historian exports; other sources do an interval "
                            "at once).")
    tags: list[TagMapping] = Field(default_factory=list)
    units: list[UnitRule] = Field(default_factory=list, description="Units by tag/asset/reference pattern "
                                  "(first match wins), for readings no `tags` mapping sets.")
    on_nothing_published: Literal["fail", "warn"] = Field(
        "fail", description="A run that had input but published nothing (every row quarantined or matching no "
                            "mapping, none already in the lake): fail the run naming the reasons, or only warn.")
    references: dict[str, Literal["enforce", "warn", "off"]] = Field(
        default_factory=dict, description="Per declared reference (`production_orders.material_id`): enforce "
                                          "(rows naming an unknown value are quarantined, the default), warn "
                                          "(published, counted in the run summary and logged) or off.")

    @field_validator("references")
    @classmethod
    def _references(cls, v: dict[str, str]) -> dict[str, str]:
        from schemas.tables import TABLES

        known = sorted(f"{t.name}.{c.name}" for t in TABLES.values() for c in t.columns if c.references)
        unknown = sorted(set(v) - set(known))
        if unknown:
            raise ValueError(f"no declared reference {unknown}; references are {known}")
        return v

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        from croniter import croniter

        presets = {"@hourly", "@daily", "@weekly", "@monthly"}
        if v not in presets and not croniter.is_valid(v):
            raise ValueError("expected a cron expression with 5 fields (e.g. '*/15 * * * *') or @hourly/@daily")
        return v

    @field_validator("start_date")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)


class CsvColumns(_Model):
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

    _pattern = field_validator("pattern")(classmethod(lambda cls, v: _relative_glob(v)))


class OpcUaNodes(_Model):
    """Variables selected by meaning: namespace URI + browse path, never a namespace index.

    `path` is '/'-separated under Objects; a `{name}` segment matches any child and
    captures its browse name for the `asset` template (e.g. path `Plant/{line}/{machine}`,
    asset `assembly/{line}/{machine}`). A captured browse name fills the template as a slug:
    CamelCase split by `_`, lower case, runs of other characters than letters, digits, `_`
    and `-` made one `_` (`Filler` -> `filler`, `LabelPrinter2` -> `label_printer2`,
    `Line 1` -> `line_1`). An asset is an ISA-95 path, absolute (`acme/shenzhen/assembly/line1`)
    or relative to the site (`assembly/line1`). `variables` is a glob on the variables'
    browse names; the tag is the browse name made a tag name the same way.
    """

    namespace: str = Field(min_length=1, description="Namespace URI of the path's segments.")
    path: str = Field(min_length=1)
    variables: str = "*"
    exclude: list[str] = Field(default_factory=list)
    asset: str = Field(min_length=1)

    @model_validator(mode="after")
    def _captures(self) -> OpcUaNodes:
        names = set(re.findall(r"{(\w+)}", self.path))
        used = set(re.findall(r"{(\w+)}", self.asset))
        if used - names:
            raise ValueError(f"asset uses {sorted(used - names)} which the path does not capture")
        return self


class OpcUaSource(SourceBase):
    """An OPC UA server: HistoryRead of each data interval, or polling where there is no history."""

    kind: Literal["opcua"]
    mode: Literal["history", "poll"] = "history"
    nodes: list[OpcUaNodes] = Field(default_factory=list)
    batch_nodes: int = Field(50, ge=1, le=5000, description="Nodes per HistoryRead / Read request.")
    parallel_requests: int = Field(4, ge=1, le=32, description="Requests in flight on the session.")
    timeout_s: float = Field(30.0, gt=0)
    poll_samples: int = Field(1, ge=1)
    poll_interval_s: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _something(self) -> OpcUaSource:
        if not self.nodes and not self.tags:
            raise ValueError("select nodes (nodes: namespace/path/variables) or map tags (tags: ref = nsu=…;s=…)")
        return self


_CAPTURE = re.compile(r"{(\w+)}")


class _TopicRule(_Model):
    @staticmethod
    def _check_template(pattern: str, template: str) -> None:
        missing = set(_CAPTURE.findall(template)) - set(_CAPTURE.findall(pattern))
        if missing:
            raise ValueError(f"asset uses {sorted(missing)} which the topic pattern does not capture")


class MqttJson(_TopicRule):
    """JSON telemetry: a topic pattern (`{name}` captures one level, `+`/`#` as in MQTT)
    mapped to an asset; one row per field of the values object. With `values: ''` the
    payload's top-level fields are the values, except the fields named as `id`, `timestamp`,
    `units` and `quality` (never readings), and as `include`/`exclude` select. A tag mapping
    names a field as `<topic>#<field>` (e.g. `plant/line1/filler/telemetry#temp`)."""

    topic: str = Field(min_length=1)
    asset: str = Field(min_length=1)
    values: str = Field("values", description="Field holding {tag: value}; '' for the top level.")
    units: str | None = Field("units", description="Field holding {tag: unit}, or one unit for every value "
                              "of the message, when the device sends it.")
    timestamp: list[str] = Field(default_factory=lambda: ["ts"], min_length=1,
                                 description="Candidate timestamp fields: ISO 8601 strings or epoch numbers.")
    epoch_unit: Literal["s", "ms", "us"] = "ms"
    id: str | None = Field("msg_id", description="Field with the message's unique id.")
    quality: str | None = Field(None, description="Field with the message's quality: good/uncertain/bad "
                                "or an OPC UA StatusCode number.")
    include: list[str] = Field(default_factory=lambda: ["*"], min_length=1,
                               description="Globs of the value fields to take (default all).")
    exclude: list[str] = Field(default_factory=list, description="Globs of value fields to leave out (e.g. "
                               "device ids, counters of the gateway); counted as fields_excluded.")

    @model_validator(mode="after")
    def _tpl(self) -> MqttJson:
        self._check_template(self.topic, self.asset)
        return self


class MqttSparkplug(_TopicRule):
    """Sparkplug B devices: group, edge node and device patterns mapped to an asset."""

    group: str = Field(min_length=1)
    edge_node: str = Field(min_length=1)
    device: str = "+"
    asset: str = Field(min_length=1)
    units: dict[str, str] = Field(default_factory=dict, description="Metric name -> unit the device reports in.")

    @model_validator(mode="after")
    def _tpl(self) -> MqttSparkplug:
        self._check_template(f"{self.group}/{self.edge_node}/{self.device}", self.asset)
        return self


class MqttSource(SourceBase):
    """An MQTT broker drained through a persistent session once per run (at least once)."""

    kind: Literal["mqtt"]
    client_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                                  description="Fixed client id of the persistent session (default plantlake-<name>).")
    protocol: Literal["v5", "v311"] = "v5"
    qos: Literal[1, 2] = 1
    session_expiry_s: int = Field(14 * 86400, ge=60)
    idle_s: float = Field(2.0, gt=0, description="Stop after this long without a message.")
    max_messages: int = Field(2_000_000, ge=1)
    max_bytes: int = Field(2 * 1024**3, ge=1)
    max_duration_s: float = Field(600.0, gt=0)
    chunk_messages: int = Field(5000, ge=1, le=60000, description="Messages landed (and then acknowledged) together.")
    max_payload_bytes: int = Field(256 * 1024, ge=1, description="Larger payloads are quarantined. Keep it at or "
                                   "below the broker's message_size_limit (shipped: 1 MiB): the broker drops a larger "
                                   "message without telling anyone, so it would never reach plantlake to be counted.")
    json_topics: list[MqttJson] = Field(default_factory=list, alias="json")
    sparkplug: list[MqttSparkplug] = Field(default_factory=list)
    raw_topics: list[str] = Field(default_factory=list, description="Kept in raw only, counted, never decoded.")

    @model_validator(mode="after")
    def _something(self) -> MqttSource:
        if not (self.json_topics or self.sparkplug or self.raw_topics):
            raise ValueError("map at least one topic (json, sparkplug or raw_topics)")
        wrong = [t.ref for t in self.tags if "#" not in t.ref or t.ref.startswith("#") or t.ref.endswith("#")]
        if wrong:
            raise ValueError(f"tags refs {wrong} name no field: an MQTT ref is <topic>#<field> "
                             "(e.g. 'plant/line1/filler/telemetry#temp', 'spBv1.0/group/edge/device#metric')")
        return self


class ImageSidecar(_Model):
    """Metadata in a JSON file next to each image (same stem, `suffix`): field names to read."""

    suffix: str = Field(".json", pattern=r"^\.[A-Za-z0-9]{1,10}$")
    asset: str = Field("station", description="Field with the station: an asset of the hierarchy.")
    part_serial: str | None = "part_serial"
    order_id: str | None = "order_id"
    captured_at: str | None = Field("captured_at", description="ISO 8601; without a zone, site local time.")


class ImageFolder(_Model):
    """One camera drop folder and how its files carry station, part and capture time.

    Either a `sidecar` JSON per image, or a `name_pattern` whose `{name}` captures fill
    `asset` (a template such as `assembly/line{n}/camera{n}`), `part_serial`,
    `order_id` and `captured_at` (parsed with `captured_at_format`). Without either,
    the capture time comes from EXIF and the station from `asset`.
    """

    path: str = Field(min_length=1, description="Drop folder, relative to the config file.")
    pattern: str = Field("*", description="Glob of the files to consider (sidecars are never images).")
    sidecar: ImageSidecar | None = None
    name_pattern: str | None = Field(None, description="e.g. 'cam{n}_{part_serial}_{captured_at}.png'")
    asset: str | None = Field(None, description="Station asset, or a template over name_pattern captures.")
    codes: dict[str, str] = Field(default_factory=dict, description="Station codes as the camera or sidecar "
                                  "writes them -> assets of the hierarchy (e.g. {L1-EOL: assembly/line1/camera1}), "
                                  "as the ERP's `codes` do; a code not listed must be an asset itself.")
    captured_at_format: str | None = Field(None, description="strptime format of {captured_at} in file names.")

    _pattern = field_validator("pattern")(classmethod(lambda cls, v: _relative_glob(v)))

    @field_validator("codes", mode="before")
    @classmethod
    def _text_codes(cls, v: Any) -> Any:
        return {str(a): str(b) for a, b in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _metadata(self) -> ImageFolder:
        if self.sidecar and self.name_pattern:
            raise ValueError("use either sidecar or name_pattern for a folder, not both")
        if not self.sidecar and not self.asset:
            raise ValueError("set asset (the station, or a template over name_pattern captures) or a sidecar")
        captures = set(_CAPTURE.findall(self.name_pattern or ""))
        missing = set(_CAPTURE.findall(self.asset or "")) - captures
        if missing:
            raise ValueError(f"asset uses {sorted(missing)} which name_pattern does not capture")
        unknown = captures - {"part_serial", "order_id", "captured_at"} - set(_CAPTURE.findall(self.asset or ""))
        if unknown:
            raise ValueError(f"name_pattern captures {sorted(unknown)} that nothing uses "
                             "(known: part_serial, order_id, captured_at and the asset template's names)")
        return self


class ImageSource(SourceBase):
    """Camera images from drop folders: one `inspection_images` row per distinct image."""

    kind: Literal["images"]
    folders: list[ImageFolder] = Field(min_length=1)
    extensions: list[str] = Field(default_factory=lambda: [".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"],
                                  description="Image file endings; other files are quarantined.")
    settle_s: float = Field(2.0, ge=0, description="A file must be unchanged this long before it is read.")
    workers: int = Field(0, ge=0, le=64, description="Decode/hash processes; 0 = one per core.")
    batch_files: int = Field(500, ge=1, le=100_000, description="Files per landed raw batch.")
    max_pixels: int = Field(100_000_000, ge=1, description="Larger images are quarantined (decompression bombs).")
    max_file_bytes: int = Field(256 * 1024**2, ge=1, description="Larger files are quarantined unread (a camera "
                                "frame is a few MB).")
    delete_after_publish: bool = Field(False, description="Remove the operator's file once its row is published.")
    copy_mode: Literal["copy", "link"] = Field(
        "copy", description="How the lake keeps its copy: 'copy' the bytes, or 'link' (a hard link: no copy, "
                            "for a drop folder on the lake's filesystem whose files are never rewritten in place).")
    timezone: str | None = Field(None, description="Zone of naive times (EXIF, file names); default the site's.")


class ErpCsv(_Model):
    """ERP exports dropped as CSV files: the dialect they are written in."""

    path: str = Field(min_length=1, description="Drop folder, relative to the config file.")
    pattern: str = Field("*.csv", description="Glob of this table's export files.")
    delimiter: str = Field(";", min_length=1, max_length=1)
    decimal: Literal[".", ","] = ","
    thousands: Literal[".", ",", " ", "'"] | None = None
    encoding: Literal["utf-8", "utf-8-sig", "latin-1", "cp1252"] = "utf-8"
    datetime_format: str = Field("%d.%m.%Y %H:%M:%S", description="strptime format of time columns.")
    max_file_bytes: int = Field(4 * 1024**3, ge=1, description="Larger export files are quarantined unread.")

    _pattern = field_validator("pattern")(classmethod(lambda cls, v: _relative_glob(v)))
    date_format: str | None = Field(None, description="strptime format of date-only values, when they occur.")


class ErpTable(_Model):
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

    _names = field_validator("table", "db_schema")(classmethod(lambda cls, v: _sql_name(v)))

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

    @model_validator(mode="after")
    def _streams(self) -> ErpSource:
        names = [t.stream for t in self.tables]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two tables land as raw stream {dupes}; give them distinct names")
        if any(t.table for t in self.tables) and not self.connection_id:
            raise ValueError("SQL tables need connection_id (the Airflow connection of the ERP database)")
        return self


Source = Annotated[CsvSource | OpcUaSource | MqttSource | ImageSource | ErpSource, Field(discriminator="kind")]


class LakeSettings(_Model):
    root: str = "./lake"


class QualitySettings(_Model):
    """Thresholds of the cross-source checks (reported in `cross_source_checks` and Data Docs)."""

    min_sensor_coverage: float = Field(0.9, ge=0, le=1, description="Share of an order's running minutes "
                                       "on its line that must have sensor readings.")
    max_line_bad_share: float = Field(0.1, ge=0, le=1, description="Highest share of Bad or Uncertain "
                                      "readings on a line in an interval.")


class ProductSettings(_Model):
    """How the fused products are built."""

    image_sensor_window_s: int = Field(120, ge=1, le=86_400, description="image_training_set: sensor features "
                                       "are aggregated over this many seconds before each capture, on the image's line.")


class PlantConfig(_Model):
    enterprise: Enterprise
    lake: LakeSettings = Field(default_factory=LakeSettings)
    data_roots: list[str] = Field(default_factory=lambda: ["."], min_length=1, description=(
        "Folders the sources may read files from (drop folders, exports), relative to the config file; a "
        "source folder must lie under one of them after links are resolved (default: the config's folder)."))
    quality: QualitySettings = Field(default_factory=QualitySettings)
    products: ProductSettings = Field(default_factory=ProductSettings)
    sources: list[Source] = Field(default_factory=list)
    #: Directory of the config file; relative paths in the config resolve against it.
    base_dir: Path = Field(default=Path("."), exclude=True)
    _asset_ids: tuple[Enterprise, frozenset[str]] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _unique(self) -> PlantConfig:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return self

    # ---- derived views -------------------------------------------------------------

    @property
    def site(self) -> Site:
        return self.enterprise.sites[0]

    def assets(self) -> list[dict[str, Any]]:
        """The hierarchy as rows (asset_id, parent_id, level, name, description)."""
        rows: list[dict[str, Any]] = []

        def add(path: str, parent: str | None, level: str, node: Any) -> None:
            rows.append({"asset_id": path, "parent_id": parent, "level": level,
                         "name": node.name or node.id, "description": node.description})

        ent = self.enterprise
        add(ent.id, None, "enterprise", ent)
        for site in ent.sites:
            s = f"{ent.id}/{site.id}"
            add(s, ent.id, "site", site)
            for area in site.areas:
                a = f"{s}/{area.id}"
                add(a, s, "area", area)
                for line in area.lines:
                    ln = f"{a}/{line.id}"
                    add(ln, a, "line", line)
                    for cell in line.cells:
                        add(f"{ln}/{cell.id}", ln, "cell", cell)
        return rows

    def asset_ids(self) -> set[str]:
        return set(self._known_assets())

    def _known_assets(self) -> frozenset[str]:
        cached = self._asset_ids
        if cached is None or cached[0] is not self.enterprise:  # a model_copy may bring a new hierarchy
            cached = (self.enterprise, frozenset(r["asset_id"] for r in self.assets()))
            self._asset_ids = cached
        return cached[1]

    def is_asset(self, asset_id: str) -> bool:
        return asset_id in self._known_assets()  # per row in decoders: no copy of the set

    def resolve_asset(self, ref: str) -> str | None:
        """Absolute ISA-95 path for `ref` (absolute, or relative to the first site)."""
        ref = ref.strip("/")
        for candidate in (ref, f"{self.enterprise.id}/{self.site.id}/{ref}"):
            if self.is_asset(candidate):
                return candidate
        return None

    def line_of(self, asset_id: str) -> str | None:
        parts = asset_id.split("/")
        return "/".join(parts[:4]) if len(parts) >= 4 else None

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"no source named {name!r} in the site config; configured: {', '.join(s.name for s in self.sources) or 'none'}")

    def path(self, relative: str) -> Path:
        """A config path resolved against the config file's folder."""
        p = Path(relative)
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def lake_root(self) -> Path:
        env = os.environ.get(LAKE_ENV)
        return Path(env).resolve() if env else self.path(self.lake.root)


# --------------------------------------------------------------------------- loading


def default_config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    here = Path.cwd() / "plant.yaml"
    if here.exists():
        return here
    return Path(__file__).resolve().parents[2] / "plant.yaml"


def load_config(path: str | Path | None = None) -> PlantConfig:
    """Load and validate a site config; raise ConfigError naming every problem."""
    path = Path(path) if path else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: site config not found (set {CONFIG_ENV} or pass --config)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_config(data, source=str(path), base_dir=path.resolve().parent)


def parse_config(data: Any, *, source: str = "<config>", base_dir: Path | None = None) -> PlantConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    secrets = list(_secret_paths(data, ""))
    if secrets:
        raise ConfigError(
            f"{source}: " + "; ".join(f"{p}: secrets do not belong in the site config — name an Airflow connection id (connection_id) instead" for p in secrets)
        )
    try:
        cfg = PlantConfig.model_validate({**data, "base_dir": base_dir or Path(".")})
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + "; ".join(_format(e) for e in exc.errors())) from None
    problems = list(_reference_problems(cfg))
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return cfg.model_copy(update={"sources": [_resolve_tags(cfg, s) for s in cfg.sources]})


def with_source(cfg: PlantConfig, name: str, **changes: Any) -> PlantConfig:
    """`cfg` with one source's settings changed, validated again like a loaded file (for tests,
    benchmarks and tools that try a variant of a site's config)."""
    data = cfg.model_dump(exclude={"base_dir"}, by_alias=True, exclude_none=True)
    found = [s for s in data["sources"] if s["name"] == name]
    if not found:
        raise ConfigError(f"no source named {name!r} in the site config")
    found[0].update(changes)
    return parse_config(data, source=f"<{name} variant>", base_dir=cfg.base_dir)


def _secret_paths(node: Any, path: str):
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and SECRET_KEYS.search(k) and v not in (None, ""):
                yield p
            else:
                yield from _secret_paths(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _secret_paths(v, f"{path}[{i}]")


def _format(err: dict) -> str:
    parts: list[str] = []
    loc = list(err["loc"])
    for i, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif i > 0 and loc[i - 1] != "sources" and isinstance(loc[i - 1], int) and part in {"csv", "opcua", "mqtt", "images", "erp"}:
            continue  # the discriminator tag pydantic inserts into the path
        else:
            parts.append(("." if parts else "") + str(part))
    where = "".join(parts) or "(top level)"
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{where}: missing — this field is required"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown field (value {value!r}) — check the spelling against docs/configuration.md"
    if err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
        return f"{where}: {msg}"
    shown = value if not isinstance(value, dict | list) else type(value).__name__
    return f"{where}: got {shown!r} — {msg}"


def _folders(src: Any) -> list[tuple[str, str]]:
    """(field path, folder) of every folder a source reads files from."""
    out = [("path", src.path)] if getattr(src, "kind", "") == "csv" else []
    out += [(f"folders[{k}].path", f.path) for k, f in enumerate(getattr(src, "folders", []))]
    out += [(f"tables[{k}].csv.path", t.csv.path) for k, t in enumerate(getattr(src, "tables", [])) if t.csv]
    return out


def _reference_problems(cfg: PlantConfig):
    roots = [cfg.path(r).resolve() for r in cfg.data_roots]
    for i, src in enumerate(cfg.sources):
        for where, folder in _folders(src):
            real = cfg.path(folder).resolve()  # a link to /etc resolves to /etc
            if not any(real.is_relative_to(r) for r in roots):
                yield (f"sources[{i}].{where}: got {folder!r} — it resolves to {real}, outside the data roots "
                       f"({', '.join(str(r) for r in roots)}); add its folder to data_roots if it is meant")
    for i, src in enumerate(cfg.sources):
        seen: dict[str, int] = {}
        for j, tag in enumerate(src.tags):
            where = f"sources[{i}].tags[{j}]"
            if cfg.resolve_asset(tag.asset) is None:
                yield f"{where}.asset: got {tag.asset!r} — expected an asset of the hierarchy (e.g. {cfg.assets()[-1]['asset_id']!r})"
            if tag.ref in seen:
                yield f"{where}.ref: got {tag.ref!r} — already mapped by tags[{seen[tag.ref]}]"
            seen[tag.ref] = j
        for j, rule in enumerate([*src.tags, *src.units]):
            where = f"sources[{i}].tags[{j}]" if j < len(src.tags) else f"sources[{i}].units[{j - len(src.tags)}]"
            if rule.unit and (rule.canonical_unit or rule.quantity):
                from schemas.units import UnitError, affine, canonical_unit

                try:
                    affine(rule.unit, rule.canonical_unit or canonical_unit(rule.unit, rule.quantity), rule.quantity)
                except UnitError as exc:
                    field = "canonical_unit" if rule.canonical_unit else "quantity"
                    yield f"{where}.{field}: got {getattr(rule, field)!r} — {exc}"


def _resolve_tags(cfg: PlantConfig, src: Any) -> Any:
    tags = [t.model_copy(update={"asset": cfg.resolve_asset(t.asset)}) for t in src.tags]
    return src.model_copy(update={"tags": tags})
