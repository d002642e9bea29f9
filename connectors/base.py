"""The contract between the runner and a connector."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from plantlake.core.config import PlantConfig
from plantlake.core.connections import Connection
from plantlake.core.kinds import source_kind
from plantlake.core.lake import Interval, Lake
from schemas.conform import TagRule, UnitRule
from schemas.rejects import Rejects
from schemas.units import canonical_unit


def tag_name(name: str) -> str:
    """A canonical tag name from a source's name for it: 'CoolantFlow/Temp' -> 'coolant_flow_temp'."""
    return re.sub(r"[^a-z0-9_]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()).strip("_")


def slug(name: str) -> str:
    """An asset id segment from a source's name for it (the documented slug rule): CamelCase split by
    '_', lower case, runs of characters other than a-z, 0-9, '_' and '-' made one '_'
    ('LabelPrinter2' -> 'label_printer2', 'Line 1' -> 'line_1', 'press-1' -> 'press-1')."""
    return re.sub(r"[^a-z0-9_-]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()).strip("_-")


def fill(template: str, captures: dict[str, str]) -> str:
    """An asset template filled with slugged captures ('{area}/{line}' with Line='Line1' -> 'line1')."""
    return template.format(**{k: slug(v) for k, v in captures.items()})


def capture_regex(template: str) -> str:
    """The regex of a template with `{name}` captures ('cam{n}_{serial}.png'): literal text escaped,
    each capture a named group of one or more characters other than '/'."""
    out, pos = "", 0
    for m in re.finditer(r"{(\w+)}", template):
        out += re.escape(template[pos:m.start()]) + f"(?P<{m.group(1)}>[^/]+?)"
        pos = m.end()
    return out + re.escape(template[pos:])


@dataclass
class Extract:
    """What a connector read for one interval: raw rows exactly as they came in."""

    schema: pa.Schema
    batches: Iterable[pa.RecordBatch | pa.Table]
    #: The connector's new state, committed by the runner only after a successful publish.
    state: dict[str, Any] | None = None
    #: Land each batch as its own durable raw part and call `on_landed(i)` after part i is
    #: on disk (MQTT acknowledges then); parts of earlier runs of the interval are kept.
    chunked: bool = False
    on_landed: Callable[[int], None] | None = None
    #: Counters the run summary reports (files read, nodes missing, ...).
    stats: dict[str, Any] = field(default_factory=dict)
    #: Several raw tables instead of one (`schema`/`batches` unused): name -> (schema, batches),
    #: landed one after the other as raw/<source>/<name>/…; decode then receives {name: raw table}.
    #: A schema of None is taken from the stream's first batch (a query runs only when consumed).
    streams: dict[str, tuple[pa.Schema | None, Iterable[pa.RecordBatch | pa.Table]]] | None = None
    #: Curated tables this extract read whole: their upsert replaces what the source had.
    full_refresh: frozenset[str] = frozenset()


@dataclass
class Decoded:
    """Raw rows decoded into the input of each curated table, plus what could not be decoded."""

    tables: dict[str, pa.Table]
    rejects: dict[str, Rejects] = field(default_factory=dict)


class Connector(ABC):
    """Reads one configured source; its kind's declaration (plantlake.core.kinds) names the tables."""

    #: a raw column whose value decides the series of a row's key, when decode treats each
    #: row on its own: the runner may then decode a large interval in slices of whole series
    slice_column: str | None = None

    def __init__(self, source: Any, plant: PlantConfig, connection: Connection | None) -> None:
        self.source = source
        self.plant = plant
        self.connection = connection
        #: the lake, set by the runner; connectors that keep files (images) write their
        #: content-addressed copies through its blob stores and touch nothing else in it
        self.lake: Lake | None = None

    @abstractmethod
    def extract(self, interval: Interval, state: dict[str, Any]) -> Extract:
        """Read the source for `interval`. Retriable failures raise (Airflow retries)."""

    @abstractmethod
    def decode(self, raw: pa.Table | dict[str, pa.Table]) -> Decoded:
        """Turn landed raw rows (per stream, when the extract has streams) into table input;
        undecodable rows become rejects."""

    def tag_rules(self) -> dict[str, TagRule]:
        """The site config's tag mappings for this source, keyed by source reference."""
        return {
            t.ref: TagRule(
                asset_id=t.asset,
                tag=t.tag,
                unit=t.unit,
                # without a declared unit, the unit the source sends decides the canonical one
                canonical_unit=t.canonical_unit or (canonical_unit(t.unit, t.quantity)
                                                    if t.unit and t.type == "number" else None),
                type=t.type,
                quantity=t.quantity,
            )
            for t in self.source.tags
        }

    def unmatched(self) -> list[str]:
        """The source's own selectors (node paths, topic rules) that matched nothing in this run."""
        return []

    def unit_rules(self) -> list[UnitRule]:
        """The source's unit rules by pattern (first match wins), for readings no tag mapping sets."""
        return [UnitRule(tag=u.tag, asset=u.asset, ref=u.ref, unit=u.unit, quantity=u.quantity,
                         canonical_unit=u.canonical_unit) for u in self.source.units]

    @property
    def kind(self) -> str:
        return self.source.kind

    @property
    def tables(self) -> tuple[str, ...]:
        """The curated tables the source feeds, in publish order."""
        return source_kind(self.source.kind).tables

    @property
    def timezone(self) -> str:
        return getattr(self.source, "timezone", None) or self.plant.site.timezone

    def after_publish(self) -> None:  # noqa: B027 - optional hook
        """Called after the publish and the state commit (e.g. remove files the source may delete)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most connectors hold nothing open
        """Release connections; called by the runner whatever happened."""
