"""The site config (`plant.yaml`): ISA-95 hierarchy, lake location and sources.

Loaded with pydantic; a bad file fails fast with the field path, the value found and
what was expected. Secrets never live here: sources name Airflow connection ids.
This module stays light (pydantic and yaml only) because DAG files import it at
parse time.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
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
#: a `{name}` capture of a path, topic or file-name template
CAPTURE = re.compile(r"{(\w+)}")
Slug = Annotated[str, Field(pattern=SLUG, max_length=64)]
SECRET_KEYS = re.compile(r"pass(word|wd)?$|secret|token|api_?key|private_key", re.I)

CONFIG_ENV = "PLANTLAKE_CONFIG"
LAKE_ENV = "LAKE_ROOT"


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*$")


def _duration(v: Any) -> Any:
    """`2h`, `90m`, `30 min`, `1d`, `45s`; anything else goes to pydantic (seconds, ISO 8601 `PT2H`)."""
    if isinstance(v, str) and (m := _SPAN.match(v)):
        unit = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days"}[m[2]]
        return timedelta(**{unit: float(m[1])})
    return v


# --------------------------------------------------------------------------- hierarchy


class Cell(ConfigModel):
    id: Slug
    name: str | None = None
    description: str | None = None


class Line(ConfigModel):
    id: Slug
    name: str | None = None
    description: str | None = None
    cells: list[Cell] = Field(default_factory=list)


class Area(ConfigModel):
    id: Slug
    name: str | None = None
    description: str | None = None
    lines: list[Line] = Field(default_factory=list)


class Site(ConfigModel):
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


class Enterprise(ConfigModel):
    id: Slug
    name: str | None = None
    description: str | None = None
    sites: list[Site] = Field(min_length=1)


# --------------------------------------------------------------------------- sources


class TagMapping(ConfigModel):
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


def relative_glob(v: str) -> str:
    """A file pattern stays inside its folder: relative, no '..' segment, no NUL."""
    if v.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", v) or ".." in re.split(r"[\\/]", v) or "\0" in v:
        raise ValueError("expected a pattern relative to the folder, without '..' (e.g. '*.csv', 'line1/*.jpg')")
    return v


def sql_name(v: str | None) -> str | None:
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


class UnitRule(ConfigModel):
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


class SourceBase(ConfigModel):
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
    freshness: timedelta | None = Field(None, description=(
        "How far behind now the end of the source's last published interval may be (`2h`, `90m`, `1d`) before "
        "the quality DAG's freshness check fails and plant IT is alerted; unset: the lag is recorded, not held to "
        "a bound."))
    site: Slug | None = Field(None, description=(
        "The plant site whose edge worker collects this source (Airflow's Edge executor, queue `site-<site>`), "
        "next to its PLCs and brokers; unset: the central workers do. The deployment must run the Edge executor "
        "(README: An edge site)."))
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

    @field_validator("freshness", mode="before")
    @classmethod
    def _freshness(cls, v: Any) -> Any:
        return _duration(v)

    @field_validator("freshness")
    @classmethod
    def _positive(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and v <= timedelta(0):
            raise ValueError("expected a positive duration, e.g. '2h'")
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

    def file_folders(self) -> list[tuple[str, str]]:
        """(field path, folder) of every folder the source reads files from (checked against data_roots)."""
        return []

    def feeds(self, declared: tuple[str, ...]) -> tuple[str, ...]:
        """The tables this source writes, of those its kind declares (a kind's optional table
        stays out when the source does not configure it: no DAG outlet, no publish)."""
        return declared


if TYPE_CHECKING:
    #: one of the installed kinds' config models, told apart by `kind`; bound by bind_source_kinds()
    Source = SourceBase


def bind_source_kinds() -> None:
    """Give the site model its `sources` union: the config models of the installed source kinds
    (plantlake.core.kinds). Done once, before the first config is validated."""
    if PlantConfig.__pydantic_complete__:
        return
    from plantlake.core.kinds import source_kinds

    models = tuple(k.config for k in source_kinds().values())
    source = Annotated[Union[models], Field(discriminator="kind")] if len(models) > 1 else models[0]  # noqa: UP007
    PlantConfig.model_rebuild(_types_namespace={"Source": source})


class LakeSettings(ConfigModel):
    root: str = Field("./lake", description=(
        "Where the lake lives: a folder (relative to the config file), or `s3://bucket/prefix` on S3-compatible "
        "object storage (then `connection_id` names its endpoint and credentials). LAKE_ROOT overrides it."))
    connection_id: str | None = Field(None, description=(
        "The Airflow connection of an `s3://` lake (type aws: login = access key id, password = secret key, "
        "extra `endpoint_url` and `region_name`), e.g. AIRFLOW_CONN_PLANTLAKE_LAKE."))
    local_dir: str | None = Field(None, description=(
        "For an `s3://` lake: the local folder for what is local by nature (staging, the catalog, Data Docs, the "
        "report, a cache of the snapshot files the catalog reads); default: a folder under the system's temp dir."))
    vacuum_retention_hours: int = Field(24, ge=1, le=24 * 365, description=(
        "How long files that a commit removed (a rerun, a compaction) stay on disk for readers still on an "
        "older snapshot, before the daily compaction's vacuum deletes them."))


class QualitySettings(ConfigModel):
    """Thresholds of the cross-source checks (reported in `cross_source_checks` and Data Docs)."""

    min_sensor_coverage: float = Field(0.9, ge=0, le=1, description="Share of an order's running minutes "
                                       "on its line that must have sensor readings.")
    max_line_bad_share: float = Field(0.1, ge=0, le=1, description="Highest share of Bad or Uncertain "
                                      "readings on a line in an interval.")
    freshness_schedule: str = Field("*/15 * * * *", description=(
        "Cron of the quality DAG's own runs (besides those the publishes trigger): each run records every "
        "source's lag in `source_freshness` and alerts on a stale or failed source, so a source that stops "
        "publishing is noticed although it triggers nothing."))

    @field_validator("freshness_schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(v):
            raise ValueError("expected a cron expression with 5 fields (e.g. '*/15 * * * *')")
        return v


class AlertSettings(ConfigModel):
    """Where plant IT is told of an incident: a terminal failure of an ingest run, an audit that held a
    batch back, a stale source. One message per incident (not per retry or per failing run); the
    incident closes when the source publishes again."""

    connection_id: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description=(
        "An Airflow Connection of type smtp (host, port, login, password; extra `from_email`, `disable_tls`, "
        "`disable_ssl`), e.g. AIRFLOW_CONN_PLANT_ALERTS; Airflow's SMTP notifier sends through it."))
    to: list[str] = Field(..., min_length=1, description="Recipients.")
    from_email: str | None = Field(None, description="Sender; default: the connection's extra `from_email`.")


class ProductSettings(ConfigModel):
    """How the fused products are built."""

    image_sensor_window_s: int = Field(120, ge=1, le=86_400, description="image_training_set: sensor features "
                                       "are aggregated over this many seconds before each capture, on the image's line.")
    image_trace_step_s: int = Field(1, ge=1, le=3600, description="image_training_set: the grid of the sensor traces "
                                    "(one value per tag every this many seconds over the window, the last Good reading "
                                    "at or before each point); window / step points, at most 7,200.")

    @model_validator(mode="after")
    def _trace_length(self) -> ProductSettings:
        n = self.image_sensor_window_s // self.image_trace_step_s
        if not 1 <= n <= 7200:
            raise ValueError(f"products: image_sensor_window_s / image_trace_step_s gives {n} trace points per tag; "
                             "keep it between 1 and 7,200 (raise image_trace_step_s)")
        return self


class PlantConfig(ConfigModel):
    enterprise: Enterprise
    lake: LakeSettings = Field(default_factory=LakeSettings)
    data_roots: list[str] = Field(default_factory=lambda: ["."], min_length=1, description=(
        "Folders the sources may read files from (drop folders, exports), relative to the config file; a "
        "source folder must lie under one of them after links are resolved (default: the config's folder)."))
    quality: QualitySettings = Field(default_factory=QualitySettings)
    products: ProductSettings = Field(default_factory=ProductSettings)
    alerts: AlertSettings | None = Field(None, description="Alerts to plant IT; unset: incidents are recorded "
                                         "in the lake and logged only.")
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

    def lake_root(self) -> Path | str:
        """The lake's root: a local folder, or an `s3://` URL as written (LAKE_ROOT overrides the config)."""
        root = os.environ.get(LAKE_ENV) or self.lake.root
        if "://" in root:
            return root
        return Path(root).resolve() if os.environ.get(LAKE_ENV) else self.path(root)

    def open_lake(self) -> Any:
        """The `Lake` at `lake_root()`; an object-storage lake with the storage options of
        `lake.connection_id` (an Airflow connection, never the config)."""
        from plantlake.core.lake import Lake

        root = self.lake_root()
        options = None
        if isinstance(root, str):
            if not self.lake.connection_id:
                raise ConfigError(f"lake root {root!r} is on object storage: set lake.connection_id in the site config "
                                  "to the Airflow connection holding its endpoint and credentials")
            from plantlake.core.connections import get_connection
            from plantlake.core.storage import s3_options

            options = s3_options(get_connection(self.lake.connection_id))
        return Lake(root, options, self.path(self.lake.local_dir) if self.lake.local_dir else None)


# --------------------------------------------------------------------------- loading


def default_config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    here = Path.cwd() / "plant.yaml"
    if here.exists():
        return here
    return Path(__file__).resolve().parents[2] / "plant.yaml"


def read_yaml(text: str) -> Any:
    """YAML with libyaml's safe loader when PyYAML has it (a drafted config of 100,000 nodes loads in
    4 s rather than 18 s), the pure-Python one otherwise: the same documents, the same errors."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader


def load_config(path: str | Path | None = None) -> PlantConfig:
    """Load and validate a site config; raise ConfigError naming every problem."""
    path = Path(path) if path else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: site config not found (set {CONFIG_ENV} or pass --config)") from None
    try:
        data = read_yaml(text)
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
    bind_source_kinds()
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


def _kind_names() -> set[str]:
    from plantlake.core.kinds import source_kinds

    return set(source_kinds())


def _format(err: dict) -> str:
    parts: list[str] = []
    loc = list(err["loc"])
    for i, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif i > 0 and loc[i - 1] != "sources" and isinstance(loc[i - 1], int) and part in _kind_names():
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


def _reference_problems(cfg: PlantConfig):
    roots = [cfg.path(r).resolve() for r in cfg.data_roots]
    for i, src in enumerate(cfg.sources):
        for where, folder in src.file_folders():
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
